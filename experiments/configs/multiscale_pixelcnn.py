r"""Multi-scale PixelCNN (van den Oord et al. 2016a, §3.3): p(x_s) p(x | x_s).

Argument: comma-separated options, e.g. ``multiscale_pixelcnn.py:digits``,
``multiscale_pixelcnn.py:mnist8k``:
- dataset: digits (default; bundled 8x8, x_s 4x4) | mnist8k (../shared,
  28x28, x_s 14x14) | smoke (tests)

Two Gated PixelCNNs on dynamically binarized digits: stage 1 models the
sub-grid x_s = x[::2, ::2], stage 2 the full image given x_s (spatial
conditioning in every gated layer), its loss over the pixels off the grid
only; the sum of the two is the exact log p(x)
(`jaxgen.models.multiscale_pixelcnn`). The evaluation reports both stages'
nats (``nll_low``, ``nll_high``) beside the total; the record's
``superres_figure`` shows x_s, samples of x given x_s and the truth.

Commands (seed 0, 2 CPU cores); a command whose record is named `<name>` is
one row of RESULTS.md, kept in results/<name>.json and rerun by
``python -m experiments.results --only=<name>``:

  python -m experiments.main \
      --config=experiments/configs/multiscale_pixelcnn.py:digits \
      --workdir=runs/multiscale_pixelcnn_digits
    Both stages p=32, 6 gated layers (3x3 kernels), batch 128 on 8x8
    digits. Record `multiscale_pixelcnn_digits` (its step count is in its
    command).

  python -m experiments.main \
      --config=experiments/configs/multiscale_pixelcnn.py:mnist8k \
      --workdir=runs/multiscale_pixelcnn_mnist8k
    The size of the reference Gated PixelCNN in each stage (10 gated layers
    of 64 channels, 7x7 first layer, 1x1 128 -> 1), batch 32, 20,000 steps:
    many hours on 2 CPU cores. Record `multiscale_pixelcnn_mnist8k` trains
    a CPU-sized cut (the overrides are in its command).
"""

from experiments.configs import common

ALLOWED = {'dataset': common.DATASETS}
DEFAULTS = {'dataset': 'digits'}


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  c = common.base_config('multiscale_pixelcnn', dataset)
  small = dataset in ('digits', 'smoke')
  m = c.model
  m.image_shape = common.IMAGE_SHAPES[dataset]
  m.likelihood = 'bernoulli'  # 'bernoulli' | 'categorical' (256-way)
  m.factor = 2  # x_s = x[::factor, ::factor]; must divide H and W
  m.features = 32 if small else 64  # stage 2: channels p of each stack
  m.num_layers = 6 if small else 10  # stage 2: gated layers
  m.low_features = 32 if small else 64  # stage 1 (x_s)
  m.low_layers = 6 if small else 10
  m.input_kernel = 3 if small else 7  # k of each stage's first gated layer
  m.kernel_size = 3  # k of the later gated layers
  m.output_features = (64,) if small else (128,)  # hidden 1x1 output layers
  m.use_skip = True  # sum skip connections into the output
  m.cond_features = 16 if small else 32  # 3x3 conv of the upsampled x_s
  if dataset == 'smoke':
    m.features = m.low_features = 4
    m.num_layers = m.low_layers = 2
    m.output_features, m.cond_features = (8,), 4

  common.pixel_data(c, m.likelihood)
  c.train.batch_size = 128 if small else 32
  c.train.num_steps = 3000 if small else 20_000
  c.train.eval_every_steps = 1000 if small else 5000
  common.exact_estimator(c)
  c.eval.num_grid_samples = 64 if small else 16
  return common.finalize(c, dataset)
