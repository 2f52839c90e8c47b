r"""CycleGAN family: unpaired translation between thin and thick digits.

Argument: comma-separated options, e.g. ``cyclegan.py:mnist8k``:
- dataset: digits (default; bundled 8x8) | mnist8k (../shared) | smoke
  (tests)
- task: thicken (the only one): domain A = the digits, domain B = the
  digits dilated by a 3x3 max-filter (`jaxgen.data.paired`); each batch
  gives its first half to A and the dilation of its second half to B.

Settings of Zhu et al. 2017 where they fit: least-squares GAN losses,
lambda_cyc = 10, lambda_id = 0.5 lambda_cyc, a history of 50 generated
images per domain, Adam 2e-4, b1 = 0.5, instance normalization in the
generators, N(0, 0.02^2) weights. The nets are sized for small digits:
2-level U-Nets (no dropout) with one residual block at their lowest
resolution, PatchGANs with 16x16 patches on 28x28 (kernel 4, strides 2, 1)
and 7x7 on 8x8 (kernel 3, strides 1, 1). A batch of 64 gives 32 images per
domain.

No likelihood: evaluation reports the cycle and identity errors and, using
the pairing the model never saw, L1 and PSNR of F(dilate(x)) against x and
of G(x) against dilate(x). Samples are F's outputs (thin digits) for
thickened training images.

Commands (seed 0, 2 CPU cores); a command whose record is named `<name>` is
one row of RESULTS.md, kept in results/<name>.json and rerun by
``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/cyclegan.py:mnist8k \
      --workdir=runs/cyclegan_mnist8k
    Thin <-> thick digits on mnist8k, 1,000 steps of 64. Record
    `cyclegan_mnist8k` is a CPU budget of 600 steps.
"""

from experiments.configs import common

ALLOWED = {
    'dataset': common.DATASETS,
    'task': ('thicken',),
}
DEFAULTS = {'dataset': 'digits', 'task': 'thicken'}


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  c = common.base_config('cyclegan', dataset)
  c.data.binarize = 'none'  # 8-bit images ...
  c.data.value_range = 'symmetric'  # ... in [-1, 1] for the Tanh output
  small = dataset in ('digits', 'smoke')

  m = c.model
  m.image_shape = common.IMAGE_SHAPES[dataset]
  m.task = opts['task']  # 'thicken': A = the digits, B = their dilations
  m.g_channels = (16, 32)  # each U-Net's stride-2 levels
  m.g_res_blocks = 1  # residual blocks at the lowest resolution
  m.g_norm = 'instance'  # 'instance' | 'none'
  m.d_channels = (16, 32)  # each PatchGAN's convolutions
  m.d_strides = (1, 1) if small else (2, 1)  # with d_kernel: the patch
  m.d_kernel = 3 if small else 4
  m.leaky_slope = 0.2
  m.cycle_weight = 10.0  # lambda_cyc
  m.identity_weight = 5.0  # lambda_id = 0.5 lambda_cyc (0: no identity loss)
  m.history_size = 50  # generated images kept per domain (0: none)
  # Ring buffer of training images whose dilations `sample` translates.
  m.bank_size = {'digits': 360, 'mnist8k': 1000, 'smoke': 64}[dataset]

  # config.optimizer: both generators'; config.d_optimizer: both
  # discriminators' (same fields, built by jaxgen.steps.make_optimizer).
  o = c.optimizer
  o.name, o.learning_rate, o.b1 = 'adam', 2e-4, 0.5
  c.d_optimizer = o.copy_and_resolve_references()

  c.train.batch_size = 64  # 32 images per domain
  c.train.num_steps = 1000
  c.train.log_every_steps = 100
  c.train.eval_every_steps = 0  # no likelihood; the errors at the end
  c.train.image_every_steps = 500
  c.train.checkpoint_every_steps = 500
  c.eval.periodic_split = ''
  c.eval.batch_size = 200
  c.eval.num_grid_samples = 64
  if dataset == 'smoke':  # one level per net: quick to compile in tests
    m.g_channels, m.g_res_blocks = (8,), 0
    m.d_channels, m.d_strides = (8,), (1,)
    m.history_size = 8
  return common.finalize(c, dataset)
