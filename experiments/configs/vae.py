r"""VAE: MLP or convolutional, Bernoulli / Gaussian / discretized logistic.

Argument: comma-separated options, e.g. ``vae.py:digits``,
``vae.py:mnist8k,conv``, ``vae.py:digits,logistic,cond``:
- dataset: digits (default; bundled) | mnist8k (../shared) | smoke (tests)
  | mnist | binarized_mnist (the papers' data, TFDS; see below)
- arch: mlp (default) | conv
- likelihood: bernoulli (default; dynamically binarized data) | gaussian
  (dequantized 8-bit data, continuous density) | logistic (discretized
  logistic on 8-bit data)
- cond: class-conditional VAE

Evaluation reports the test ELBO and the IWAE bound with k=5000 (nats and
bits/dim).

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/vae.py:digits \
      --workdir=runs/vae_mlp_digits
    MLP 64-256-256, 8-d latent, 3,000 steps on dynamically binarized 8x8
    digits: about a minute. Record `vae_mlp_digits`.

  python -m experiments.main --config=experiments/configs/vae.py:digits,conv \
      --workdir=runs/vae_conv_digits
    4 convolutions / 4 transposed convolutions, 3,000 steps: a few
    minutes. Record `vae_conv_digits`.

  python -m experiments.main --config=experiments/configs/vae.py:mnist8k \
      --workdir=runs/vae_mlp_mnist8k
    MLP 784-512-512, 32-d latent, 20,000 steps on the 7,000 dynamically
    binarized mnist8k training digits: about 10 minutes, IWAE evaluation
    included. Record `vae_mlp_mnist8k`.

  python -m experiments.main --config=experiments/configs/vae.py:mnist8k,conv \
      --workdir=runs/vae_conv_mnist8k
    4 convolutions / 4 transposed convolutions, 10,000 steps: about an
    hour, half of it the IWAE evaluation. Record `vae_conv_mnist8k`.

The papers' data (prepared TFDS array_record, README.md "Reproducing the
papers on a GPU or TPU"; no records here, nothing measured):

  python -m experiments.main --config=experiments/configs/vae.py:mnist \
      --workdir=runs/vae_mnist
    The 60,000 MNIST training digits, dynamically binarized (a fresh
    Bernoulli draw each step; ``mnist,gaussian`` / ``mnist,logistic``:
    the 8-bit pixels), 10,000 test digits; the MLP above, batch 100 (as
    Kingma & Welling 2014, M = 100), 100,000 steps (about 170 epochs).
    Compare with Burda et al. 2016, Table 1: a one-stochastic-layer VAE
    (k = 1) at 86.76 nats test NLL, measured with the IWAE bound at
    k = 5,000 as here; their training ran 3,280 epochs of batch 20 with
    Adam at 1e-3 * 10^(-i/7) for 3^i epochs, i = 0..7.

  python -m experiments.main \
      --config=experiments/configs/vae.py:binarized_mnist \
      --workdir=runs/vae_binarized_mnist
    The fixed binarization of Larochelle & Murray 2011 (50,000 train,
    10,000 validation, 10,000 test), the benchmark of the autoregressive
    papers; Bernoulli decoder only.
"""

from experiments.configs import common

ALLOWED = {
    'dataset': common.DATASETS + ('mnist', 'binarized_mnist'),
    'arch': ('mlp', 'conv'),
    'likelihood': ('bernoulli', 'gaussian', 'logistic'),
    'cond': ('cond',),
}
DEFAULTS = {'dataset': 'digits', 'arch': 'mlp', 'likelihood': 'bernoulli',
            'cond': ''}


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  c = common.base_config('vae', dataset)
  small = dataset in ('digits', 'smoke')
  m = c.model
  paper = dataset in common.PAPER_DATASETS
  m.image_shape = common.IMAGE_SHAPES[dataset]
  m.architecture = opts['arch']  # 'mlp' | 'conv'
  m.hidden_dims = (256, 256) if small else (512, 512)  # MLP hidden widths
  m.conv_channels = (32, 32, 64, 64)  # conv encoder; decoder mirrors it
  m.conv_strides = (2, 1, 2, 1) if small else (2, 2, 1, 1)
  m.kernel_size = 3 if small else 4
  m.latent_dim = 8 if small else 32
  m.activation = 'relu'
  m.likelihood = opts['likelihood']  # decoder p(x|z)
  m.num_classes = 10 if opts['cond'] else 0  # > 0: conditional VAE
  m.beta = 1.0  # KL weight (1 = ELBO)
  m.sample_mode = 'mean'  # grids show E[x|z]; 'draw' samples x as well

  if m.likelihood == 'bernoulli':
    c.data.binarize = 'dynamic'
  else:
    c.data.binarize = 'none'
    c.data.dequantize = m.likelihood == 'gaussian'
    c.data.value_range = 'symmetric' if m.likelihood == 'logistic' else 'unit'

  # A conv step on 28x28 costs ~10x an MLP step on 2 CPU cores.
  c.train.num_steps = 3000 if small else (
      10_000 if opts['arch'] == 'conv' else 20_000)
  c.train.eval_every_steps = 1000 if small else 5000
  if paper:
    c.train.batch_size = 100
    c.train.num_steps = 100_000
    c.train.eval_every_steps = 10_000
    c.train.checkpoint_every_steps = 5000
  c.eval.estimators = {
      'elbo': dict(bound='elbo', num_samples=1, chunk_size=1),
      'iwae': dict(bound='iwae', num_samples=5000, chunk_size=250),
  }
  c.eval.final_estimators = ('elbo', 'iwae')
  c.eval.periodic_estimators = ('elbo',)
  if dataset == 'smoke':
    c.eval.estimators.iwae.num_samples = 8
    c.eval.estimators.iwae.chunk_size = 4
  return common.finalize(c, dataset)
