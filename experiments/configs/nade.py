"""NADE on binarized digits or the shared MNIST subset.

Argument: ``nade.py:digits`` (default; bundled) | ``nade.py:mnist8k``
(../shared) | ``nade.py:smoke`` (tests).

  python -m experiments.main --config=experiments/configs/nade.py:digits \\
      --workdir=runs/nade_digits
    128 sigmoid hidden units, 3,000 steps. Measured (seed 0, 2 busy CPU
    cores, under 2 minutes): exact test NLL 23.10 nats on dynamically
    binarized 8x8 digits.

  python -m experiments.main --config=experiments/configs/nade.py:mnist8k \\
      --workdir=runs/nade_mnist8k
    500 hidden units as in Larochelle & Murray 2011, who report 88.86 nats
    on the 60,000-image fixed binarized MNIST; with 7,000 training images
    expect a few nats more. Batch 64, 10,000 steps: each step touches
    64 x 784 x 500 hidden pre-activations, about 0.8 s on 2 CPU cores.
    Measured on a CPU budget of 3,000 steps (`python -m experiments.results
    --only=nade_mnist8k`, record results/nade_mnist8k.json): exact test NLL
    95.30 nats, 43 minutes of training; still improving when it stopped.
"""

from experiments.configs import common

ALLOWED = {'dataset': common.DATASETS}
DEFAULTS = {'dataset': 'digits'}


def get_config(arg: str = 'digits'):
  dataset = common.parse_arg(arg, ALLOWED, DEFAULTS)['dataset']
  c = common.base_config('nade', dataset)
  small = dataset in ('digits', 'smoke')
  c.data.binarize = 'dynamic'  # Bernoulli model: a fresh binarization per step
  m = c.model
  m.image_shape = (8, 8, 1) if small else (28, 28, 1)
  m.hidden_dim = 128 if small else 500  # sigmoid hidden units H
  m.init_scale = 0.01  # std of the normal init of W and V
  if dataset == 'smoke':
    m.hidden_dim = 16
  c.train.batch_size = 128 if small else 64  # [B, D, H] activations
  c.train.num_steps = 3000 if small else 10_000
  c.train.eval_every_steps = 1000 if small else 5000
  c.eval.batch_size = 200 if small else 100
  common.exact_estimator(c)
  return common.finalize(c, dataset)
