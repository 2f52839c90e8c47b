"""jaxgen.nn.norm: GroupNorm against flax.linen.GroupNorm (values,
gradients, forward mode, parameter trees)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nn import norm

CASES = [  # (shape, num_groups, group_size, epsilon)
    ((2, 5, 6, 8), 4, None, 1e-5),
    ((3, 4, 6), None, 1, 1e-6),  # instance norm over one spatial axis
]


def _pair(shape, groups, size, eps):
  kw = dict(num_groups=groups, group_size=size, epsilon=eps)
  return nn.GroupNorm(**kw), norm.GroupNorm(**kw)


@pytest.mark.parametrize('shape,groups,size,eps', CASES)
def test_values_gradients_and_jvp_match_flax(shape, groups, size, eps):
  ref, new = _pair(shape, groups, size, eps)
  kx, ks, kb, kw, kt = jax.random.split(jax.random.key(0), 5)
  # An offset mean makes E[x^2] - E[x]^2 cancel as it does in real nets.
  x = 3. + 2. * jax.random.normal(kx, shape)
  c = shape[-1]
  params = {'params': {'scale': 1. + jax.random.normal(ks, (c,)),
                       'bias': jax.random.normal(kb, (c,))}}
  w = jax.random.normal(kw, shape)

  def loss(module):
    return lambda p, x: jnp.sum(jnp.tanh(module.apply(p, x)) * w)

  tangents = (jax.tree.map(jnp.ones_like, params),
              jax.random.normal(kt, shape))

  @jax.jit
  def outputs(params, x, tangents):
    return [(m.apply(params, x), jax.grad(loss(m), (0, 1))(params, x),
             jax.jvp(m.apply, (params, x), tangents)[1])
            for m in (new, ref)]

  (y_new, g_new, t_new), (y_ref, g_ref, t_ref) = outputs(params, x,
                                                         tangents)
  np.testing.assert_allclose(y_new, y_ref, rtol=1e-5, atol=1e-5)
  for a, b in zip(jax.tree.leaves(g_new), jax.tree.leaves(g_ref)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(t_new, t_ref, rtol=1e-4, atol=1e-4)


def test_parameters_are_flax_groupnorm_s():
  x = jnp.ones((1, 4, 4, 8))
  ref, new = _pair(x.shape, 4, None, 1e-5)
  p_ref = ref.init(jax.random.key(0), x)
  p_new = new.init(jax.random.key(0), x)
  assert jax.tree.structure(p_new) == jax.tree.structure(p_ref)
  for a, b in zip(jax.tree.leaves(p_new), jax.tree.leaves(p_ref)):
    np.testing.assert_array_equal(a, b)
  no_affine = norm.GroupNorm(num_groups=2, use_scale=False, use_bias=False)
  assert not jax.tree.leaves(no_affine.init(jax.random.key(0), x))


def test_bad_groups_raise():
  x = jnp.ones((1, 2, 6))
  with pytest.raises(ValueError, match='does not divide'):
    norm.GroupNorm(num_groups=4).init(jax.random.key(0), x)
  with pytest.raises(ValueError, match='exactly one'):
    norm.GroupNorm(num_groups=2, group_size=3).init(jax.random.key(0), x)
