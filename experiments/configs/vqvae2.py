r"""Two-level VQ-VAE in the manner of VQ-VAE-2 (Razavi et al. 2019).

Argument: comma-separated options, as ``vqvae.py``: dataset (digits |
mnist8k | smoke), quantizer (ema | vq | gumbel), likelihood (bernoulli |
logistic); e.g. ``vqvae2.py:mnist8k``.

Top and bottom code maps: 2x2 over 4x4 on 8x8 digits, 4x4 over 7x7 on 28x28
MNIST. The reported likelihood is the uniform-prior bound; train the
hierarchical prior (top, then bottom given top) with
``code_prior.py:<dataset>`` on the workdir below.

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/vqvae2.py:digits \
      --workdir=runs/vqvae2_digits
    K=32 codes of D=8 per level, 32 hidden channels, 3,000 steps of batch
    128: a few minutes. Record `vqvae2_digits`.

  python -m experiments.main --config=experiments/configs/vqvae2.py:mnist8k \
      --workdir=runs/vqvae2_mnist8k
    K=64 codes of D=16 per level, 64 hidden channels, 2 residual blocks,
    batch 64, 10,000 steps: about 20 minutes. Record `vqvae2_mnist8k`.
"""

from experiments.configs import common
from experiments.configs import vqvae as vqvae_config


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, vqvae_config.ALLOWED, vqvae_config.DEFAULTS)
  dataset = opts['dataset']
  c = common.base_config('vqvae2', dataset)
  m = c.model
  vqvae_config.model_config(m, dataset, opts)
  small = dataset in ('digits', 'smoke')
  m.bottom_downsamples = 1 if small else 2  # image -> bottom map
  m.top_downsamples = 1  # bottom map -> top map
  vqvae_config.data_and_schedule(c, dataset)
  return common.finalize(c, dataset)
