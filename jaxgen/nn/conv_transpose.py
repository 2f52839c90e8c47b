r"""Strided transposed convolution by phase (sub-pixel) decomposition.

`ConvTranspose` is a drop-in for ``flax.linen.ConvTranspose`` (2-D, NHWC,
``transpose_kernel=False``, no kernel dilation): same attribute names, same
parameters (``kernel`` [kh, kw, Cin, Cout], ``bias`` [Cout]) drawn with the
same initialisers, and the same output as ``lax.conv_transpose`` up to float
rounding. It exists for speed: on XLA:CPU the gradient of
``lax.conv_transpose`` with respect to its kernel (a convolution whose input
is dilated by the stride) takes a slow generic path, much slower than the
equivalent stride-1 convolutions for the reference DCGAN's 16x16 -> 32x32
layer (`experiments/bench_gan.py` times that DCGAN).

The identity used (one spatial dimension; both are treated alike). With
stride s, kernel k and padding (lo, hi) of the dilated input,
``lax.conv_transpose`` computes

    y[o] = sum_t xd[o - lo + t] * w[t],   xd[m] = x[m / s] if s | m else 0,

for o in [0, (n - 1) s + 1 + lo + hi - k + 1). Split the outputs by phase
a = o mod s, o = s i + a. Only the taps t = ta + s j with
ta = (lo - a) mod s meet a non-zero xd, at input index i + oa + j with
oa = (a - lo + ta) / s (an integer), so

    y[s i + a] = sum_j x[i + oa + j] * w[ta + s j],

a stride-1 'VALID' correlation of x (padded by -oa before) with the
sub-kernel w[ta::s]. The s^2 phase outputs are interleaved back
(depth-to-space). Every convolution, and every convolution of its gradient,
is then stride-1 and undilated, and each runs through
`jaxgen.nn.conv.conv` (its ``method``, 'auto' by default).

Two layers take other forms under ``method='auto'`` (`choose_form`), with
the same values:

- a 1x1 input (the DCGAN generator's "project and reshape" layer): every
  output pixel meets one tap, y[o] = x w[lo - o] (zero where lo - o falls
  outside the kernel), so the layer is one matmul of the input's channels
  with the kernel's taps in output order ('matmul'), instead of a
  convolution over a zero-padded input;
- a narrow output on CPU with convolutions on Eigen (at most
  `conv.NARROW_MAX_FEATURES` output channels and fewer than the input's,
  where the phase convolutions would run as 'patch_grad': an image
  decoder's last layer): one matmul of the input with all k_h k_w taps,
  z_t = x w[t], and each tap's product added at its outputs,
  y[s i + lo - t] += z_t[i] (`lax.pad` with interior padding s - 1), so the
  forward pass and both gradients are matmuls and strided copies of the
  narrow output ('taps').

Reference: Shi et al. 2016, "Real-Time Single Image and Video
Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural Network"
(the sub-pixel view of strided transposed convolution).
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp

from jaxgen.nn import conv as conv_lib
from jaxgen.nn import initializers as inits

Padding = str | Sequence[tuple[int, int]]
# How `conv_transpose` computes a layer (`choose_form`).
FORMS = ('phases', 'matmul', 'taps')


def transpose_padding(k: int, s: int, padding: str) -> tuple[int, int]:
  """(lo, hi) padding of the dilated input, as ``lax.conv_transpose``.

  'SAME' gives n * s outputs, 'VALID' gives (n - 1) * s + max(k, s).
  """
  if padding == 'SAME':
    pad_len = k + s - 2
    lo = k - 1 if s > k - 1 else math.ceil(pad_len / 2)
  elif padding == 'VALID':
    pad_len = k + s - 2 + max(k - s, 0)
    lo = k - 1
  else:
    raise ValueError(f"padding={padding!r}: expected 'SAME', 'VALID' or "
                     '(low, high) pairs.')
  return lo, pad_len - lo


def _phases(n: int, k: int, s: int, lo: int, hi: int):
  """Per phase a: (first tap ta, input offset oa, outputs n_a); and out."""
  out = (n - 1) * s + 1 + lo + hi - k + 1
  if out < 1:
    raise ValueError(f'transposed convolution of {n} inputs with kernel {k}, '
                     f'stride {s}, padding ({lo}, {hi}) has no output.')
  phases = []
  for a in range(s):
    ta = (lo - a) % s
    oa = (a - lo + ta) // s
    phases.append((ta, oa, len(range(a, out, s))))
  return phases, out


def choose_form(x_shape: Sequence[int], kernel_shape: Sequence[int], *,
                backend: str | None = None) -> str:
  """The form of `FORMS` that ``method='auto'`` computes a transposed
  convolution of an input [B, H, W, Cin] with a kernel [kh, kw, Cin, Cout]
  in: 'matmul' for a 1x1 input (any backend: the convolution would run
  every tap over zero padding); 'taps' on CPU with convolutions on Eigen
  for a narrow output (Cout at most `conv.NARROW_MAX_FEATURES` and below
  Cin); else 'phases'."""
  if tuple(x_shape[1:3]) == (1, 1):
    return 'matmul'
  backend = backend or jax.default_backend()
  cin, cout = kernel_shape[-2:]
  if (backend == 'cpu' and not conv_lib.convolutions_on_ynnpack()
      and cout <= conv_lib.NARROW_MAX_FEATURES and cout < cin):
    return 'taps'
  return 'phases'


def _one_tap_kernel(kernel: jax.Array, pads, out) -> jax.Array:
  """[out_h, out_w, Cin, Cout]: the tap w[lo - o] that output o of a 1x1
  input meets (zeros where lo - o is outside the kernel)."""
  w = lax.rev(kernel, (0, 1))  # w[k - 1 - r]: output o reads r = k-1-lo+o
  config = [(lo - k + 1, n - lo - 1, 0)
            for k, (lo, _), n in zip(kernel.shape[:2], pads, out)]
  return lax.pad(w, jnp.zeros((), w.dtype), config + [(0, 0, 0)] * 2)


def _taps_form(x: jax.Array, kernel: jax.Array, strides, pads, out,
               precision) -> jax.Array:
  """y[s i + lo - t] += x[i] w[t] over the taps t: one matmul with every
  tap, then each tap's product spread to its outputs."""
  b, n_h, n_w, cin = x.shape
  kh, kw, _, cout = kernel.shape
  z = conv_lib.matmul_last(
      x, kernel.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout),
      precision).reshape(b, n_h, n_w, kh, kw, cout)
  zero = jnp.zeros((), z.dtype)
  y = None
  for th in range(kh):
    for tw in range(kw):
      config = [(0, 0, 0)] + [
          (lo - t, o - (lo - t + (n - 1) * s + 1), s - 1)
          for lo, t, o, n, s in zip((pads[0][0], pads[1][0]), (th, tw), out,
                                    (n_h, n_w), strides)] + [(0, 0, 0)]
      part = lax.pad(z[:, :, :, th, tw], zero, config)
      y = part if y is None else y + part
  return y


def conv_transpose(x: jax.Array, kernel: jax.Array, strides: Sequence[int],
                   padding: Padding = 'SAME', precision=None, *,
                   method: str = 'auto') -> jax.Array:
  """``lax.conv_transpose(x, kernel, strides, padding)``, NHWC / HWIO.

  Args:
    x: [B, H, W, Cin].
    kernel: [kh, kw, Cin, Cout] (not flipped: ``transpose_kernel=False``).
    strides: (sh, sw).
    padding: 'SAME', 'VALID', or ((lo_h, hi_h), (lo_w, hi_w)) of the dilated
      input, exactly as ``lax.conv_transpose`` takes them.
    precision: passed to the convolutions.
    method: of the stride-1 phase convolutions (`jaxgen.nn.conv.conv`);
      'auto' also lets `choose_form` compute a 1x1 input or a narrow
      output without them.

  Returns:
    [B, H', W', Cout] with H' = (H - 1) sh + 1 + lo_h + hi_h - kh + 1
    (H sh for 'SAME').
  """
  if x.ndim != 4 or kernel.ndim != 4 or kernel.shape[2] != x.shape[-1]:
    raise ValueError(f'conv_transpose expects x [B, H, W, Cin] and kernel '
                     f'[kh, kw, Cin, Cout]; got {x.shape} and {kernel.shape}.')
  ks, ss = kernel.shape[:2], tuple(strides)
  if isinstance(padding, str):
    pads = [transpose_padding(k, s, padding) for k, s in zip(ks, ss)]
  else:
    pads = [tuple(p) for p in padding]
  (ph, out_h), (pw, out_w) = (
      _phases(n, k, s, lo, hi)
      for n, k, s, (lo, hi) in zip(x.shape[1:3], ks, ss, pads))
  form = (choose_form(x.shape, kernel.shape) if method == 'auto'
          else 'phases')
  if form == 'matmul':
    w = _one_tap_kernel(kernel, pads, (out_h, out_w))
    y = conv_lib.matmul_last(
        x[:, 0, 0], w.transpose(2, 0, 1, 3).reshape(x.shape[-1], -1),
        precision)
    return y.reshape(x.shape[0], out_h, out_w, kernel.shape[-1])
  if form == 'taps':
    return _taps_form(x, kernel, ss, pads, (out_h, out_w), precision)
  nh, nw = -(-out_h // ss[0]), -(-out_w // ss[1])
  rows = []
  for ta, oa, na in ph:
    cols = []
    for tb, ob, nb in pw:
      sub = kernel[ta::ss[0], tb::ss[1]]
      if 0 in sub.shape[:2]:  # k < s: this phase meets no input
        y = jnp.zeros((x.shape[0], na, nb, kernel.shape[-1]),
                      jnp.result_type(x, kernel))
      else:
        # out[i] = sum_j x[i + oa + j] sub[j], i < na: pad x so that a
        # 'VALID' correlation yields exactly na (nb) outputs.
        pad_h = (-oa, na - 1 + oa + sub.shape[0] - x.shape[1])
        pad_w = (-ob, nb - 1 + ob + sub.shape[1] - x.shape[2])
        y = conv_lib.conv(x, sub, 1, (pad_h, pad_w), method=method,
                          precision=precision)
      # Every phase to nh x nw so that they interleave by a reshape.
      cols.append(jnp.pad(y, ((0, 0), (0, nh - na), (0, nw - nb), (0, 0))))
    rows.append(jnp.stack(cols, axis=3))  # [B, nh, nw, sw, C]
  y = jnp.stack(rows, axis=2)  # [B, nh, sh, nw, sw, C]
  b, _, _, _, _, c = y.shape
  y = y.reshape(b, nh * ss[0], nw * ss[1], c)
  return y[:, :out_h, :out_w]


class ConvTranspose(nn.Module):
  """``flax.linen.ConvTranspose`` for 2-D NHWC inputs, by `conv_transpose`.

  Same attributes (the subset used here), parameter names, shapes and
  initialisers as Flax's, so parameters and checkpoints are interchangeable
  and ``init`` draws identical values; ``method`` (not Flax's) picks how
  the phase convolutions run (`jaxgen.nn.conv.METHODS`).
  """
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int] | None = None
  padding: Padding = 'SAME'
  use_bias: bool = True
  precision: lax.Precision | None = None
  method: str = 'auto'  # of the phase convolutions (`jaxgen.nn.conv`)
  kernel_init: nn.initializers.Initializer = inits.lecun_normal()
  bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel_size = tuple(self.kernel_size)
    if len(kernel_size) != 2 or x.ndim != 4:
      raise ValueError(f'ConvTranspose is 2-D: kernel_size={kernel_size} and '
                       f'inputs [B, H, W, C] (got shape {x.shape}).')
    strides = tuple(self.strides) if self.strides is not None else (1, 1)
    kernel = self.param('kernel', self.kernel_init,
                        kernel_size + (x.shape[-1], self.features),
                        jnp.float32)
    bias = (self.param('bias', self.bias_init, (self.features,), jnp.float32)
            if self.use_bias else None)
    dtype = jnp.result_type(x, kernel)  # as Flax's promote_dtype
    y = conv_transpose(x.astype(dtype), kernel.astype(dtype), strides,
                       self.padding, self.precision, method=self.method)
    return y if bias is None else y + bias.astype(dtype)
