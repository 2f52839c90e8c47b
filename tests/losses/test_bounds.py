"""Tests for log_mean_exp, the ELBO and the IWAE bound."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from jaxgen import losses
from tests.losses import numpy_reference as ref


@pytest.mark.parametrize("axis", [0, 1, -1, (0, 2)])
def test_log_mean_exp_matches_reference(axis):
  rng = np.random.default_rng(0)
  x = rng.normal(0.0, 30.0, size=(5, 4, 3)).astype(np.float32)
  x[0, 0, 0] = 800.0  # Would overflow exp in float32 (and float64).
  fn = jax.jit(losses.log_mean_exp, static_argnames="axis")
  np.testing.assert_allclose(
      fn(x, axis=axis), ref.log_mean_exp(x, axis), rtol=1e-5, atol=1e-5
  )


def test_log_mean_exp_rejects_bad_axes():
  with pytest.raises(ValueError):
    losses.log_mean_exp(jnp.zeros((2, 3)), axis=2)
  with pytest.raises(ValueError):
    losses.log_mean_exp(jnp.zeros((2, 3)), axis=(0, -2))
  with pytest.raises(ValueError):
    losses.log_mean_exp(jnp.zeros((0, 3)), axis=0)


def test_elbo_is_log_likelihood_minus_beta_kl():
  rng = np.random.default_rng(1)
  ll = rng.normal(-100.0, 10.0, size=16).astype(np.float32)
  kl = rng.uniform(0.0, 20.0, size=16).astype(np.float32)
  fn = jax.jit(losses.elbo)
  np.testing.assert_allclose(fn(ll, kl), np.float64(ll) - kl, rtol=1e-6)
  np.testing.assert_allclose(
      fn(ll, kl, 0.25), np.float64(ll) - 0.25 * kl, rtol=1e-6
  )
  np.testing.assert_allclose(fn(ll, kl, beta=0.0), ll)


@pytest.mark.parametrize("axis", [0, 1])
def test_iwae_matches_reference(axis):
  rng = np.random.default_rng(2)
  log_w = rng.normal(-50.0, 5.0, size=(8, 6)).astype(np.float32)
  fn = jax.jit(losses.iwae_bound, static_argnames="axis")
  actual = fn(log_w, axis=axis)
  expected = special.logsumexp(np.float64(log_w), axis=axis) - np.log(
      log_w.shape[axis]
  )
  np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-5)


def test_iwae_with_one_sample_is_the_log_weight():
  log_w = np.array([[-3.5, 12.0, -1e4, 0.0]], np.float32)  # K=1, B=4.
  np.testing.assert_array_equal(jax.jit(losses.iwae_bound)(log_w), log_w[0])


def test_iwae_at_least_mean_log_weight_and_order_free():
  rng = np.random.default_rng(3)
  # Widely spread weights, as for a poor proposal.
  log_w = rng.normal(-200.0, 40.0, size=(64, 32)).astype(np.float32)
  fn = jax.jit(losses.iwae_bound)
  bound = np.asarray(fn(log_w))
  assert np.all(bound >= log_w.mean(axis=0))
  assert np.all(bound <= log_w.max(axis=0))
  permuted = log_w[rng.permutation(64)]
  np.testing.assert_allclose(fn(permuted), bound, rtol=1e-6)


def test_iwae_equal_weights_give_that_weight():
  log_w = np.full((10, 3), -7.25, np.float32)
  np.testing.assert_allclose(losses.iwae_bound(log_w), -7.25, rtol=1e-6)


def test_iwae_gradients_are_normalised_weights():
  log_w = jnp.array([-1.0, 2.0, 0.5, 100.0, -100.0])
  g = jax.grad(lambda w: losses.iwae_bound(w))(log_w)
  np.testing.assert_allclose(g, jax.nn.softmax(log_w), atol=1e-7)


# A linear-Gaussian model whose marginal and posterior are known:
#   z ~ N(0, 1),  x | z ~ N(z, s2)  =>  x ~ N(0, 1 + s2),
#   z | x ~ N(x / (1 + s2), s2 / (1 + s2)).
_S2 = 0.5


def _log_joint(x, z):
  return losses.gaussian_log_prob(z, 0.0, 0.0) + losses.gaussian_log_prob(
      x, z, 0.5 * jnp.log(_S2)
  )


def _log_marginal(x):
  return losses.gaussian_log_prob(x, 0.0, 0.5 * jnp.log(1.0 + _S2))


def test_elbo_gap_is_kl_to_posterior():
  # log p(x) - ELBO(q) = KL(q || p(z | x)), with the ELBO in closed form.
  x = jnp.array([-2.0, 0.0, 0.7, 3.0])
  q_mean = jnp.array([0.5, -0.3, 0.1, 1.0])
  q_log_var = jnp.array([-1.0, 0.2, -2.0, -0.5])

  @jax.jit
  def bound_gap_and_log_marginal(x, q_mean, q_log_var):
    expected_ll = (
        -0.5 * jnp.log(2 * jnp.pi * _S2)
        - ((x - q_mean) ** 2 + jnp.exp(q_log_var)) / (2 * _S2)
    )
    bound = losses.elbo(expected_ll, losses.gaussian_kl(q_mean, q_log_var))
    gap = losses.gaussian_kl(
        q_mean, q_log_var, x / (1 + _S2), jnp.log(_S2 / (1 + _S2))
    )
    return bound, gap, _log_marginal(x)

  bound, gap, log_p = bound_gap_and_log_marginal(x, q_mean, q_log_var)
  np.testing.assert_allclose(bound + gap, log_p, rtol=1e-5, atol=1e-5)
  assert np.all(np.asarray(bound) < np.asarray(log_p))
  # With the exact posterior as q the gap is 0 and the ELBO is log p(x).
  exact_mean = x / (1 + _S2)
  exact_log_var = jnp.full_like(x, np.log(_S2 / (1 + _S2)))
  bound, gap, log_p = bound_gap_and_log_marginal(x, exact_mean, exact_log_var)
  np.testing.assert_allclose(gap, 0.0, atol=1e-6)
  np.testing.assert_allclose(bound, log_p, rtol=1e-6, atol=1e-5)


def test_iwae_tightens_towards_log_marginal():
  x = jnp.float32(1.5)
  log_p = float(_log_marginal(x))

  # Exact posterior as proposal: every log weight equals log p(x).
  @jax.jit
  def exact_posterior_bound(key):
    post_mean, post_log_var = x / (1 + _S2), jnp.log(_S2 / (1 + _S2))
    z = losses.gaussian_reparameterize(key, post_mean, post_log_var, 7)
    log_q = losses.gaussian_log_prob(z, post_mean, 0.5 * post_log_var)
    return losses.iwae_bound(_log_joint(x, z) - log_q)

  np.testing.assert_allclose(
      exact_posterior_bound(jax.random.key(0)), log_p, atol=1e-5
  )

  # A poor proposal: E[L_1] <= E[L_10] <= E[L_100] <= log p(x).
  q_mean, q_log_var = jnp.float32(0.0), jnp.float32(0.5)
  replicates = 2000

  @jax.jit
  def bounds(key):
    z = losses.gaussian_reparameterize(
        key, jnp.full((replicates,), q_mean), q_log_var, 100
    )  # [100, R]
    log_q = losses.gaussian_log_prob(z, q_mean, 0.5 * q_log_var)
    log_w = _log_joint(x, z) - log_q
    # L_1, L_10 and L_100 from nested subsets of the same draw (positively
    # correlated, so the independent-error margins below are conservative).
    return (
        losses.iwae_bound(log_w[:1]),
        losses.iwae_bound(log_w[:10]),
        losses.iwae_bound(log_w),
    )

  means = []
  for b in bounds(jax.random.key(1)):
    b = np.asarray(b, np.float64)
    means.append((b.mean(), b.std() / np.sqrt(replicates)))
  analytic_elbo = float(
      losses.elbo(
          -0.5 * jnp.log(2 * jnp.pi * _S2)
          - ((x - q_mean) ** 2 + jnp.exp(q_log_var)) / (2 * _S2),
          losses.gaussian_kl(q_mean, q_log_var),
      )
  )
  (m1, se1), (m10, se10), (m100, se100) = means
  assert abs(m1 - analytic_elbo) < 4 * se1
  assert m1 < m10 - 4 * np.hypot(se1, se10)
  assert m10 < m100 - 4 * np.hypot(se10, se100)
  assert m100 < log_p + 4 * se100
