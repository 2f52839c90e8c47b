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


def _resize_conv_reference(x, kernel):
  """The straightforward formulation: nearest x2, then a 'SAME' conv."""
  b, h, w, c = x.shape
  up = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
  return jax.lax.conv_general_dilated(
      up, kernel, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


@pytest.mark.parametrize('kernel_size,shape', [((3, 3), (2, 5, 4, 3)),
                                               ((1, 1), (1, 3, 3, 2)),
                                               ((5, 3), (2, 4, 6, 3))])
def test_upsample_conv_equals_resize_then_conv(kernel_size, shape):
  """Value and gradients (input and kernel) of both methods equal the
  upsample-then-convolve reference."""
  kx, kk, kg = jax.random.split(jax.random.key(sum(shape)), 3)
  x = jax.random.normal(kx, shape)
  kernel = jax.random.normal(kk, kernel_size + (shape[-1], 4))
  g = jax.random.normal(kg, (shape[0], 2 * shape[1], 2 * shape[2], 4))

  def value_and_grads(fn):
    y, vjp = jax.vjp(fn, x, kernel)
    return (y,) + vjp(g)

  want = value_and_grads(_resize_conv_reference)
  for method in unet.UPSAMPLE_METHODS:
    got = jax.jit(lambda a, k, m=method: value_and_grads(
        lambda u, v: unet.upsample_conv(u, v, m)))(x, kernel)
    for a, b in zip(got, want):
      assert a.shape == b.shape
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_upsample_conv_module_has_nn_conv_parameters():
  x = jax.random.normal(jax.random.key(3), (2, 4, 4, 3))
  layer = unet.UpsampleConv(5)
  params = layer.init(jax.random.key(4), x)
  up = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
  conv = unet.inits.Conv(5, (3, 3))
  ref = conv.init(jax.random.key(4), up)
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, ref)
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref)):
    np.testing.assert_array_equal(a, b)
  params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias
  np.testing.assert_allclose(layer.apply(params, x), conv.apply(params, up),
                             rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match='method'):
    unet.upsample_conv(x, params['params']['kernel'], 'bilinear')
  with pytest.raises(ValueError, match='odd'):
    unet.upsample_conv(x, jnp.zeros((2, 2, 3, 5)))
