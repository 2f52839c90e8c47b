"""Phase-decomposed transposed convolution == lax.conv_transpose (float64)."""

import itertools

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nn import conv_transpose as ct

DN = ('NHWC', 'HWIO', 'NHWC')
PADDINGS = ('SAME', 'VALID', ((1, 2), (0, 3)), ((3, 0), (2, 2)))


def _cases():
  yield from itertools.product((4,), (1, 2, 3, 5), (2, 3), PADDINGS)
  yield from ((1, 4, 2, 'SAME'), (1, 2, 3, 'VALID'), (4, 3, 1, 'SAME'))


def test_values_and_gradients_match_lax_conv_transpose():
  """Every phase case: kernel smaller than, equal to and larger than the
  stride, outputs not divisible by the stride, negative input offsets."""
  rng = np.random.default_rng(0)
  checked = 0
  with jax.enable_x64(True):
    for n, k, s, pad in _cases():
      x = rng.normal(size=(2, n, n + 1, 3))
      w = rng.normal(size=(k, k + 1, 3, 2))
      # One compiled program per case (op-by-op dispatch compiles every
      # primitive of the phase decomposition separately, per shape).
      ref_fn = jax.jit(lambda x, w: lax.conv_transpose(x, w, (s, s), pad,
                                                       dimension_numbers=DN))
      ref = ref_fn(x, w)
      if 0 in ref.shape:
        continue
      ours = jax.jit(lambda x, w: ct.conv_transpose(x, w, (s, s), pad))
      got = ours(jnp.asarray(x), jnp.asarray(w))
      assert got.shape == ref.shape, (n, k, s, pad)
      np.testing.assert_allclose(got, ref, atol=1e-12, err_msg=str((n, k, s,
                                                                    pad)))
      if s == 2 and isinstance(pad, str):  # gradients through the slicing and interleaving
        cot = rng.normal(size=ref.shape)
        g_ref = jax.vjp(ref_fn, x, w)[1](cot)
        g_got = jax.vjp(ours, jnp.asarray(x), jnp.asarray(w))[1](cot)
        for a, b in zip(g_got, g_ref):
          np.testing.assert_allclose(a, b, atol=1e-11)
      checked += 1
  assert checked >= 30


@pytest.mark.parametrize('kwargs', [
    dict(features=5, kernel_size=(4, 4), strides=(2, 2), padding='SAME'),
    dict(features=3, kernel_size=(2, 3), strides=(2, 2), padding='VALID',
         use_bias=False),
    dict(features=4, kernel_size=(4, 4), padding='VALID',
         kernel_init=nn.initializers.normal(0.02)),
])
def test_module_is_a_drop_in_for_flax(kwargs):
  x = jax.random.normal(jax.random.key(1), (2, 5, 6, 7))
  ours, theirs = ct.ConvTranspose(**kwargs), nn.ConvTranspose(**kwargs)
  params = ours.init(jax.random.key(0), x)
  flax_params = theirs.init(jax.random.key(0), x)
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape,
                                                         flax_params)
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(flax_params)):
    np.testing.assert_array_equal(a, b)  # identical initial values
  np.testing.assert_allclose(ours.apply(params, x), theirs.apply(params, x),
                             atol=1e-5, rtol=1e-5)


def test_bad_shapes_raise():
  with pytest.raises(ValueError, match='kernel'):
    ct.conv_transpose(jnp.ones((1, 4, 4, 3)), jnp.ones((2, 2, 4, 1)), (2, 2))
  with pytest.raises(ValueError, match='padding'):
    ct.transpose_padding(3, 2, 'FULL')
  with pytest.raises(ValueError, match='2-D'):
    ct.ConvTranspose(2, (3,)).init(jax.random.key(0), jnp.ones((1, 4, 3)))
