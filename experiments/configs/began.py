"""BEGAN: autoencoder discriminator with the k_t equilibrium balance.

Argument: the dataset, ``began.py:digits`` (default; bundled 8x8),
``began.py:mnist8k`` (../shared) or ``began.py:smoke`` (tests).

The paper's settings (Berthelot et al. 2017): z ~ U[-1, 1]^N_z, ELU
convolution blocks, no batch norm, gamma = 0.5, lambda_k = 0.001, k_0 = 0,
Adam 1e-4 (b1 = 0.5) for both nets; images scaled to [-1, 1].

Commands and what to expect (seed 0, 2 CPU cores):

  python -m experiments.main --config=experiments/configs/began.py:digits \
      --workdir=runs/began_digits
    8x8: n = 32 channels, N_z = N_h = 32, 2 scales (2x2 -> 8x8), 5,000
    steps. Measured (seed 0): the equilibrium is reached, L(G) ~ gamma L(x)
    (step 5,000: L(x) 0.085, L(G) 0.047, k 0.007, M falling from 0.24 to
    0.09), but by a collapsed generator: every sample is the same digit
    (RESULTS.md `began_digits`: FID-style 280, 1 of 10 classes). With k
    near 0.01 the autoencoder barely pushes back on the one fake it
    reconstructs best, and nothing else in L_G rewards diversity. Also
    collapsed by step 1,000: lambda_k = 0.01; lambda_k = 0.01 with gamma =
    0.7 and learning rates 5e-4; N_h = 8. The paper's regime is 64x64
    images (N_h 64 of 12,288 dimensions): see the mnist8k preset.

  python -m experiments.main --config=experiments/configs/began.py:mnist8k \
      --workdir=runs/began_mnist8k
    28x28: n = 64, N_z = N_h = 64, 2 scales (7x7 -> 28x28), 10,000 steps
    (~2.7 s/step here: about 7 h on 2 cores). Measured at a CPU cut of
    1,000 steps (``--config.train.num_steps=1000``, seed 0, 46 min): not
    yet at equilibrium (test L(x) 0.109, L(G) 0.128 > gamma L(x), so k_t
    stays near 0 and the autoencoder ignores the fakes) and collapsed:
    near-identical blotchy samples, RESULTS.md `began_mnist8k`: FID-style
    2134, 3 of 10 classes. The preset's 10,000 steps were not run here.
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
  m.gamma = 0.5  # diversity ratio E L(G(z)) / E L(x)
  m.lambda_k = 0.001  # gain of the k_t update
  m.k_init = 0.0  # k_0

  # config.optimizer: the generator's; config.d_optimizer: the
  # autoencoder's (same fields, built by jaxgen.train.make_optimizer).
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
