r"""K-means (Lloyd's algorithm) as an autoencoder and a generator.

Argument: comma-separated options, e.g. ``kmeans.py:digits``,
``kmeans.py:mnist8k,k64``:
- dataset: digits (default) | mnist8k | smoke (tests)
- clusters: k10 (default) | k64

One step is one Lloyd iteration over the whole training split (the logged
'loss', the objective per image, never increases). Evaluation reports the
objective ('objective': squared distance to the nearest centre, summed over
pixels in [0, 1]) and 'recon_error' (per pixel); samples are centres drawn
uniformly; reconstructions are nearest centres.

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/kmeans.py:digits \
      --workdir=runs/kmeans_digits
    K = 10, 100 Lloyd iterations: well under a minute. Record
    `kmeans_digits`.

  python -m experiments.main --config=experiments/configs/kmeans.py:mnist8k,k64 \
      --workdir=runs/kmeans_mnist8k
    K = 64 on 28x28 digits, 100 Lloyd iterations: a few minutes at most.
    Record `kmeans_mnist8k`; with ``mnist8k`` (K = 10),
    `kmeans_k10_mnist8k`. Draw its codebook as a grid with
    ``python -m experiments.kmeans_codebook --workdir=runs/kmeans_mnist8k``.
"""

from experiments.configs import common

ALLOWED = {'dataset': common.DATASETS, 'clusters': ('k10', 'k64')}
DEFAULTS = {'dataset': 'digits', 'clusters': 'k10'}
# Rows of each preset's training split: Lloyd's algorithm takes them all.
NUM_TRAIN = {'digits': 1258, 'mnist8k': 7000, 'smoke': 256}


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  c = common.base_config('kmeans', dataset)
  small = dataset in ('digits', 'smoke')
  c.data.binarize = 'none'  # cluster pixel / 255 in [0, 1]
  c.data.dequantize = False
  c.data.value_range = 'unit'

  m = c.model
  m.image_shape = (8, 8, 1) if small else (28, 28, 1)
  m.num_clusters = int(opts['clusters'][1:])  # K, the number of codes
  m.initialization = 'kmeans++'  # 'kmeans++' | 'random' data points
  m.online_decay = 0.0  # 0: Lloyd (batch); (0.5, 1]: mini-batch K-means
  m.chunk_size = 1024  # data points per vmapped assignment chunk (memory)

  c.train.batch_size = NUM_TRAIN[dataset]  # the whole split: Lloyd's algorithm
  c.train.num_steps = 100  # Lloyd iterations
  c.train.log_every_steps = 1  # the objective after every iteration
  c.train.eval_every_steps = 25
  c.train.checkpoint_every_steps = 100
  c.train.max_to_keep = 1
  # No likelihood: evaluation reports the objective and reconstruction error.
  if dataset == 'smoke':
    m.num_clusters = 4
    m.online_decay = 1.0  # the smoke preset's batches are smaller than the split
  return common.finalize(c, dataset)
