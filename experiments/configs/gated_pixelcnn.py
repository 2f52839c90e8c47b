r"""Gated PixelCNN (van den Oord et al., NeurIPS 2016), optionally conditional.

Argument: comma-separated options, e.g. ``gated_pixelcnn.py:digits``,
``gated_pixelcnn.py:mnist8k,cond``, ``gated_pixelcnn.py:digits,categorical``:
- dataset: digits (default; bundled 8x8) | mnist8k (../shared, 28x28) |
  smoke (tests) | binarized_mnist | cifar10 (the papers' data, TFDS; see
  below)
- likelihood: bernoulli (default, but categorical on cifar10; dynamically
  binarized data) | categorical (256-way softmax on the 8-bit pixels)
- cond: class-conditional (one-hot label projected into every gated layer)
- arch: peer (the PyTorch peer's layout of ../shared/bench, parameter for
  parameter, for `experiments.bench_peers`: no skip connections, the output
  read from the last horizontal stack through 1x1 64 -> 64 -> 1, the first
  layer's kernels cropped to what a 7x7 mask 'A' reaches, ``crop_input``;
  806,401 parameters on 28x28 against the default's 853,249)

Vector conditioning (``model.cond_dim``) is a library feature: no dataset
supplies ``batch['cond']``, so these presets keep cond_dim = 0.

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main \
      --config=experiments/configs/gated_pixelcnn.py:digits \
      --workdir=runs/gated_pixelcnn_digits
    p=32, 6 gated layers, 3,000 steps of batch 128 on binarized 8x8
    digits: about a quarter of an hour. Record `gated_pixelcnn_digits`.

  python -m experiments.main \
      --config=experiments/configs/gated_pixelcnn.py:mnist8k \
      --workdir=runs/gated_pixelcnn_mnist8k
    The reference model: 10 gated layers of 64 channels (7x7 first layer,
    3x3 after), skip connections, 1x1 128 -> 1 output, batch 32, 20,000
    steps: many hours on 2 CPU cores (the step cost is in
    experiments/bench_autoregressive.py). Record `gated_pixelcnn_mnist8k`
    trains a CPU-sized cut (p=32, 8 layers, 1x1 64 -> 1, 2,500 steps; the
    overrides are in its command), about 20 minutes.

The papers' data (prepared TFDS array_record, README.md "Reproducing the
papers on a GPU or TPU"; no records here, nothing measured):

  python -m experiments.main \
      --config=experiments/configs/gated_pixelcnn.py:binarized_mnist \
      --workdir=runs/gated_pixelcnn_binarized_mnist
    The reference model on the fixed binarization of Larochelle & Murray
    2011 (50,000 / 10,000 / 10,000), batch 32, 100,000 steps; compare with
    the PixelCNN of van den Oord et al. 2016a (81.30 nats test NLL).

  python -m experiments.main \
      --config=experiments/configs/gated_pixelcnn.py:cifar10 \
      --workdir=runs/gated_pixelcnn_cifar10
    32x32x3 8-bit images (50,000 / 10,000), 256-way softmax per colour
    channel: 15 gated layers of 192 channels (a multiple of 3), 1x1 output
    layer of 1,020 features, batch 64, 200,000 steps: sized here for one
    accelerator, not the paper's. Compare with van den Oord et al. 2016b,
    Table 1: Gated PixelCNN at 3.03 bits/dim on the CIFAR-10 test set.
"""

from experiments.configs import common

ALLOWED = {
    'dataset': common.DATASETS + ('binarized_mnist', 'cifar10'),
    'likelihood': ('bernoulli', 'categorical'),
    'cond': ('cond',),
    'arch': ('peer',),
}
# likelihood '': bernoulli, or categorical on cifar10 (8-bit colour).
DEFAULTS = {'dataset': 'digits', 'likelihood': '', 'cond': '', 'arch': ''}


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  c = common.base_config('gated_pixelcnn', dataset)
  small = dataset in ('digits', 'smoke')
  m = c.model
  cifar = dataset == 'cifar10'
  m.image_shape = common.IMAGE_SHAPES[dataset]
  # 'bernoulli' | 'categorical' (256-way)
  m.likelihood = opts['likelihood'] or ('categorical' if cifar else
                                        'bernoulli')
  m.features = 32 if small else 64  # channels p of each stack
  m.num_layers = 6 if small else 10  # gated layers
  m.input_kernel = 5 if small else 7  # k of the first gated layer
  m.kernel_size = 3  # k of the later gated layers
  m.output_features = (64,) if small else (128,)  # hidden 1x1 output layers
  m.use_skip = True  # sum skip connections into the output
  m.num_classes = 10 if opts['cond'] else 0  # > 0: class-conditional
  m.cond_dim = 0  # > 0: conditioned on batch['cond'] (library use only)
  # First layer cut to a k x k mask 'A''s reach (1 channel only).
  m.crop_input = False
  if cifar:
    m.features, m.num_layers, m.output_features = 192, 15, (1020,)
  if dataset == 'smoke':
    m.features, m.num_layers, m.output_features = 4, 2, (8,)
  if opts['arch'] == 'peer':
    m.use_skip, m.crop_input = False, True
    m.output_features = (m.features,)

  common.pixel_data(c, m.likelihood)

  c.train.batch_size = 128 if small else 32
  c.train.num_steps = 3000 if small else 20_000
  c.train.eval_every_steps = 1000 if small else 5000
  common.exact_estimator(c)
  c.eval.num_grid_samples = 64 if small else 16
  if dataset in common.PAPER_DATASETS:
    c.train.batch_size = 64 if cifar else 32
    c.train.num_steps = 200_000 if cifar else 100_000
    c.train.eval_every_steps = 10_000
    c.train.checkpoint_every_steps = 5000
  return common.finalize(c, dataset)
