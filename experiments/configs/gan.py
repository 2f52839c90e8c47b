r"""GAN family: GAN (minimax / non-saturating), DCGAN, WGAN, WGAN-GP, LSGAN, cGAN.

Argument: comma-separated options, e.g. ``gan.py:digits``,
``gan.py:mnist8k,wgan-gp``, ``gan.py:ring8,minimax``, ``gan.py:digits,cond``:
- dataset: digits (default; bundled 8x8) | mnist8k (../shared) | smoke
  (tests) | ring8 | grid25 (toy 2-D mixtures, `jaxgen.data.toy`) | mnist |
  cifar10 (the papers' data, TFDS; see below)
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

No likelihood: the records hold sample-quality scores from
``python -m experiments.sample_quality`` (Frechet distance and an IS-style
score in an in-project classifier's features, classes covered; on the toy
data, modes covered and the high-quality share).

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/gan.py:digits \
      --workdir=runs/dcgan_digits
    DCGAN 8x8: z = 32, G 32 -> 2x2x128 -> 4x4x64 -> 8x8x1 (148,864
    trainable parameters), D 64/128 (132,864), 5,000 steps: a few minutes.
    Record `dcgan_digits`; with ``digits,lsgan`` and ``digits,cond``
    (a few minutes each), `lsgan_digits` and `cgan_digits`; with
    ``digits,wgan-gp`` (5 critic steps per generator step, about 20
    minutes), `wgan_gp_digits`.

  python -m experiments.main --config=experiments/configs/gan.py:mnist8k \
      --workdir=runs/dcgan_mnist8k
    DCGAN 28x28: z = 100, G 100 -> 7x7x128 -> 14x14x64 -> 28x28x1 (759,680
    trainable parameters), D 64/128 (138,624), 10,000 steps on the 7,000
    mnist8k training digits: under an hour. Records `dcgan_mnist8k`,
    `lsgan_mnist8k` (``mnist8k,lsgan``) and `cgan_mnist8k`
    (``mnist8k,cond``) are CPU budgets of 5,000 steps, about 20 minutes
    each; `wgan_gp_mnist8k` (``mnist8k,wgan-gp``, 5 critic steps and the
    penalty's double backward pass per generator step: hours for the
    preset's 10,000) one of 1,000 steps, about half an hour. The
    overrides are in each record's command.

  python -m experiments.main --config=experiments/configs/gan.py:ring8 \
      --workdir=runs/gan_ring8
    MLP GAN on the 8-Gaussian ring (3 x 128 units per net, z = 16), 10,000
    generator steps: a few minutes (WGAN and WGAN-GP: about 5). The sample
    PNG is a scatter plot over the data. Records `<objective>_ring8` and
    `<objective>_grid25` for ``ring8`` / ``grid25`` with each objective:
    `gan_*` (non-saturating), `gan_minimax_*`, `wgan_*`, `wgan_gp_*`,
    `lsgan_*`.

The papers' data (prepared TFDS array_record, README.md "Reproducing the
papers on a GPU or TPU"; no records here, nothing measured; scored by
``experiments.sample_quality`` against an in-project classifier, so the
scores are not the papers' Inception-based figures):

  python -m experiments.main --config=experiments/configs/gan.py:mnist \
      --workdir=runs/dcgan_mnist
    The 28x28 DCGAN above on the 60,000 8-bit MNIST training digits,
    50,000 steps of minibatch 64 (about 53 epochs).

  python -m experiments.main --config=experiments/configs/gan.py:cifar10 \
      --workdir=runs/dcgan_cifar10
    DCGAN 32x32x3: G 100 -> 4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32x3, D
    64/128/256, Adam 2e-4, b1 = 0.5, minibatch 128 (Radford et al. 2016;
    with ``cifar10,wgan-gp``: Gulrajani et al. 2017's settings above,
    minibatch 64), 100,000 generator steps.
"""

from experiments.configs import common

TOY = ('ring8', 'grid25')
ALLOWED = {
    'dataset': common.DATASETS + ('mnist', 'cifar10') + TOY,
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
  cifar = dataset == 'cifar10'
  m.image_shape = (2,) if toy else common.IMAGE_SHAPES[dataset]
  m.architecture = arch  # 'dcgan' | 'mlp'
  m.objective = objective  # see jaxgen.models.gan.OBJECTIVES
  m.latent_dim = 16 if toy else (32 if small else 100)
  m.latent_prior = 'normal'  # 'normal' N(0, I) | 'uniform' U[-1, 1]
  m.num_classes = 10 if opts['cond'] else 0  # > 0: conditional GAN
  # DCGAN generator: first map, then stride-2 layers
  m.g_channels = (256, 128, 64) if cifar else (128, 64)
  # DCGAN discriminator: stride-2 convolutions
  m.d_channels = (64, 128, 256) if cifar else (64, 128)
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
  # True: G's update reuses the last D update's fakes (one G pass per step).
  m.reuse_fakes = False

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

  minibatch = 256 if toy else (
      128 if cifar and objective not in ('wgan', 'wgan-gp') else 64)
  if dataset == 'smoke':
    m.latent_dim = 8
    m.g_channels, m.d_channels = (8, 4), (4, 8)
    m.d_steps = min(m.d_steps, 2)  # finalize sets batch 32
  c.train.batch_size = m.d_steps * minibatch
  c.train.num_steps = 10_000 if (toy or dataset == 'mnist8k') else 5000
  if dataset in common.PAPER_DATASETS:
    c.train.num_steps = 100_000 if cifar else 50_000
  c.train.log_every_steps = 100
  c.train.eval_every_steps = 0  # no likelihood; the losses at the end
  c.train.image_every_steps = 1000  # sample grids (toy: scatter plots)
  c.train.checkpoint_every_steps = 1000
  if dataset in common.PAPER_DATASETS:
    c.train.image_every_steps = c.train.checkpoint_every_steps = 5000
  c.eval.periodic_split = ''
  c.eval.batch_size = 500 if toy else 200
  c.eval.num_grid_samples = 2000 if toy else 64  # toy: points per scatter
  return common.finalize(c, dataset)
