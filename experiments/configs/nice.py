r"""NICE: additive-coupling flow with a diagonal scaling, exact likelihood.

Argument: one dataset option, e.g. ``nice.py:digits``:
- digits (default; bundled 8x8) | mnist8k (../shared) | smoke (tests):
  dequantized 8-bit images, y = (x + u) / 256 in [0, 1), flattened, with
  NICE's factorised standard logistic prior;
- moons | ring8 | checkerboard: toy 2-D densities (`jaxgen.data.toy`),
  with a standard Gaussian prior.

Evaluation reports the exact test log-likelihood ('exact'): nats and
bits/dim of the 8-bit images (the D ln 256 dequantization offset added), or
nats per point.

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/nice.py:digits \
      --workdir=runs/nice_digits
    4 additive couplings with MLPs of 4 x 256 units, 5,000 steps of batch
    64: a few minutes. Record `nice_digits` runs 3,000 of them
    (``--config.train.num_steps=3000``): the validation NLL rises after
    that.

  python -m experiments.main --config=experiments/configs/nice.py:mnist8k \
      --workdir=runs/nice_mnist8k
    The paper's MNIST layout (4 couplings, MLPs of 5 x 1000 units, about
    19 million parameters), 10,000 steps of batch 64: under an hour.
    Record `nice_mnist8k`.

  python -m experiments.main --config=experiments/configs/nice.py:moons \
      --workdir=runs/nice_moons
    4 couplings with MLPs of 3 x 64 units, 5,000 steps of batch 256: about
    a minute; the sample PNG is a scatter plot over the data. Records
    `nice_moons`, `nice_ring8` and `nice_checkerboard` for the three toy
    options.
"""

from experiments.configs import common
from experiments.configs import realnvp

TOY = realnvp.TOY
ALLOWED = {'dataset': common.DATASETS + TOY}
DEFAULTS = {'dataset': 'digits'}


def get_config(arg: str = 'digits'):
  dataset = common.parse_arg(arg, ALLOWED, DEFAULTS)['dataset']
  toy = dataset in TOY
  c = realnvp.flow_config('nice', dataset, TOY)
  small = dataset in ('digits', 'smoke')

  m = c.model
  m.image_shape = (2,) if toy else ((8, 8, 1) if small else (28, 28, 1))
  m.num_couplings = 4  # additive couplings, alternating odd/even halves
  m.hidden = 64 if toy else (256 if small else 1000)  # coupling MLP width
  m.depth = 3 if toy else (4 if small else 5)  # coupling MLP hidden layers
  m.prior = 'gaussian' if toy else 'logistic'  # 'logistic' | 'gaussian'
  m.logit_alpha = 0.0  # logit(alpha + (1 - 2 alpha) y); NICE: none

  c.optimizer.learning_rate = 1e-3
  c.train.batch_size = 256 if toy else 64
  c.train.num_steps = 10_000 if dataset == 'mnist8k' else 5000
  c.train.eval_every_steps = 1000
  c.train.image_every_steps = 1000
  common.exact_estimator(c)
  if dataset == 'smoke':
    m.hidden, m.depth = 8, 1
  return common.finalize(c, dataset)
