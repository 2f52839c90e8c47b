r"""Deep Boltzmann machines (two hidden layers) on binarized digits or MNIST.

Argument: ``dbm.py:digits`` (default; bundled) | ``dbm.py:mnist8k``
(../shared) | ``dbm.py:smoke`` (tests).

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/dbm.py:digits \
      --workdir=runs/dbm_digits
    Hidden layers of 200 and 100 units, 10 mean-field iterations, 100
    persistent chains with one Gibbs sweep per step, 10,000 steps of 100
    dynamically binarized 8x8 digits, no pre-training; the test NLL is
    minus the variational bound with log Z by AIS over (v, h2) (10,000
    betas, 100 chains). Minutes. Record `dbm_digits`.

  python -m experiments.main --config=experiments/configs/dbm.py:mnist8k \
      --workdir=runs/dbm_mnist8k
    The paper's MNIST layout (500 and 1,000 hidden units; the paper ran
    AIS with 20,000 betas and 100 chains): greedy pre-training, 5,000
    CD-1 steps of the bottom RBM (input doubled bottom-up) and 5,000 of
    the top RBM (input doubled top-down) at the SGD rate 0.05, then 10,000
    joint steps of 100 as for digits; 20,000 steps in all. Record
    `dbm_mnist8k`, with the sample-quality scores of its samples. Add
    ``'--config.model.pretrain_steps=(0,0)' --config.train.num_steps=10000``
    for the same joint phase without pre-training.
"""

from experiments.configs import common

ALLOWED = {'dataset': common.DATASETS}
DEFAULTS = {'dataset': 'digits'}


def get_config(arg: str = 'digits'):
  dataset = common.parse_arg(arg, ALLOWED, DEFAULTS)['dataset']
  c = common.base_config('dbm', dataset)
  small = dataset in ('digits', 'smoke')
  c.data.binarize = 'dynamic'  # a fresh binarization per step
  m = c.model
  m.image_shape = common.IMAGE_SHAPES[dataset]
  m.hidden_dims = (200, 100) if small else (500, 1000)  # (H1, H2)
  m.init_scale = 0.01  # std of the normal init of W1 and W2
  m.mean_field_steps = 10  # fixed-point iterations of q(h1, h2 | v)
  m.cd_steps = 1  # Gibbs sweeps of the persistent chains per step
  m.num_chains = 100  # persistent chains
  m.sample_sweeps = 1000  # Gibbs sweeps per drawn sample
  # Greedy pre-training: steps of the bottom RBM (2W bottom-up), then of
  # the top RBM (2W top-down), before the joint steps; (0, 0) = none.
  m.pretrain_steps = (0, 0) if small else (5000, 5000)
  m.pretrain_learning_rate = 0.05  # SGD, momentum 0.9, constant
  c.optimizer.name = 'sgd'
  c.optimizer.learning_rate = 0.01  # 0.05 saturates the top layer
  c.optimizer.momentum = 0.9
  c.optimizer.schedule = 'cosine'  # decayed to 0, as the chains need
  c.train.batch_size = 100
  c.train.num_steps = 10_000 + sum(m.pretrain_steps)  # 10,000 joint steps
  c.train.eval_every_steps = 0
  c.train.checkpoint_every_steps = 2000
  c.eval.batch_size = 200 if small else 100
  # AIS for log Z over (v, h2), once per evaluation.
  c.eval.estimators = {'ais': {'num_betas': 10_000, 'num_chains': 100,
                               'base': 'data'}}
  c.eval.final_estimators = ('ais',)
  c.eval.periodic_estimators = ()
  if dataset == 'smoke':
    m.hidden_dims = (16, 8)
    m.mean_field_steps = 3
    m.num_chains = 32
    m.sample_sweeps = 10
    c.eval.estimators = {'ais': {'num_betas': 20, 'num_chains': 8,
                                 'base': 'data'}}
  return common.finalize(c, dataset)
