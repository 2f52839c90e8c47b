r"""Glow: actnorm, invertible 1x1 convolutions, affine couplings; exact
log-likelihood.

Argument: comma-separated options, e.g. ``glow.py:digits``,
``glow.py:mnist8k,cond``:
- digits (default; bundled 8x8) | mnist8k (../shared) | smoke (tests) |
  mnist | cifar10 (the paper's data, TFDS; see below): dequantized 8-bit
  images, y = (x + u) / 256, centred to y - 0.5;
- moons | ring8 | checkerboard: toy 2-D densities (`jaxgen.data.toy`);
  flow steps of actnorm, an invertible 2x2 linear map (the 1x1 conv of a
  one-pixel image) and an MLP coupling on the points themselves, one level
  (nothing to squeeze).
- cond: class-conditional (images): the top prior's mean and log-scale
  are a learned embedding of the label (Kingma & Dhariwal 2018, section
  5), ``model.num_classes = 10``; the likelihood is log p(x | y), samples
  cycle through the classes 0..9 (``sample(..., labels=...)`` picks them),
  and ``python -m experiments.uses bayes`` classifies by p(y | x).

The actnorms are initialised from the first training batch before step 1
(`jaxgen.models.glow.data_init`). Evaluation reports the exact test
log-likelihood ('exact'): nats and bits/dim of the 8-bit images (the
D ln 256 dequantization offset added), or nats per point.

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/glow.py:digits \
      --workdir=runs/glow_digits
    L = 2 levels of K = 4 steps, coupling nets of 32 channels, 750 steps of
    batch 64: minutes. Record `glow_digits` runs 3,000 steps
    (``--config.train.num_steps=3000``): the validation NLL still falls at
    750.

  python -m experiments.main --config=experiments/configs/glow.py:mnist8k \
      --workdir=runs/glow_mnist8k
    L = 2 levels of K = 8 steps, coupling nets of 128 channels on 28x28
    mnist8k, 5,000 steps of batch 64: hours on 2 CPU cores. Record
    `glow_mnist8k` runs a CPU budget of the same levels and steps
    (``--config.model.hidden=32 --config.train.num_steps=3000``): minutes.

  python -m experiments.main --config=experiments/configs/glow.py:digits,cond \
      --workdir=runs/glow_cond_digits
    The digits preset with the class-conditional top prior; then
    ``python -m experiments.uses bayes --workdir=runs/glow_cond_digits``
    for its Bayes classifier.

  python -m experiments.main --config=experiments/configs/glow.py:moons \
      --workdir=runs/glow_moons
    8 steps with MLPs of 2 x 64 units, 5,000 steps of batch 256: minutes;
    the sample PNG is a scatter plot over the data. Records `glow_moons`,
    `glow_ring8` and `glow_checkerboard` for the three toy options.

The paper's data (prepared TFDS array_record, README.md "Reproducing the
papers on a GPU or TPU"; no records here, nothing measured):

  python -m experiments.main --config=experiments/configs/glow.py:cifar10 \
      --workdir=runs/glow_cifar10
    L = 3 levels of K = 32 steps, coupling nets of 512 channels, affine
    couplings, LU 1x1 convolutions, as the CIFAR-10 command of the
    reference code (openai/glow README: 8 GPUs, learning rate 1e-3,
    minibatches of 64 per GPU by its default; it also learns the top
    prior, ``--learntop``, which is N(0, I) here); here Adam 1e-3, batch
    64, 200,000 steps. Compare with Kingma & Dhariwal 2018, Table 2: 3.35
    bits/dim on the CIFAR-10 test set.

  python -m experiments.main --config=experiments/configs/glow.py:mnist \
      --workdir=runs/glow_mnist
    The 60,000 / 10,000 8-bit MNIST digits, K = 32 steps of 512 channels
    per level; L = 2 (28 = 4 x 7 allows two squeezes), batch 64, 100,000
    steps. Compare with Kingma & Dhariwal 2018, Table 2: 1.05 bits/dim.
"""

from experiments.configs import common
from experiments.configs import realnvp as realnvp_config

TOY = realnvp_config.TOY
ALLOWED = {'dataset': common.DATASETS + ('mnist', 'cifar10') + TOY,
           'cond': ('cond',)}
DEFAULTS = {'dataset': 'digits', 'cond': ''}


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  toy = dataset in TOY
  if toy and opts['cond']:
    raise ValueError(f'config argument cond: the class-conditional prior is '
                     f'for the labelled image datasets, not {dataset!r}.')
  c = realnvp_config.flow_config('glow', dataset, TOY)
  small = dataset in ('digits', 'smoke')

  m = c.model
  paper = dataset in common.PAPER_DATASETS
  m.image_shape = (2,) if toy else common.IMAGE_SHAPES[dataset]
  # L: squeeze, K steps, split (not the last)
  m.levels = 1 if toy else (3 if dataset == 'cifar10' else 2)
  m.steps_per_level = (32 if paper else
                       8 if toy or dataset == 'mnist8k' else 4)  # K
  m.hidden = 512 if paper else {'digits': 32, 'mnist8k': 128}.get(
      dataset, 64)  # NN width
  m.depth = 2  # hidden layers of the coupling MLPs (points)
  # > 0: class-conditional top prior (labels 0..n-1)
  m.num_classes = 10 if opts['cond'] else 0

  realnvp_config.multiscale_schedule(c, dataset, toy)
  if dataset == 'smoke':
    m.hidden, m.levels, m.steps_per_level = 4, 2, 1
  return common.finalize(c, dataset)
