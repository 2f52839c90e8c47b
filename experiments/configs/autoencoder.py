r"""Convolutional autoencoder, plain or denoising.

Argument: comma-separated options, e.g. ``autoencoder.py:digits``,
``autoencoder.py:mnist8k,denoising``:
- dataset: digits (default) | mnist8k | smoke
- variant: plain (default) | denoising (Gaussian noise, std 0.3) |
  masking (each pixel dropped with probability 0.3)

Commands and their cost (seed 0, 2 CPU cores); no RESULTS.md row:

  python -m experiments.main --config=experiments/configs/autoencoder.py:digits \
      --workdir=runs/ae_digits
    3,000 steps, a few minutes; writes reconstructions (no samples: an
    autoencoder has no density) and the test reconstruction error
    (per-pixel MSE on [0, 1]).

  python -m experiments.main --config=experiments/configs/autoencoder.py:mnist8k \
      --workdir=runs/ae_mnist8k
    10,000 steps on 28x28 digits, about half an hour.
"""

from experiments.configs import common

ALLOWED = {'dataset': common.DATASETS,
           'variant': ('plain', 'denoising', 'masking')}
DEFAULTS = {'dataset': 'digits', 'variant': 'plain'}


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  c = common.base_config('autoencoder', dataset)
  small = dataset in ('digits', 'smoke')
  c.data.binarize = 'none'  # reconstruct 8-bit intensities scaled to [0, 1]
  m = c.model
  m.image_shape = (8, 8, 1) if small else (28, 28, 1)
  m.conv_channels = (32, 32, 64, 64)  # encoder; the decoder mirrors it
  m.conv_strides = (2, 1, 2, 1) if small else (2, 2, 1, 1)
  m.kernel_size = 3 if small else 4
  m.activation = 'relu'
  m.latent_dim = 8 if small else 16  # bottleneck size
  m.reconstruction = 'bernoulli'  # 'bernoulli' (cross-entropy) | 'mse'
  m.noise = {'plain': 'none', 'denoising': 'gaussian',
             'masking': 'masking'}[opts['variant']]
  m.noise_level = 0.0 if opts['variant'] == 'plain' else 0.3
  c.train.num_steps = 3000 if small else 10_000
  return common.finalize(c, dataset)
