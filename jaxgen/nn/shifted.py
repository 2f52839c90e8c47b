"""Shifted convolutions and the concat-ELU gated resnet block of PixelCNN++.

Salimans, Karpathy, Chen, Kingma, "PixelCNN++: Improving the PixelCNN with
Discretized Logistic Mixture Likelihood and Other Modifications", ICLR 2017
(section 2.5 and Fig. 2), following the layout of their reference code
(openai/pixel-cnn, ``pixel_cnn_pp/nn.py``).

Instead of masking kernels, PixelCNN++ pads and crops so that each output
only sees inputs above (and to the left of) it:

- a *down-shifted* convolution with kernel (kh, kw) pads kh - 1 rows on top
  and (kw - 1) / 2 columns on each side: output (i, j) reads input rows
  i - kh + 1 .. i and columns j - (kw-1)/2 .. j + (kw-1)/2. If every input
  row r depends on image rows < r (the "up" stream u), so does every output
  row.
- a *down-right-shifted* convolution pads kh - 1 rows on top and kw - 1
  columns on the left: output (i, j) reads rows i - kh + 1 .. i and columns
  j - kw + 1 .. j. This keeps the "up-left" stream ul causal: ul(i, j)
  depends only on image pixels (i', j') with i' < i, or i' = i and j' < j.
- `down_shift` / `right_shift` move a map one row down / one column right
  (zero-filled), turning "sees rows <= i" into "sees rows < i".

With stride 2 the same padding makes strided down-sampling causal: output
(i, j) reads input rows 2i - kh + 1 .. 2i, which are causal for every one
of the positions (2i + a, 2j + b), a, b in {0, 1}, that it is later
up-sampled to. The transposed versions up-sample by 2 with a VALID
transposed convolution (input (i, j) feeds outputs (2i + a, 2j + b'),
a < kh) and crop to exactly (stride * H, stride * W): output row r reads
input row floor(r / 2) only, which is causal for r.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.nn import conv_transpose
from jaxgen.nn import initializers as inits

Array = jax.Array


def down_shift(x: Array, step: int = 1) -> Array:
  """x [B, H, W, C] moved `step` rows down; the top rows are zero."""
  pad = jnp.zeros_like(x[:, :step])
  return jnp.concatenate([pad, x[:, :x.shape[1] - step]], axis=1)


def right_shift(x: Array, step: int = 1) -> Array:
  """x [B, H, W, C] moved `step` columns right; the left columns are zero."""
  pad = jnp.zeros_like(x[:, :, :step])
  return jnp.concatenate([pad, x[:, :, :x.shape[2] - step]], axis=2)


def concat_elu(x: Array) -> Array:
  r"""ELU of [x, -x] along the feature axis: [..., F] -> [..., 2F].

  .. math:: \mathrm{concat\_elu}(x) = \mathrm{elu}([x, -x])

  keeps both signs of every feature (Shang et al. 2016's concatenated
  ReLU, with an ELU), as in PixelCNN++.
  """
  return jax.nn.elu(jnp.concatenate([x, -x], axis=-1))


class DownShiftedConv2D(nn.Module):
  """Convolution seeing only rows at or above the output row.

  Attributes:
    features: output channels.
    kernel_size: (kh, kw), kw odd; (2, 3) in PixelCNN++.
    strides: (1, 1), or (2, 2) for causal down-sampling.
    kernel_init: initializer of the kernel.

  Input [B, H, W, Cin] -> output [B, ceil(H / s), ceil(W / s), features];
  output (i, j) reads input rows s*i - kh + 1 .. s*i and columns
  s*j - (kw-1)/2 .. s*j + (kw-1)/2.
  """
  features: int
  kernel_size: Sequence[int] = (2, 3)
  strides: Sequence[int] = (1, 1)
  kernel_init: Any = inits.lecun_normal()

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kh, kw = self.kernel_size
    half = (kw - 1) // 2
    x = jnp.pad(x, ((0, 0), (kh - 1, 0), (half, half), (0, 0)))
    return inits.Conv(self.features, (kh, kw), strides=tuple(self.strides),
                      padding='VALID', kernel_init=self.kernel_init,
                      name='conv')(x)


class DownRightShiftedConv2D(nn.Module):
  """Convolution seeing only positions above and to the left (inclusive).

  Attributes:
    features: output channels.
    kernel_size: (kh, kw); (2, 2) in PixelCNN++.
    strides: (1, 1), or (2, 2) for causal down-sampling.
    kernel_init: initializer of the kernel.

  Output (i, j) reads input rows s*i - kh + 1 .. s*i and columns
  s*j - kw + 1 .. s*j.
  """
  features: int
  kernel_size: Sequence[int] = (2, 2)
  strides: Sequence[int] = (1, 1)
  kernel_init: Any = inits.lecun_normal()

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kh, kw = self.kernel_size
    x = jnp.pad(x, ((0, 0), (kh - 1, 0), (kw - 1, 0), (0, 0)))
    return inits.Conv(self.features, (kh, kw), strides=tuple(self.strides),
                   padding='VALID', kernel_init=self.kernel_init,
                   name='conv')(x)


class DownShiftedConvTranspose2D(nn.Module):
  """Causal up-sampling for the down-shifted stream.

  [B, H, W, Cin] -> [B, sH, sW, features]; output row r reads input row
  floor(r / s) only (for kh <= s), columns centred as in the reference
  code's ``down_shifted_deconv2d``.
  """
  features: int
  kernel_size: Sequence[int] = (2, 3)
  strides: Sequence[int] = (2, 2)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kh, kw = self.kernel_size
    sh, sw = self.strides
    _, h, w, _ = x.shape
    y = conv_transpose.ConvTranspose(self.features, (kh, kw),
                                     strides=(sh, sw), padding='VALID',
                                     name='conv')(x)
    half = (kw - 1) // 2
    return y[:, :sh * h, half:half + sw * w]


class DownRightShiftedConvTranspose2D(nn.Module):
  """Causal up-sampling for the down-right-shifted stream.

  [B, H, W, Cin] -> [B, sH, sW, features]; output (r, c) reads input
  (floor(r / s), floor(c / s)) only (for kh, kw <= s).
  """
  features: int
  kernel_size: Sequence[int] = (2, 2)
  strides: Sequence[int] = (2, 2)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kh, kw = self.kernel_size
    sh, sw = self.strides
    _, h, w, _ = x.shape
    y = conv_transpose.ConvTranspose(self.features, (kh, kw),
                                     strides=(sh, sw), padding='VALID',
                                     name='conv')(x)
    return y[:, :sh * h, :sw * w]


class GatedResnet(nn.Module):
  r"""PixelCNN++'s gated residual block with concat-ELU and dropout.

  For input x [B, H, W, F], optional shortcut a [B, H, W, Fa] (the matching
  stream or skip connection) and optional conditioning vector h [B, D]:

  .. math::
    c_1 &= \mathrm{conv}(\mathrm{concat\_elu}(x))
           + \mathrm{nin}(\mathrm{concat\_elu}(a)) \\
    c_2 &= \mathrm{conv}'(\mathrm{dropout}(\mathrm{concat\_elu}(c_1)))
           + W_h h \\
    \mathrm{out} &= x + c_2^{(1)} \odot \sigma(c_2^{(2)})

  where conv / conv' are down-shifted (kernel (2, 3)) or down-right-shifted
  (kernel (2, 2)) convolutions, nin a 1x1 convolution, and c_2 is split in
  two halves along the features. Both shortcut and conditioning are
  position-wise, so the block preserves the causality of its inputs.

  Attributes:
    shift: 'down' or 'down_right'.
    dropout_rate: dropout on the inner activation (train only; the rng
      stream 'dropout' must be given to `apply` when training).
  """
  shift: str = 'down'
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x: Array, a: Array | None = None,
               h: Array | None = None, *, train: bool = False) -> Array:
    if self.shift == 'down':
      conv, kernel = DownShiftedConv2D, (2, 3)
    elif self.shift == 'down_right':
      conv, kernel = DownRightShiftedConv2D, (2, 2)
    else:
      raise ValueError(f"shift={self.shift!r} is not 'down' or 'down_right'.")
    features = x.shape[-1]
    c1 = conv(features, kernel, name='conv_in')(concat_elu(x))
    if a is not None:
      c1 = c1 + inits.Dense(features, name='nin_skip')(concat_elu(a))
    c1 = concat_elu(c1)
    c1 = nn.Dropout(self.dropout_rate, deterministic=not train)(c1)
    # A small initial residual branch, as the reference's init_scale=0.1.
    c2 = conv(2 * features, kernel,
              kernel_init=inits.variance_scaling(
                  0.01, 'fan_in', 'truncated_normal'),
              name='conv_out')(c1)
    if h is not None:
      cond = inits.Dense(2 * features, use_bias=False, name='cond')(h)
      c2 = c2 + cond[:, None, None, :]
    value, gate = jnp.split(c2, 2, axis=-1)
    return x + value * jax.nn.sigmoid(gate)
