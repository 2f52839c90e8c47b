"""Causally masked convolutions for autoregressive image models.

van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks",
ICML 2016, §3.4 and Fig. 2 (masks 'A' and 'B', colour channel groups);
van den Oord et al., "Conditional Image Generation with PixelCNN Decoders",
NeurIPS 2016 (the gated stacks built on top of these layers).

Raster order: pixel (i, j) comes after every pixel of the rows above and
after the pixels left of it in its own row; inside a pixel the colour
channels come in the order R, G, B. A k_h x k_w kernel centred on (i, j)
is multiplied by a binary mask M[dy, dx, c_in, c_out]:

    M = 1  for rows above the centre (dy < k_h // 2), any column;
    M = 1  on the centre row left of the centre (dy = k_h // 2, dx < k_w // 2);
    M = 0  on the centre row right of the centre and on every row below;
    centre tap (dy, dx) = (k_h // 2, k_w // 2):
      colour_channels = 1:  1 for mask 'B', 0 for mask 'A';
      colour_channels = C:  features are split into C contiguous groups
        (R | G | B for C = 3); output group g sees input group g' iff
        g' < g (mask 'A') or g' <= g (mask 'B').

Mask 'A' is for the first layer (a pixel must not see itself), mask 'B' for
every later layer (a feature at (i, j) of group g may use earlier features of
the same position and group, which themselves never saw x[i, j, g]).

Grouping is contiguous: with F features and C groups, channel f belongs to
group ``f // (F // C)``, so an output layer with C * K features reshaped to
[..., C, K] yields the per-colour logits in R, G, B order.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.nn import conv as conv_lib
from jaxgen.nn import initializers as inits

MASK_TYPES = ('A', 'B')

Initializer = Callable[..., jax.Array]


def kernel_shape(kernel_size: int | Sequence[int]) -> tuple[int, int]:
  """(k_h, k_w) from an int or a pair; both must be odd and positive."""
  if isinstance(kernel_size, int):
    kh = kw = kernel_size
  else:
    kh, kw = (int(k) for k in kernel_size)
  if kh < 1 or kw < 1 or kh % 2 == 0 or kw % 2 == 0:
    raise ValueError(
        f'masked convolutions need odd kernel sizes (a centre tap), got '
        f'{kernel_size!r}.')
  return kh, kw


def channel_groups(features: int, color_channels: int) -> np.ndarray:
  """Colour group of each of `features` channels: int [features].

  Contiguous blocks of ``features // color_channels`` channels, so channel f
  is in group ``f // (features // color_channels)``. `features` must be a
  multiple of `color_channels`.
  """
  if color_channels < 1:
    raise ValueError(f'color_channels must be >= 1, got {color_channels}.')
  if features % color_channels:
    raise ValueError(
        f'{features} features cannot be split into {color_channels} equal '
        'colour groups: use a multiple of color_channels.')
  return np.arange(features) // (features // color_channels)


def centre_mask(in_features: int, out_features: int, mask_type: str,
                color_channels: int = 1) -> np.ndarray:
  """The centre tap's mask [in_features, out_features] (float32 0/1).

  Entry (f_in, f_out) is 1 iff group(f_in) < group(f_out) for mask 'A', or
  group(f_in) <= group(f_out) for mask 'B'.
  """
  if mask_type not in MASK_TYPES:
    raise ValueError(f'mask_type must be one of {MASK_TYPES}, got '
                     f'{mask_type!r}.')
  g_in = channel_groups(in_features, color_channels)[:, None]
  g_out = channel_groups(out_features, color_channels)[None, :]
  visible = g_in < g_out if mask_type == 'A' else g_in <= g_out
  return visible.astype(np.float32)


def make_mask(kernel_size: int | Sequence[int], in_features: int,
              out_features: int, mask_type: str = 'B',
              color_channels: int = 1) -> np.ndarray:
  """The causal mask of a masked convolution: float32 [k_h, k_w, in, out].

  Args:
    kernel_size: k or (k_h, k_w), odd.
    in_features: input channels (a multiple of `color_channels`).
    out_features: output channels (a multiple of `color_channels`).
    mask_type: 'A' (the centre pixel is hidden from its own group) or 'B'.
    color_channels: number of colour groups (1 for grey/binary, 3 for RGB).

  Returns:
    The 0/1 mask described in the module docstring, in Flax's HWIO layout.
  """
  kh, kw = kernel_shape(kernel_size)
  cy, cx = kh // 2, kw // 2
  mask = np.zeros((kh, kw, in_features, out_features), np.float32)
  mask[:cy] = 1.0
  mask[cy, :cx] = 1.0
  mask[cy, cx] = centre_mask(in_features, out_features, mask_type,
                             color_channels)
  return mask


def visible_rows(kernel_size: int | Sequence[int]) -> int:
  """Rows of the kernel that the mask can leave non-zero: k_h // 2 + 1."""
  return kernel_shape(kernel_size)[0] // 2 + 1


# ------------------------------------------------ convolution over live taps
# Two ways to run a stride-1 convolution whose kernel is zero outside a known
# set of taps (the mask's live taps, or a stack's cut kernel):
#   'conv': `lax.conv_general_dilated` on the (cut, masked) kernel;
#   'taps': the live taps only, as one matmul: the shifted copies of the input
#     that the taps read, concatenated along channels, times the taps'
#     [taps * in, out] kernel. The forward pass and both gradients are then
#     plain matmuls (and pads/slices), where XLA:CPU's convolutions, above
#     all their kernel gradients, run well below its matmul rate;
#   'rows': the live taps only, as a sum of XLA convolutions, one per block
#     of consecutive kernel rows whose live taps span the same columns
#     (`row_blocks`), each on its cropped kernel (a 3x3 mask 'B': a 1x3
#     convolution of the row above plus a 1x2 one of the current row);
#   'patch_grad': 'conv' with the kernel gradient as matmuls
#     (`jaxgen.nn.conv`'s method of that name).
# 'auto' picks per layer (`choose_method`); `experiments.bench_layers`
# times them against each other.
CONV_METHODS = ('auto', 'taps', 'conv', 'rows', 'patch_grad')


def live_taps(mask: np.ndarray) -> tuple[tuple[int, int], ...]:
  """(dy, dx) of the taps of a [k_h, k_w, ...] mask that are not all zero,
  in raster order."""
  mask = np.asarray(mask)
  live = mask.reshape(mask.shape[:2] + (-1,)).any(-1)
  return tuple((int(dy), int(dx)) for dy, dx in zip(*np.nonzero(live)))


def row_blocks(taps: Sequence[tuple[int, int]]
               ) -> tuple[tuple[int, int, int, int], ...]:
  """The live taps as rectangles (row, rows, column, columns), top to bottom.

  Each kernel row's live taps are taken as the span from its first to its
  last live column (the taps between, if any are dead, are computed as
  zeros); consecutive rows with the same span share one rectangle.
  """
  spans = {}
  for dy, dx in taps:
    lo, hi = spans.get(dy, (dx, dx))
    spans[dy] = (min(lo, dx), max(hi, dx))
  blocks = []
  for dy in sorted(spans):
    lo, hi = spans[dy]
    if blocks and blocks[-1][0] + blocks[-1][1] == dy and (
        blocks[-1][2:] == (lo, hi - lo + 1)):
      blocks[-1] = (blocks[-1][0], blocks[-1][1] + 1, lo, hi - lo + 1)
    else:
      blocks.append((dy, 1, lo, hi - lo + 1))
  return tuple(blocks)


def row_conv(x: jax.Array, kernel: jax.Array,
             taps: Sequence[tuple[int, int]],
             padding: Sequence[tuple[int, int]],
             precision: Any = None) -> jax.Array:
  """`tap_conv`'s value as a sum of XLA convolutions over `row_blocks`.

  Each rectangle (r0, r, c0, c) of the kernel is a convolution of its own:
  kernel[r0:r0 + r, c0:c0 + c] with the padding shifted by the rectangle's
  offset (negative where it crops the input); a one-tap rectangle is a
  matmul.

  Args:
    x: [B, H, W, in].
    kernel, taps, padding, precision: as for `tap_conv`.

  Returns:
    [B, H + top + bottom - k_h + 1, W + left + right - k_w + 1, out].
  """
  kh, kw = kernel.shape[:2]
  (top, bottom), (left, right) = padding
  y = None
  for r0, r, c0, c in row_blocks(taps):
    pads = ((top - r0, bottom - (kh - r0 - r)),
            (left - c0, right - (kw - c0 - c)))
    part = kernel[r0:r0 + r, c0:c0 + c]
    if r * c == 1:
      # (negative pads crop)
      xp = jax.lax.pad(x, jnp.zeros((), x.dtype),
                       ((0, 0, 0),) + tuple((lo, hi, 0) for lo, hi in pads)
                       + ((0, 0, 0),))
      term = jnp.einsum('...i,io->...o', xp, part[0, 0], precision=precision)
    else:
      term = jax.lax.conv_general_dilated(
          x, part, window_strides=(1, 1), padding=pads,
          dimension_numbers=('NHWC', 'HWIO', 'NHWC'), precision=precision)
    y = term if y is None else y + term
  return y


def choose_method(shape: Sequence[int], num_taps: int) -> str:
  """'taps' or 'conv' for a kernel [k_h, k_w, in, out] with `num_taps` live
  taps. One tap is a matmul either way. With convolutions on Eigen
  (`conv_lib.convolutions_on_ynnpack` false, as `experiments.entry` sets
  XLA up), XLA's convolution, whose kernel gradient Eigen computes well,
  for every layer of more than one tap. With convolutions on YNNPACK (XLA's
  default), whose kernel gradients are slow, the live-tap matmul, except on
  two kinds of layer where XLA's convolution keeps up with it: layers of
  fewer than 8 inputs (the image layers, whose input gradient a train step
  never needs) and wide layers that do not widen (at least 64 inputs, as
  many or more than their outputs, and more than one kernel row)."""
  kh, _, in_features, out_features = shape
  if num_taps == 1:
    return 'taps'
  if not conv_lib.convolutions_on_ynnpack():
    return 'conv'
  if in_features < 8:
    return 'conv'
  if kh > 1 and in_features >= 64 and in_features >= out_features:
    return 'conv'
  return 'taps'


def tap_conv(x: jax.Array, kernel: jax.Array, taps: Sequence[tuple[int, int]],
             padding: Sequence[tuple[int, int]],
             precision: Any = None) -> jax.Array:
  """Stride-1 convolution that computes only the listed taps, as one matmul.

  y[..., i, j, o] = sum_{(dy, dx) in taps} sum_c
  xp[..., i + dy, j + dx, c] kernel[dy, dx, c, o], with xp = x zero-padded by
  `padding` on the two spatial axes: `lax.conv_general_dilated` with the same
  padding on `kernel` zeroed outside `taps` ('VALID' on xp), without the work
  of the zero taps.

  Args:
    x: [..., H, W, in].
    kernel: [k_h, k_w, in, out]; entries outside `taps` are not read.
    taps: (dy, dx) positions in the kernel, each once.
    padding: ((top, bottom), (left, right)) zeros around x.
    precision: `jax.lax.Precision` of the matmul.

  Returns:
    [..., H + top + bottom - k_h + 1, W + left + right - k_w + 1, out].
  """
  kh, kw = kernel.shape[:2]
  (top, bottom), (left, right) = padding
  h = x.shape[-3] + top + bottom - kh + 1
  w = x.shape[-2] + left + right - kw + 1
  if top or bottom or left or right:
    pad = [(0, 0)] * (x.ndim - 3) + [(top, bottom), (left, right), (0, 0)]
    x = jnp.pad(x, pad)
  parts = [x[..., dy:dy + h, dx:dx + w, :] for dy, dx in taps]
  patches = parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1)
  rows, cols = (np.asarray(t) for t in zip(*taps))
  weights = kernel[rows, cols].reshape(-1, kernel.shape[-1])
  return conv_lib.matmul_last(patches, weights, precision=precision)


def _conv(x: jax.Array, kernel: jax.Array, taps: Sequence[tuple[int, int]],
          padding: Sequence[tuple[int, int]], method: str,
          precision: Any) -> jax.Array:
  """`tap_conv`, or `lax.conv_general_dilated` ('conv') on [..., H, W, C]."""
  if method not in CONV_METHODS:
    raise ValueError(f'method must be one of {CONV_METHODS}, got {method!r}.')
  if method == 'auto':
    method = choose_method(kernel.shape, len(taps))
  if method == 'taps' and taps:  # (no live taps: the conv's zeros)
    return tap_conv(x, kernel, taps, padding, precision)
  batch_shape = x.shape[:-3]
  x = x.reshape((-1,) + x.shape[-3:])
  if method == 'rows' and taps:
    y = row_conv(x, kernel, taps, padding, precision)
  elif method == 'patch_grad':
    y = conv_lib.conv(x, kernel, padding=tuple(padding), method='patch_grad',
                      precision=precision)
  else:
    y = jax.lax.conv_general_dilated(
        x, kernel, window_strides=(1, 1), padding=tuple(padding),
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'), precision=precision)
  return y.reshape(batch_shape + y.shape[1:])


def masked_conv(x: jax.Array, kernel: jax.Array, mask_type: str = 'B',
                color_channels: int = 1, *, method: str = 'auto',
                precision: Any = None) -> jax.Array:
  """The masked 'SAME' convolution of `MaskedConv2D`, without bias.

  Args:
    x: [..., H, W, in].
    kernel: the full kernel [k_h, k_w, in, out] (the mask is applied here).
    mask_type: 'A' or 'B'.
    color_channels: colour groups, as in `make_mask`.
    method: 'taps' (the mask's live taps as one matmul, `tap_conv`), 'conv'
      (`lax.conv_general_dilated` on the top k_h // 2 + 1 kernel rows with
      top-only padding), 'rows' (the live taps as one convolution per block
      of rows, `row_conv`), 'patch_grad' ('conv' with the kernel gradient
      as matmuls), 'dense' (the full masked kernel with 'SAME'
      padding: the straightforward formulation, for tests and benchmarks) or
      'auto' (`choose_method` between 'taps' and 'conv').
    precision: `jax.lax.Precision` of the convolution.

  Returns:
    [..., H, W, out]: the same value by every method (up to float rounding).
  """
  kh, kw, in_features, out_features = kernel.shape
  mask = make_mask((kh, kw), in_features, out_features, mask_type,
                   color_channels)
  cy, cx = kh // 2, kw // 2
  if method == 'dense':
    kernel = kernel * jnp.asarray(mask, kernel.dtype)
    return _conv(x, kernel, (), ((cy, cy), (cx, cx)), 'conv', precision)
  rows = cy + 1
  kernel = kernel[:rows] * jnp.asarray(mask[:rows], kernel.dtype)
  return _conv(x, kernel, live_taps(mask[:rows]), ((cy, 0), (cx, cx)), method,
               precision)


class MaskedConv2D(nn.Module):
  """Stride-1 'SAME' 2-D convolution with a causal (raster-order) mask.

  y[b, i, j, o] = bias[o] + sum_{dy, dx, c} x[b, i + dy - k_h//2,
  j + dx - k_w//2, c] * (W * M)[dy, dx, c, o], with zero padding outside the
  image and M = `make_mask(...)`. The kernel parameter keeps its full
  [k_h, k_w, in, out] shape (the usual parameter count); the rows below the
  centre, always masked, are not computed (the convolution runs on the top
  k_h // 2 + 1 rows with top-only padding), and the centre row's hidden taps
  are skipped as well where the layer runs as a matmul over its live taps
  (`masked_conv`, `choose_method`).

  Attributes:
    features: output channels (a multiple of `color_channels`).
    kernel_size: k or (k_h, k_w), odd.
    mask_type: 'A' or 'B'.
    color_channels: colour groups (1, or 3 for RGB); see `make_mask`.
    use_bias: add a learned bias.
    kernel_init: initializer of the full kernel.
    bias_init: initializer of the bias.
    dtype: computation dtype (None: promote from inputs and params).
    param_dtype: parameter dtype.
    precision: `jax.lax.Precision` of the convolution.
    method: how the convolution runs, 'auto', 'taps' or 'conv' (see
      `masked_conv`); the same function and parameters either way.
  """
  features: int
  kernel_size: int | Sequence[int]
  mask_type: str = 'B'
  color_channels: int = 1
  use_bias: bool = True
  kernel_init: Initializer = inits.lecun_normal()
  bias_init: Initializer = nn.initializers.zeros_init()
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: Any = None
  method: str = 'auto'

  def window(self) -> tuple[int, int, int]:
    """(rows, left, right) of the window `at` reads.

    (k_h//2 + 1, k_w//2, k_w//2): rows i - k_h//2 .. i, columns j -+ k_w//2.
    """
    kh, kw = kernel_shape(self.kernel_size)
    return kh // 2 + 1, kw // 2, kw // 2

  def _mask_kernel(self, kernel: jax.Array) -> jax.Array:
    """Top k_h // 2 + 1 rows of the kernel, times the mask."""
    kh, kw, in_features, _ = kernel.shape
    mask = make_mask((kh, kw), in_features, self.features, self.mask_type,
                     self.color_channels)
    rows = kh // 2 + 1
    return kernel[:rows] * jnp.asarray(mask[:rows], kernel.dtype)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x [..., H, W, in] -> [..., H, W, features]."""
    kh, kw = kernel_shape(self.kernel_size)
    kernel = self.param('kernel', self.kernel_init,
                        (kh, kw, x.shape[-1], self.features), self.param_dtype)
    bias = (self.param('bias', self.bias_init, (self.features,),
                       self.param_dtype) if self.use_bias else None)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    y = masked_conv(x, kernel, self.mask_type, self.color_channels,
                    method=self.method, precision=self.precision)
    return y + bias if bias is not None else y

  def at(self, window: jax.Array) -> jax.Array:
    """The output at one position from its causal input window.

    For incremental (cached) sampling: the value `__call__` gives at (i, j),
    computed from the inputs the mask can see.

    Args:
      window: [..., k_h // 2 + 1, k_w, in], the input rows i - k_h//2 .. i and
        columns j - k_w//2 .. j + k_w//2 (zeros outside the image). Entries the
        mask hides (right of the centre on the last row, and the centre's
        hidden groups) may hold anything.

    Returns:
      [..., features]. Needs initialised parameters (call `__call__` at init).
    """
    kernel = self._mask_kernel(self.get_variable('params', 'kernel'))
    bias = self.get_variable('params', 'bias') if self.use_bias else None
    window, kernel, bias = nn.dtypes.promote_dtype(window, kernel, bias,
                                                   dtype=self.dtype)
    y = jnp.einsum('...hwi,hwio->...o', window, kernel,
                   precision=self.precision)
    if bias is not None:
      y = y + bias
    return y


# ------------------------------------------------------ gated stack layers
# The two convolutions of the Gated PixelCNN (van den Oord et al., NeurIPS
# 2016, Fig. 2), cut to the taps they may use instead of masked: no compute
# is spent on always-zero weights. Both expose ``window()`` (rows, left,
# right), ``at(window)`` and, for the vertical one, ``row(buffer)`` for
# incremental sampling (`jaxgen.models.ar_sampling`).


def _check_odd(kernel_size: int) -> int:
  if kernel_size < 1 or kernel_size % 2 == 0:
    raise ValueError(f'kernel_size must be odd and positive, got '
                     f'{kernel_size}.')
  return kernel_size // 2


class VerticalStackConv(nn.Module):
  """The vertical stack's convolution: a k//2 + 1 by k kernel over rows <= i.

  y[i, j] = b + sum_{dy=0}^{k//2} sum_{dx=-k//2}^{k//2}
  x[i - k//2 + dy, j + dx] W[dy, dx + k//2] (zeros outside the image). The
  output at row i sees the rows up to and including i, every column within
  k//2: it must reach the horizontal stack shifted down one row
  (`down_shift`), so pixel (i, j) only learns about rows < i from it. No
  mask, and no blind spot: the region above grows by k//2 on both sides per
  layer.

  With ``rows`` = r < k//2 + 1 the kernel keeps its last r rows only (rows
  i - r + 1 .. i): ``rows=k//2`` on the image gives, after `down_shift`,
  exactly the rows a k x k mask 'A' sees above the centre.

  Attributes:
    features: output channels.
    kernel_size: k (odd).
    rows: kernel rows, 1 .. k//2 + 1 (0: k//2 + 1).
    use_bias, kernel_init, bias_init, precision, method: as for
      `MaskedConv2D`.
  """
  features: int
  kernel_size: int = 3
  rows: int = 0
  use_bias: bool = True
  kernel_init: Initializer = inits.lecun_normal()
  bias_init: Initializer = nn.initializers.zeros_init()
  precision: Any = None
  method: str = 'auto'

  def _rows(self) -> int:
    full = _check_odd(self.kernel_size) + 1
    if self.rows == 0:
      return full
    if not 1 <= self.rows <= full:
      raise ValueError(f'rows must be in [1, {full}] for kernel_size '
                       f'{self.kernel_size}, got {self.rows}.')
    return self.rows

  def window(self) -> tuple[int, int, int]:
    half = _check_odd(self.kernel_size)
    return self._rows(), half, half

  def _conv(self, x, kernel, bias, padding):
    taps = tuple(np.ndindex(kernel.shape[:2]))
    y = _conv(x, kernel, taps, padding, self.method, self.precision)
    return y + bias if bias is not None else y

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x [B, H, W, in] -> [B, H, W, features]."""
    half, rows = _check_odd(self.kernel_size), self._rows()
    kernel = self.param('kernel', self.kernel_init,
                        (rows, self.kernel_size, x.shape[-1], self.features))
    bias = (self.param('bias', self.bias_init, (self.features,))
            if self.use_bias else None)
    return self._conv(x, kernel, bias, ((rows - 1, 0), (half, half)))

  def _params(self):
    bias = self.get_variable('params', 'bias') if self.use_bias else None
    return self.get_variable('params', 'kernel'), bias

  def at(self, window: jax.Array) -> jax.Array:
    """One output [..., features] from its window.

    window: [..., r, k, in], rows i - r + 1 .. i (r = `window()[0]`),
      columns j -+ k//2.
    """
    kernel, bias = self._params()
    y = jnp.einsum('...hwi,hwio->...o', window, kernel,
                   precision=self.precision)
    return y + bias if bias is not None else y

  def row(self, buffer: jax.Array) -> jax.Array:
    """One output row [B, 1, W, features] from its input rows.

    buffer: [B, r, W + 2 (k//2), in], rows i - r + 1 .. i (r =
      `window()[0]`) zero-padded at the sides.
    """
    kernel, bias = self._params()
    return self._conv(buffer, kernel, bias, ((0, 0), (0, 0)))


class HorizontalStackConv(nn.Module):
  """The horizontal stack's convolution: 1 x (k//2 + 1) taps, columns <= j.

  y[i, j] = b + sum_{dx=0}^{k//2} x[i, j - k//2 + dx] (W * M)[dx], where M
  is 1 except at the last tap (the centre, column j), which is
  `centre_mask(in, out, mask_type, color_channels)`: mask 'A' hides the
  pixel itself (first layer), 'B' shows it (later layers), and with colour
  groups output group g sees input groups < g ('A') or <= g ('B').

  With one colour group, mask 'A' zeroes the whole centre tap: ``crop_centre``
  then drops it from the parameters (a 1 x k//2 kernel over columns
  j - k//2 .. j - 1; the same function, computed the same way).

  Attributes:
    features: output channels (a multiple of `color_channels`).
    kernel_size: k (odd); the kernel has k//2 + 1 taps.
    mask_type: 'A' or 'B'.
    color_channels: colour groups, as in `make_mask`.
    crop_centre: no centre-tap parameters (mask 'A', 1 colour group only).
    use_bias, kernel_init, bias_init, precision, method: as for
      `MaskedConv2D`.
  """
  features: int
  kernel_size: int = 3
  mask_type: str = 'B'
  color_channels: int = 1
  crop_centre: bool = False
  use_bias: bool = True
  kernel_init: Initializer = inits.lecun_normal()
  bias_init: Initializer = nn.initializers.zeros_init()
  precision: Any = None
  method: str = 'auto'

  def window(self) -> tuple[int, int, int]:
    return 1, _check_odd(self.kernel_size), 0

  def _mask_kernel(self, kernel: jax.Array) -> jax.Array:
    if self.crop_centre:  # the centre tap mask 'A' zeroes, as zeros
      return jnp.pad(kernel, ((0, 0), (0, 1), (0, 0), (0, 0)))
    mask = np.ones(kernel.shape, np.float32)
    mask[0, -1] = centre_mask(kernel.shape[2], kernel.shape[3],
                              self.mask_type, self.color_channels)
    return kernel * jnp.asarray(mask, kernel.dtype)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x [B, H, W, in] -> [B, H, W, features]."""
    half = _check_odd(self.kernel_size)
    if self.crop_centre and (self.mask_type != 'A' or self.color_channels != 1
                             or half == 0):
      raise ValueError(
          "crop_centre needs mask_type 'A', color_channels 1 and "
          f'kernel_size >= 3, got {self.mask_type!r}, '
          f'{self.color_channels}, {self.kernel_size}.')
    taps = half if self.crop_centre else half + 1
    kernel = self.param('kernel', self.kernel_init,
                        (1, taps, x.shape[-1], self.features))
    bias = (self.param('bias', self.bias_init, (self.features,))
            if self.use_bias else None)
    mask = np.ones((1, half + 1, 1, 1), np.float32)
    mask[0, -1] = centre_mask(x.shape[-1], self.features, self.mask_type,
                              self.color_channels).any()
    y = _conv(x, self._mask_kernel(kernel), live_taps(mask),
              ((0, 0), (half, 0)), self.method, self.precision)
    return y + bias if bias is not None else y

  def at(self, window: jax.Array) -> jax.Array:
    """One output [..., features] from its window.

    window: [..., 1, k//2 + 1, in], row i, columns j - k//2 .. j.
    """
    kernel = self._mask_kernel(self.get_variable('params', 'kernel'))
    y = jnp.einsum('...hwi,hwio->...o', window, kernel,
                   precision=self.precision)
    return y + self.get_variable('params', 'bias') if self.use_bias else y


def down_shift(x: jax.Array) -> jax.Array:
  """[B, H, W, F] -> row i holds row i - 1 (row 0 zeros)."""
  return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]
