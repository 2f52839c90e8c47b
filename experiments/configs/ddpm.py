r"""DDPM: a denoising diffusion model on 8-bit images in [-1, 1].

Argument: comma-separated options, e.g. ``ddpm.py:digits``,
``ddpm.py:mnist8k,cosine``, ``ddpm.py:digits,cond``:
- dataset: digits (default; bundled 8x8) | mnist8k (../shared) | smoke
  (tests: a tiny U-Net, T = 20, cosine schedule) | cifar10 (the paper's
  data, TFDS; see below)
- schedule: linear (default; Ho et al., 1e-4 to 0.02) | cosine (Nichol &
  Dhariwal)
- cond: class-conditional model with label dropout 0.1 (classifier-free
  guidance at sampling time)

The data are 8-bit (no binarization, no dequantization) scaled to [-1, 1];
the decoder is a discretized Gaussian, so the variational bound is on the
discrete log-likelihood and reads directly in bits/dim. Evaluation: the
full bound over all T = 1,000 terms ('bound') at the end, a stratified
unbiased estimate over 20 timesteps per image ('bound20') during training.
Samples and evaluation use the EMA of the parameters.

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/ddpm.py:digits \
      --workdir=runs/ddpm_digits
    The 28x28 reference U-Net's layout (channels 32/64, attention at the
    lowest resolution) on 8x8 digits, T = 1,000, 5,000 steps of batch
    128 and the full bound on the test split: tens of minutes. Grids by
    ancestral sampling (1,000 network calls). Record `ddpm_digits`.

  python -m experiments.main --config=experiments/configs/ddpm.py:mnist8k \
      --workdir=runs/ddpm_mnist8k
    The reference U-Net (583,713 parameters; channels 32/64, one residual
    block per level, attention at 7x7, 128-d time embedding), T = 1,000,
    10,000 steps of batch 64, grids by 100-step DDIM: hours on 2 CPU
    cores (the full bound alone is a million network evaluations), minutes
    on one GPU. Record `ddpm_mnist8k` runs a CPU budget of 600 steps
    (``--config.train.num_steps=600 --config.train.ema_decay=0.99
    --config.train.eval_every_steps=0
    --config.eval.estimators.bound.num_timesteps=20
    --config.eval.estimators.bound.chunk_size=20
    --config.model.sample_steps=50``): the bound estimated from L_0 and 19
    stratified timesteps per image, grids by 50-step DDIM; its record and
    `ddpm_digits`' also score ancestral sampling beside 50-step DDIM
    (`jaxgen.evaluations.sampler_quality`).

  python -m experiments.main --config=experiments/configs/ddpm.py:mnist8k,cosine \
      --workdir=runs/ddpm_mnist8k_cosine
    The same with the cosine schedule. Its bound is dominated by the last
    step's KL term while the noise prediction at t = T is still off: the
    schedule clips beta_T at 0.999, so that term weighs the squared error
    of eps_theta about 500 nats per dimension (`jaxgen.models.ddpm`'s
    docstring, `ddpm.eps_error_weights`); compare it with the linear
    schedule after training, not early on.

  python -m experiments.main --config=experiments/configs/ddpm.py:cifar10 \
      --workdir=runs/ddpm_cifar10
    CIFAR-10 from prepared TFDS data (50,000 / 10,000; README.md
    "Reproducing the papers on a GPU or TPU"): U-Net of 128/256/256
    channels (32 -> 4), 2 residual blocks per level, T = 1,000, linear
    schedule, Adam 2e-4 with 5,000 warm-up steps, gradient clipping at 1,
    batch 128, EMA decay 0.9999, 800,000 steps: the schedule of Ho et al.
    2020 (their reference code, hojonathanho/diffusion run_cifar.py). Their
    U-Net is larger (channels 128 x (1, 2, 2, 2), attention at 16x16,
    dropout 0.1, random horizontal flips; 35.7M parameters); this one has
    attention at its lowest resolution only, no dropout and no flips.
    The final full bound on the 10,000 test images is 10 million network
    evaluations. Compare with Ho et al. 2020, Table 1: test NLL <= 3.75
    bits/dim (and FID 3.17, which this project does not compute). No
    record here, nothing measured.
"""

from experiments.configs import common

ALLOWED = {'dataset': common.DATASETS + ('cifar10',), 'schedule': ('linear', 'cosine'),
           'cond': ('cond',)}
DEFAULTS = {'dataset': 'digits', 'schedule': 'linear', 'cond': ''}


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  c = common.base_config('ddpm', dataset)
  small = dataset in ('digits', 'smoke')
  # 8-bit pixels v scaled to v / 127.5 - 1; the decoder is discrete.
  c.data.binarize = 'none'
  c.data.dequantize = False
  c.data.value_range = 'symmetric'

  m = c.model
  cifar = dataset == 'cifar10'
  m.image_shape = common.IMAGE_SHAPES[dataset]
  m.channels = (32, 64)  # U-Net features per level (each halves H and W)
  m.num_res_blocks = 1  # residual blocks per level, down and up
  m.sinusoid_dim = 32  # sinusoidal timestep features
  m.time_embed_dim = 128  # time embedding after its 2-layer MLP
  m.num_groups = 8  # GroupNorm groups
  m.num_classes = 10 if opts['cond'] else 0  # > 0: class-conditional
  m.label_dropout = 0.1  # null-label rate when training (conditional only)
  m.num_timesteps = 1000  # T
  m.schedule = opts['schedule']  # 'linear' | 'cosine'
  m.variance = 'beta'  # reverse sigma_t^2: 'beta' | 'posterior'
  m.clip_denoised = True  # samplers clip the predicted x_0 to [-1, 1]
  m.sampler = 'ancestral' if small else 'ddim'  # grids: 'ancestral' | 'ddim'
  m.sample_steps = 0 if small else 100  # DDIM steps of the grids (0 = T)

  c.optimizer.learning_rate = 2e-4  # Adam, as Ho et al.
  c.optimizer.warmup_steps = 200
  c.optimizer.grad_clip_norm = 1.0
  c.train.batch_size = 128 if small else 64
  c.train.num_steps = 5000 if small else 10_000
  c.train.eval_every_steps = 1000 if small else 2500
  # num_steps * (1 - decay) = 25 and 10 EMA time constants.
  c.train.ema_decay = 0.995 if small else 0.999
  c.eval.use_ema = True
  c.eval.batch_size = 200 if small else 100
  c.eval.num_grid_samples = 64 if small else 16
  c.eval.estimators = {
      'bound': dict(num_timesteps=0, chunk_size=25 if small else 10),
      'bound20': dict(num_timesteps=20, chunk_size=20 if small else 10),
  }
  c.eval.final_estimators = ('bound',)
  c.eval.periodic_estimators = ('bound20',)
  if cifar:
    m.channels = (128, 256, 256)
    m.num_res_blocks = 2
    m.num_groups = 32
    m.sinusoid_dim = 128
    m.time_embed_dim = 512
    c.optimizer.warmup_steps = 5000
    c.train.batch_size = 128
    c.train.num_steps = 800_000
    c.train.eval_every_steps = 50_000
    c.train.checkpoint_every_steps = 10_000
    c.train.ema_decay = 0.9999
  if dataset == 'smoke':
    m.channels = (8,)
    m.num_groups = 4
    m.sinusoid_dim = 8
    m.time_embed_dim = 16
    m.num_timesteps = 20
    m.schedule = 'cosine'  # reaches N(0, I) in 20 steps; linear does not
    c.eval.estimators.bound.chunk_size = 10
    c.eval.estimators.bound20.num_timesteps = 4
    c.eval.estimators.bound20.chunk_size = 4
  return common.finalize(c, dataset)
