"""MADE on binarized digits: one mask, or order-agnostic with a mask ensemble.

Argument: comma-separated options, e.g. ``made.py:digits``,
``made.py:mnist8k,agnostic``:
- dataset: digits (default; bundled) | mnist8k (../shared) | smoke (tests)
- variant: single (default: one MADE, raster ordering) | agnostic (random
  orderings and connectivities, 16 mask sets on digits and 32 on mnist8k,
  one drawn per step; evaluated as the uniform mixture of all of them)

Evaluation reports two exact estimators: 'single' (mask set 0 alone) and
'ensemble' (log-mean-exp over the eval_masks sets: the mixture model).

  python -m experiments.main --config=experiments/configs/made.py:digits \\
      --workdir=runs/made_digits
    256 hidden units, 3,000 steps. Measured (seed 0, 2 busy CPU cores,
    27 s): exact test NLL 22.98 nats on dynamically binarized 8x8 digits.

  python -m experiments.main \\
      --config=experiments/configs/made.py:mnist8k,agnostic \\
      --workdir=runs/made_mnist8k
    one hidden layer of 500 ReLUs; Germain et al. 2015 report 88.40 nats
    (1 mask) and 86.64 nats (32-mask ensemble) on the 60,000-image fixed
    binarized MNIST. With 7,000 training images, 20,000 steps (seed 0,
    2 CPU cores): 100.41 nats for one mask in natural order
    (``mnist8k``, results/made_mnist8k.json, 12 min; it overfits: about 95
    on the training set by step 11,000) and 103.92 for the order-agnostic
    32-mask ensemble (results/made_agnostic_mnist8k.json).
    About 15 ms per step on 2 CPU cores; the final 64-sample grid runs the
    784-step sampler once per mask set (32 times), tens of seconds.
"""

from experiments.configs import common

ALLOWED = {'dataset': common.DATASETS, 'variant': ('single', 'agnostic')}
DEFAULTS = {'dataset': 'digits', 'variant': 'single'}


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  agnostic = opts['variant'] == 'agnostic'
  c = common.base_config('made', dataset)
  small = dataset in ('digits', 'smoke')
  c.data.binarize = 'dynamic'  # Bernoulli model: a fresh binarization per step
  m = c.model
  m.image_shape = (8, 8, 1) if small else (28, 28, 1)
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
