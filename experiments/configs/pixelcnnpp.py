r"""PixelCNN++: discretized logistic mixture on 8-bit images in [-1, 1].

Argument: comma-separated options, e.g. ``pixelcnnpp.py:digits``,
``pixelcnnpp.py:mnist8k,cond``:
- dataset: digits (default; bundled 8x8) | mnist8k (../shared) | smoke |
  cifar10 (the paper's data, TFDS; see below)
- cond: class-conditional model (every block sees the one-hot label)

The data are 8-bit (no binarization, no dequantization) scaled to [-1, 1];
the likelihood is exact and discrete, reported in bits/dim ('exact'
estimator; the 'nll' metric is in nats per image). A uniform model is 8
bits/dim. Evaluation and samples use the EMA of the parameters.

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/pixelcnnpp.py:digits \
      --workdir=runs/pixelcnnpp_digits
    32 filters, 1 block per resolution, 3 resolutions (8, 4, 2), 5
    components, dropout 0.5; 2,000 steps of batch 32: about 5 minutes.
    Record `pixelcnnpp_digits`.

  python -m experiments.main --config=experiments/configs/pixelcnnpp.py:mnist8k \
      --workdir=runs/pixelcnnpp_mnist8k
    28x28 MNIST, 32 filters, 1 block per resolution (28, 14, 7), batch 32:
    a CPU-sized model, far smaller than the paper's; its 10,000 steps take
    hours on 2 CPU cores (use a GPU or reduce config.train.num_steps).
    Record `pixelcnnpp_mnist8k` is a CPU budget of 1,000 steps with EMA
    decay 0.995 (the overrides are in its command), under half an hour.

  python -m experiments.main --config=experiments/configs/pixelcnnpp.py:cifar10 \
      --workdir=runs/pixelcnnpp_cifar10
    The paper's model on CIFAR-10 from prepared TFDS data (50,000 /
    10,000; README.md "Reproducing the papers on a GPU or TPU"): 160
    filters, 5 blocks per resolution (32, 16, 8), 10 logistic components,
    dropout 0.5, Adam 1e-3 (b1 = 0.95, b2 = 0.9995), Polyak (EMA) decay
    0.9995, batch 96, 500,000
    steps (960 epochs). The reference code (openai/pixel-cnn train.py)
    trains batches of 12 on each of 8 GPUs (96), multiplies the learning
    rate by 0.999995 every step and runs up to 5,000 epochs; this preset
    keeps the rate constant. Compare with Salimans et al. 2017: 2.92
    bits/dim on the test set. No record here, nothing measured.
"""

from experiments.configs import common

ALLOWED = {'dataset': common.DATASETS + ('cifar10',), 'cond': ('cond',)}
DEFAULTS = {'dataset': 'digits', 'cond': ''}


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  c = common.base_config('pixelcnnpp', dataset)
  small = dataset in ('digits', 'smoke')
  # 8-bit pixels v scaled to v / 127.5 - 1, the 256 bin centres of [-1, 1].
  c.data.binarize = 'none'
  c.data.dequantize = False
  c.data.value_range = 'symmetric'

  m = c.model
  cifar = dataset == 'cifar10'
  m.image_shape = common.IMAGE_SHAPES[dataset]
  m.num_filters = 32  # features of the u and ul streams (paper: 160)
  # Gated resnet blocks per resolution (paper: 5). With 1 block the receptive
  # field of an 8x8 model misses a few far pixels at the row ends.
  m.num_resnet = 1
  m.num_scales = 3  # resolutions of the U-Net (H, H/2, H/4)
  m.num_mixtures = 5  # logistic mixture components (paper: 10)
  m.dropout_rate = 0.5  # inside every block, train only (as the paper)
  m.num_classes = 10 if opts['cond'] else 0  # > 0: class-conditional

  c.optimizer.learning_rate = 1e-3  # Adam, as the paper
  c.train.batch_size = 32
  c.train.num_steps = 2000 if small else 10_000
  c.train.eval_every_steps = 500 if small else 2000
  # Polyak averaging (the reference code uses 0.9995 over far longer runs).
  # The EMA starts at the initial parameters without bias correction, so
  # num_steps * (1 - decay) must be large: 10 for both presets.
  c.train.ema_decay = 0.995 if small else 0.999
  c.eval.use_ema = True  # evaluate and sample with the EMA parameters
  c.eval.batch_size = 200 if small else 100
  c.eval.num_grid_samples = 64 if small else 16  # 1 network pass per pixel
  common.exact_estimator(c)
  if cifar:  # the paper's model
    m.num_filters, m.num_resnet, m.num_mixtures = 160, 5, 10
    c.train.batch_size = 96
    c.train.num_steps = 500_000
    c.train.eval_every_steps = 25_000
    c.train.checkpoint_every_steps = 5000
    c.train.ema_decay = 0.9995
    c.optimizer.b1, c.optimizer.b2 = 0.95, 0.9995  # the reference code's
  if dataset == 'smoke':
    # One resolution: the trainer's smoke run compiles in far less time;
    # tests/models/test_pixelcnnpp.py checks the down- and up-sampling.
    m.num_filters = 8
    m.num_resnet = 1
    m.num_scales = 1
    m.num_mixtures = 2
  return common.finalize(c, dataset)
