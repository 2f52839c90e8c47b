"""jaxgen.losses.quantization against float64 NumPy, gradients, perplexity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import losses


@pytest.fixture(scope='module')
def pair():
  kz, ke = jax.random.split(jax.random.key(0))
  z = jax.random.normal(kz, (3, 5, 4))
  e = jax.random.normal(ke, (3, 5, 4))
  return z, e


def test_vq_losses_match_float64_numpy(pair):
  z, e = pair
  zn, en = np.asarray(z, np.float64), np.asarray(e, np.float64)
  sq = ((zn - en) ** 2).sum(-1)
  fn = jax.jit(lambda z, e: (losses.codebook_loss(z, e),
                             losses.commitment_loss(z, e),
                             losses.vq_loss(z, e, 0.25),
                             losses.vq_loss(z, e, 0.25,
                                            update_codebook=False)))
  codebook, commitment, vq, vq_ema = fn(z, e)
  np.testing.assert_allclose(codebook, sq, rtol=1e-6)
  np.testing.assert_allclose(commitment, sq, rtol=1e-6)
  np.testing.assert_allclose(vq, 1.25 * sq, rtol=1e-6)
  np.testing.assert_allclose(vq_ema, 0.25 * sq, rtol=1e-6)
  assert vq.shape == (3, 5)


def test_straight_through_value_and_identity_jacobian(pair):
  z, e = pair
  z, e = z[0, 0], e[0, 0]
  np.testing.assert_allclose(losses.straight_through(z, e), e, atol=1e-6)
  d_z, d_e = jax.jacfwd(losses.straight_through, argnums=(0, 1))(z, e)
  np.testing.assert_array_equal(d_z, np.eye(4))
  np.testing.assert_array_equal(d_e, np.zeros((4, 4)))


def test_codebook_loss_moves_codes_toward_encodings(pair):
  z, e = pair
  total = lambda z, e: losses.codebook_loss(z, e).sum()
  g_z, g_e = jax.jit(jax.grad(total, argnums=(0, 1)))(z, e)
  np.testing.assert_array_equal(g_z, np.zeros_like(g_z))  # sg[z_e]
  np.testing.assert_allclose(g_e, 2 * (np.asarray(e, np.float64) - z),
                             rtol=1e-5, atol=1e-6)
  stepped = e - 0.1 * g_e  # a gradient step shrinks every distance
  before = np.linalg.norm(np.asarray(z - e), axis=-1)
  after = np.linalg.norm(np.asarray(z - stepped), axis=-1)
  assert np.all(after < before)
  np.testing.assert_allclose(after, 0.8 * before, rtol=1e-5)


def test_commitment_gradient_reaches_only_the_encoder(pair):
  z, e = pair
  total = lambda z, e: losses.commitment_loss(z, e).sum()
  g_z, g_e = jax.grad(total, argnums=(0, 1))(z, e)
  np.testing.assert_allclose(g_z, 2 * (np.asarray(z, np.float64) - e),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(g_e, np.zeros_like(g_e))


@pytest.mark.parametrize('k', [1, 7, 64])
def test_perplexity_of_uniform_assignment_is_k(k):
  onehot = jax.nn.one_hot(jnp.arange(5 * k) % k, k)  # each code 5 times
  np.testing.assert_allclose(losses.codebook_perplexity(onehot), k,
                             rtol=1e-5)


def test_perplexity_single_code_and_weights():
  onehot = jax.nn.one_hot(jnp.array([2, 2, 2, 0]), 4)
  # The masked row (weight 0) is the only use of code 0.
  np.testing.assert_allclose(
      losses.codebook_perplexity(onehot, jnp.array([1., 1., 1., 0.])), 1.0,
      rtol=1e-6)
  assert float(losses.codebook_perplexity(onehot)) > 1.5


def test_perplexity_matches_numpy_on_soft_assignments():
  probs = jax.nn.softmax(jax.random.normal(jax.random.key(1), (6, 3, 5)))
  w = np.array([1, 0, 1, 1, 0, 1], np.float64)[:, None] * np.ones((6, 3))
  pn = np.asarray(probs, np.float64).reshape(-1, 5)
  usage = (w.reshape(-1, 1) * pn).sum(0) / w.sum()
  want = np.exp(-(usage * np.log(usage)).sum())
  got = jax.jit(losses.codebook_perplexity)(probs, jnp.asarray(w))
  np.testing.assert_allclose(got, want, rtol=1e-5)
  np.testing.assert_allclose(losses.code_usage(probs, jnp.asarray(w)), usage,
                             rtol=1e-5)


def test_categorical_kl_to_uniform_numpy_and_saturation():
  logits = jax.random.normal(jax.random.key(2), (4, 6)) * 3
  q = np.exp(logits - logits.max(-1, keepdims=True))
  q = np.asarray(q, np.float64)
  q /= q.sum(-1, keepdims=True)
  want = (q * np.log(q)).sum(-1) + np.log(6)
  np.testing.assert_allclose(losses.categorical_kl_to_uniform(logits), want,
                             rtol=1e-5, atol=1e-6)
  # Uniform logits: KL 0; one saturated logit: KL -> log K, finite gradient.
  np.testing.assert_allclose(losses.categorical_kl_to_uniform(jnp.zeros(6)),
                             0.0, atol=1e-6)
  hot = jnp.array([100.0, -100.0, 0.0])
  np.testing.assert_allclose(losses.categorical_kl_to_uniform(hot),
                             np.log(3), rtol=1e-6)
  grad = jax.grad(lambda l: losses.categorical_kl_to_uniform(l))(hot)
  assert np.all(np.isfinite(grad))
