r"""RealNVP: multi-scale affine-coupling flow, exact log-likelihood.

Argument: one dataset option, e.g. ``realnvp.py:digits``:
- digits (default; bundled 8x8) | mnist8k (../shared) | smoke (tests) |
  mnist | cifar10 (the papers' data, TFDS; see below): dequantized 8-bit
  images, y = (x + u) / 256, logit pre-processing with alpha = 0.05;
- moons | ring8 | checkerboard: toy 2-D densities (`jaxgen.data.toy`),
  couplings with MLP nets on the points themselves.

Evaluation reports the exact test log-likelihood ('exact'): nats and
bits/dim of the 8-bit images (the D ln 256 dequantization offset added), or
nats per point.

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/realnvp.py:digits \
      --workdir=runs/realnvp_digits
    2 scales (3 checkerboard, squeeze, 3 channel couplings, factor out
    half, 2 checkerboard couplings), ResNet coupling nets of 32 channels,
    750 steps of batch 64 (longer runs overfit the 1,258 training digits):
    a couple of minutes. Record `realnvp_digits`.

  python -m experiments.main --config=experiments/configs/realnvp.py:mnist8k \
      --workdir=runs/realnvp_mnist8k
    The reference layout (8 couplings, coupling nets of 64 channels and 2
    residual blocks: 1,204,711 parameters) on 28x28 mnist8k, 5,000 steps
    of batch 64: hours on 2 CPU cores. Record `realnvp_mnist8k` runs a CPU
    budget of the same 8 couplings (``--config.model.hidden=32
    --config.model.depth=1 --config.train.batch_size=32
    --config.train.num_steps=1500 --config.train.eval_every_steps=500``):
    about a quarter of an hour.

  python -m experiments.main --config=experiments/configs/realnvp.py:moons \
      --workdir=runs/realnvp_moons
    8 couplings with MLPs of 2 x 64 units, 5,000 steps of batch 256: about
    a minute; the sample PNG is a scatter plot over the data. Records
    `realnvp_moons`, `realnvp_ring8` and `realnvp_checkerboard` for the
    three toy options.

The papers' data (prepared TFDS array_record, README.md "Reproducing the
papers on a GPU or TPU"; no records here, nothing measured):

  python -m experiments.main --config=experiments/configs/realnvp.py:cifar10 \
      --workdir=runs/realnvp_cifar10
    32x32x3, 3 scales, 4 checkerboard couplings at the last one, coupling
    nets of 8 residual blocks of 64 channels (Dinh et al. 2017, Section
    4.1, CIFAR-10), Adam 1e-3, batch 64 (as the paper; it also puts an L2
    penalty of 5e-5 on the scale weights, which this preset leaves out),
    200,000 steps. Compare with Dinh et al. 2017, Table 1: 3.49 bits/dim
    on the CIFAR-10 test set.

  python -m experiments.main --config=experiments/configs/realnvp.py:mnist \
      --workdir=runs/realnvp_mnist
    The 60,000 / 10,000 8-bit MNIST digits with the mnist8k layout above,
    batch 64, 100,000 steps. RealNVP's paper reports no MNIST figure; 1.06
    bits/dim is the RealNVP row of Grathwohl et al. 2019's density
    estimation table (MNIST column).
"""

from experiments.configs import common

TOY = ('moons', 'ring8', 'checkerboard')
ALLOWED = {'dataset': common.DATASETS + ('mnist', 'cifar10') + TOY}
DEFAULTS = {'dataset': 'digits'}


def toy_data(c, name: str) -> None:
  """Points of a toy 2-D density: 50,000 drawn once, 90% train, 10% test."""
  d = c.data
  d.name = f'toy:{name}'
  d.splits.train = 'all[:90%]'
  d.splits.validation = ''
  d.splits.test = 'all[90%:]'
  d.binarize = 'none'  # points pass through the image preprocessing
  d.dequantize = False
  d.num_points = 50_000
  c.eval.periodic_split = 'test'


def flow_config(family: str, dataset: str, toy_names=TOY):
  """The common config of a flow family on `dataset`: toy points, or
  dequantized 8-bit images on [0, 1) (the evaluator adds D ln 256)."""
  toy = dataset in toy_names
  c = common.base_config(family, 'digits' if toy else dataset)
  if toy:
    toy_data(c, dataset)
  else:
    c.data.binarize = 'none'  # 8-bit pixels ...
    c.data.dequantize = True  # ... y = (x + u) / 256; eval adds D ln 256
    c.data.value_range = 'unit'
  return c


def multiscale_schedule(c, dataset: str, toy: bool) -> None:
  """Optimizer and schedule of the multi-scale flows (RealNVP, Glow)."""
  c.optimizer.learning_rate = 1e-3
  c.train.batch_size = 256 if toy else 64
  c.train.num_steps = 750 if dataset == 'digits' else 5000
  c.train.eval_every_steps = 250 if dataset == 'digits' else 1000
  if dataset in common.PAPER_DATASETS:
    c.train.num_steps = 200_000 if dataset == 'cifar10' else 100_000
    c.train.eval_every_steps = 10_000
  c.train.image_every_steps = c.train.eval_every_steps
  c.train.checkpoint_every_steps = c.train.eval_every_steps
  common.exact_estimator(c)


def get_config(arg: str = 'digits'):
  dataset = common.parse_arg(arg, ALLOWED, DEFAULTS)['dataset']
  toy = dataset in TOY
  c = flow_config('realnvp', dataset)
  small = dataset in ('digits', 'smoke')

  m = c.model
  cifar = dataset == 'cifar10'
  m.image_shape = (2,) if toy else common.IMAGE_SHAPES[dataset]
  # 2x2 squeezes: num_scales - 1
  m.num_scales = 1 if toy else (3 if cifar else 2)
  m.couplings_per_scale = 3  # checkerboard, then channel couplings per scale
  m.final_couplings = 8 if toy else (4 if cifar else 2)  # checkerboard, last
  m.hidden = 32 if dataset == 'digits' else 64  # coupling net width
  # residual blocks (conv) / hidden layers (MLP) per net
  m.depth = 8 if cifar else 2
  m.logit_alpha = 0.0 if toy else 0.05  # logit(alpha + (1 - 2 alpha) y)

  multiscale_schedule(c, dataset, toy)
  if dataset == 'smoke':
    m.hidden, m.depth = 4, 1
    m.couplings_per_scale, m.final_couplings = 1, 2
  return common.finalize(c, dataset)
