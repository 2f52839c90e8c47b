"""jaxgen.nn.initializers: bitwise the values of jax.nn.initializers, faster."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nn import conv
from jaxgen.nn import initializers as inits

SHAPES = [(7,), (5, 3), (4, 6, 3), (3, 3, 5, 7), (2, 2, 3, 2, 4)]


@pytest.mark.parametrize('mode', inits.MODES)
@pytest.mark.parametrize('distribution', inits.DISTRIBUTIONS)
@pytest.mark.parametrize('shape', SHAPES[1:])
def test_variance_scaling_equals_jax_bitwise(mode, distribution, shape):
  key = jax.random.key(3)
  ours = inits.variance_scaling(0.7, mode, distribution)(key, shape)
  ref = jax.nn.initializers.variance_scaling(0.7, mode, distribution)(
      key, shape, jnp.float32)
  assert ours.shape == shape and ours.dtype == jnp.float32
  np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))


@pytest.mark.parametrize('axes', [
    dict(in_axis=(0, 1), out_axis=2),
    dict(in_axis=0, out_axis=-1, batch_axis=1),
    dict(in_axis=-2, out_axis=(0,)),
])
def test_fans_follow_the_axes_as_jax(axes):
  key = jax.random.key(1)
  shape = (2, 3, 4)
  ours = inits.lecun_normal(**axes)(key, shape)
  ref = jax.nn.initializers.lecun_normal(**axes)(key, shape, jnp.float32)
  np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))


@pytest.mark.parametrize('shape', SHAPES)
def test_normal_equals_jax_bitwise(shape):
  key = jax.random.key(5)
  np.testing.assert_array_equal(
      np.asarray(inits.normal(0.3)(key, shape)),
      np.asarray(jax.nn.initializers.normal(0.3)(key, shape, jnp.float32)))


def test_one_dimensional_weight_needs_an_input_axis():
  with pytest.raises(ValueError, match='in_axis'):
    inits.lecun_normal()(jax.random.key(0), (4,))
  with pytest.raises(ValueError, match='mode'):
    inits.variance_scaling(1.0, 'fan', 'normal')


def test_layers_are_drop_in_for_flax_defaults():
  """Same parameter tree, bitwise the same values, as plain Flax layers."""

  class Ours(nn.Module):
    @nn.compact
    def __call__(self, x, ids):
      h = inits.Conv(6, (3, 3))(x)
      e = inits.Embed(10, 6)(ids)
      return inits.Dense(4)(h.mean((1, 2)) + e)

  class Flax(nn.Module):
    @nn.compact
    def __call__(self, x, ids):
      h = nn.Conv(6, (3, 3))(x)
      e = nn.Embed(10, 6)(ids)
      return nn.Dense(4)(h.mean((1, 2)) + e)

  x, ids, key = jnp.ones((2, 5, 5, 3)), jnp.array([1, 7]), jax.random.key(0)
  ours, ref = Ours().init(key, x, ids), Flax().init(key, x, ids)
  assert jax.tree.structure(ours) == jax.tree.structure(ref)
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# (input shape, features, kernel size, nn.Conv options): the options the
# families pass to `inits.Conv` and the others nn.Conv has. Wide outputs
# (more features than input channels, or strided) and calls `conv` does not
# cover (input dilation, groups) run XLA's convolution, as nn.Conv does.
WIDE = {
    'same': ((2, 5, 6, 3), 6, (3, 3), {}),
    'int_strides_explicit_pads': ((2, 7, 6, 4), 8, (4, 4),
                                  dict(strides=2, padding=((1, 2), (0, 1)))),
    'circular': ((2, 5, 5, 2), 5, (3, 3), dict(padding='CIRCULAR')),
    'reflect_dilated': ((2, 7, 6, 3), 4, (3, 2),
                        dict(padding='REFLECT', kernel_dilation=(2, 1))),
    'causal_1d': ((2, 9, 3), 4, (3,), dict(padding='CAUSAL')),
    'input_dilation': ((2, 4, 4, 3), 5, (3, 3),
                       dict(input_dilation=2, padding=((1, 1), (2, 0)))),
    'grouped_narrow': ((2, 5, 5, 8), 4, (3, 3),
                       dict(feature_group_count=2, use_bias=False)),
    'bfloat16': ((2, 5, 5, 3), 4, (3, 3),
                 dict(dtype=jnp.bfloat16, param_dtype=jnp.bfloat16)),
    'precision_valid': ((2, 6, 6, 3), 4, (2, 2),
                        dict(padding='VALID', precision='highest')),
}
# Narrow stride-1 outputs (conv.choose_method: 'patch_grad' on CPU with
# convolutions on Eigen, as the test session runs them).
NARROW = {
    'same_one_out': ((2, 6, 5, 6), 1, (3, 3), {}),
    'explicit_pads_no_bias': ((2, 6, 6, 5), 1, (4, 4),
                              dict(padding=((2, 1), (1, 2)), use_bias=False)),
    'circular_dilated': ((2, 7, 6, 9), 3, (3, 3),
                         dict(padding='CIRCULAR', kernel_dilation=2)),
}


def _value_and_grads(module, params, x):
  def loss(params, x):
    y = module.apply(params, x).astype(jnp.float32)
    return jnp.sum(y * jnp.cos(jnp.arange(y.size).reshape(y.shape)))

  return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, x)


def _pair(case):
  shape, features, ksize, options = case
  x = jax.random.normal(jax.random.key(1), shape)
  ours = inits.Conv(features, ksize, **options)
  ref = nn.Conv(features, ksize, kernel_init=inits.lecun_normal(), **options)
  params = ours.init(jax.random.key(2), x)
  ref_params = ref.init(jax.random.key(2), x)
  assert type(ours) is nn.Conv
  assert (jax.tree.map(lambda a: (a.shape, a.dtype), params)
          == jax.tree.map(lambda a: (a.shape, a.dtype), ref_params))
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # A non-zero bias, so that its gradient and value are checked too.
  params = jax.tree.map(lambda p: p + 0.1, params)
  return ours, ref, params, x.astype(options.get('dtype', jnp.float32))


@pytest.mark.parametrize('name', WIDE)
def test_conv_is_nn_conv_bitwise_where_auto_runs_xla(name):
  """inits.Conv: nn.Conv's parameters, initial values, outputs and
  gradients, bitwise, on every option set that runs XLA's convolution."""
  ours, ref, params, x = _pair(WIDE[name])
  got, want = _value_and_grads(ours, params, x), _value_and_grads(
      ref, params, x)
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize('name', NARROW)
def test_conv_follows_the_narrow_rule_within_float32(name):
  """Narrow stride-1 outputs go through conv.choose_method's 'patch_grad':
  nn.Conv's parameters, outputs and gradients within float32 rounding."""
  shape, features, ksize, _ = NARROW[name]
  assert conv.choose_method(tuple(ksize) + (shape[-1], features),
                            shape) == 'patch_grad'
  ours, ref, params, x = _pair(NARROW[name])
  got, want = _value_and_grads(ours, params, x), _value_and_grads(
      ref, params, x)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_conv_passes_the_method_on():
  x = jnp.ones((1, 4, 4, 2))
  layer = inits.Conv(1, (3, 3), method='patches')
  params = layer.init(jax.random.key(0), x)
  np.testing.assert_allclose(
      layer.apply(params, x),
      nn.Conv(1, (3, 3)).apply(params, x), rtol=1e-6, atol=1e-6)
  with pytest.raises(ValueError, match='method'):
    inits.Conv(1, (3, 3), method='fft')
