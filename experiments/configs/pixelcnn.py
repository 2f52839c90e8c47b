r"""PixelCNN (van den Oord et al., ICML 2016): binary or 256-way, conditional.

Argument: comma-separated options, e.g. ``pixelcnn.py:digits``,
``pixelcnn.py:mnist8k``, ``pixelcnn.py:digits,categorical,cond``:
- dataset: digits (default; bundled 8x8) | mnist8k (../shared, 28x28) |
  smoke (tests) | binarized_mnist | cifar10 (the papers' data, TFDS; see
  below)
- likelihood: bernoulli (default, but categorical on cifar10; dynamically
  binarized data) | categorical (256-way softmax on the 8-bit pixels)
- cond: class-conditional (a learned per-class bias in every layer)

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/pixelcnn.py:digits \
      --workdir=runs/pixelcnn_digits
    h=64, 4 residual blocks (5x5 mask-A input conv), 3,000 steps of batch
    128 on dynamically binarized 8x8 digits: a few minutes. Record
    `pixelcnn_digits`; with ``digits,categorical``, `pixelcnn_8bit_digits`.

  python -m experiments.main --config=experiments/configs/pixelcnn.py:mnist8k \
      --workdir=runs/pixelcnn_mnist8k
    The reference model: 7x7 mask-A conv to 128 channels, 12 residual
    blocks, 1x1 128 -> 128 -> 1, batch 32, 20,000 steps: about a day on 2
    CPU cores (the step cost is in experiments/bench_autoregressive.py).
    Record `pixelcnn_mnist8k` trains a CPU-sized cut (h=64, 6 blocks,
    4,000 steps; the overrides are in its command), about 20 minutes.

  python -m experiments.main \
      --config=experiments/configs/pixelcnn.py:mnist8k,categorical \
      --workdir=runs/pixelcnn_8bit_mnist8k
    The 256-way softmax on the 8-bit digits. Record `pixelcnn_8bit_mnist8k`
    trains the same h=64, 6-block cut for 2,500 steps, about 10 minutes.

  ``python -m experiments.bench_autoregressive --train_steps=0`` times the
  cached sampler against the naive one on the reference model.

The papers' data (prepared TFDS array_record, README.md "Reproducing the
papers on a GPU or TPU"; no records here, nothing measured):

  python -m experiments.main \
      --config=experiments/configs/pixelcnn.py:binarized_mnist \
      --workdir=runs/pixelcnn_binarized_mnist
    The reference model on the fixed binarization of Larochelle & Murray
    2011 (50,000 / 10,000 / 10,000), batch 32, 100,000 steps. Compare with
    van den Oord et al. 2016a's binarized-MNIST table: PixelCNN at 81.30
    nats test NLL.

  python -m experiments.main \
      --config=experiments/configs/pixelcnn.py:cifar10 \
      --workdir=runs/pixelcnn_cifar10
    32x32x3 8-bit images (50,000 / 10,000), 256-way softmax per colour
    channel with R -> G -> B masks: 7x7 mask-A conv to h = 192 channels (a
    multiple of 2 x 3 for the colour groups), 12 residual blocks, a 1x1
    output layer of 1,020 features (a multiple of 3), batch 64, 200,000
    steps: sized here for one accelerator, not the paper's layer table.
    Compare with van den Oord et al. 2016a's CIFAR-10 table: PixelCNN at
    3.14 bits/dim on the test set.
"""

from experiments.configs import common

ALLOWED = {
    'dataset': common.DATASETS + ('binarized_mnist', 'cifar10'),
    'likelihood': ('bernoulli', 'categorical'),
    'cond': ('cond',),
}
# likelihood '': bernoulli, or categorical on cifar10 (8-bit colour).
DEFAULTS = {'dataset': 'digits', 'likelihood': '', 'cond': ''}


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  c = common.base_config('pixelcnn', dataset)
  small = dataset in ('digits', 'smoke')
  m = c.model
  cifar = dataset == 'cifar10'
  m.image_shape = common.IMAGE_SHAPES[dataset]
  # 'bernoulli' | 'categorical' (256-way)
  m.likelihood = opts['likelihood'] or ('categorical' if cifar else
                                        'bernoulli')
  m.features = 64 if small else 128  # residual stream width h
  m.num_blocks = 4 if small else 12  # residual blocks (1x1, kxk mask B, 1x1)
  m.input_kernel = 5 if small else 7  # first, mask-A convolution
  m.block_kernel = 3  # mask-B convolution inside each block
  m.output_features = (64,) if small else (128,)  # hidden 1x1 output layers
  m.num_classes = 10 if opts['cond'] else 0  # > 0: class-conditional
  if cifar:
    m.features, m.output_features = 192, (1020,)
  if dataset == 'smoke':
    m.features, m.num_blocks, m.output_features = 8, 1, (8,)

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
