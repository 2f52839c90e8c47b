r"""MADE on binarized digits: one mask, or order-agnostic with a mask ensemble.

Argument: comma-separated options, e.g. ``made.py:digits``,
``made.py:mnist8k,agnostic``:
- dataset: digits (default; bundled) | mnist8k (../shared) | smoke (tests)
  | binarized_mnist (the papers' data, TFDS; see below)
- variant: single (default: one MADE, raster ordering) | agnostic (random
  orderings and connectivities, 16 mask sets on digits and 32 on mnist8k,
  one drawn per step; evaluated as the uniform mixture of all of them)

Evaluation reports two exact estimators: 'single' (mask set 0 alone) and
'ensemble' (log-mean-exp over the eval_masks sets: the mixture model).

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/made.py:digits \
      --workdir=runs/made_digits
    256 hidden units, 3,000 steps on dynamically binarized 8x8 digits:
    about a minute. Record `made_digits`; with ``digits,agnostic``,
    `made_agnostic_digits`.

  python -m experiments.main \
      --config=experiments/configs/made.py:mnist8k,agnostic \
      --workdir=runs/made_agnostic_mnist8k
    One hidden layer of 500 ReLUs (Germain et al. 2015), 20,000 steps:
    10 minutes or less. Record `made_agnostic_mnist8k`; with ``mnist8k``
    (one mask, natural order), `made_mnist8k`. The final 64-sample grid
    runs the 784-step sampler once per mask set (32 times), tens of
    seconds.

  python -m experiments.main \
      --config=experiments/configs/made.py:binarized_mnist,agnostic \
      --workdir=runs/made_agnostic_binarized_mnist
    The fixed binarization of Larochelle & Murray 2011 from prepared TFDS
    data (50,000 train, 10,000 validation, 10,000 test; README.md
    "Reproducing the papers on a GPU or TPU"), one hidden layer of 500
    units, 32 mask sets, batch 100, 100,000 steps (200 epochs): compare
    with the binarized-MNIST table of Germain et al. 2015 (one hidden
    layer, 1 and 32 masks). No record here, nothing measured.
"""

from experiments.configs import common

ALLOWED = {'dataset': common.DATASETS + ('binarized_mnist',), 'variant': ('single', 'agnostic')}
DEFAULTS = {'dataset': 'digits', 'variant': 'single'}


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  agnostic = opts['variant'] == 'agnostic'
  c = common.base_config('made', dataset)
  small = dataset in ('digits', 'smoke')
  c.data.binarize = 'dynamic'  # Bernoulli model: a fresh binarization per step
  m = c.model
  m.image_shape = common.IMAGE_SHAPES[dataset]
  m.hidden_dims = (256,) if small else (500,)  # masked hidden layers
  m.activation = 'relu'
  # Mask sets trained on (0 = a fresh set every step).
  m.num_masks = (16 if small else 32) if agnostic else 1
  m.ordering = 'random' if agnostic else 'natural'  # 'natural' | 'random'
  m.mask_seed = 0  # the sets are functions of (mask_seed, index)
  m.direct_connection = False  # masked input-to-output layer
  m.eval_masks = m.num_masks  # default ensemble size for log_likelihood/sample
  c.train.num_steps = 3000 if small else 20_000
  c.train.eval_every_steps = 1000 if small else 5000
  if dataset in common.PAPER_DATASETS:
    c.train.batch_size = 100
    c.train.num_steps = 100_000
    c.train.eval_every_steps = 10_000
    c.train.checkpoint_every_steps = 5000
  c.eval.estimators = {
      'single': dict(num_masks=1),  # mask set 0 alone
      'ensemble': dict(num_masks=m.num_masks),  # mixture of all sets
  }
  c.eval.final_estimators = ('single', 'ensemble')
  c.eval.periodic_estimators = ('single',)
  if dataset == 'smoke':
    m.hidden_dims = (32,)
    m.num_masks = m.eval_masks = 2
    c.eval.estimators.ensemble.num_masks = 2
  return common.finalize(c, dataset)
