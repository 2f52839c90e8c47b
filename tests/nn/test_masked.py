"""Tests for jaxgen.nn.masked: masks, the convolution, causality, `at`."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nn import masked


def _reference_mask(kh, kw, n_in, n_out, mask_type, colors):
  """Tap by tap from the raster order: an independent rule for the mask."""
  cy, cx = kh // 2, kw // 2
  g_in = [f * colors // n_in for f in range(n_in)]
  g_out = [f * colors // n_out for f in range(n_out)]
  ref = np.zeros((kh, kw, n_in, n_out))
  for dy, dx, a, b in itertools.product(range(kh), range(kw), range(n_in),
                                        range(n_out)):
    if (dy, dx) < (cy, cx):
      ref[dy, dx, a, b] = 1
    elif (dy, dx) == (cy, cx):
      ref[dy, dx, a, b] = (g_in[a] < g_out[b] if mask_type == 'A' else
                           g_in[a] <= g_out[b])
  return ref


def test_mask_3x3_grey_written_out():
  a = masked.make_mask(3, 1, 1, 'A')[..., 0, 0]
  b = masked.make_mask(3, 1, 1, 'B')[..., 0, 0]
  np.testing.assert_array_equal(a, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
  np.testing.assert_array_equal(b, [[1, 1, 1], [1, 1, 0], [0, 0, 0]])
  assert a.dtype == np.float32


def test_mask_centre_rgb_written_out():
  # 3 input channels (R, G, B), 6 output features (RR, GG, BB).
  a = masked.make_mask(5, 3, 6, 'A', color_channels=3)
  b = masked.make_mask(5, 3, 6, 'B', color_channels=3)
  np.testing.assert_array_equal(a[2, 2], [[0, 0, 1, 1, 1, 1],
                                          [0, 0, 0, 0, 1, 1],
                                          [0, 0, 0, 0, 0, 0]])
  np.testing.assert_array_equal(b[2, 2], [[1, 1, 1, 1, 1, 1],
                                          [0, 0, 1, 1, 1, 1],
                                          [0, 0, 0, 0, 1, 1]])
  # Off-centre taps ignore the colour groups.
  assert a[1].all() and a[2, :2].all() and not a[2, 3:].any()
  assert not a[3:].any()


@pytest.mark.parametrize('kernel,n_in,n_out,mask_type,colors', [
    ((7, 7), 1, 4, 'A', 1), ((3, 5), 4, 2, 'B', 1), ((1, 3), 2, 2, 'A', 1),
    ((5, 3), 3, 6, 'A', 3), ((3, 3), 6, 9, 'B', 3), ((1, 1), 6, 3, 'B', 3),
])
def test_mask_matches_raster_rule(kernel, n_in, n_out, mask_type, colors):
  np.testing.assert_array_equal(
      masked.make_mask(kernel, n_in, n_out, mask_type, colors),
      _reference_mask(*kernel, n_in, n_out, mask_type, colors))


def test_bad_arguments():
  with pytest.raises(ValueError, match='odd'):
    masked.make_mask(4, 1, 1, 'A')
  with pytest.raises(ValueError, match='mask_type'):
    masked.make_mask(3, 1, 1, 'C')
  with pytest.raises(ValueError, match='colour groups'):
    masked.make_mask(3, 3, 4, 'B', color_channels=3)
  assert masked.visible_rows((7, 3)) == 4


def _numpy_conv(x, kernel, bias):
  """Float64 'SAME' cross-correlation by explicit loops over the taps."""
  kh, kw = kernel.shape[:2]
  b, h, w, _ = x.shape
  xp = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
  out = np.zeros((b, h, w, kernel.shape[-1])) + bias
  for dy, dx in itertools.product(range(kh), range(kw)):
    out += xp[:, dy:dy + h, dx:dx + w] @ kernel[dy, dx]
  return out


@pytest.fixture(scope='module')
def rgb_layer():
  """A colour mask-A 5x3 conv, 3 -> 6 features, with a random bias."""
  layer = masked.MaskedConv2D(6, (5, 3), 'A', color_channels=3,
                              bias_init=jax.nn.initializers.normal(1.0))
  x = jax.random.normal(jax.random.key(1), (2, 6, 5, 3))
  params = jax.jit(layer.init)(jax.random.key(0), x)
  return layer, params, x


def test_1x1_conv_matches_numpy_float64():
  """The 1x1 layer runs as a matmul: still the masked convolution."""
  layer = masked.MaskedConv2D(6, 1, 'B', color_channels=3,
                              bias_init=jax.nn.initializers.normal(1.0))
  x = jax.random.normal(jax.random.key(4), (2, 3, 2, 9))
  params = jax.jit(layer.init)(jax.random.key(5), x)
  y = jax.jit(layer.apply)(params, x)
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)['params']
  ref = _numpy_conv(np.asarray(x, np.float64),
                    p['kernel'] * masked.make_mask(1, 9, 6, 'B', 3), p['bias'])
  np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
  assert not masked.make_mask(1, 9, 6, 'B', 3).all()  # the mask bites


def test_conv_matches_numpy_float64(rgb_layer):
  layer, params, x = rgb_layer
  y = jax.jit(layer.apply)(params, x)
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)['params']
  assert p['kernel'].shape == (5, 3, 3, 6)
  ref = _numpy_conv(np.asarray(x, np.float64),
                    p['kernel'] * masked.make_mask((5, 3), 3, 6, 'A', 3),
                    p['bias'])
  np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('mask_type,method', [('A', 'taps'), ('B', 'taps'),
                                              ('A', 'conv'), ('B', 'conv')])
def test_causality_by_jacobian(mask_type, method):
  """dy[i, j, g] / dx[i', j', g'] is zero unless (i', j', g') comes before
  (i, j, g) in raster order (or equals it, for mask 'B'), and non-zero on
  every visible tap inside the kernel."""
  h, w, kh, kw = 5, 4, 3, 5
  layer = masked.MaskedConv2D(3, (kh, kw), mask_type, color_channels=3,
                              method=method)
  x = jax.random.normal(jax.random.key(2), (1, h, w, 3))
  params = layer.init(jax.random.key(3), x)
  jac = jax.jit(jax.jacrev(lambda v: layer.apply(params, v)[0]))(x)
  jac = np.asarray(jac)[..., 0, :, :, :]  # [h, w, 3 (out g), h, w, 3 (in g')]
  for i, j, g, i2, j2, g2 in itertools.product(range(h), range(w), range(3),
                                               range(h), range(w), range(3)):
    before = (i2, j2) < (i, j) or ((i2, j2) == (i, j) and (
        g2 < g if mask_type == 'A' else g2 <= g))
    in_kernel = abs(i2 - i) <= kh // 2 and abs(j2 - j) <= kw // 2
    d = jac[i, j, g, i2, j2, g2]
    if before and in_kernel:
      assert d != 0, (i, j, g, i2, j2, g2)
    else:
      assert d == 0, (i, j, g, i2, j2, g2, d)


def test_at_matches_call_everywhere(rgb_layer):
  layer, params, x = rgb_layer
  kh, kw = 5, 3
  rows = masked.visible_rows((kh, kw))
  y = layer.apply(params, x)
  xp = jnp.pad(x, ((0, 0), (kh // 2, 0), (kw // 2, kw // 2), (0, 0)))
  # Every window at once: [B, H, W, rows, kw, C].
  windows = jnp.stack([jnp.stack([xp[:, i:i + rows, j:j + kw]
                                  for j in range(x.shape[2])], 1)
                       for i in range(x.shape[1])], 1)
  # Hidden entries may hold anything: poison them.
  windows = windows.at[..., -1, kw // 2 + 1:, :].set(1e6)
  at = jax.jit(lambda p, v: layer.apply(p, v, method=layer.at))(params, windows)
  np.testing.assert_allclose(at, y, rtol=1e-5, atol=1e-5)


def _dense_reference(x, kernel, mask_type, colors):
  """The straightforward masked conv: the full masked kernel, 'SAME'."""
  kh, kw, n_in, n_out = kernel.shape
  mask = jnp.asarray(_reference_mask(kh, kw, n_in, n_out, mask_type, colors),
                     kernel.dtype)
  return jax.lax.conv_general_dilated(
      x, kernel * mask, (1, 1), 'SAME',
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def _value_and_grads(fn, x, kernel, key):
  """fn(x, kernel), and the vjp of a random cotangent w.r.t. x and kernel."""
  y, vjp = jax.vjp(fn, x, kernel)
  return (y,) + vjp(jax.random.normal(key, y.shape))


_METHOD_CASES = [  # kernel, n_in, n_out, mask type, colour groups, batch
    ((1, 1), 3, 6, 'B', 3, (2,)), ((1, 1), 2, 3, 'A', 1, (2,)),
    ((3, 3), 4, 4, 'B', 1, (2,)), ((3, 3), 1, 5, 'A', 1, (3,)),
    ((5, 5), 6, 3, 'A', 3, (1,)), ((7, 7), 1, 8, 'A', 1, (2,)),
    ((7, 7), 3, 6, 'B', 3, (1,)), ((3, 5), 3, 9, 'B', 3, (2, 2)),
    ((5, 1), 2, 4, 'B', 1, (2,)), ((1, 5), 6, 6, 'A', 3, (1,)),
]


# 'patch_grad' is 'conv' with another kernel gradient: three cases suffice.
_METHODS = [(m, case) for m in ('taps', 'conv', 'rows', 'auto')
            for case in _METHOD_CASES] + [
                ('patch_grad', _METHOD_CASES[i]) for i in (2, 5, 7)]


@pytest.mark.parametrize('method,case', _METHODS)
def test_masked_conv_methods_match_the_dense_masked_conv(method, case):
  """Value and gradients (input and full kernel) of every method equal the
  dense masked conv's: the hidden taps get exactly zero gradient."""
  kernel, n_in, n_out, mask_type, colors, batch = case
  kx, kk, kg = jax.random.split(jax.random.key(len(str(kernel)) + n_in), 3)
  x = jax.random.normal(kx, batch + (6, 5, n_in))
  w = jax.random.normal(kk, tuple(kernel) + (n_in, n_out))
  fast = jax.jit(lambda v, k: masked.masked_conv(v, k, mask_type, colors,
                                                 method=method))
  flat = (-1,) + x.shape[-3:]
  ref = jax.jit(lambda v, k: _dense_reference(
      v.reshape(flat), k, mask_type, colors).reshape(batch + (6, 5, n_out)))
  got = _value_and_grads(fast, x, w, kg)
  want = _value_and_grads(ref, x, w, kg)
  for a, b in zip(got, want):
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
  mask = _reference_mask(*kernel, n_in, n_out, mask_type, colors)
  assert not np.asarray(got[2])[mask == 0].any()


def test_dense_method_is_the_reference():
  x = jax.random.normal(jax.random.key(7), (2, 4, 5, 3))
  w = jax.random.normal(jax.random.key(8), (3, 3, 3, 6))
  np.testing.assert_allclose(
      masked.masked_conv(x, w, 'A', 3, method='dense'),
      _dense_reference(x, w, 'A', 3), rtol=1e-6, atol=1e-6)
  with pytest.raises(ValueError, match='method'):
    masked.masked_conv(x, w, 'A', 3, method='fft')


def test_live_taps():
  assert masked.live_taps(masked.make_mask(3, 1, 1, 'B')[:2]) == (
      (0, 0), (0, 1), (0, 2), (1, 0), (1, 1))
  assert masked.live_taps(masked.make_mask(3, 1, 1, 'A')[:2]) == (
      (0, 0), (0, 1), (0, 2), (1, 0))
  assert len(masked.live_taps(masked.make_mask(7, 3, 6, 'A', 3))) == 25
  assert len(masked.live_taps(masked.make_mask(7, 1, 6, 'A', 1))) == 24


@pytest.mark.parametrize('xla_flags, on_ynnpack', [
    ('', True),
    ('--xla_cpu_experimental_ynn_fusion_type=-individual_convolution', False)])
def test_the_method_rule(monkeypatch, xla_flags, on_ynnpack):
  """Convolutions on YNNPACK (XLA's default): the live-tap matmul except on
  image layers and wide layers that do not widen; on Eigen: XLA's
  convolution. One tap: a matmul."""
  monkeypatch.setenv('XLA_FLAGS', xla_flags)
  conv = 'conv'
  taps = 'taps' if on_ynnpack else 'conv'
  assert masked.choose_method((2, 3, 64, 64), 5) == conv
  assert masked.choose_method((2, 3, 64, 128), 5) == taps
  assert masked.choose_method((4, 7, 1, 128), 24) == conv
  assert masked.choose_method((1, 1, 1, 128), 1) == 'taps'
  assert masked.choose_method((1, 2, 64, 64), 2) == taps
  assert masked.choose_method((2, 3, 32, 32), 5) == taps


def test_row_blocks():
  # 3x3 'B': the row above (1x3) and the current row up to the centre (1x2).
  assert masked.row_blocks(masked.live_taps(
      masked.make_mask(3, 4, 4, 'B')[:2])) == ((0, 1, 0, 3), (1, 1, 0, 2))
  # 7x7 'A', grey: three full rows (3x7), then three taps left of the centre.
  assert masked.row_blocks(masked.live_taps(
      masked.make_mask(7, 1, 8, 'A')[:4])) == ((0, 3, 0, 7), (3, 1, 0, 3))
  # Rows with different spans, a gap inside a row, a single tap.
  assert masked.row_blocks(((0, 1), (1, 0), (1, 2), (2, 1), (3, 1))) == (
      (0, 1, 1, 1), (1, 1, 0, 3), (2, 2, 1, 1))


def test_row_conv_equals_the_conv_of_the_zeroed_kernel():
  x = jax.random.normal(jax.random.key(11), (2, 5, 6, 3))
  w = jax.random.normal(jax.random.key(12), (4, 3, 3, 4))
  taps = ((0, 1), (1, 0), (1, 2), (2, 0), (2, 1), (3, 0), (3, 1))
  keep = np.zeros((4, 3, 1, 1), np.float32)
  keep[tuple(np.array(taps).T)] = 1
  keep[1, 1] = 1  # inside row 1's span: computed, so it must count
  padding = ((2, 1), (1, 0))
  want = jax.lax.conv_general_dilated(
      x, w * keep, (1, 1), padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  got = masked.row_conv(x, w * keep, taps, padding)
  assert got.shape == want.shape == (2, 5, 5, 4)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_tap_conv_equals_the_conv_of_the_zeroed_kernel():
  x = jax.random.normal(jax.random.key(9), (2, 5, 6, 3))
  w = jax.random.normal(jax.random.key(10), (3, 2, 3, 4))
  taps = ((0, 1), (1, 0), (2, 1))
  keep = np.zeros((3, 2, 1, 1), np.float32)
  keep[tuple(np.array(taps).T)] = 1
  padding = ((2, 1), (0, 1))
  want = jax.lax.conv_general_dilated(
      x, w * keep, (1, 1), padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  got = masked.tap_conv(x, w, taps, padding)
  assert got.shape == want.shape == (2, 6, 6, 4)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('k,mask_type,colors', [(3, 'B', 1), (7, 'A', 1),
                                                (5, 'A', 3), (3, 'B', 3)])
def test_stack_methods_agree(k, mask_type, colors):
  """The gated stacks give the same value and gradients as taps and as
  convolutions, and equal the dense masked formulation: the vertical
  stack is the full kernel's rows <= centre, the horizontal one the
  centre row's columns <= centre."""
  x = jax.random.normal(jax.random.key(k), (2, 5, 6, 6))
  half = k // 2
  out = {}
  for method in ('taps', 'conv', 'rows'):
    v = masked.VerticalStackConv(6, k, method=method)
    h = masked.HorizontalStackConv(6, k, mask_type, colors, method=method)
    pv = v.init(jax.random.key(1), x)
    ph = h.init(jax.random.key(2), x)
    out[method] = [_value_and_grads(
        lambda a, p, m=m: m.apply(p, a), x, p, jax.random.key(3))
                   for m, p in ((v, pv), (h, ph))]
  for method in ('conv', 'rows'):
    for a, b in zip(jax.tree.leaves(out['taps']),
                    jax.tree.leaves(out[method])):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
  (yv, *_), (yh, *_) = out['taps']
  # Dense references: embed the cut kernels in a full k x k kernel.
  full = jnp.zeros((k, k, 6, 6)).at[:half + 1].set(pv['params']['kernel'])
  ref_v = jax.lax.conv_general_dilated(
      x, full, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  np.testing.assert_allclose(yv, ref_v + pv['params']['bias'], rtol=1e-5,
                             atol=1e-4)
  full = jnp.zeros((k, k, 6, 6)).at[half, :half + 1].set(
      ph['params']['kernel'][0])
  ref_h = _dense_reference(x, full, mask_type, colors)
  np.testing.assert_allclose(yh, ref_h + ph['params']['bias'], rtol=1e-5,
                             atol=1e-4)


def test_cropped_stack_kernels_equal_the_full_ones_with_zeros():
  """VerticalStackConv(rows=r) is the full k//2 + 1 row kernel with its top
  rows zero, and HorizontalStackConv(crop_centre=True) is the mask-'A'
  kernel with its (masked) centre tap: same values, and the same
  gradients on the kept taps and on the input."""
  k, half = 7, 3
  x = jax.random.normal(jax.random.key(0), (2, 6, 9, 2))
  v = masked.VerticalStackConv(4, k, rows=half)
  pv = v.init(jax.random.key(1), x)
  assert pv['params']['kernel'].shape == (half, k, 2, 4)
  full_v = masked.VerticalStackConv(4, k)
  pv_full = {'params': {
      'kernel': jnp.pad(pv['params']['kernel'], ((1, 0),) + ((0, 0),) * 3),
      'bias': pv['params']['bias']}}
  h = masked.HorizontalStackConv(4, k, 'A', crop_centre=True)
  ph = h.init(jax.random.key(2), x)
  assert ph['params']['kernel'].shape == (1, half, 2, 4)
  full_h = masked.HorizontalStackConv(4, k, 'A')
  ph_full = {'params': {
      'kernel': jnp.concatenate([ph['params']['kernel'],
                                 jnp.ones((1, 1, 2, 4))], axis=1),
      'bias': ph['params']['bias']}}
  for cut, full, p_cut, p_full, kept in (
      (v, full_v, pv, pv_full, np.s_[1:]),
      (h, full_h, ph, ph_full, np.s_[:, :half])):
    key = jax.random.key(3)
    y, gx, gk = _value_and_grads(
        lambda a, w, m=cut, p=p_cut: m.apply(
            {'params': {**p['params'], 'kernel': w}}, a),
        x, p_cut['params']['kernel'], key)
    y2, gx2, gk2 = _value_and_grads(
        lambda a, w, m=full, p=p_full: m.apply(
            {'params': {**p['params'], 'kernel': w}}, a),
        x, p_full['params']['kernel'], key)
    np.testing.assert_allclose(y, y2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gx, gx2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gk, gk2[kept], rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match='crop_centre'):
    masked.HorizontalStackConv(4, k, 'B', crop_centre=True).init(
        jax.random.key(0), x)
  with pytest.raises(ValueError, match='rows must be in'):
    masked.VerticalStackConv(4, 3, rows=3).init(jax.random.key(0), x)
