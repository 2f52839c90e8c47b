r"""BEGAN: autoencoder discriminator with the k_t equilibrium balance.

Argument: the dataset, ``began.py:digits`` (default; bundled 8x8),
``began.py:mnist8k`` (../shared) or ``began.py:smoke`` (tests).

The paper's settings (Berthelot et al. 2017): z ~ U[-1, 1]^N_z, ELU
convolution blocks, no batch norm, lambda_k = 0.001, k_0 = 0, Adam 1e-4
(b1 = 0.5) for both nets; images scaled to [-1, 1]. gamma = 1.0, the
diversity end of the paper's range: gamma = E L(G(z)) / E L(x) trades
diversity (high) against sharpness (low), and the paper shows 0.3-0.7 on
64x64 faces; ``--config.model.gamma=0.5`` gives its middle.

No likelihood: the records hold sample-quality scores from
``python -m experiments.sample_quality``.

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/began.py:digits \
      --workdir=runs/began_digits
    8x8: n = 32 channels, N_z = N_h = 32, 2 scales (2x2 -> 8x8), 5,000
    steps: about 10 minutes. Record `began_digits`.

  python -m experiments.main --config=experiments/configs/began.py:mnist8k \
      --workdir=runs/began_mnist8k
    28x28: n = 64, N_z = N_h = 64, 2 scales (7x7 -> 28x28), 10,000 steps:
    several hours on 2 CPU cores. Record `began_mnist8k` is a CPU budget
    of 1,000 steps (``--config.train.num_steps=1000``), under an hour; that
    is short of the k_t equilibrium.
"""

from experiments.configs import common


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, {'dataset': common.DATASETS},
                          {'dataset': 'digits'})
  dataset = opts['dataset']
  c = common.base_config('began', dataset)
  c.data.binarize = 'none'  # 8-bit images ...
  c.data.value_range = 'symmetric'  # ... in [-1, 1]
  small = dataset in ('digits', 'smoke')

  m = c.model
  m.image_shape = (8, 8, 1) if small else (28, 28, 1)
  m.latent_dim = 32 if small else 64  # N_z
  m.embedding_dim = 32 if small else 64  # N_h, the autoencoder's bottleneck
  m.channels = 32 if small else 64  # n, width of the convolution blocks
  m.num_scales = 2  # 2x up/down-samplings (8x8: from 2x2; 28x28: from 7x7)
  m.repeat = 2  # 3x3 convolutions per block
  m.gamma = 1.0  # diversity ratio E L(G(z)) / E L(x): higher, more varied
  m.lambda_k = 0.001  # gain of the k_t update
  m.k_init = 0.0  # k_0

  # config.optimizer: the generator's; config.d_optimizer: the
  # autoencoder's (same fields, built by jaxgen.steps.make_optimizer).
  c.optimizer.learning_rate = 1e-4
  c.optimizer.b1 = 0.5
  c.d_optimizer = c.optimizer.copy_and_resolve_references()

  if dataset == 'smoke':
    m.latent_dim = m.embedding_dim = 4
    m.channels = 4
    m.num_scales = 1
    m.repeat = 1
  c.train.batch_size = 64
  c.train.num_steps = 5000 if small else 10_000
  c.train.eval_every_steps = 0  # no likelihood; the losses at the end
  c.train.image_every_steps = 1000
  c.eval.periodic_split = ''
  return common.finalize(c, dataset)
