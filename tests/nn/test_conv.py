"""jaxgen.nn.conv: values and gradients against lax, Flax's parameter tree,
the 'auto' rule and the errors."""

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nn import conv

METHODS = ('xla', 'patches', 'patch_grad')

# (input shape [B, *spatial, C], kernel size, strides, padding, dilation,
# out features): 1-D and 2-D, stride 1 and 2, SAME / VALID / explicit pads,
# odd and even kernels, dilation; the kernel gradient's paths (shift the
# output gradient when it has no more channels than the input, at stride
# 1; concatenate a narrow shifted operand, one matmul per tap for a wide
# one).
CASES = {
    'same_3x3_narrow_in': ((2, 7, 6, 3), (3, 3), 1, 'SAME', 1, 20),
    'same_3x3_wide_in_narrow_out': ((2, 6, 5, 20), (3, 3), 1, 'SAME', 1, 6),
    'same_3x3_one_out': ((2, 6, 7, 12), (3, 3), 1, 'SAME', 1, 1),
    'stride2_3x3_pads': ((2, 8, 7, 20), (3, 3), 2, ((1, 1), (1, 1)), 1, 6),
    'stride2_even_same': ((2, 8, 8, 3), (4, 4), 2, 'SAME', 1, 5),
    'valid_dilated': ((2, 9, 8, 4), (3, 2), 1, 'VALID', 2, 7),
    'dilated_same_wide': ((2, 9, 8, 20), (3, 3), 1, 'SAME', 2, 20),
    'asymmetric_pads': ((2, 7, 6, 20), (4, 3), 1, ((2, 0), (1, 3)), 1, 19),
    '1d_stride2_dilated': ((2, 11, 20), (3,), 2, 'SAME', 2, 4),
}


def _run(case):
  """Reference and each method's (value, d input, d kernel) of
  sum(conv(x, kernel) * g) and forward-mode derivative along (tx, tk), one
  jitted program."""
  shape, ksize, strides, padding, dilation, features = CASES[case]
  n = len(shape) - 2
  kx, kk, kg, ktx, ktk = jax.random.split(jax.random.key(0), 5)
  x = jax.random.normal(kx, shape)
  kernel = jax.random.normal(kk, tuple(ksize) + (shape[-1], features))
  s, d = (strides,) * n, (dilation,) * n

  def reference(x, kernel):
    return lax.conv_general_dilated(x, kernel, s, padding, rhs_dilation=d,
                                    dimension_numbers=conv.channels_last(n))

  out_shape = jax.eval_shape(reference, x, kernel).shape
  g = jax.random.normal(kg, out_shape)
  tx = jax.random.normal(ktx, x.shape)
  tk = jax.random.normal(ktk, kernel.shape)

  @jax.jit
  def run(x, kernel):
    def with_grads(f):
      y, vjp = jax.vjp(f, x, kernel)
      return (y,) + vjp(g) + (jax.jvp(f, (x, kernel), (tx, tk))[1],)
    out = {'lax': with_grads(reference)}
    for method in METHODS:
      out[method] = with_grads(
          lambda x, k, method=method: conv.conv(x, k, strides, padding,
                                                dilation, method=method))
    return out

  return run(x, kernel)


@pytest.mark.parametrize('case', sorted(CASES))
def test_values_and_gradients_match_lax(case):
  out = _run(case)
  ref = out['lax']
  for method in METHODS:
    for name, a, b in zip(('value', 'd input', 'd kernel', 'jvp'),
                          out[method], ref):
      assert a.shape == b.shape, (method, name)
      scale = float(jnp.max(jnp.abs(b)))
      err = float(jnp.max(jnp.abs(a - b)))
      assert err <= 2e-6 * scale, (case, method, name, err, scale)


def test_patches_order_is_taps_row_major_then_channels():
  x = jnp.arange(2 * 3 * 3 * 2, dtype=jnp.float32).reshape(2, 3, 3, 2)
  p = conv.patches(x, (3, 3))
  assert p.shape == (2, 3, 3, 18)
  # The centre pixel's patch is its whole 3x3 neighbourhood, in order.
  np.testing.assert_array_equal(p[:, 1, 1], x.reshape(2, 18))
  # Top-left pixel: the first row and column of taps are padding.
  np.testing.assert_array_equal(p[0, 0, 0, :8], 0)
  np.testing.assert_array_equal(p[0, 0, 0, 8:10], x[0, 0, 0])


@pytest.fixture(scope='module')
def flax_pair():
  """(flax nn.Conv, conv.Conv, input) with the same fields."""
  x = jax.random.normal(jax.random.key(3), (2, 8, 8, 5))
  kwargs = dict(strides=(2, 1), padding='SAME', kernel_dilation=(1, 2))
  return nn.Conv(7, (3, 3), **kwargs), conv.Conv(7, (3, 3), **kwargs), x


def test_parameter_tree_is_flax_conv_s(flax_pair):
  ref_layer, layer, x = flax_pair
  ref = ref_layer.init(jax.random.key(4), x)
  params = layer.init(jax.random.key(4), x)
  assert jax.tree.structure(params) == jax.tree.structure(ref)
  # The same kernel values too: the flat-drawn initialiser is Flax's.
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref)):
    assert a.shape == b.shape
    np.testing.assert_array_equal(a, b)
  np.testing.assert_allclose(layer.apply(params, x),
                             ref_layer.apply(ref, x), atol=1e-5)


def test_auto_rule(monkeypatch):
  monkeypatch.setenv('XLA_FLAGS', '')  # convolutions on YNNPACK
  big = (64, 28, 28, 64)  # at least conv.PATCH_GRAD_MIN_INPUT elements
  small = (64, 14, 14, 64)
  assert conv.choose_method((3, 3, 64, 64), big, backend='cpu') == (
      'patch_grad')
  assert conv.choose_method((3, 64, 64), (64, 784, 64),
                            backend='cpu') == 'patch_grad'
  assert conv.choose_method((3, 3, 64, 64), small, backend='cpu') == 'xla'
  assert conv.choose_method((1, 1, 64, 64), big, backend='cpu') == 'xla'
  assert conv.choose_method((3, 3, 64, 64), big, backend='gpu') == 'xla'
  assert conv.choose_method((3, 3, 64, 64), big, backend='cpu',
                            supported=False) == 'xla'
  # Convolutions on Eigen: XLA's convolution and its gradients, except on
  # narrow stride-1 outputs (a coupling net's last layer).
  monkeypatch.setenv(
      'XLA_FLAGS',
      '--xla_cpu_experimental_ynn_fusion_type=-individual_convolution')
  assert conv.choose_method((3, 3, 64, 64), big, backend='cpu') == 'xla'
  narrow = conv.NARROW_MAX_FEATURES
  for shape in (big, small):
    assert conv.choose_method((3, 3, 64, 2), shape, backend='cpu') == (
        'patch_grad')
    assert conv.choose_method((3, 3, 64, narrow), shape,
                              strides=(1, 1), backend='cpu') == 'patch_grad'
  assert conv.choose_method((3, 64, 1), (64, 784, 64),
                            backend='cpu') == 'patch_grad'
  # Wider outputs, strides, outputs no narrower than the input, one tap,
  # other backends and calls the matmuls do not cover: XLA's.
  assert conv.choose_method((3, 3, 64, narrow + 1), big,
                            backend='cpu') == 'xla'
  assert conv.choose_method((3, 3, 64, 2), big, strides=(2, 2),
                            backend='cpu') == 'xla'
  assert conv.choose_method((3, 3, 2, 2), (64, 28, 28, 2),
                            backend='cpu') == 'xla'
  assert conv.choose_method((1, 1, 64, 2), big, backend='cpu') == 'xla'
  assert conv.choose_method((3, 3, 64, 2), big, backend='gpu') == 'xla'
  assert conv.choose_method((3, 3, 64, 2), big, backend='cpu',
                            supported=False) == 'xla'


@pytest.mark.parametrize('xla_flags, on_ynnpack', [
    ('', True), ('--xla_a=1', True),
    ('--xla_cpu_experimental_ynn_fusion_type=-individual_convolution', False),
    ('--xla_cpu_experimental_ynn_fusion_type=+individual_convolution', True),
    ('--xla_cpu_experimental_ynn_fusion_type=individual_dot,reduce', False),
    ('--xla_cpu_experimental_ynn_fusion_type=individual_convolution', True),
    ('--xla_cpu_experimental_ynn_fusion_type=', False),
    ('--xla_cpu_experimental_ynn_fusion_type=-individual_convolution '
     '--xla_cpu_experimental_ynn_fusion_type=+individual_convolution', True),
])
def test_convolutions_on_ynnpack_from_the_xla_flags(xla_flags, on_ynnpack):
  assert conv.convolutions_on_ynnpack(xla_flags) is on_ynnpack


def test_calls_the_matmul_methods_do_not_cover():
  x = jax.random.normal(jax.random.key(5), (1, 6, 6, 4))
  grouped = conv.Conv(4, (3, 3), feature_group_count=2)
  params = grouped.init(jax.random.key(6), x)
  ref = nn.Conv(4, (3, 3), feature_group_count=2).apply(params, x)
  np.testing.assert_array_equal(grouped.apply(params, x), ref)  # auto: lax
  with pytest.raises(ValueError, match="method='patch_grad' covers"):
    conv.Conv(4, (3, 3), feature_group_count=2,
              method='patch_grad').apply(params, x)


def test_bad_method_is_named():
  with pytest.raises(ValueError, match="method='im2col' is not one of"):
    conv.Conv(4, (3, 3), method='im2col')
  with pytest.raises(ValueError, match="method='fast' is not one of"):
    conv.conv(jnp.zeros((1, 4, 4, 1)), jnp.zeros((3, 3, 1, 1)),
              method='fast')


@pytest.mark.parametrize('shape', [(5, 3), (2, 4, 3), (2, 3, 4, 3)])
def test_matmul_last_is_matmul_in_value_and_gradients(shape):
  kx, kw, kg = jax.random.split(jax.random.key(5), 3)
  x = jax.random.normal(kx, shape)
  w = jax.random.normal(kw, (3, 7))
  g = jax.random.normal(kg, shape[:-1] + (7,))

  @jax.jit
  def both(x, w):
    def grads(f):
      y, vjp = jax.vjp(f, x, w)
      return (y,) + vjp(g)
    return grads(jnp.matmul), grads(conv.matmul_last)

  ref, got = both(x, w)
  for name, a, b in zip(('value', 'd x', 'd w'), got, ref):
    assert a.shape == b.shape, name
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=name)
