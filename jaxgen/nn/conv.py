"""Convolutions whose kernel gradient is a matmul: faster train steps on CPU.

With convolutions on YNNPACK (XLA's default in jaxlib 0.10), XLA:CPU runs
a convolution's forward pass and its input gradient (itself a
convolution) on a fast path, but computes the kernel gradient, a
convolution with the batch as its contraction, on a slow generic one; on
large feature maps (RealNVP's 28x28 coupling nets) that path takes most of
a train step. This module computes the same convolution with the kernel
gradient written as matmuls over shifted copies of the input or of the
output gradient (im2col), which XLA:CPU runs on its fast matmul path.

`conv` takes channels-last inputs [B, *spatial, C] and kernels
[*kernel_size, C, F] (HWIO for 2-D) and a ``method``:

- ``'xla'``: `lax.conv_general_dilated` and JAX's own derivatives.
- ``'patches'``: im2col: the input's patches (`patches`: one shifted,
  strided slice of the zero-padded input per kernel tap, concatenated
  along the channels) times the kernel reshaped to [taps * C, F], one
  matmul; JAX differentiates the slices and the matmul.
- ``'patch_grad'``: the forward pass and the input gradient by XLA's
  convolution, the kernel gradient by matmuls: a custom JVP whose kernel
  part (`kernel_term`) is written as matmuls over shifted copies, so its
  transpose, the kernel gradient, is matmuls too (forward mode works as
  well, as `jax.jacfwd` of a flow's log-determinant needs).
- ``'auto'``: `choose_method`, a rule on static things only (the backend,
  ``XLA_FLAGS``, the shapes and the call's options): on CPU, for kernels
  of more than one tap, 'patch_grad' with convolutions on YNNPACK (XLA's
  default in jaxlib 0.10) on inputs of at least `PATCH_GRAD_MIN_INPUT`
  elements, and with convolutions on Eigen (as `experiments.entry` sets
  XLA up) on narrow outputs: stride 1, at most `NARROW_MAX_FEATURES`
  output channels and fewer than the input's (a coupling net's or a
  decoder's last layer), whose forward pass, input and kernel gradients
  Eigen computes slowly, while the matmuls over the few shifted output
  channels are cheap; 'xla' elsewhere (Eigen's kernel gradient is the
  faster on wider outputs).

`kernel_term` picks, from the shapes alone, which operand the kernel
gradient shifts and whether it concatenates the shifted copies into one
matmul or sums one matmul per tap: it shifts the output gradient (stride 1
only) when it has no more channels than the input, and concatenates when
the shifted operand has at most `CONCAT_MAX_CHANNELS` channels (a narrow
operand's patches are cheap to build; a wide one's are large and
memory-bound).

`Conv` is `flax.linen.Conv` with this convolution: the same module class,
parameter names ('kernel' [*kernel_size, C, F], 'bias' [F]), shapes and
initialisers (the kernel drawn flat by `initializers.lecun_normal`), so
parameter trees, counts and checkpoints are those of ``nn.Conv``. It is
`initializers.Conv`, the plain convolution every family builds. Calls the
methods other than 'xla' do not cover (input dilation, feature or batch
groups, other dimension layouts) run XLA's convolution under 'auto' and
raise under an explicit method.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from typing import Any, Sequence

import flax.linen as nn
import jax
from jax import custom_derivatives
from jax import lax
import jax.numpy as jnp

from jaxgen.nn import initializers as inits

METHODS = ('auto', 'xla', 'patches', 'patch_grad')
# Most channels of a shifted operand whose patches `kernel_term` builds as
# one array (more: one matmul per tap, summed into the kernel's slices).
CONCAT_MAX_CHANNELS = 16
# Fewest input elements (batch included) on which 'auto' picks 'patch_grad'
# on CPU: on smaller inputs XLA's own kernel gradient kept up in the
# measured layers (`experiments/bench_layers.py --conv_layers`), on larger
# ones it falls far behind the matmuls.
PATCH_GRAD_MIN_INPUT = 2 ** 21
# Most output channels of a stride-1 layer on which 'auto' picks
# 'patch_grad' with convolutions on Eigen (when the input has more): on
# such narrow outputs Eigen's convolution and its gradients fell behind
# the matmuls in the measured layers (`experiments/bench_layers.py
# --conv_layers`), on wider ones they stay ahead.
NARROW_MAX_FEATURES = 8

Padding = str | Sequence[tuple[int, int]]

# XLA's option naming the operations XLA:CPU hands to YNNPACK (jaxlib 0.10:
# dots, convolutions and reductions by default).
YNN_FUSION_FLAG = '--xla_cpu_experimental_ynn_fusion_type'


def convolutions_on_ynnpack(xla_flags: str | None = None) -> bool:
  """Whether XLA:CPU runs convolutions on YNNPACK, read from `xla_flags`
  (default: the ``XLA_FLAGS`` environment variable, which XLA read when
  the backend started).

  True unless `YNN_FUSION_FLAG` leaves ``individual_convolution`` out:
  ``=-individual_convolution`` (what `experiments.entry` sets), a list
  without it, or an empty value; then convolutions run on Eigen. The
  layers' method rules differ between the two (`masked.choose_method`).
  """
  if xla_flags is None:
    xla_flags = os.environ.get('XLA_FLAGS', '')
  values = [f.split('=', 1)[1] if '=' in f else ''
            for f in xla_flags.split() if f.split('=', 1)[0] == YNN_FUSION_FLAG]
  if not values:
    return True
  items = [v.strip() for v in values[-1].split(',') if v.strip()]
  if not items:
    return False
  on = True
  if any(v[0] in '+-' for v in items):
    for v in items:
      if v.lstrip('+-') == 'individual_convolution':
        on = not v.startswith('-')
    return on
  return 'individual_convolution' in items


def _tuple(v: int | Sequence[int] | None, n: int, name: str) -> tuple:
  if v is None:
    return (1,) * n
  if isinstance(v, int):
    return (v,) * n
  v = tuple(int(a) for a in v)
  if len(v) != n:
    raise ValueError(f'{name}={v!r}: expected {n} values (one per spatial '
                     'axis).')
  return v


def _pads(in_spatial: Sequence[int], kernel_spatial: Sequence[int],
          strides: Sequence[int], padding: Padding,
          dilation: Sequence[int]) -> tuple[tuple[int, int], ...]:
  """Explicit (low, high) pads per spatial axis, as lax computes them."""
  if isinstance(padding, str):
    dilated = [(k - 1) * d + 1 for k, d in zip(kernel_spatial, dilation)]
    return tuple(tuple(p) for p in
                 lax.padtype_to_pads(in_spatial, dilated, strides, padding))
  pads = tuple((int(lo), int(hi)) for lo, hi in padding)
  if len(pads) != len(in_spatial):
    raise ValueError(f'padding={padding!r}: expected {len(in_spatial)} '
                     '(low, high) pairs.')
  return pads


def _out_spatial(in_spatial, kernel_spatial, strides, pads, dilation):
  return tuple(
      (n + lo + hi - (k - 1) * d - 1) // s + 1
      for n, k, s, (lo, hi), d in zip(in_spatial, kernel_spatial, strides,
                                      pads, dilation))


def _pad(x: jax.Array, pads) -> jax.Array:
  """Zero-pads (or, for negative pads, crops) the spatial axes of
  [B, *spatial, C]."""
  config = [(0, 0, 0)] + [(lo, hi, 0) for lo, hi in pads] + [(0, 0, 0)]
  return lax.pad(x, jnp.zeros((), x.dtype), config)


def _tap(xp: jax.Array, tap: Sequence[int], strides, dilation,
         out_spatial) -> jax.Array:
  """The strided slice of the padded input that kernel tap `tap` meets:
  xp[b, o * s + tap * d, c] at each output position o."""
  b, c = xp.shape[0], xp.shape[-1]
  start = tuple(t * d for t, d in zip(tap, dilation))
  limit = tuple(a + (n - 1) * s + 1
                for a, n, s in zip(start, out_spatial, strides))
  return lax.slice(xp, (0,) + start + (0,), (b,) + limit + (c,),
                   (1,) + tuple(strides) + (1,))


def _taps(kernel_spatial: Sequence[int]):
  """The kernel's taps, row-major."""
  return list(itertools.product(*(range(k) for k in kernel_spatial)))


def patches(x: jax.Array, kernel_size: Sequence[int],
            strides: int | Sequence[int] | None = None,
            padding: Padding = 'SAME',
            dilation: int | Sequence[int] | None = None) -> jax.Array:
  """im2col: [B, *spatial, C] -> [B, *out_spatial, taps * C].

  Each output position's zero-padded receptive field, row-major over the
  kernel taps, channels last within a tap: feature ``t * C + c`` is tap t's
  channel c, so ``patches(x, k) @ kernel.reshape(-1, F)`` is the
  convolution with a kernel [*k, C, F].

  Args:
    x: [B, *spatial, C].
    kernel_size: the kernel's spatial shape.
    strides: per spatial axis (an int: all), default 1.
    padding: 'SAME', 'VALID' or (low, high) per spatial axis.
    dilation: the kernel's dilation per spatial axis, default 1.
  """
  n = x.ndim - 2
  kernel_size = _tuple(kernel_size, n, 'kernel_size')
  strides = _tuple(strides, n, 'strides')
  dilation = _tuple(dilation, n, 'dilation')
  pads = _pads(x.shape[1:-1], kernel_size, strides, padding, dilation)
  out = _out_spatial(x.shape[1:-1], kernel_size, strides, pads, dilation)
  xp = _pad(x, pads)
  return jnp.concatenate(
      [_tap(xp, t, strides, dilation, out) for t in _taps(kernel_size)],
      axis=-1)


def matmul_last(x: jax.Array, w: jax.Array, precision: Any = None
                ) -> jax.Array:
  """x [..., C] @ w [C, F] -> [..., F], as one 2-D matmul of x's rows.

  The same values as ``jnp.matmul(x, w)``; flattening first keeps the
  gradient with respect to `w` a plain [N, C]^T [N, F] matmul on XLA:CPU,
  where the matmul of a higher-rank `x` has it transpose the output's
  gradient first.
  """
  y = jnp.matmul(x.reshape(-1, x.shape[-1]), w, precision=precision)
  return y.reshape(x.shape[:-1] + w.shape[-1:])


def kernel_term(x: jax.Array, kernel: jax.Array, strides: Sequence[int],
                pads, dilation: Sequence[int],
                precision: Any = None) -> jax.Array:
  """conv(x, kernel) written as matmuls, linear in `kernel`: the kernel's
  part of 'patch_grad''s derivative, arranged so that its transpose (the
  kernel gradient) is matmuls too.

  dkernel[t, c, f] = sum_{b, o} xp[b, o * s + t * d, c] g[b, o, f] with xp
  the padded input and g the output's gradient. The form is chosen from
  the shapes: at stride 1, when the output has no more channels than the
  input, the map is sum_t shift_t(x @ kernel[t]), whose transpose shifts g
  (the narrower operand) and multiplies it by x; otherwise it is
  sum_t shift_t(x) @ kernel[t], whose transpose shifts x. The shifted
  copies are concatenated into one matmul when the shifted operand has at
  most `CONCAT_MAX_CHANNELS` channels, else each tap is its own matmul.

  Args:
    x: [B, *spatial, C] input.
    kernel: [*kernel_size, C, F].
    strides, pads, dilation: the convolution's, explicit per spatial axis.
    precision: of the matmuls.
  """
  kernel_spatial = tuple(kernel.shape[:-2])
  c, f = kernel.shape[-2:]
  taps = math.prod(kernel_spatial)
  out_spatial = _out_spatial(x.shape[1:-1], kernel_spatial, strides, pads,
                             dilation)
  if all(s == 1 for s in strides) and f <= c:
    if f <= CONCAT_MAX_CHANNELS:
      z = jnp.matmul(x, kernel.reshape(taps, c, f).transpose(1, 0, 2)
                     .reshape(c, taps * f), precision=precision)
      parts = [z[..., t * f:(t + 1) * f] for t in range(taps)]
    else:
      parts = [jnp.matmul(x, kernel.reshape(taps, c, f)[t],
                          precision=precision) for t in range(taps)]
    # y[o] = sum_t zp_t[o + t d], zp_t = x @ kernel[t] padded like x.
    return sum(_tap(_pad(z, pads), t, strides, dilation, out_spatial)
               for t, z in zip(_taps(kernel_spatial), parts))
  xp = _pad(x, pads)
  xs = [_tap(xp, t, strides, dilation, out_spatial)
        for t in _taps(kernel_spatial)]
  if c <= CONCAT_MAX_CHANNELS:
    return jnp.matmul(jnp.concatenate(xs, axis=-1),
                      kernel.reshape(taps * c, f), precision=precision)
  return sum(jnp.matmul(xt, kt, precision=precision)
             for xt, kt in zip(xs, kernel.reshape(taps, c, f)))


def _xla(x, kernel, strides, pads, dilation, precision):
  return lax.conv_general_dilated(
      x, kernel, strides, pads, rhs_dilation=dilation,
      dimension_numbers=channels_last(x.ndim - 2), precision=precision)


def channels_last(n: int) -> lax.ConvDimensionNumbers:
  """The dimension numbers of [B, *spatial, C] inputs, [*k, C, F] kernels
  and [B, *spatial, F] outputs with `n` spatial axes (Flax's layout)."""
  io = (0, n + 1) + tuple(range(1, n + 1))
  return lax.ConvDimensionNumbers(lhs_spec=io,
                                  rhs_spec=(n + 1, n) + tuple(range(n)),
                                  out_spec=io)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4, 5))
def _patch_grad(x, kernel, strides, pads, dilation, precision):
  return _xla(x, kernel, strides, pads, dilation, precision)


def _patch_grad_jvp(strides, pads, dilation, precision, primals, tangents):
  """XLA's convolution of the input's tangent, `kernel_term` of the
  kernel's: reverse mode transposes both, so the input gradient is XLA's
  (transposed) convolution and the kernel gradient is matmuls."""
  x, kernel = primals
  dx, dkernel = tangents
  y = _xla(x, kernel, strides, pads, dilation, precision)
  terms = []
  if not isinstance(dx, custom_derivatives.SymbolicZero):
    terms.append(_xla(dx, kernel, strides, pads, dilation, precision))
  if not isinstance(dkernel, custom_derivatives.SymbolicZero):
    terms.append(kernel_term(x, dkernel, strides, pads, dilation, precision))
  return y, sum(terms[1:], terms[0]) if terms else jnp.zeros_like(y)


_patch_grad.defjvp(_patch_grad_jvp, symbolic_zeros=True)


def choose_method(kernel_shape: Sequence[int],
                  input_shape: Sequence[int], *,
                  strides: Sequence[int] | None = None,
                  backend: str | None = None,
                  supported: bool = True) -> str:
  """The method 'auto' runs for a kernel [*kernel_size, C, F] on an input
  [B, *spatial, C] with `strides` (default 1): 'xla' unless on CPU, for a
  kernel of more than one tap, in a call the matmul methods cover
  (`supported`), where it is 'patch_grad' when

  - convolutions run on YNNPACK (`convolutions_on_ynnpack`) and the input
    has at least `PATCH_GRAD_MIN_INPUT` elements (YNNPACK's kernel
    gradient is slow; on smaller inputs it keeps up), or
  - convolutions run on Eigen and the output is narrow: every stride 1,
    F at most `NARROW_MAX_FEATURES` and below C.

  A one-tap kernel is a matmul already, and other backends have fast
  convolution gradients."""
  backend = backend or jax.default_backend()
  if not (supported and backend == 'cpu'
          and math.prod(kernel_shape[:-2]) > 1):
    return 'xla'
  if convolutions_on_ynnpack():
    big = math.prod(input_shape) >= PATCH_GRAD_MIN_INPUT
    return 'patch_grad' if big else 'xla'
  c, f = kernel_shape[-2:]
  stride_1 = strides is None or all(s == 1 for s in strides)
  if stride_1 and f <= NARROW_MAX_FEATURES and f < c:
    return 'patch_grad'
  return 'xla'


def conv(x: jax.Array, kernel: jax.Array,
         strides: int | Sequence[int] | None = None,
         padding: Padding = 'SAME',
         dilation: int | Sequence[int] | None = None, *,
         method: str = 'auto', precision: Any = None) -> jax.Array:
  """A channels-last convolution, `lax.conv_general_dilated`'s values.

  Args:
    x: [B, *spatial, C], one or more spatial axes.
    kernel: [*kernel_size, C, F].
    strides: per spatial axis (an int: all), default 1.
    padding: 'SAME', 'VALID' or (low, high) per spatial axis.
    dilation: the kernel's dilation per spatial axis, default 1.
    method: one of `METHODS` (see the module docstring).
    precision: of the convolution and the matmuls.

  Returns:
    [B, *out_spatial, F].
  """
  if method not in METHODS:
    raise ValueError(f'method={method!r} is not one of {METHODS}.')
  n = x.ndim - 2
  if n < 1 or kernel.ndim != n + 2 or kernel.shape[-2] != x.shape[-1]:
    raise ValueError(
        f'conv: input {x.shape} (expected [B, *spatial, C]) does not match '
        f'kernel {kernel.shape} (expected [*kernel_size, C, F]).')
  strides = _tuple(strides, n, 'strides')
  dilation = _tuple(dilation, n, 'dilation')
  pads = _pads(x.shape[1:-1], kernel.shape[:-2], strides, padding, dilation)
  if method == 'auto':
    method = choose_method(kernel.shape, x.shape, strides=strides)
  if method == 'xla':
    return _xla(x, kernel, strides, pads, dilation, precision)
  if method == 'patch_grad':
    return _patch_grad(x, kernel, strides, pads, dilation, precision)
  p = patches(x, kernel.shape[:-2], strides, pads, dilation)
  return jnp.matmul(p, kernel.reshape(-1, kernel.shape[-1]),
                    precision=precision)


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array,
                         window_strides: Sequence[int], padding: Padding,
                         lhs_dilation: Sequence[int] | None = None,
                         rhs_dilation: Sequence[int] | None = None,
                         dimension_numbers: Any = None,
                         feature_group_count: int = 1,
                         batch_group_count: int = 1,
                         precision: Any = None,
                         preferred_element_type: Any = None, *,
                         method: str = 'auto') -> jax.Array:
  """`lax.conv_general_dilated`'s signature over `conv` (what `Conv` hands
  to ``nn.Conv``). Calls `conv` does not cover (input dilation, groups, a
  layout other than channels-last, a preferred element type) go to lax
  under 'auto' and raise under 'patches' or 'patch_grad'."""
  if method not in METHODS:
    raise ValueError(f'method={method!r} is not one of {METHODS}.')
  n = lhs.ndim - 2
  layout = (lax.conv_dimension_numbers(lhs.shape, rhs.shape,
                                       dimension_numbers)
            if dimension_numbers is not None else None)
  covered = (layout == channels_last(n)
             and all(d == 1 for d in (lhs_dilation or ()))
             and feature_group_count == 1 and batch_group_count == 1
             and preferred_element_type is None)
  if method == 'auto' and not covered:
    method = 'xla'
  if method == 'xla':
    return lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count,
        batch_group_count=batch_group_count, precision=precision,
        preferred_element_type=preferred_element_type)
  if not covered:
    raise ValueError(
        f'method={method!r} covers channels-last convolutions without input '
        'dilation, groups or a preferred element type; use method=\'xla\' '
        'or \'auto\'.')
  return conv(lhs, rhs, window_strides, padding, rhs_dilation, method=method,
              precision=precision)


def Conv(  # pylint: disable=invalid-name
    features: int, kernel_size: int | Sequence[int], *,
    method: str = 'auto', **kwargs) -> nn.Conv:
  """``nn.Conv(features, kernel_size, **kwargs)`` computed by `conv` with
  `method`; the kernel initialiser defaults to `initializers.lecun_normal`
  (drawn flat: Flax's default values)."""
  if method not in METHODS:
    raise ValueError(f'method={method!r} is not one of {METHODS}.')
  kwargs.setdefault('kernel_init', inits.lecun_normal())
  return nn.Conv(features, kernel_size,
                 conv_general_dilated=functools.partial(
                     conv_general_dilated, method=method), **kwargs)
