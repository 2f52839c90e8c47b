r"""NADE on binarized digits or the shared MNIST subset.

Argument: ``nade.py:digits`` (default; bundled) | ``nade.py:mnist8k``
(../shared) | ``nade.py:smoke`` (tests) | ``nade.py:binarized_mnist``
(the papers' data, TFDS; see below).

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/nade.py:digits \
      --workdir=runs/nade_digits
    128 sigmoid hidden units, 3,000 steps on dynamically binarized 8x8
    digits: a few minutes. Record `nade_digits`.

  python -m experiments.main --config=experiments/configs/nade.py:mnist8k \
      --workdir=runs/nade_mnist8k
    500 hidden units as in Larochelle & Murray 2011, batch 64, 10,000
    steps: each step touches 64 x 784 x 500 hidden pre-activations, so the
    full run takes hours. Record `nade_mnist8k` is a CPU budget of 3,000
    steps (``--config.train.num_steps=3000``), under an hour.

  python -m experiments.main \
      --config=experiments/configs/nade.py:binarized_mnist \
      --workdir=runs/nade_binarized_mnist
    The fixed binarization of Larochelle & Murray 2011 from prepared TFDS
    data (50,000 train, 10,000 validation, 10,000 test; README.md
    "Reproducing the papers on a GPU or TPU"), 500 hidden units, batch 64,
    100,000 steps (128 epochs): compare with the binarized-MNIST results
    of Larochelle & Murray 2011 (NADE with 500 hidden units, test NLL in
    nats). No record here, nothing measured.
"""

from experiments.configs import common

ALLOWED = {'dataset': common.DATASETS + ('binarized_mnist',)}
DEFAULTS = {'dataset': 'digits'}


def get_config(arg: str = 'digits'):
  dataset = common.parse_arg(arg, ALLOWED, DEFAULTS)['dataset']
  c = common.base_config('nade', dataset)
  small = dataset in ('digits', 'smoke')
  c.data.binarize = 'dynamic'  # Bernoulli model: a fresh binarization per step
  m = c.model
  m.image_shape = common.IMAGE_SHAPES[dataset]
  m.hidden_dim = 128 if small else 500  # sigmoid hidden units H
  m.init_scale = 0.01  # std of the normal init of W and V
  if dataset == 'smoke':
    m.hidden_dim = 16
  c.train.batch_size = 128 if small else 64  # [B, D, H] activations
  c.train.num_steps = 3000 if small else 10_000
  c.train.eval_every_steps = 1000 if small else 5000
  if dataset in common.PAPER_DATASETS:
    c.train.num_steps = 100_000
    c.train.eval_every_steps = 10_000
    c.train.checkpoint_every_steps = 5000
  c.eval.batch_size = 200 if small else 100
  common.exact_estimator(c)
  return common.finalize(c, dataset)
