"""GAN family: GAN (minimax / non-saturating), DCGAN, WGAN, WGAN-GP, LSGAN, cGAN.

Argument: comma-separated options, e.g. ``gan.py:digits``,
``gan.py:mnist8k,wgan-gp``, ``gan.py:ring8,minimax``, ``gan.py:digits,cond``:
- dataset: digits (default; bundled 8x8) | mnist8k (../shared) | smoke
  (tests) | ring8 | grid25 (toy 2-D mixtures, `jaxgen.data.toy`)
- objective: nonsaturating (default) | minimax | wgan | wgan-gp | lsgan
- arch: dcgan (default for images) | mlp (default and only choice for toy)
- cond: class-conditional GAN (one-hot labels into both nets)

Per objective (the papers' settings): minimax, nonsaturating, lsgan: Adam
2e-4, b1 = 0.5 for both nets (DCGAN), one discriminator step per generator
step; wgan: RMSProp 5e-5, weights clipped to [-0.01, 0.01], 5 critic steps;
wgan-gp: Adam 1e-4, b1 = 0, b2 = 0.9, 5 critic steps, lambda = 10, no batch
norm in the critic (layer norm in the DCGAN critic). ``train.batch_size``
is d_steps x the minibatch of one update (64 for images, 256 for toy
data). Images are scaled to [-1, 1] for the Tanh output.

Commands and what to expect (seed 0, 2 CPU cores):

  python -m experiments.main --config=experiments/configs/gan.py:digits \
      --workdir=runs/dcgan_digits
    DCGAN 8x8: z = 32, G 32 -> 2x2x128 -> 4x4x64 -> 8x8x1 (148,864
    trainable parameters), D 64/128 (132,864), 5,000 steps; samples are
    recognisable digits. No likelihood: score samples with
    ``python -m experiments.sample_quality`` (jaxgen.quality).

  python -m experiments.main --config=experiments/configs/gan.py:mnist8k \
      --workdir=runs/dcgan_mnist8k
    DCGAN 28x28: z = 100, G 100 -> 7x7x128 -> 14x14x64 -> 28x28x1 (759,680
    trainable parameters), D 64/128 (138,624), 10,000 steps on the 7,000
    mnist8k training digits. RESULTS.md's `dcgan_mnist8k` (5,000 steps,
    22 minutes; results/dcgan_mnist8k.json): FID-style 307.5 in the
    in-project classifier's features (real training images: 135.6), all 10
    classes; ``mnist8k,lsgan`` 359.0 and ``mnist8k,cond`` (class-
    conditional, samples follow their labels) 159.4, also 5,000 steps
    (results/lsgan_mnist8k.json, results/cgan_mnist8k.json; scored with a
    classifier retrained on another machine: test accuracy 0.987 vs
    0.984). ``mnist8k,wgan-gp`` (5 critic steps each, ~1.4 s per generator
    step here) at a CPU budget of 1,000 steps: 503.4, all 10 classes
    (results/wgan_gp_mnist8k.json).

  python -m experiments.main --config=experiments/configs/gan.py:ring8 \
      --workdir=runs/gan_ring8
    MLP GAN on the 8-Gaussian ring (3 x 128 units per net, z = 16), 10,000
    generator steps; the sample PNG is a scatter plot over the data. Mode
    coverage and high-quality share:
    ``python -m experiments.sample_quality --workdir=runs/gan_ring8``.
    Measured (RESULTS.md, seed 0), modes covered of 8 on ``ring8`` / of 25
    on ``grid25``: non-saturating 2 / 13, minimax 3 / 14, LSGAN 3 / 12,
    WGAN 5 / 19, WGAN-GP 8 / 16 (records results/*_ring8.json,
    results/*_grid25.json).
"""

from experiments.configs import common

TOY = ('ring8', 'grid25')
ALLOWED = {
    'dataset': common.DATASETS + TOY,
    'objective': ('nonsaturating', 'minimax', 'wgan', 'wgan-gp', 'lsgan'),
    'arch': ('dcgan', 'mlp'),
    'cond': ('cond',),
}
DEFAULTS = {'dataset': 'digits', 'objective': 'nonsaturating', 'arch': '',
            'cond': ''}


def _toy_data(c, name: str) -> None:
  """Points of a toy 2-D mixture: 50,000 drawn once, 90% train, 10% test."""
  d = c.data
  d.name = f'toy:{name}'
  d.splits.train = 'all[:90%]'
  d.splits.validation = ''
  d.splits.test = 'all[90%:]'
  d.binarize = 'none'  # points pass through the image preprocessing
  d.num_points = 50_000


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset, objective = opts['dataset'], opts['objective']
  toy = dataset in TOY
  arch = opts['arch'] or ('mlp' if toy else 'dcgan')
  c = common.base_config('gan', 'digits' if toy else dataset)
  if toy:
    _toy_data(c, dataset)
  else:
    c.data.binarize = 'none'  # 8-bit images ...
    c.data.value_range = 'symmetric'  # ... in [-1, 1] for the Tanh output
  small = dataset in ('digits', 'smoke')

  m = c.model
  m.image_shape = (2,) if toy else ((8, 8, 1) if small else (28, 28, 1))
  m.architecture = arch  # 'dcgan' | 'mlp'
  m.objective = objective  # see jaxgen.models.gan.OBJECTIVES
  m.latent_dim = 16 if toy else (32 if small else 100)
  m.latent_prior = 'normal'  # 'normal' N(0, I) | 'uniform' U[-1, 1]
  m.num_classes = 10 if opts['cond'] else 0  # > 0: conditional GAN
  m.g_channels = (128, 64)  # DCGAN generator: first map, then stride-2 layers
  m.d_channels = (64, 128)  # DCGAN discriminator: stride-2 convolutions
  m.kernel_size = 4  # of the stride-2 (transposed) convolutions
  m.g_hidden = (128, 128, 128) if toy else (256, 256)  # MLP generator
  m.d_hidden = (128, 128, 128) if toy else (256, 256)  # MLP discriminator
  m.g_norm = 'batch' if arch == 'dcgan' else 'none'  # 'batch' | 'none'
  # 'batch' | 'layer' | 'none'; never 'batch' with the gradient penalty.
  m.d_norm = ('none' if arch == 'mlp' else
              'layer' if objective == 'wgan-gp' else 'batch')
  m.use_bias = arch == 'mlp'  # DCGAN: no biases (batch norm's offset)
  m.leaky_slope = 0.2  # discriminator LeakyReLU
  m.d_steps = 5 if objective in ('wgan', 'wgan-gp') else 1  # k per G step
  m.gp_weight = 10.0  # lambda ('wgan-gp')
  m.clip_value = 0.01  # c ('wgan')
  m.d_dropout = 0.0  # discriminator dropout rate (keyed; 0: none)

  # config.optimizer: the generator's; config.d_optimizer: the
  # discriminator's (same fields, built by jaxgen.steps.make_optimizer).
  o = c.optimizer
  if objective == 'wgan':
    o.name, o.learning_rate = 'rmsprop', 5e-5
  elif objective == 'wgan-gp':
    o.name, o.learning_rate, o.b1, o.b2 = 'adam', 1e-4, 0.0, 0.9
  else:
    o.name, o.learning_rate, o.b1 = 'adam', 2e-4, 0.5
  c.d_optimizer = o.copy_and_resolve_references()

  minibatch = 256 if toy else 64
  if dataset == 'smoke':
    m.latent_dim = 8
    m.g_channels, m.d_channels = (8, 4), (4, 8)
    m.d_steps = min(m.d_steps, 2)  # finalize sets batch 32
  c.train.batch_size = m.d_steps * minibatch
  c.train.num_steps = 10_000 if (toy or dataset == 'mnist8k') else 5000
  c.train.log_every_steps = 100
  c.train.eval_every_steps = 0  # no likelihood; the losses at the end
  c.train.image_every_steps = 1000  # sample grids (toy: scatter plots)
  c.train.checkpoint_every_steps = 1000
  c.eval.periodic_split = ''
  c.eval.batch_size = 500 if toy else 200
  c.eval.num_grid_samples = 2000 if toy else 64  # toy: points per scatter
  return common.finalize(c, dataset)
