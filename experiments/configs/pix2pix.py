r"""pix2pix family: paired image-to-image translation of digits and photos.

Argument: comma-separated options, e.g. ``pix2pix.py:mnist8k,edges``,
``pix2pix.py:digits,inpaint``, ``pix2pix.py:photos,colorize``:
- dataset: digits (default; bundled 8x8) | mnist8k (../shared) | smoke
  (tests) | photos (32x32 RGB crops of scikit-image's bundled colour
  photos, tested on a photo never seen in training:
  `experiments.configs.common.data_config`)
- task: edges (default) | inpaint | superres | colorize (`jaxgen.data.paired`:
  the input is made from each image, the image is the target; 'colorize'
  maps the one-channel luminance to RGB and needs the photos)

Settings of Isola et al. 2017 where they fit: Adam 2e-4, b1 = 0.5 for both
nets, one D update per G update, lambda = 100, dropout 0.5 as G's noise,
N(0, 0.02^2) weights, instance normalization in G. The nets are sized for
small digits: a 2-level U-Net with one residual block at its lowest
resolution; a PatchGAN whose patch (`jaxgen.models.pix2pix.receptive_field`)
is 16x16 on 28x28 images (kernel 4, strides 2, 1) and 7x7 on 8x8 images
(kernel 3, strides 1, 1). Images are scaled to [-1, 1] for the Tanh output.
'inpaint' masks a 12x12 square (28x28) or a 4x4 one (8x8); 'superres'
pools 4x4 blocks (28x28) or 2x2 (8x8). The photos take the mnist8k nets
(the PatchGAN's patch is 16x16 of a 32x32 crop) with a third U-Net level
(32/64/128, lowest resolution 4x4) for more context per pixel.

No likelihood: evaluation reports L1 and PSNR of the translations against
their targets over the test split, and the records add sample-quality
scores (``experiments.sample_quality``) of translations of recent training
inputs (the bank of `jaxgen.models.pix2pix`).

Commands (seed 0, 2 CPU cores); a command whose record is named `<name>` is
one row of RESULTS.md, kept in results/<name>.json and rerun by
``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/pix2pix.py:mnist8k,edges \
      --workdir=runs/pix2pix_mnist8k_edges
    Edges to digits on mnist8k, 1,000 steps of 64: record
    `pix2pix_mnist8k_edges`. ``mnist8k,inpaint`` and ``mnist8k,superres``
    train the same nets on the other tasks.

  python -m experiments.main --config=experiments/configs/pix2pix.py:digits,edges \
      --workdir=runs/pix2pix_digits_edges
    The 8x8 version: 2,000 steps of 64.

  python -m experiments.main --config=experiments/configs/pix2pix.py:photos,colorize \
      --workdir=runs/pix2pix_photos_colorize
    Luminance to RGB on 32x32 photo crops, 1,000 steps of 64: record
    `pix2pix_photos_colorize` (its wall time is in the record). The
    sample-quality scores use a digits classifier and do not apply to
    photos.
"""

from experiments.configs import common

ALLOWED = {
    'dataset': common.DATASETS + common.PHOTO_DATASETS,
    'task': ('edges', 'inpaint', 'superres', 'colorize'),
}
DEFAULTS = {'dataset': 'digits', 'task': 'edges'}


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  c = common.base_config('pix2pix', dataset)
  c.data.binarize = 'none'  # 8-bit images ...
  c.data.value_range = 'symmetric'  # ... in [-1, 1] for the Tanh output
  small = dataset in ('digits', 'smoke')

  m = c.model
  m.image_shape = common.IMAGE_SHAPES[dataset]
  m.task = opts['task']  # see jaxgen.data.paired.TASKS
  m.hole = 4 if small else 12  # side of the inpainting square
  m.factor = 2 if small else 4  # super-resolution pooling factor
  m.g_channels = (16, 32) if small else (32, 64)  # U-Net stride-2 levels
  if dataset == 'photos':
    m.g_channels = (32, 64, 128)
  m.g_res_blocks = 1  # residual blocks at the lowest resolution
  m.g_norm = 'instance'  # 'instance' | 'none'
  m.g_dropout = 0.5  # decoder dropout: G's noise, also at test time
  m.g_dropout_layers = 1  # decoder layers with dropout, innermost first
  m.d_channels = (16, 32) if small else (32, 64)  # PatchGAN convolutions
  m.d_strides = (1, 1) if small else (2, 1)  # with d_kernel: the patch size
  m.d_kernel = 3 if small else 4
  m.leaky_slope = 0.2
  m.l1_weight = 100.0  # lambda of eq. 4
  # Ring buffer of training images that `sample` translates: the size of
  # the test split, so sample-quality scores use as many distinct inputs.
  m.bank_size = {'digits': 360, 'mnist8k': 1000, 'smoke': 64,
                 'photos': 273}[dataset]

  # config.optimizer: the generator's; config.d_optimizer: the
  # discriminator's (same fields, built by jaxgen.steps.make_optimizer).
  o = c.optimizer
  o.name, o.learning_rate, o.b1 = 'adam', 2e-4, 0.5
  c.d_optimizer = o.copy_and_resolve_references()

  if dataset == 'smoke':  # quick to compile in tests
    m.g_res_blocks = 0
    m.d_channels, m.d_strides = (8,), (1,)
  c.train.batch_size = 64
  c.train.num_steps = 2000 if small else 1000
  c.train.log_every_steps = 100
  c.train.eval_every_steps = 0  # no likelihood; L1/PSNR at the end
  c.train.image_every_steps = 1000
  c.train.checkpoint_every_steps = 1000
  c.eval.periodic_split = ''
  c.eval.batch_size = 200
  c.eval.num_grid_samples = 64
  return common.finalize(c, dataset)
