"""Tests for the Gaussian KL divergence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate
from scipy import stats

from jaxgen import losses
from tests.losses import numpy_reference as ref

_kl = jax.jit(losses.gaussian_kl)


def _random_params(rng, shape):
  return (
      rng.normal(0.0, 2.0, shape).astype(np.float32),
      rng.uniform(-6.0, 4.0, shape).astype(np.float32),
      rng.normal(0.0, 2.0, shape).astype(np.float32),
      rng.uniform(-6.0, 4.0, shape).astype(np.float32),
  )


def test_matches_float64_reference():
  params = _random_params(np.random.default_rng(0), (100, 8))
  actual = np.asarray(_kl(*params), np.float64)
  assert actual.shape == (100, 8)
  np.testing.assert_allclose(
      actual, ref.gaussian_kl(*params), rtol=1e-5, atol=1e-5
  )


def test_default_prior_is_standard_normal():
  rng = np.random.default_rng(1)
  mean = rng.normal(size=(7, 3)).astype(np.float32)
  log_var = rng.normal(size=(7, 3)).astype(np.float32)
  np.testing.assert_allclose(
      jax.jit(losses.gaussian_kl)(mean, log_var),
      ref.gaussian_kl(mean, log_var, 0.0, 0.0),
      rtol=1e-5,
      atol=1e-6,
  )


@pytest.mark.parametrize(
    "mean,log_var,prior_mean,prior_log_var",
    [(0.3, -1.0, 0.0, 0.0), (-2.0, 1.5, 1.0, 0.5), (0.5, -3.0, 0.4, -2.5)],
)
def test_matches_numerical_integration(
    mean, log_var, prior_mean, prior_log_var
):
  q = stats.norm(mean, np.exp(0.5 * log_var))
  p = stats.norm(prior_mean, np.exp(0.5 * prior_log_var))
  expected, _ = integrate.quad(
      lambda z: q.pdf(z) * (q.logpdf(z) - p.logpdf(z)), -np.inf, np.inf
  )
  np.testing.assert_allclose(
      _kl(mean, log_var, prior_mean, prior_log_var),
      expected,
      rtol=1e-5,
      atol=1e-6,
  )


def test_nonnegative_on_random_and_nearly_equal_inputs():
  rng = np.random.default_rng(2)
  mean, log_var, prior_mean, prior_log_var = _random_params(rng, (20000,))
  kl = np.asarray(_kl(mean, log_var, prior_mean, prior_log_var))
  assert np.all(kl >= 0.0)
  # q within rounding of p: the textbook form can cancel below zero here.
  tiny = rng.normal(0.0, 1e-4, size=mean.shape).astype(np.float32)
  near = _kl(mean + tiny, log_var + tiny, mean, log_var)
  assert np.all(np.asarray(near) >= 0.0)
  np.testing.assert_allclose(
      near,
      ref.gaussian_kl(mean + tiny, log_var + tiny, mean, log_var),
      atol=1e-6,
  )


def test_zero_iff_equal():
  rng = np.random.default_rng(3)
  mean, log_var, _, _ = _random_params(rng, (500,))
  np.testing.assert_array_equal(_kl(mean, log_var, mean, log_var), 0.0)
  assert np.all(np.asarray(_kl(mean + 0.1, log_var, mean, log_var)) > 0.0)
  assert np.all(np.asarray(_kl(mean, log_var + 0.1, mean, log_var)) > 0.0)


@pytest.mark.parametrize(
    "mean,log_var,prior_mean,prior_log_var",
    [
        (0.0, 0.0, 0.0, 0.0),
        (1.0, -1.0, 0.0, 0.0),
        (-0.5, 0.7, 1.0, -0.3),
        (2.0, 1.0, -1.0, 2.0),
    ],
)
def test_matches_monte_carlo(mean, log_var, prior_mean, prior_log_var):
  rng = np.random.default_rng(4)
  n = 200_000
  z = rng.normal(mean, np.exp(0.5 * log_var), size=n)
  log_q = stats.norm.logpdf(z, mean, np.exp(0.5 * log_var))
  log_p = stats.norm.logpdf(z, prior_mean, np.exp(0.5 * prior_log_var))
  log_ratio = log_q - log_p
  estimate, std_err = log_ratio.mean(), log_ratio.std() / np.sqrt(n)
  actual = float(_kl(mean, log_var, prior_mean, prior_log_var))
  assert abs(actual - estimate) <= 4.0 * std_err + 1e-6


def test_gradients_finite_at_extremes():
  args = (
      jnp.array([0.0, 1e3, -5.0, 0.0]),
      jnp.array([-30.0, 20.0, 0.0, 0.0]),
      jnp.array([0.0, 0.0, 5.0, 0.0]),
      jnp.array([0.0, -20.0, 30.0, 0.0]),
  )
  assert np.all(np.isfinite(_kl(*args)))

  def total(*a):
    return losses.gaussian_kl(*a).sum()

  grads = jax.grad(total, argnums=(0, 1, 2, 3))(*args)
  for g in grads:
    assert np.all(np.isfinite(g))
  # At q == p every gradient vanishes (a minimum).
  zero = jax.grad(total, argnums=(0, 1))(*(jnp.float32(0.0),) * 4)
  np.testing.assert_array_equal(zero, [0.0, 0.0])
