r"""The feature classifier of the sample-quality scores: family 'classifier'.

The model, its loss and its checks are `jaxgen.models.classifier`.

Argument: the dataset, ``digits`` (default), ``mnist8k`` or ``smoke``
(tests). The data splits are exactly those of every family's config
(`common.data_config`), so the classifier never sees the test images that
generative models are scored against. The images are read 8-bit, scaled
to [0, 1]; the loss binarizes a share of the training rows itself
(``model.binarize_prob``).

Commands and their cost (seed 0, 2 CPU cores); no results record of its
own: every record with sample-quality scores stores, under 'classifier',
the command and test accuracy of the classifier it was scored with:

  python -m experiments.train_classifier --dataset=digits \
      --workdir=runs/classifier_digits
    3 convolutions 32/64/64 (strides 1/2/2) + 64 features, 3,000 steps of
    64: about a minute. Writes ``<workdir>/accuracy.json`` (test accuracy
    on the 8-bit images and on one dynamic binarization of them).

  python -m experiments.train_classifier --dataset=mnist8k \
      --workdir=runs/classifier_mnist8k
    3 convolutions 32/64/64 (strides 1/2/2) + 128 features, 2,000 steps of
    128: a few minutes.

``python -m experiments.main --config=experiments/configs/classifier.py:digits
--workdir=runs/classifier_digits`` trains the same classifier without
accuracy.json; ``experiments.train_classifier`` on that workdir adds it
without training again. Then ``python -m experiments.sample_quality
--workdir=<run> --classifier=runs/classifier_<dataset>`` scores a run's
samples.
"""

import ml_collections

from experiments.configs import common


def get_config(arg: str = 'digits') -> ml_collections.ConfigDict:
  opts = common.parse_arg(arg, {'dataset': common.DATASETS},
                          {'dataset': 'digits'})
  dataset = opts['dataset']
  small = dataset in ('digits', 'smoke')
  c = common.base_config('classifier', dataset)
  c.data.binarize = 'none'  # 8-bit images; model.binarize_prob binarizes some
  c.data.value_range = 'unit'  # pixel / 255, as the scores read uint8 images

  m = c.model
  m.image_shape = (8, 8, 1) if small else (28, 28, 1)
  m.channels = (32, 64, 64)  # 3x3 convolutions, ReLU
  m.strides = (1, 2, 2)
  m.kernel_size = 3
  m.feature_dim = 64 if small else 128  # penultimate width: FID-style features
  m.num_classes = 10
  m.dropout_rate = 0.3  # on the features, before the logits; training only
  m.pool = 'flatten'  # 'flatten' | 'mean' (global average pooling)
  m.binarize_prob = 0.5  # share of training examples dynamically binarized

  c.optimizer.name = 'adamw'
  c.optimizer.weight_decay = 1e-4
  c.optimizer.schedule = 'cosine'  # to 0 over train.num_steps

  c.train.batch_size = 64 if small else 128
  c.train.num_steps = 3000 if small else 2000
  c.train.log_every_steps = 250
  return common.finalize(c, dataset)
