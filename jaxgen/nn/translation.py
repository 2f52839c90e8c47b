r"""Networks of the image-to-image families: a U-Net generator, PatchGAN.

Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional
Adversarial Networks" (pix2pix), CVPR 2017, Sec. 3.2 and Appendix 6.1.2,
sized down for 8x8 and 28x28 digits:

- `UNetGenerator`: an encoder of 4x4 stride-2 convolutions (LeakyReLU 0.2,
  normalization on all but the first), optional residual 3x3 blocks at the
  lowest resolution (they widen the receptive field of a shallow net), and
  a decoder of 4x4 stride-2 transposed convolutions (ReLU) whose every
  output but the last is concatenated with the encoder's feature map of the
  same size (the skips); the last maps to the image channels with Tanh.
  Dropout after the innermost decoder layers is the generator's noise
  source: it runs at training *and* test time (Sec. 3.2), drawing from the
  'dropout' PRNG stream of ``apply(rngs=...)``.
- `PatchDiscriminator`: convolutions of one kernel size with the given
  strides (LeakyReLU 0.2, no normalization, so each output depends on its
  receptive field alone), then a stride-1 convolution to one logit per
  patch, ``[B, h, w]``. Padding is ``(k - 1) // 2`` on each side.
  `patch_receptive_field` gives the input window of each output;
  pix2pix's 70x70 PatchGAN is kernel 4, strides (2, 2, 2, 1).

Normalization (`NORMS`): 'instance' (the statistics of each example and
channel over space: batch norm at batch size 1, as the paper runs it, and
what CycleGAN uses; `jaxgen.nn.norm.GroupNorm` with one channel per group,
the parameters of ``nn.GroupNorm``) or 'none'. Weights are N(0, 0.02^2)
(Sec. 6.2), drawn flat by `jaxgen.nn.initializers`.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.errors import ConfigError
from jaxgen.nn import conv_transpose
from jaxgen.nn import initializers as inits
from jaxgen.nn import norm as norm_lib

NORMS = ('instance', 'none')


def check_net_fields(m) -> None:
  """Checks the generator and PatchGAN fields of a translation family's
  ``config.model`` (``g_norm``, ``g_channels``, ``d_channels``,
  ``d_strides``, ``image_shape``); raises `ConfigError` naming the field."""
  if m.g_norm not in NORMS:
    raise ConfigError(f'config.model.g_norm={m.g_norm!r} is not one of '
                      f'{NORMS}.')
  if not m.g_channels:
    raise ConfigError('config.model.g_channels must not be empty.')
  f = 2 ** len(m.g_channels)
  if m.image_shape[0] % f or m.image_shape[1] % f:
    raise ConfigError(
        f'config.model.image_shape={tuple(m.image_shape)}: H and W must be '
        f'divisible by 2^{len(m.g_channels)} = {f}, one halving per entry '
        'of config.model.g_channels.')
  if len(m.d_channels) != len(m.d_strides) or not m.d_channels:
    raise ConfigError(
        f'config.model.d_channels={tuple(m.d_channels)} and '
        f'config.model.d_strides={tuple(m.d_strides)} must be non-empty and '
        'of the same length (one stride per convolution).')
  if any(not isinstance(s, int) or s < 1 for s in m.d_strides):
    raise ConfigError(f'config.model.d_strides={tuple(m.d_strides)} must be '
                      'integers >= 1.')
INIT_STDDEV = 0.02


def _norm(kind: str, name: str):
  if kind == 'instance':
    return norm_lib.GroupNorm(num_groups=None, group_size=1, epsilon=1e-5,
                              name=name)
  if kind == 'none':
    return lambda x: x
  raise ConfigError(f'normalization {kind!r} is not one of {NORMS}.')


def patch_padding(kernel_size: int) -> int:
  """The padding on each side of every PatchGAN convolution."""
  return (kernel_size - 1) // 2


def patch_receptive_field(kernel_size: int,
                          strides: Sequence[int]) -> tuple[int, int, int]:
  """(size, jump, offset): the input window of each PatchGAN output.

  Output (i, j) of a `PatchDiscriminator` with this kernel size and these
  strides (its final stride-1 convolution included) depends on input rows
  ``i * jump + offset .. i * jump + offset + size - 1`` (and the same
  columns), clipped to the image; `offset` is negative where the window
  starts in the padding.

  Computed layer by layer from the input: with r, j, s the window size, the
  spacing of adjacent outputs and the first output's window start before a
  layer of kernel k, stride t and padding p, after it r + (k - 1) j,
  j t and s - p j (Araujo et al., "Computing Receptive Fields of
  Convolutional Neural Networks", Distill 2019).
  """
  size, jump, offset = 1, 1, 0
  pad = patch_padding(kernel_size)
  for stride in tuple(strides) + (1,):
    size += (kernel_size - 1) * jump
    offset -= pad * jump
    jump *= stride
  return size, jump, offset


class UNetGenerator(nn.Module):
  """x [B, H, W, C_in] -> images [B, H, W, out_channels] in (-1, 1).

  Attributes:
    out_channels: the image channels.
    channels: features of the stride-2 encoder convolutions (the decoder
      mirrors them); H and W must be divisible by 2^len(channels).
    res_blocks: residual blocks (two 3x3 convolutions) at the lowest
      resolution.
    norm: 'instance' or 'none'.
    dropout: the rate of the decoder's dropout (0: a deterministic net).
    dropout_layers: how many decoder layers, innermost first, end in
      dropout (the paper: the first 3 of 8).
    kernel_size: of the stride-2 (transposed) convolutions.
  """
  out_channels: int
  channels: Sequence[int] = (32, 64)
  res_blocks: int = 1
  norm: str = 'instance'
  dropout: float = 0.5
  dropout_layers: int = 1
  kernel_size: int = 4

  @nn.compact
  def __call__(self, x: jax.Array, *, deterministic: bool = True
               ) -> jax.Array:
    init = inits.normal(INIT_STDDEV)
    k = (self.kernel_size, self.kernel_size)
    # No bias where a normalization follows: it would be removed again, its
    # gradient is zero up to rounding, which Adam would turn into steps.
    bias = self.norm == 'none'
    h, skips = x, []
    for i, c in enumerate(self.channels):
      h = inits.Conv(c, k, strides=(2, 2), padding='SAME', kernel_init=init,
                     use_bias=bias or i == 0, name=f'enc_{i}')(h)
      if i > 0:
        h = _norm(self.norm, f'enc_norm_{i}')(h)
      h = nn.leaky_relu(h, 0.2)
      skips.append(h)
    c = self.channels[-1]
    for r in range(self.res_blocks):
      y = inits.Conv(c, (3, 3), kernel_init=init, use_bias=bias,
                     name=f'res_{r}_a')(h)
      y = nn.relu(_norm(self.norm, f'res_norm_{r}_a')(y))
      y = inits.Conv(c, (3, 3), kernel_init=init, use_bias=bias,
                     name=f'res_{r}_b')(y)
      h = h + _norm(self.norm, f'res_norm_{r}_b')(y)
    num = len(self.channels)
    for d, i in enumerate(reversed(range(num))):
      last = i == 0
      features = self.out_channels if last else self.channels[i - 1]
      if d > 0:
        h = jnp.concatenate([h, skips[i]], axis=-1)
      h = conv_transpose.ConvTranspose(features, k, strides=(2, 2),
                                       padding='SAME', kernel_init=init,
                                       use_bias=bias or last,
                                       name=f'dec_{i}')(h)
      if last:
        return jnp.tanh(h)
      h = _norm(self.norm, f'dec_norm_{i}')(h)
      if self.dropout and d < self.dropout_layers:
        h = nn.Dropout(self.dropout, deterministic=deterministic)(h)
      h = nn.relu(h)
    raise AssertionError('unreachable')


class PatchDiscriminator(nn.Module):
  """(condition [B, H, W, C1], image [B, H, W, C2]) -> logits [B, h, w].

  Attributes:
    channels: features of the LeakyReLU convolutions.
    strides: their strides (same length as `channels`).
    kernel_size: of every convolution.
    leaky_slope: the LeakyReLU slope.
  """
  channels: Sequence[int] = (32, 64)
  strides: Sequence[int] = (2, 1)
  kernel_size: int = 4
  leaky_slope: float = 0.2

  @nn.compact
  def __call__(self, condition: jax.Array, image: jax.Array) -> jax.Array:
    init = inits.normal(INIT_STDDEV)
    k = (self.kernel_size, self.kernel_size)
    p = patch_padding(self.kernel_size)
    pad = ((p, p), (p, p))
    h = image if condition is None else jnp.concatenate(
        [condition, image.astype(condition.dtype)], axis=-1)
    for i, (c, s) in enumerate(zip(self.channels, self.strides)):
      h = inits.Conv(c, k, strides=(s, s), padding=pad, kernel_init=init,
                     name=f'conv_{i}')(h)
      h = nn.leaky_relu(h, self.leaky_slope)
    h = inits.Conv(1, k, padding=pad, kernel_init=init,
                   name=f'conv_{len(self.channels)}')(h)
    return h[..., 0]
