r"""VQ-VAE (van den Oord et al. 2017): EMA, gradient or Gumbel-softmax codes.

Argument: comma-separated options, e.g. ``vqvae.py:digits``,
``vqvae.py:mnist8k,vq``, ``vqvae.py:digits,gumbel,logistic``:
- dataset: digits (default; bundled 8x8) | mnist8k (../shared, 28x28) |
  smoke (tests)
- quantizer: ema (default; EMA codebook, appendix A.1) | vq (codebook
  loss) | gumbel (straight-through Gumbel-softmax, KL to uniform)
- likelihood: bernoulli (default; dynamically binarized data) | logistic
  (discretized logistic on the 8-bit pixels)

The reported likelihood is the uniform-prior bound log p(x | z_q(x)) -
N log K (nats and bits/dim); the records add the codebook's usage over the
test split (codes used, perplexity). Train the prior over the codes with
``code_prior.py:<dataset>,vqvae`` on the workdir below.

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/vqvae.py:digits \
      --workdir=runs/vqvae_digits
    4x4 map of K=32 codes (D=8), 32 hidden channels, 3,000 steps of
    batch 128: about a minute. Record `vqvae_digits`.

  python -m experiments.main --config=experiments/configs/vqvae.py:mnist8k \
      --workdir=runs/vqvae_mnist8k
    7x7 map of K=64 codes (D=16), 64 hidden channels, 2 residual blocks,
    10,000 steps of batch 64 (train-step images/s in
    experiments/bench_vqvae.py): under an hour. Record `vqvae_mnist8k`.
"""

from experiments.configs import common

ALLOWED = {
    'dataset': common.DATASETS,
    'quantizer': ('ema', 'vq', 'gumbel'),
    'likelihood': ('bernoulli', 'logistic'),
}
DEFAULTS = {'dataset': 'digits', 'quantizer': 'ema', 'likelihood': 'bernoulli'}


def model_config(m, dataset: str, opts) -> None:
  """Fills the fields `vqvae.Net` and `vqvae2.Net` share."""
  small = dataset in ('digits', 'smoke')
  m.image_shape = (8, 8, 1) if small else (28, 28, 1)
  m.hidden_channels = 32 if small else 64  # conv / residual-stack width
  m.res_channels = 16 if small else 32  # width inside a residual block
  m.num_res_blocks = 1 if small else 2  # residual blocks per stack
  m.code_dim = 8 if small else 16  # D
  m.num_codes = 32 if small else 64  # K (<= 256 for the PixelCNN prior)
  m.quantizer = opts['quantizer']  # 'ema' | 'vq' | 'gumbel'
  m.commitment_cost = 0.25  # beta (paper: 0.25)
  m.ema_decay = 0.99  # gamma of the EMA codebook and of the usage counts
  m.ema_epsilon = 1e-5  # Laplace smoothing of the EMA counts
  m.dead_code_threshold = 1.0  # restart codes used < 1 time per batch (EMA)
  m.gumbel_temperature = 1.0  # tau ('gumbel')
  m.kl_weight = 1.0  # weight of KL(q || uniform) ('gumbel')
  m.likelihood = opts['likelihood']  # decoder p(x | z)
  m.activation = 'relu'
  m.sample_mode = 'mean'  # grids show decoder means
  if dataset == 'smoke':
    m.hidden_channels, m.res_channels, m.code_dim, m.num_codes = 8, 4, 4, 8


def data_and_schedule(c, dataset: str) -> None:
  """Data preprocessing for the likelihood, schedule, estimators."""
  small = dataset in ('digits', 'smoke')
  if c.model.likelihood == 'bernoulli':
    c.data.binarize = 'dynamic'
    c.data.value_range = 'unit'
  else:
    c.data.binarize = 'none'
    c.data.value_range = 'symmetric'
  c.data.dequantize = False
  c.train.batch_size = 128 if small else 64
  c.train.num_steps = 3000 if small else 10_000
  c.train.eval_every_steps = 1000 if small else 2500
  # log_likelihood (the uniform-prior bound) takes no arguments.
  c.eval.estimators = {'bound': {}}
  c.eval.final_estimators = ('bound',)
  c.eval.periodic_estimators = ('bound',)
  c.eval.num_grid_samples = 64 if small else 16


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  c = common.base_config('vqvae', dataset)
  m = c.model
  model_config(m, dataset, opts)
  m.num_downsamples = 1 if dataset in ('digits', 'smoke') else 2  # map h x w
  data_and_schedule(c, dataset)
  return common.finalize(c, dataset)
