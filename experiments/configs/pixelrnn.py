r"""PixelRNN: Row LSTM or Diagonal BiLSTM, Bernoulli or 256-way softmax.

Argument: comma-separated options, e.g. ``pixelrnn.py:digits``,
``pixelrnn.py:mnist8k,row``, ``pixelrnn.py:digits,categorical``:
- dataset: digits (default; bundled 8x8) | mnist8k (../shared) | smoke
- variant: diagonal (default; Diagonal BiLSTM) | row (Row LSTM)
- likelihood: bernoulli (default; dynamically binarized data, the paper's
  MNIST setting) | categorical (256-way softmax on 8-bit data in [0, 1])

The likelihood is exact: nats per image (binary data) or bits/dim (8-bit
data), from the 'exact' estimator.

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/pixelrnn.py:digits \
      --workdir=runs/diagonal_bilstm_digits
    Diagonal BiLSTM, 2 layers of 16 units, on dynamically binarized 8x8
    digits; 3,000 steps of batch 64: about 5 minutes. Record
    `diagonal_bilstm_digits`; with ``digits,row`` (Row LSTM, a few
    minutes), `row_lstm_digits`.

  python -m experiments.main --config=experiments/configs/pixelrnn.py:mnist8k \
      --workdir=runs/diagonal_bilstm_mnist8k
    28x28 binarized MNIST, 4 layers of 16 units: a CPU-sized cut of the
    paper's 7-layer, h=16 Diagonal BiLSTM. The scans run 28 + 27 = 55
    steps per direction and layer, so the 10,000 steps take hours on 2 CPU
    cores: use a GPU or reduce config.train.num_steps. Record
    `diagonal_bilstm_mnist8k` is a CPU budget of 2,000 steps, and
    `row_lstm_mnist8k` (``mnist8k,row``) one of 2,500 steps, each under
    half an hour.
"""

from experiments.configs import common

ALLOWED = {
    'dataset': common.DATASETS,
    'variant': ('diagonal', 'row'),
    'likelihood': ('bernoulli', 'categorical'),
}
DEFAULTS = {'dataset': 'digits', 'variant': 'diagonal',
            'likelihood': 'bernoulli'}


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  c = common.base_config('pixelrnn', dataset)
  small = dataset in ('digits', 'smoke')
  m = c.model
  m.image_shape = (8, 8, 1) if small else (28, 28, 1)
  m.variant = {'diagonal': 'diagonal_bilstm', 'row': 'row_lstm'}[
      opts['variant']]  # 'diagonal_bilstm' | 'row_lstm'
  m.num_layers = 2 if small else 4  # recurrent residual blocks (paper: 7)
  m.hidden = 16  # LSTM units h; the residual stream has 2h (paper: 16)
  m.output_features = 32  # the two 1x1 mask-B output layers
  m.row_kernel_size = 3  # Row LSTM's 1 x k convolutions
  m.first_kernel_size = 7  # the mask-A input convolution
  m.likelihood = opts['likelihood']  # 'bernoulli' | 'categorical'

  if m.likelihood == 'bernoulli':
    c.data.binarize = 'dynamic'  # a fresh keyed binarization every step
  else:
    c.data.binarize = 'none'  # 8-bit levels, recovered as round(255 x)
  c.data.dequantize = False
  c.data.value_range = 'unit'

  c.train.batch_size = 64 if small else 32
  c.train.num_steps = 3000 if small else 10_000
  c.train.eval_every_steps = 1000 if small else 2500
  c.eval.batch_size = 200 if small else 100
  c.eval.num_grid_samples = 64 if small else 16  # 1 network pass per pixel
  common.exact_estimator(c)
  if dataset == 'smoke':
    m.num_layers = 1
    m.hidden = 4
    m.output_features = 8
  return common.finalize(c, dataset)
