"""Tests for the reparameterised Gaussian sampler."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import losses

_sample = jax.jit(losses.gaussian_reparameterize, static_argnames="num_samples")


def test_same_key_same_sample_and_different_keys_differ():
  mean, log_var = jnp.zeros((3, 4)), jnp.zeros((3, 4))
  a = _sample(jax.random.key(0), mean, log_var)
  b = _sample(jax.random.key(0), mean, log_var)
  c = _sample(jax.random.key(1), mean, log_var)
  np.testing.assert_array_equal(a, b)
  assert not np.any(np.asarray(a) == np.asarray(c))


def test_shapes_and_dtype():
  key = jax.random.key(0)
  mean = jnp.zeros((5, 1))
  log_var = jnp.zeros((1, 3))
  assert _sample(key, mean, log_var).shape == (5, 3)
  z = _sample(key, mean, log_var, num_samples=7)
  assert z.shape == (7, 5, 3) and z.dtype == jnp.float32
  # The samples along the new axis are not copies of each other.
  assert np.unique(np.asarray(z)).size == z.size
  with pytest.raises(ValueError, match="num_samples"):
    losses.gaussian_reparameterize(key, mean, log_var, num_samples=0)
  with pytest.raises(ValueError, match="num_samples"):
    losses.gaussian_reparameterize(key, mean, log_var, num_samples=2.0)


def test_moments_match():
  mean = jnp.array([0.0, 3.0, -1.5])
  log_var = jnp.array([0.0, -2.0, 1.2])
  n = 200_000
  z = _sample(jax.random.key(42), mean, log_var, num_samples=n)
  z = np.asarray(z, np.float64)
  var = np.exp(np.float64(log_var))
  std_err_mean = np.sqrt(var / n)
  std_err_var = var * np.sqrt(2.0 / n)
  assert np.all(np.abs(z.mean(0) - np.asarray(mean)) < 5 * std_err_mean)
  assert np.all(np.abs(z.var(0) - var) < 5 * std_err_var)
  # Independent components.
  assert abs(np.corrcoef(z[:, 0], z[:, 2])[0, 1]) < 5 / np.sqrt(n)


def test_gradients():
  key = jax.random.key(3)
  mean = jnp.array([0.5, -2.0, 0.0])
  log_var = jnp.array([-1.0, 0.3, -30.0])
  g_mean = jax.grad(lambda m: _sample(key, m, log_var).sum())(mean)
  np.testing.assert_array_equal(g_mean, 1.0)
  # dz/dv = 0.5 * exp(v / 2) * eps = 0.5 * (z - mean).
  g_log_var = jax.grad(lambda v: _sample(key, mean, v).sum())(log_var)
  z = _sample(key, mean, log_var)
  np.testing.assert_allclose(g_log_var, 0.5 * (z - mean), rtol=1e-5, atol=1e-7)
