"""A small convolutional digit classifier: the features of sample quality.

The Fréchet Inception Distance (Heusel et al., "GANs Trained by a Two
Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017)
and the Inception Score (Salimans et al., "Improved Techniques for Training
GANs", NeurIPS 2016) use an ImageNet Inception network. No such weights can be
downloaded here, and 8x8 / 28x28 greyscale digits are far from ImageNet
anyway, so `jaxgen.quality` uses this network instead, trained in the project
on the training split of each image dataset (``experiments/train_classifier``).
Scores computed with it are **not comparable to Inception-based FID or IS**.

Architecture (no batch norm, so the variables are just ``{'params': ...}``):

    x [B, H, W, C] in [0, 1]
      -> len(channels) x (k x k 'SAME' convolution with stride s, ReLU)
      -> flatten (or mean over positions) -> Dense(feature_dim) -> ReLU
                                                       = features  [B, F]
      -> dropout (training only) -> Dense(num_classes) = logits    [B, K]

The penultimate activations (after the ReLU, before dropout) are the
features of the Fréchet distance, the softmax of the logits the predictive
distribution p(y | x) of the Inception-Score-style score.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.errors import ConfigError
from jaxgen.nn import initializers as inits

POOLS = ('flatten', 'mean')


class Classifier(nn.Module):
  """Conv stack, one hidden dense layer (the features), linear logits.

  Attributes:
    image_shape: (H, W, C) of the images it classifies.
    channels: output channels of each convolution.
    strides: stride of each convolution (same length as `channels`).
    kernel_size: k of the k x k convolutions.
    feature_dim: F, the width of the penultimate layer.
    num_classes: K, the number of labels.
    dropout_rate: dropout on the features before the logits, training only.
    pool: 'flatten' the last feature map, or 'mean' over its positions
      (global average pooling: far fewer weights in the feature layer, so
      features of training and held-out images differ less).
  """
  image_shape: Sequence[int] = (28, 28, 1)
  channels: Sequence[int] = (32, 64, 64)
  strides: Sequence[int] = (1, 2, 2)
  kernel_size: int = 3
  feature_dim: int = 128
  num_classes: int = 10
  dropout_rate: float = 0.0
  pool: str = 'flatten'

  def check(self) -> None:
    """Raises `ConfigError` naming the ``config.model`` field that is off."""
    if len(self.channels) != len(self.strides) or not self.channels:
      raise ConfigError(
          f'config.model.channels={tuple(self.channels)} and '
          f'config.model.strides={tuple(self.strides)} must be non-empty and '
          'of equal length.')
    if self.feature_dim < 1 or self.num_classes < 2:
      raise ConfigError(
          f'config.model.feature_dim={self.feature_dim} must be >= 1 and '
          f'config.model.num_classes={self.num_classes} >= 2.')
    if self.pool not in POOLS:
      raise ConfigError(f'config.model.pool={self.pool!r} is not one of '
                        f'{POOLS}.')
    if not 0.0 <= self.dropout_rate < 1.0:
      raise ConfigError(
          f'config.model.dropout_rate={self.dropout_rate} must lie in [0, 1).')

  @nn.compact
  def __call__(self, x: jax.Array, *,
               train: bool = False) -> tuple[jax.Array, jax.Array]:
    """Logits and penultimate features.

    Args:
      x: float32 [B, H, W, C], pixels scaled to [0, 1].
      train: applies dropout (needs a 'dropout' rng) when True.

    Returns:
      ``(logits [B, K], features [B, F])``.
    """
    k = (self.kernel_size, self.kernel_size)
    h = x
    for i, (c, s) in enumerate(zip(self.channels, self.strides)):
      h = nn.relu(inits.Conv(c, k, strides=(s, s), padding='SAME',
                             name=f'conv_{i}')(h))
    h = h.mean(axis=(1, 2)) if self.pool == 'mean' else h.reshape(
        h.shape[0], -1)
    features = nn.relu(inits.Dense(self.feature_dim, name='features')(h))
    h = nn.Dropout(self.dropout_rate, deterministic=not train)(features)
    logits = inits.Dense(self.num_classes, name='logits')(h)
    return logits, features


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example -log softmax(logits)[label] in nats: [B, K], [B] -> [B]."""
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  return -jnp.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0]
