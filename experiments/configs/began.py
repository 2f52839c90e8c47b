"""BEGAN: autoencoder discriminator with the k_t equilibrium balance.

Argument: the dataset, ``began.py:digits`` (default; bundled 8x8),
``began.py:mnist8k`` (../shared) or ``began.py:smoke`` (tests).

The paper's settings (Berthelot et al. 2017): z ~ U[-1, 1]^N_z, ELU
convolution blocks, no batch norm, lambda_k = 0.001, k_0 = 0, Adam 1e-4
(b1 = 0.5) for both nets; images scaled to [-1, 1]. One departure: gamma =
1.0, the top of the paper's range (gamma trades diversity, high, against
sharpness, low; the paper shows 0.3-0.7 on 64x64 faces). With gamma = 0.5
the generator collapsed to one digit on both datasets here, measured with
seed 0 (`--config.model.gamma=0.5` restores it):

- digits, 5,000 steps: equilibrium reached (L(G) ~ gamma L(x), k 0.007)
  by a collapsed generator, FID-style 280, 1 of 10 classes (the row before
  this change, git 19ef5b9); also collapsed by step 1,000-2,000 with
  lambda_k = 0.01, with lambda_k = 0.01, gamma = 0.7 and learning rates
  5e-4, with N_h = 8, and with learning rates 4e-5 (2,000 steps: FID-style
  319, 1 class; k rose, fell to 0 at step 400 and stayed near 0.02).
- mnist8k, 1,000 steps: k_t stayed near 0 (test L(x) 0.109 < L(G) 0.128),
  near-identical blotchy samples, FID-style 2134, 3 of 10 classes (git
  19ef5b9).
With gamma = 1.0 on digits, k rises steadily (0.07 at step 2,000) and the
samples vary: 2,000 steps, FID-style 150, 6 of 10 classes (learning rates
4e-5: 165, 5 classes). `experiments.sample_quality` gives these scores.

Commands and what to expect (seed 0, 2 CPU cores):

  python -m experiments.main --config=experiments/configs/began.py:digits \
      --workdir=runs/began_digits
    8x8: n = 32 channels, N_z = N_h = 32, 2 scales (2x2 -> 8x8), 5,000
    steps (about 10 min). Measured (RESULTS.md `began_digits`): FID-style
    156, IS-style 2.5, 5 of 10 classes (mostly 0s and 1s): better than
    gamma = 0.5 (280, 1 class) but far behind DCGAN, WGAN-GP, LSGAN and
    the conditional GAN on the same data (FID-style 4-8, 10 classes).

  python -m experiments.main --config=experiments/configs/began.py:mnist8k \
      --workdir=runs/began_mnist8k
    28x28: n = 64, N_z = N_h = 64, 2 scales (7x7 -> 28x28), 10,000 steps
    (~2.7 s/step here: about 7 h on 2 cores; not run here). RESULTS.md
    `began_mnist8k` is a CPU cut of 1,000 steps
    (``--config.train.num_steps=1000``, 44 min): test L(G) 0.072 < gamma
    L(x) 0.110, so k_t is still rising, and every sample is a 1 (strokes
    of varied slant and width), FID-style 2267, 1 of 10 classes. 1,000
    steps is too short for the equilibrium with either gamma.
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
  m.gamma = 1.0  # diversity ratio E L(G(z)) / E L(x); 0.5 collapsed here
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
