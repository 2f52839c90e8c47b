"""jaxgen.nn.unet: shapes, the reference parameter count, conditioning."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nn import unet

# The 28x28 layer table of ../shared/bench/README.md, model (e).
REFERENCE_PARAMS = 583_713


def _count(net, shape, labels=None):
  x = jnp.zeros(shape)
  t = jnp.zeros(shape[:1], jnp.int32)
  params = jax.eval_shape(lambda: net.init(jax.random.key(0), x, t, labels))
  return sum(p.size for p in jax.tree.leaves(params))


def test_reference_configuration_has_the_peer_parameter_count():
  assert _count(unet.UNet(), (1, 28, 28, 1)) == REFERENCE_PARAMS
  # A label embedding adds (num_classes + 1) x time_embed_dim.
  cond = unet.UNet(num_classes=10)
  assert _count(cond, (1, 28, 28, 1), jnp.zeros(1, jnp.int32)) == (
      REFERENCE_PARAMS + 11 * 128)


def test_timestep_embedding_matches_the_formula():
  t = np.array([0, 3, 999])
  emb = np.asarray(unet.timestep_embedding(jnp.asarray(t), 8))
  freqs = np.exp(-math.log(1e4) * np.arange(4) / 3)
  ref = np.concatenate([np.sin(t[:, None] * freqs), np.cos(t[:, None] * freqs)],
                       1)
  np.testing.assert_allclose(emb, ref, atol=2e-4)


@pytest.fixture(scope='module')
def small():
  net = unet.UNet(channels=(8, 16), sinusoid_dim=8, time_embed_dim=16,
                  num_classes=3)
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
  params = jax.jit(net.init)(jax.random.key(0), x, jnp.zeros(2, jnp.int32),
                             jnp.zeros(2, jnp.int32))
  return net, params, x, jax.jit(net.apply)


def test_output_has_the_input_shape(small):
  net, params, x, apply = small
  out = apply(params, x, jnp.array([0, 5]), jnp.array([0, 1]))
  assert out.shape == x.shape and np.isfinite(out).all()


def test_time_and_label_change_the_output_and_none_is_the_null_label(small):
  net, params, x, apply = small
  base = apply(params, x, jnp.array([3, 3]), jnp.array([1, 1]))
  other_t = apply(params, x, jnp.array([3, 400]), jnp.array([1, 1]))
  other_y = apply(params, x, jnp.array([3, 3]), jnp.array([1, 2]))
  null = apply(params, x, jnp.array([3, 3]), jnp.array([3, 3]))
  # Each example sees only its own t and label.
  np.testing.assert_allclose(other_t[0], base[0], atol=1e-6)
  np.testing.assert_allclose(other_y[0], base[0], atol=1e-6)
  assert np.abs(other_t[1] - base[1]).max() > 1e-3
  assert np.abs(other_y[1] - base[1]).max() > 1e-3
  assert np.abs(null - base).max() > 1e-3
  np.testing.assert_allclose(
      jax.jit(lambda p, x, t: net.apply(p, x, t))(params, x,
                                                  jnp.array([3, 3])),
      null, atol=1e-6)
