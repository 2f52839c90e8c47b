r"""The feature classifier of the sample-quality scores (not a model family).

Argument: the dataset, ``digits`` (default), ``mnist8k`` or ``smoke``
(tests). The data splits are exactly those of every family's config
(`common.data_config`), so the classifier never sees the test images that
generative models are scored against.

Commands and their cost (seed 0, 2 CPU cores); the classifier's test
accuracy is stored with the scores in every record that has sample-quality
scores:

  python -m experiments.train_classifier --dataset=digits \
      --workdir=runs/classifier_digits
    3 convolutions 32/64/64 (strides 1/2/2) + 64 features (72,842
    parameters), 3,000 steps of 64: under a minute.

  python -m experiments.train_classifier --dataset=mnist8k \
      --workdir=runs/classifier_mnist8k
    3 convolutions 32/64/64 (strides 1/2/2) + 128 features (458,570
    parameters), 2,000 steps of 128: a few minutes.

Then ``python -m experiments.sample_quality --workdir=<run>
--classifier=runs/classifier_<dataset>`` scores a run's samples; the scores
are not comparable to Inception-based FID / IS.
"""

import ml_collections

from experiments.configs import common


def get_config(arg: str = 'digits') -> ml_collections.ConfigDict:
  opts = common.parse_arg(arg, {'dataset': common.DATASETS},
                          {'dataset': 'digits'})
  dataset = opts['dataset']
  small = dataset in ('digits', 'smoke')
  c = ml_collections.ConfigDict()
  c.seed = 0  # root key: split into init / train / data / test keys
  c.data = common.data_config(dataset)  # the families' splits, unchanged
  c.data.binarize = 'none'  # 8-bit images; train.binarize_prob binarizes some

  m = c.model = ml_collections.ConfigDict()
  m.image_shape = (8, 8, 1) if small else (28, 28, 1)
  m.channels = (32, 64, 64)  # 3x3 convolutions, ReLU
  m.strides = (1, 2, 2)
  m.kernel_size = 3
  m.feature_dim = 64 if small else 128  # penultimate width: FID-style features
  m.num_classes = 10
  m.dropout_rate = 0.3  # on the features, before the logits; training only
  m.pool = 'flatten'  # 'flatten' | 'mean' (global average pooling)

  c.optimizer = common.base_config('classifier', dataset).optimizer
  c.optimizer.name = 'adamw'
  c.optimizer.weight_decay = 1e-4
  c.optimizer.schedule = 'cosine'  # to 0 over train.num_steps

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 64 if small else 128
  c.train.num_steps = 3000 if small else 2000
  c.train.log_every_steps = 250
  c.train.binarize_prob = 0.5  # share of examples dynamically binarized
  if dataset == 'smoke':
    c.train.batch_size = 32
    c.train.num_steps = 4
    c.train.log_every_steps = 2
  return c.lock()
