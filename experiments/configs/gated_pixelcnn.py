"""Gated PixelCNN (van den Oord et al., NeurIPS 2016), optionally conditional.

Argument: comma-separated options, e.g. ``gated_pixelcnn.py:digits``,
``gated_pixelcnn.py:mnist8k,cond``, ``gated_pixelcnn.py:digits,categorical``:
- dataset: digits (default; bundled 8x8) | mnist8k (../shared, 28x28) |
  smoke (tests)
- likelihood: bernoulli (default; dynamically binarized data) | categorical
  (256-way softmax on the 8-bit pixels)
- cond: class-conditional (one-hot label projected into every gated layer)

Vector conditioning (``model.cond_dim``) is a library feature: no dataset
supplies ``batch['cond']``, so these presets keep cond_dim = 0.

Commands and expected results (CPU, seed 0):

  python -m experiments.main \
      --config=experiments/configs/gated_pixelcnn.py:digits \
      --workdir=runs/gated_pixelcnn_digits
    p=32, 6 gated layers, 3,000 steps of batch 128 on binarized 8x8 digits
    Measured (`python -m experiments.results --only=gated_pixelcnn_digits`,
    record results/gated_pixelcnn_digits.json): exact test NLL 22.18 nats
    (PixelCNN preset: 23.17), 14 minutes on 2 loaded cores.

  python -m experiments.main \
      --config=experiments/configs/gated_pixelcnn.py:mnist8k \
      --workdir=runs/gated_pixelcnn_mnist8k
    The reference model: 10 gated layers of 64 channels (7x7 first layer,
    3x3 after), skip connections, 1x1 128 -> 1 output (853,249 parameters),
    batch 32; the step time is in experiments/bench_autoregressive.py.
    RESULTS.md's `gated_pixelcnn_mnist8k` row trains a CPU-sized cut (p=32,
    8 layers, 1x1 64 -> 1, 170,113 parameters, 2,500 steps; overrides in
    its command): exact test NLL 88.94 nats in 22 minutes
    (results/gated_pixelcnn_mnist8k.json; the PixelCNN cut: 91.70). van
    den Oord et al. report CIFAR-10 and ImageNet, not MNIST.
"""

from experiments.configs import common

ALLOWED = {
    'dataset': common.DATASETS,
    'likelihood': ('bernoulli', 'categorical'),
    'cond': ('cond',),
}
DEFAULTS = {'dataset': 'digits', 'likelihood': 'bernoulli', 'cond': ''}


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  c = common.base_config('gated_pixelcnn', dataset)
  small = dataset in ('digits', 'smoke')
  m = c.model
  m.image_shape = (8, 8, 1) if small else (28, 28, 1)
  m.likelihood = opts['likelihood']  # 'bernoulli' | 'categorical' (256-way)
  m.features = 32 if small else 64  # channels p of each stack
  m.num_layers = 6 if small else 10  # gated layers
  m.input_kernel = 5 if small else 7  # k of the first gated layer
  m.kernel_size = 3  # k of the later gated layers
  m.output_features = (64,) if small else (128,)  # hidden 1x1 output layers
  m.use_skip = True  # sum skip connections into the output
  m.num_classes = 10 if opts['cond'] else 0  # > 0: class-conditional
  m.cond_dim = 0  # > 0: conditioned on batch['cond'] (library use only)
  if dataset == 'smoke':
    m.features, m.num_layers, m.output_features = 4, 2, (8,)

  common.pixel_data(c, m.likelihood)

  c.train.batch_size = 128 if small else 32
  c.train.num_steps = 3000 if small else 20_000
  c.train.eval_every_steps = 1000 if small else 5000
  common.exact_estimator(c)
  c.eval.num_grid_samples = 64 if small else 16
  return common.finalize(c, dataset)
