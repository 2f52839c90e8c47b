r"""WaveNet on flattened images (raster order) or synthetic 8-bit signals.

Argument: comma-separated options, e.g. ``wavenet.py:digits``,
``wavenet.py:sines``, ``wavenet.py:mnist8k``, ``wavenet.py:digits,categorical,cond``:
- dataset: digits (default; bundled) | mnist8k (../shared) | smoke (tests) |
  sines | ar (``jaxgen.data.signals``: 4,096 8-bit sequences of length 256,
  'signal:sines:256' / 'signal:ar:256', split 80/10/10, labels = 4
  frequency bands)
- likelihood: bernoulli (images default; dynamically binarized) |
  categorical (256-way softmax on 8-bit values; always for signals)
- cond: global conditioning on the label (digit class, or frequency band)

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/wavenet.py:digits \
      --workdir=runs/wavenet_digits
    6 gated blocks, dilations 1..32, receptive field 65 >= 64 pixels;
    3,000 steps on dynamically binarized 8x8 digits: a few minutes.
    Record `wavenet_digits`.

  python -m experiments.main --config=experiments/configs/wavenet.py:sines \
      --workdir=runs/wavenet_sines
    8 gated blocks, dilations 1..128 (receptive field 257 >= 256 samples),
    3,000 steps, on the order of 10 minutes; the exact test NLL is in bits
    per sample (bits_per_dim), against the 8 bits of a uniform model.
    Sample grids draw each (1, 256, 1) signal as a 64-pixel-high waveform.
    No RESULTS.md row.

  python -m experiments.main --config=experiments/configs/wavenet.py:mnist8k \
      --workdir=runs/wavenet_mnist8k
    10 gated blocks, dilations 1..512 (receptive field 1025 >= 784), batch
    32, 10,000 steps: about an hour. Record `wavenet_mnist8k` is a CPU
    budget of 2,500 steps (``--config.train.num_steps=2500``), about a
    quarter of an hour.
"""

from experiments.configs import common

SIGNALS = ('sines', 'ar')
ALLOWED = {
    'dataset': common.DATASETS + SIGNALS,
    'likelihood': ('bernoulli', 'categorical'),
    'cond': ('cond',),
}
DEFAULTS = {'dataset': 'digits', 'likelihood': '', 'cond': ''}
SIGNAL_LENGTH = 256


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  signal = dataset in SIGNALS
  c = common.base_config('wavenet', 'digits' if signal else dataset)
  m = c.model
  m.likelihood = opts['likelihood'] or ('categorical' if signal else
                                        'bernoulli')
  if signal and m.likelihood != 'categorical':
    raise ValueError('signals are 8-bit: use the categorical likelihood.')
  if signal:
    c.data.name = f'signal:{dataset}:{SIGNAL_LENGTH}'
    c.data.splits.train = 'all[:80%]'
    c.data.splits.validation = 'all[80%:90%]'
    c.data.splits.test = 'all[90%:]'
    c.data.shuffle_before_split = False  # rows are i.i.d. draws already
    m.image_shape = (1, SIGNAL_LENGTH, 1)
  elif dataset in ('digits', 'smoke'):
    m.image_shape = (8, 8, 1)
  else:
    m.image_shape = (28, 28, 1)
  # Binarized data for 'bernoulli'; 8-bit values read as round(255 x).
  c.data.binarize = 'dynamic' if m.likelihood == 'bernoulli' else 'none'
  m.residual_channels = 32  # residual stream and input embedding
  m.gate_channels = 32  # each of the filter and gate halves
  m.skip_channels = 64  # skip sum and output head
  m.kernel_size = 2  # taps of every causal convolution
  # Dilations 1, 2, ..., 2^(n-1): the receptive field covers the sequence
  # (65 >= 64 digits pixels, 1025 >= 784 MNIST pixels, 257 >= 256 samples).
  m.layers_per_stack = {'digits': 6, 'smoke': 3, 'mnist8k': 10}.get(dataset, 8)
  m.num_stacks = 1  # repetitions of the dilation cycle
  m.num_classes = (4 if signal else 10) if opts['cond'] else 0
  if dataset == 'smoke':
    m.residual_channels = m.gate_channels = 8
    m.skip_channels = 8
  c.train.num_steps = {'digits': 3000, 'mnist8k': 10_000}.get(dataset, 3000)
  c.train.batch_size = 32 if dataset == 'mnist8k' else 64
  c.train.eval_every_steps = 1000
  c.eval.batch_size = 100
  common.exact_estimator(c)
  if signal:
    # The grid draws each (1, T, 1) sample 64x enlarged: keep it small.
    c.eval.num_grid_samples = 4
  return common.finalize(c, dataset if dataset in common.DATASETS else
                         'digits')
