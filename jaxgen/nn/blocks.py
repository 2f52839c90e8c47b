"""Dense and convolutional encoder/decoder stacks.

The convolutional pair follows the usual lecture autoencoder: an encoder of
strided convolutions down to a small feature map, and a mirror-image decoder
of transposed convolutions back up to the image size. Strides are per layer
so the same module serves 8x8 digits and 28x28 MNIST.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.errors import ConfigError
from jaxgen.nn import conv_transpose
from jaxgen.nn import initializers as inits

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    'relu': nn.relu,
    'elu': nn.elu,
    'gelu': nn.gelu,
    'tanh': jnp.tanh,
    'leaky_relu': nn.leaky_relu,
    'swish': nn.swish,
}


def activation(name: str, field: str = 'config.model.activation'):
  """Looks up an activation by name; unknown names are a `ConfigError`."""
  if name not in ACTIVATIONS:
    raise ConfigError(f'{field}={name!r} is not one of {sorted(ACTIVATIONS)}.')
  return ACTIVATIONS[name]


class MLP(nn.Module):
  """Dense layers with an activation between them (none after the last)."""
  features: Sequence[int]
  activation: str = 'relu'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    act = activation(self.activation)
    for i, width in enumerate(self.features):
      x = inits.Dense(width, name=f'dense_{i}')(x)
      if i + 1 < len(self.features):
        x = act(x)
    return x


def decoder_start_shape(image_shape: Sequence[int],
                        strides: Sequence[int]) -> tuple[int, int]:
  """Spatial size the decoder starts from so its strides reach the image.

  Returns ceil(H / prod(strides)), ceil(W / prod(strides)); the decoder output
  is cropped to the image size when the division is not exact.
  """
  total = math.prod(strides)
  height, width = image_shape[0], image_shape[1]
  return -(-height // total), -(-width // total)


class ConvEncoder(nn.Module):
  """Strided 'SAME' convolutions then a flatten: x [B,H,W,C] -> [B, F]."""
  channels: Sequence[int] = (32, 32, 64, 64)
  strides: Sequence[int] = (2, 2, 1, 1)
  kernel_size: int = 4
  activation: str = 'relu'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    act = activation(self.activation)
    k = (self.kernel_size, self.kernel_size)
    for i, (c, s) in enumerate(zip(self.channels, self.strides)):
      x = act(inits.Conv(c, k, strides=(s, s), padding='SAME',
                         name=f'conv_{i}')(x))
    return x.reshape(x.shape[0], -1)


class ConvDecoder(nn.Module):
  """Dense to a small feature map, then transposed convolutions up.

  [B, D] -> [B, H, W, out_channels]. The layers mirror `ConvEncoder`:
  channels reversed, strides reversed, the last transposed convolution emits
  `out_channels` with no activation.
  """
  image_shape: Sequence[int]
  out_channels: int
  channels: Sequence[int] = (32, 32, 64, 64)
  strides: Sequence[int] = (2, 2, 1, 1)
  kernel_size: int = 4
  activation: str = 'relu'

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    act = activation(self.activation)
    h0, w0 = decoder_start_shape(self.image_shape, self.strides)
    top = self.channels[-1]
    x = act(inits.Dense(h0 * w0 * top, name='project')(z))
    x = x.reshape(z.shape[0], h0, w0, top)
    k = (self.kernel_size, self.kernel_size)
    outs = list(reversed(self.channels[:-1])) + [self.out_channels]
    for i, (c, s) in enumerate(zip(outs, reversed(self.strides))):
      x = conv_transpose.ConvTranspose(c, k, strides=(s, s), padding='SAME',
                                       name=f'deconv_{i}')(x)
      if i + 1 < len(outs):
        x = act(x)
    height, width = self.image_shape[0], self.image_shape[1]
    return x[:, :height, :width, :]
