"""jaxgen.nn.initializers: bitwise the values of jax.nn.initializers, faster."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

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
