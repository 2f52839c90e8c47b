r"""Restricted Boltzmann machines on binarized digits or the MNIST subset.

Argument: ``rbm.py:digits`` (default; bundled) | ``rbm.py:mnist8k``
(../shared) | ``rbm.py:smoke`` (tests), optionally with ``gaussian``
(Gaussian-Bernoulli RBM on dequantized 8-bit pixels instead of binarized
ones), e.g. ``rbm.py:digits,gaussian``.

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/rbm.py:digits \
      --workdir=runs/rbm_digits
    200 binary hidden units, PCD-1 with 100 persistent chains, 10,000
    steps of 100 dynamically binarized 8x8 digits; test NLL by AIS
    (10,000 betas, 100 chains). Minutes. Record `rbm_digits`.

  python -m experiments.main --config=experiments/configs/rbm.py:mnist8k \
      --workdir=runs/rbm_mnist8k
    500 hidden units as in Salakhutdinov & Murray 2008, PCD-1 with 100
    persistent chains (the paper trained with CD-25 on 60,000 images),
    10,000 steps of 100; AIS with 10,000 betas and 100 chains (the paper:
    14,500 betas, 100 chains). Record `rbm_mnist8k`.

  python -m experiments.main \
      --config=experiments/configs/rbm.py:mnist8k,gaussian \
      --workdir=runs/rbm_gaussian_mnist8k
    The Gaussian-Bernoulli RBM: 500 hidden units, unit-variance visibles on
    the uniformly dequantized pixels standardised per pixel, PCD-1 at a
    learning rate of 3e-4, 10,000 steps of 100; test log p(y) of the
    dequantized pixels (the standardisation's log-Jacobian included) with
    log Z by AIS, reported in bits/dim with the evaluator's D ln 256, as the
    flows'. Record `rbm_gaussian_mnist8k`.

The AIS log Z is an unbiased estimate of Z in the exponent, so log Z tends
to come out low and the reported NLL tends to be optimistic; each eval
JSON records the estimate ('ais/log_z') and its standard error
('ais/log_z_stderr').
"""

from experiments.configs import common

ALLOWED = {'dataset': common.DATASETS, 'visible': ('binary', 'gaussian')}
DEFAULTS = {'dataset': 'digits', 'visible': 'binary'}


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  c = common.base_config('rbm', dataset)
  small = dataset in ('digits', 'smoke')
  gaussian = opts['visible'] == 'gaussian'
  if gaussian:  # unit-variance visibles on standardized dequantized pixels
    c.data.binarize = 'none'
    c.data.dequantize = True
  else:
    c.data.binarize = 'dynamic'  # a fresh binarization per step
  m = c.model
  m.image_shape = common.IMAGE_SHAPES[dataset]
  m.hidden_dim = 200 if small else 500  # binary hidden units H
  m.visible = 'gaussian' if gaussian else 'bernoulli'
  m.init_scale = 0.01  # std of the normal init of W
  m.train_mode = 'pcd'  # 'cd' (chains from the data) | 'pcd' (persistent)
  m.cd_steps = 1  # k: Gibbs sweeps per step
  m.num_chains = 100  # persistent chains
  m.sample_sweeps = 1000  # Gibbs sweeps per drawn sample
  m.min_std = 0.05  # floor of the per-pixel std (Gaussian)
  c.optimizer.name = 'sgd'
  # Unit-variance Gaussian visibles need a far smaller rate than binary ones
  # (Hinton's practical guide to training RBMs, Sec. 13.2): at larger rates
  # the weights grow until the persistent chains run away from the data.
  c.optimizer.learning_rate = 3e-4 if gaussian else 0.05
  c.optimizer.momentum = 0.9
  c.optimizer.schedule = 'cosine'  # decayed to 0, as PCD needs
  c.train.batch_size = 100
  c.train.num_steps = 10_000
  c.train.eval_every_steps = 0
  c.train.checkpoint_every_steps = 2000
  c.eval.batch_size = 200 if small else 100
  # AIS for log Z, once per evaluation (Salakhutdinov & Murray 2008 used
  # 14,500 betas and 100 chains); sized for CPU.
  c.eval.estimators = {'ais': {'num_betas': 10_000, 'num_chains': 100,
                               'base': 'data'}}
  c.eval.final_estimators = ('ais',)
  c.eval.periodic_estimators = ()
  if dataset == 'smoke':
    m.hidden_dim = 16
    m.num_chains = 32
    m.sample_sweeps = 10
    c.eval.estimators = {'ais': {'num_betas': 20, 'num_chains': 8,
                                 'base': 'data'}}
  return common.finalize(c, dataset)
