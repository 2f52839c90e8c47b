r"""Gaussian mixture fitted by EM on dequantized 8-bit images.

Argument: comma-separated options, e.g. ``gmm.py:digits``,
``gmm.py:mnist8k,full,k64``:
- dataset: digits (default) | mnist8k | smoke (tests)
- covariance: diag (default) | full
- components: k10 (default) | k64

One step is one closed-form EM iteration over the whole training split
(exact batch EM: the logged 'loss', the negative EM objective per image,
never increases); evaluation reports the exact density of dequantized test
images as 'exact/bits_per_dim' (D ln 256 added) and 'recon_error' (per
pixel, to the most responsible component's mean).

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/gmm.py:digits \
      --workdir=runs/gmm_digits
    K = 10 diagonal components, 100 EM iterations: well under a minute.
    Record `gmm_digits`.

  python -m experiments.main --config=experiments/configs/gmm.py:mnist8k,k64 \
      --workdir=runs/gmm_mnist8k
    K = 64 diagonal components on 784 dimensions, 100 EM iterations:
    about 20 minutes. Record `gmm_mnist8k`; with ``mnist8k`` (K = 10, a
    few minutes), `gmm_k10_mnist8k`.
"""

from experiments.configs import common

ALLOWED = {
    'dataset': common.DATASETS,
    'covariance': ('diag', 'full'),
    'components': ('k10', 'k64'),
}
DEFAULTS = {'dataset': 'digits', 'covariance': 'diag', 'components': 'k10'}
# Rows of each preset's training split: batch EM takes them all at once.
NUM_TRAIN = {'digits': 1258, 'mnist8k': 7000, 'smoke': 256}


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  c = common.base_config('gmm', dataset)
  small = dataset in ('digits', 'smoke')
  c.data.binarize = 'none'  # 8-bit pixels
  c.data.dequantize = True  # y = (x + u) / 256: the evaluator adds D ln 256
  c.data.value_range = 'unit'

  m = c.model
  m.image_shape = (8, 8, 1) if small else (28, 28, 1)
  m.num_components = int(opts['components'][1:])  # K
  m.covariance = opts['covariance']  # 'diag' | 'full' (Cholesky)
  m.covariance_floor = 1e-3  # variance added to every covariance's diagonal
  m.initialization = 'kmeans++'  # 'kmeans++' | 'random' data points
  m.online_decay = 0.0  # 0: batch EM; (0.5, 1]: stepwise EM
  m.chunk_size = 512  # data points per vmapped E-step chunk (memory only)

  c.train.batch_size = NUM_TRAIN[dataset]  # the whole split: exact batch EM
  c.train.num_steps = 100  # EM iterations
  c.train.log_every_steps = 1  # the objective after every iteration
  c.train.eval_every_steps = 25
  c.train.checkpoint_every_steps = 100
  c.train.max_to_keep = 1
  common.exact_estimator(c)
  if dataset == 'smoke':
    m.num_components = 4
    m.online_decay = 0.7  # the smoke preset's batches are smaller than the split
  return common.finalize(c, dataset)
