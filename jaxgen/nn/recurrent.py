"""Two-dimensional LSTM layers of PixelRNN: Row LSTM and Diagonal BiLSTM.

van den Oord, Kalchbrenner, Kavukcuoglu, "Pixel Recurrent Neural Networks",
ICML 2016, sections 3.1-3.2 and Figs. 2-4.

Both layers compute, at every position, the LSTM update

    [o, f, i, g] = [sigma, sigma, sigma, tanh](K_ss * h_prev + K_is * x)
    c = f . c_prev + i . g,        h = o . tanh(c)

and differ in what "previous" means:

- `RowLSTM` processes the image row by row (a `lax.scan` over rows): the
  state of row r comes from row r - 1 through a 1 x k convolution (k = 3),
  c_prev is the cell of the same column in row r - 1, and the input-to-state
  part is a 1 x k mask-B convolution along the row computed for all rows at
  once. Its receptive field is a triangle above the pixel.
- `DiagonalLSTM` skews the map (row r moved r columns right) so that the
  diagonals become columns, and processes it column by column (a `lax.scan`
  over the H + W - 1 skewed columns): the state at (r, j) comes from (r - 1,
  j) and (r, j - 1) through a 2 x 1 convolution in the skewed space, c_prev
  is the cell at (r, j - 1), and the input-to-state part is a 1 x 1 mask-B
  convolution. `DiagonalBiLSTM` runs one left to right and one on the
  mirrored map (right to left), shifts the second one's output down by one
  row (otherwise (r, j) would see (r, j + 1), a later pixel) and adds them:
  the receptive field covers every earlier pixel but one sub-pixel: the last
  channel of the last pixel of the row above, (r - 1, W - 1, C - 1), which
  only features at later positions can see (the first layer is mask A), is
  out of reach of outputs (r, j) with j < W - 4 (beyond the 7 x 7 input
  window), at any depth.

Colour channels: the 4h gate features come out of the mask-B input-to-state
convolution in C contiguous colour groups (`jaxgen.nn.masked`); they are
read as [C, 4, h / C] so that hidden unit n of group g only uses gates of
group g, and the hidden state keeps the contiguous grouping. The state-to-
state convolutions read earlier positions only, which every colour group may
see, so they are not masked.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.nn import initializers as inits
from jaxgen.nn import masked

Array = jax.Array


def skew(x: Array) -> Array:
  """[B, H, W, F] -> [B, H, W + H - 1, F]: row r moved r columns right.

  out[b, r, r + j] = x[b, r, j]; other entries are zero. Implemented with
  pads and reshapes (no gather): the flat index r (W + H) + j of a row padded
  to W + H is r (W + H - 1) + (r + j) in rows of W + H - 1.
  """
  b, h, w, f = x.shape
  x = jnp.pad(x, ((0, 0), (0, 0), (0, h), (0, 0)))
  x = x.reshape(b, h * (w + h), f)[:, :h * (w + h - 1)]
  return x.reshape(b, h, w + h - 1, f)


def unskew(x: Array, width: int) -> Array:
  """Inverse of `skew`: [B, H, width + H - 1, F] -> [B, H, width, F]."""
  b, h, skewed, f = x.shape
  x = jnp.pad(x.reshape(b, h * skewed, f), ((0, 0), (0, h), (0, 0)))
  return x.reshape(b, h, skewed + 1, f)[:, :, :width]


def _gates(pre: Array, color_channels: int) -> tuple[Array, ...]:
  """Pre-activations [..., 4h] in colour-group layout -> (o, f, i, g) [..., h].

  The features are read as [C, 4, h / C]: gate t of hidden unit (g, n) is
  feature (g, t, n), in colour group g of the mask-B convolution.
  """
  *batch, four_h = pre.shape
  per_group = four_h // (4 * color_channels)
  pre = pre.reshape(*batch, color_channels, 4, per_group)
  pre = jnp.moveaxis(pre, -2, 0).reshape(4, *batch, four_h // 4)
  return (jax.nn.sigmoid(pre[0]), jax.nn.sigmoid(pre[1]),
          jax.nn.sigmoid(pre[2]), jnp.tanh(pre[3]))


def _lstm_update(pre: Array, c_prev: Array, color_channels: int):
  o, f, i, g = _gates(pre, color_channels)
  c = f * c_prev + i * g
  return o * jnp.tanh(c), c


def _check_hidden(hidden: int, color_channels: int) -> None:
  if hidden < 1 or hidden % color_channels:
    raise ValueError(f'hidden={hidden} must be a positive multiple of '
                     f'color_channels={color_channels}.')


class RowLSTM(nn.Module):
  """Row LSTM (PixelRNN section 3.1): [B, H, W, F] -> [B, H, W, hidden].

  Attributes:
    hidden: h, the hidden and cell features (a multiple of color_channels).
    kernel_size: k of the 1 x k input-to-state (mask B) and state-to-state
      convolutions (odd; 3 in the paper).
    color_channels: colour groups of the features (1 or 3).
  """
  hidden: int
  kernel_size: int = 3
  color_channels: int = 1

  @nn.compact
  def __call__(self, x: Array) -> Array:
    _check_hidden(self.hidden, self.color_channels)
    k, h = self.kernel_size, self.hidden
    b, _, w, _ = x.shape
    # Input-to-state for every row at once: [B, H, W, 4h].
    x_is = masked.MaskedConv2D(4 * h, (1, k), 'B', self.color_channels,
                               name='input_to_state')(x)
    k_ss = self.param('state_to_state', inits.lecun_normal(),
                      (k, h, 4 * h))
    half = k // 2

    def step(carry, row):  # row: [B, W, 4h], this row's input-to-state
      h_prev, c_prev = carry  # [B, W, h]: the row above
      padded = jnp.pad(h_prev, ((0, 0), (half, half), (0, 0)))
      pre = row
      for d in range(k):  # 1 x k convolution over the row above
        pre = pre + padded[:, d:d + w] @ k_ss[d]
      h_new, c_new = _lstm_update(pre, c_prev, self.color_channels)
      return (h_new, c_new), h_new

    zeros = jnp.zeros((b, w, h), x_is.dtype)
    _, hs = jax.lax.scan(step, (zeros, zeros), jnp.moveaxis(x_is, 1, 0))
    return jnp.moveaxis(hs, 0, 1)


class DiagonalLSTM(nn.Module):
  """One direction of the Diagonal BiLSTM (left to right): [B,H,W,F] ->
  [B, H, W, hidden].

  The state at (r, j) depends on the states at (r - 1, j) (above) and
  (r, j - 1) (left), so on the whole upper-left quadrant, through a 2 x 1
  state-to-state convolution over the previous column of the skewed map:
  kernel [2, h, 4h], tap 0 for the row above, tap 1 for the same row.

  Attributes:
    hidden: h (a multiple of color_channels).
    color_channels: colour groups of the features (1 or 3).
  """
  hidden: int
  color_channels: int = 1

  @nn.compact
  def __call__(self, x: Array) -> Array:
    _check_hidden(self.hidden, self.color_channels)
    h = self.hidden
    b, rows, w, _ = x.shape
    x_is = masked.MaskedConv2D(4 * h, 1, 'B', self.color_channels,
                               name='input_to_state')(x)
    k_ss = self.param('state_to_state', inits.lecun_normal(),
                      (2, h, 4 * h))

    def step(carry, column):  # column: [B, H, 4h] of the skewed map
      h_prev, c_prev = carry  # [B, H, h]: the previous skewed column
      above = jnp.pad(h_prev, ((0, 0), (1, 0), (0, 0)))[:, :-1]
      pre = column + above @ k_ss[0] + h_prev @ k_ss[1]
      h_new, c_new = _lstm_update(pre, c_prev, self.color_channels)
      return (h_new, c_new), h_new

    zeros = jnp.zeros((b, rows, h), x_is.dtype)
    columns = jnp.moveaxis(skew(x_is), 2, 0)  # [W + H - 1, B, H, 4h]
    _, hs = jax.lax.scan(step, (zeros, zeros), columns)
    return unskew(jnp.moveaxis(hs, 0, 2), w)


class DiagonalBiLSTM(nn.Module):
  """Diagonal BiLSTM (PixelRNN section 3.2): [B,H,W,F] -> [B,H,W,hidden].

  out = left_to_right(x) + down_shift(mirror(right_to_left(mirror(x)))),
  where mirror flips the columns. The right-to-left state at (r, j) has seen
  (r, j + 1) and beyond; shifted down one row, the output at (r, j) only
  uses that state at (r - 1, j), which has seen rows <= r - 1 only.

  Attributes:
    hidden: h (a multiple of color_channels).
    color_channels: colour groups of the features (1 or 3).
  """
  hidden: int
  color_channels: int = 1

  @nn.compact
  def __call__(self, x: Array) -> Array:
    left = DiagonalLSTM(self.hidden, self.color_channels,
                        name='left_to_right')(x)
    right = DiagonalLSTM(self.hidden, self.color_channels,
                         name='right_to_left')(x[:, :, ::-1])[:, :, ::-1]
    right = jnp.pad(right, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]
    return left + right

