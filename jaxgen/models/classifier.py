"""The feature classifier of the sample-quality scores, as a family.

`jaxgen.quality` scores samples in the features and the softmax of a small
convolutional classifier trained in the project on the training split of
each image dataset (`jaxgen.nn.classifier.Classifier`; the scores are not
comparable to Inception-based FID or IS). It trains through the shared
trainer like every family: ``python -m experiments.main
--config=experiments/configs/classifier.py:digits --workdir=...`` or
``python -m experiments.train_classifier``, which also writes its test
accuracy (the 'classifier_accuracy' evaluation of `jaxgen.evaluations`).

The data are the 8-bit images scaled to [0, 1] (``config.data.binarize =
'none'``, no dequantization). In training, each example is replaced, with
probability ``binarize_prob``, by one Bernoulli(pixel) draw (dynamic
binarization, keyed by the step's loss key), so the features stay
meaningful on the {0, 1} images of Bernoulli models as well as on 8-bit
images. Evaluation sees the 8-bit images only.

A classifier defines no density and draws nothing: `LIKELIHOOD`,
`log_likelihood` and `sample` are None, and evaluation reports its
per-example cross-entropy 'nll' (nats) and 'accuracy'.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.nn import classifier as classifier_lib

LIKELIHOOD = None  # discriminative: evaluated by cross-entropy and accuracy
log_likelihood = None
sample = None


class Net(classifier_lib.Classifier):
  """`jaxgen.nn.classifier.Classifier` plus its training-time binarization.

  Attributes (besides the `Classifier`'s):
    binarize_prob: probability that a training example is replaced by one
      dynamic binarization of it; 0 trains on the 8-bit images only.
  """
  binarize_prob: float = 0.5


def _tuples(value: Any) -> Any:
  return tuple(value) if isinstance(value, (list, tuple)) else value


def validate(config, dataset) -> None:
  """Raises `ConfigError` naming the field when the config does not fit.

  Checks the net's fields (`Classifier.check`), ``binarize_prob``, the data
  view (8-bit pixels in [0, 1], binarized by the loss itself), that the
  dataset has labels the net covers, and that a training batch fits in the
  training split.
  """
  m, d = config.model, config.data
  Net(**{k: _tuples(v) for k, v in m.to_dict().items()}).check()
  if not 0.0 <= m.binarize_prob <= 1.0:
    raise ConfigError(f'config.model.binarize_prob={m.binarize_prob} must '
                      'lie in [0, 1].')
  if d.binarize != 'none':
    raise ConfigError(
        f'config.data.binarize={d.binarize!r}: the classifier trains on the '
        "8-bit images ('none') and binarizes a share of them itself "
        '(config.model.binarize_prob).')
  if d.value_range != 'unit' or d.dequantize:
    raise ConfigError(
        'the classifier reads pixels scaled to [0, 1], as it scores uint8 '
        "images: set config.data.value_range='unit' and "
        'config.data.dequantize=False.')
  if dataset.num_classes is None or dataset.num_classes > m.num_classes:
    raise ConfigError(
        f'config.model.num_classes={m.num_classes} must cover the labels of '
        f'{d.name!r} ({dataset.num_classes} classes; None = no labels).')
  num_train = len(dataset.splits['train'])
  if config.train.batch_size > num_train:
    raise ConfigError(
        f'config.train.batch_size={config.train.batch_size} must be at most '
        f'{num_train}, the size of the training split.')


def init(key: jax.Array, batch, *, net: Net) -> Any:
  """The variables ``{'params': ...}`` (the classifier keeps no state)."""
  return net.init(key, batch['image'])


def binarize_share(key: jax.Array, x: jax.Array, prob: float) -> jax.Array:
  """Each example of x [B, H, W, C] in [0, 1] is, with probability `prob`,
  replaced by one Bernoulli(x) draw in {0, 1}; the others are kept."""
  bits_key, pick_key = jax.random.split(key)
  bits = jax.random.bernoulli(bits_key, x).astype(x.dtype)
  pick = jax.random.bernoulli(pick_key, prob, (x.shape[0],) +
                              (1,) * (x.ndim - 1))
  return jnp.where(pick, bits, x)


def loss_fn(params, batch, key, *, net: Net, train: bool):
  """Mean cross-entropy over unmasked rows, per-example 'nll' and 'accuracy'.

  Args:
    params: the variables ``{'params': ...}``.
    batch: 'image' float32 [B, H, W, C] in [0, 1], 'label' int [B], 'mask'
      bool [B].
    key: split into the binarization key and the dropout key.
    net: the `Net`.
    train: binarizes a ``net.binarize_prob`` share of the rows and applies
      dropout; False (evaluation) sees the images as they are.

  Returns:
    (scalar, {'nll': [B] nats, 'accuracy': [B] 1.0 where the argmax class
    is the label}).
  """
  bin_key, dropout_key = jax.random.split(key)
  x = batch['image']
  if train and net.binarize_prob > 0:
    x = binarize_share(bin_key, x, net.binarize_prob)
  logits, _ = net.apply(params, x, train=train, rngs={'dropout': dropout_key})
  nll = classifier_lib.cross_entropy(logits, batch['label'])
  accuracy = (jnp.argmax(logits, -1) == batch['label']).astype(jnp.float32)
  return steps.masked_mean(nll, batch.get('mask')), {'nll': nll,
                                                     'accuracy': accuracy}
