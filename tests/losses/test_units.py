"""Tests for bits/dim conversion and the dequantization offset."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxgen import losses

_DIMS = [1, 3, 784, 3072, 12288]


@pytest.mark.parametrize("num_dims", _DIMS)
def test_uniform_over_256_levels_is_8_bits(num_dims):
  nll = num_dims * math.log(256)
  bpd = jax.jit(losses.nats_to_bits_per_dim, static_argnums=1)(nll, num_dims)
  assert float(bpd) == 8.0
  # The same NLL built from the likelihood code: a uniform categorical.
  labels = jnp.arange(num_dims) % 256
  nll = -losses.categorical_log_prob(jnp.zeros((num_dims, 256)), labels).sum()
  np.testing.assert_allclose(
      losses.nats_to_bits_per_dim(nll, num_dims), 8.0, rtol=1e-5
  )


def test_bits_per_dim_matches_reference_on_batches():
  nll = np.array([100.0, 2500.5, 3.0], np.float32)
  dims = np.array([784, 3072, 1])
  np.testing.assert_allclose(
      jax.jit(losses.nats_to_bits_per_dim)(nll, dims),
      np.float64(nll) / (dims * np.log(2.0)),
      rtol=1e-6,
  )


@pytest.mark.parametrize("num_dims", _DIMS)
def test_offset_for_8_bit_data_in_unit_cube(num_dims):
  offset = jax.jit(losses.dequantization_offset_nats, static_argnums=0)(
      num_dims, 1 / 256
  )
  np.testing.assert_allclose(offset, num_dims * math.log(256), rtol=1e-7)
  # A uniform density on [0, 1)^D fitted to dequantized uniform 8-bit data
  # has continuous NLL 0; with the offset it is exactly the 8 bits/dim of
  # the uniform discrete model.
  rng = np.random.default_rng(0)
  x = rng.integers(0, 256, size=(4, num_dims))
  y = (x + rng.uniform(size=x.shape)) / 256.0
  assert np.all((0 <= y) & (y < 1))
  continuous_nll = np.zeros(4, np.float32)  # -log 1 on [0, 1)^D.
  bpd = losses.nats_to_bits_per_dim(continuous_nll + offset, num_dims)
  np.testing.assert_array_equal(bpd, 8.0)


def test_offset_for_data_in_minus_one_one():
  # y = 2(x + u)/256 - 1 in [-1, 1): uniform density 2^-D, scale 2/256.
  d = 3072
  continuous_nll = d * math.log(2.0)
  offset = losses.dequantization_offset_nats(d, 2 / 256)
  np.testing.assert_allclose(offset, d * math.log(128), rtol=1e-7)
  np.testing.assert_allclose(
      losses.nats_to_bits_per_dim(continuous_nll + offset, d), 8.0, rtol=1e-6
  )


def test_offset_recovers_discrete_nll_of_histogram_density():
  # A density that is constant on every cube is the tightest case of the
  # bound: continuous NLL + offset == discrete NLL exactly.
  rng = np.random.default_rng(1)
  probs = rng.dirichlet(np.ones(256))
  x = rng.integers(0, 256, size=1000)
  u = rng.uniform(size=x.shape)
  y = (x + u) / 256.0
  density = 256.0 * probs[np.floor(y * 256).astype(int)]
  continuous_nll = -np.log(density)
  offset = float(losses.dequantization_offset_nats(1, 1 / 256))
  np.testing.assert_allclose(
      continuous_nll + offset, -np.log(probs[x]), rtol=1e-6
  )


def test_offset_bounds_discrete_nll_of_smooth_density():
  # A Gaussian density on y = (x + u) / 256: E_u[-log p(y)] + offset must be
  # >= -log P(x), where P(x) integrates p over x's cube (Jensen).
  mu, sigma = 0.4, 0.05
  s = 1 / 256
  x = np.arange(256)
  x = x[np.abs(s * (x + 0.5) - mu) < 3 * sigma]  # Where P(x) is not tiny.
  discrete_nll = -np.log(
      stats.norm.cdf(s * (x + 1), mu, sigma) - stats.norm.cdf(s * x, mu, sigma)
  )
  # E_u[(s(x+u) - mu)^2] = (s(x+1/2) - mu)^2 + s^2/12.
  expected_sq = (s * (x + 0.5) - mu) ** 2 + s**2 / 12
  continuous_nll = 0.5 * np.log(2 * np.pi * sigma**2) + expected_sq / (
      2 * sigma**2
  )
  offset = float(losses.dequantization_offset_nats(1, s))
  gap = continuous_nll + offset - discrete_nll
  assert np.all(gap >= 0.0)
  # ... and the gap is the Jensen gap ~ Var_u[log p(y)] / 2, small because p
  # hardly varies within a cube (a wrong offset would be off by ~ln 256).
  predicted = 0.5 * ((s * (x + 0.5) - mu) / sigma**2) ** 2 * s**2 / 12
  np.testing.assert_allclose(gap, predicted, rtol=0.05, atol=2e-5)
