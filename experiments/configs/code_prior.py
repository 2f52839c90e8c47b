r"""Gated PixelCNN prior over the frozen codes of a VQ-VAE / VQ-VAE-2.

Argument: comma-separated options, e.g. ``code_prior.py:digits``,
``code_prior.py:mnist8k,vqvae``, ``code_prior.py:digits,cond``:
- dataset: digits (default) | mnist8k | smoke (tests: a randomly
  initialised, frozen VQ model; no workdir needed)
- levels: vqvae2 (default; top prior, then bottom prior given the top
  codes) | vqvae (one code map)
- cond: class-conditional priors (labels of the data)

``model.vqvae_workdir`` names the trained VQ run (default
``runs/<levels>_<dataset>``, trained by ``vqvae2.py:<dataset>`` or
``vqvae.py:<dataset>``); override it with
``--config.model.vqvae_workdir=...``. The data fields must match that run's.

Evaluation reports the two-stage bound log p(x | z_q(x)) + log p(z_q(x)) in
nats and bits/dim over the image's pixels ('bound'), next to the same bound
with the uniform prior the VQ model trained with ('uniform'); the difference
is what the learned prior buys.

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/vqvae2.py:digits \
      --workdir=runs/vqvae2_digits
  python -m experiments.main --config=experiments/configs/code_prior.py:digits \
      --workdir=runs/code_prior_digits
    Gated PixelCNNs of 6 layers x 32 channels over the 2x2 top and 4x4
    bottom maps, 3,000 steps of batch 128: under 10 minutes. Record
    `code_prior_digits`; with ``digits,cond`` (a bound on
    -log p(x | label)), `code_prior_cond_digits`.

  python -m experiments.main --config=experiments/configs/vqvae2.py:mnist8k \
      --workdir=runs/vqvae2_mnist8k
  python -m experiments.main --config=experiments/configs/code_prior.py:mnist8k \
      --workdir=runs/code_prior_mnist8k
    10 gated layers x 64 channels over the 4x4 top and 7x7 bottom maps,
    10,000 steps of batch 64: a couple of hours. Record
    `code_prior_mnist8k` is a CPU budget of 2,000 steps
    (``--config.train.num_steps=2000``), under half an hour.
"""

from experiments.configs import common

ALLOWED = {
    'dataset': common.DATASETS,
    'levels': ('vqvae2', 'vqvae'),
    'cond': ('cond',),
}
DEFAULTS = {'dataset': 'digits', 'levels': 'vqvae2', 'cond': ''}


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  c = common.base_config('code_prior', dataset)
  small = dataset in ('digits', 'smoke')
  m = c.model
  m.image_shape = (8, 8, 1) if small else (28, 28, 1)
  # The trained VQ run ('' = a random frozen VQ model: smoke tests only).
  m.vqvae_workdir = '' if dataset == 'smoke' else (
      f"runs/{opts['levels']}_{dataset}")
  m.vqvae_family = opts['levels']  # 'vqvae2' | 'vqvae': the run's family
  # Net fields of the random frozen VQ model (vqvae_workdir='' only), as
  # (name, value) pairs over its family's defaults.
  m.random_vqvae_fields = ()
  m.features = 32 if small else 64  # channels of each gated stack
  m.num_layers = 6 if small else 10  # gated layers per level
  m.input_kernel = 3 if small else 5  # k of the first gated layer
  m.kernel_size = 3  # k of the later gated layers
  m.output_features = (64,) if small else (128,)  # hidden 1x1 output layers
  m.num_classes = 10 if opts['cond'] else 0  # > 0: class-conditional priors
  m.cond_features = 32 if small else 64  # channels of the top-code map
  # True: no probability on the 256 - K softmax levels that are not codes
  # (exact code NLL); False: the softmax learns to leave them empty and the
  # sampler clips a draw >= K to K - 1.
  m.mask_unused_codes = False
  if dataset == 'smoke':
    m.features, m.num_layers, m.output_features, m.cond_features = (
        4, 2, (8,), 8)
    # The VQ families' own smoke sizes: K=8 codes, 2x2 over 4x4 maps.
    downsamples = ('bottom_downsamples' if opts['levels'] == 'vqvae2'
                   else 'num_downsamples')
    m.random_vqvae_fields = (
        ('hidden_channels', 8), ('res_channels', 4), ('num_res_blocks', 1),
        ('code_dim', 4), ('num_codes', 8), (downsamples, 1))

  # The data as the VQ model saw it (its default preset: binarized).
  c.data.binarize = 'dynamic'
  c.data.value_range = 'unit'
  c.data.dequantize = False
  c.train.batch_size = 128 if small else 64
  c.train.num_steps = 3000 if small else 10_000
  c.train.eval_every_steps = 1000 if small else 2500
  c.eval.estimators = {'bound': {}, 'uniform': {'prior': 'uniform'}}
  c.eval.final_estimators = ('bound', 'uniform')
  c.eval.periodic_estimators = ('bound',)
  c.eval.num_grid_samples = 64 if small else 16
  return common.finalize(c, dataset)
