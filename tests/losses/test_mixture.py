"""Gaussian-mixture terms vs float64 NumPy/SciPy: full covariances, responsibilities."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special
from scipy import stats

from jaxgen import losses


def _spd_trils(rng, k, d, scale=1.0):
  """K lower Cholesky factors of random SPD matrices, float64."""
  out = []
  for _ in range(k):
    a = rng.normal(size=(d, d)) * scale
    out.append(np.linalg.cholesky(a @ a.T / d + 0.3 * np.eye(d)))
  return np.stack(out)


def _ref_components(x, means, trils):
  """[N, K] log N(x; mu_k, L_k L_k^T) by SciPy, float64."""
  return np.stack([stats.multivariate_normal(m, t @ t.T).logpdf(x)
                   for m, t in zip(means, trils)], axis=-1)


def test_tril_log_prob_matches_scipy_with_broadcasting():
  rng = np.random.default_rng(0)
  d = 5
  tril = _spd_trils(rng, 1, d)[0]
  mean = rng.normal(size=d)
  x = rng.normal(size=(3, 4, d)) * 2.0
  actual = jax.jit(losses.gaussian_tril_log_prob)(
      x.astype(np.float32), mean.astype(np.float32), tril.astype(np.float32))
  assert actual.shape == (3, 4)
  expected = stats.multivariate_normal(mean, tril @ tril.T).logpdf(x)
  np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-4)
  # The upper triangle is ignored.
  junk = tril + np.triu(rng.normal(size=(d, d)), 1)
  again = losses.gaussian_tril_log_prob(x, mean, junk)
  np.testing.assert_allclose(again, expected, rtol=1e-5, atol=1e-4)


def test_tril_components_and_mixture_match_scipy_in_float64():
  rng = np.random.default_rng(1)
  k, d, n = 4, 6, 37
  trils = _spd_trils(rng, k, d)
  means = rng.normal(size=(k, d)) * 2.0
  logits = rng.normal(size=k)
  x = rng.normal(size=(n, d)) * 2.0
  ref = _ref_components(x, means, trils)
  with jax.enable_x64(True):
    comp = jax.jit(lambda *a: losses.gaussian_tril_component_log_probs(
        *a, chunk_size=8))(x, means, trils)
    mix = jax.jit(losses.gaussian_tril_mixture_log_prob)(x, logits, means,
                                                         trils)
    np.testing.assert_allclose(comp, ref, rtol=1e-12, atol=1e-10)
    expected = special.logsumexp(ref + logits - special.logsumexp(logits), -1)
    np.testing.assert_allclose(mix, expected, rtol=1e-12, atol=1e-10)
  # float32, chunked or not: the same values up to rounding.
  f32 = [a.astype(np.float32) for a in (x, means, trils)]
  whole = losses.gaussian_tril_component_log_probs(*f32)
  chunked = losses.gaussian_tril_component_log_probs(*f32, chunk_size=5)
  np.testing.assert_allclose(whole, ref, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(chunked, whole, rtol=1e-6, atol=1e-5)
  inv = losses.tril_inverse(f32[2])
  given = losses.gaussian_tril_component_log_probs(*f32,
                                                   inverse_scale_trils=inv)
  np.testing.assert_array_equal(given, whole)
  # tr(Sigma^-1) = ||L^-1||_F^2.
  np.testing.assert_allclose(
      np.sum(np.square(inv), (-2, -1)),
      [np.trace(np.linalg.inv(t @ t.T)) for t in trils], rtol=1e-4)


def test_diagonal_components_are_the_existing_diagonal_mixture():
  """logsumexp(log_softmax + components) == gaussian_mixture_log_prob."""
  rng = np.random.default_rng(2)
  k, d = 5, 7
  x = rng.normal(size=(2, 9, d)).astype(np.float32)
  means = rng.normal(size=(k, d)).astype(np.float32)
  log_vars = rng.uniform(-2, 1, size=(k, d)).astype(np.float32)
  logits = rng.normal(size=k).astype(np.float32)
  comp = jax.jit(losses.gaussian_component_log_probs)(x, means, log_vars)
  assert comp.shape == (2, 9, k)
  ref = np.stack([stats.multivariate_normal(m, np.diag(np.exp(v))).logpdf(x)
                  for m, v in zip(means.astype(np.float64),
                                  log_vars.astype(np.float64))], -1)
  np.testing.assert_allclose(comp, ref, rtol=1e-5, atol=1e-4)
  _, log_p = losses.mixture_log_posterior(logits, comp)
  np.testing.assert_allclose(
      log_p, losses.gaussian_mixture_log_prob(x, logits, means, log_vars),
      rtol=1e-6, atol=1e-5)
  # A full mixture with diagonal factors is the same mixture.
  trils = np.stack([np.diag(np.exp(0.5 * v)) for v in log_vars])
  np.testing.assert_allclose(
      losses.gaussian_tril_mixture_log_prob(x, logits, means, trils), log_p,
      rtol=1e-5, atol=1e-4)


def test_responsibilities_match_float64_reference():
  rng = np.random.default_rng(3)
  k, n = 6, 50
  # Reference on the float32-rounded inputs (an ulp at 1000 is 6e-5).
  logits = (rng.normal(size=k) * 2).astype(np.float32).astype(np.float64)
  comp = (rng.normal(size=(n, k)) * 30 - 1000).astype(np.float32).astype(
      np.float64)  # exp() of these underflows
  log_w = logits - special.logsumexp(logits)
  joint = log_w + comp
  ref_log_r = joint - special.logsumexp(joint, -1, keepdims=True)
  ref_log_p = special.logsumexp(joint, -1)
  log_r, log_p = jax.jit(losses.mixture_log_posterior)(
      logits.astype(np.float32), comp.astype(np.float32))
  r = jax.jit(losses.mixture_responsibilities)(logits.astype(np.float32),
                                                comp.astype(np.float32))
  np.testing.assert_allclose(log_p, ref_log_p, rtol=1e-6)
  np.testing.assert_allclose(r, np.exp(ref_log_r), atol=1e-6)
  np.testing.assert_allclose(np.exp(log_r), np.exp(ref_log_r), atol=1e-6)
  np.testing.assert_allclose(np.asarray(r).sum(-1), 1.0, rtol=1e-6)
  # Naive exp() gives 0/0 here; the log-space posterior stays exact.
  with np.errstate(all='ignore'):
    naive = np.exp(joint) / np.exp(joint).sum(-1, keepdims=True)
  assert np.isnan(naive).all()


def test_responsibilities_of_a_dead_component_are_zero():
  comp = jnp.array([[-1.0, -2.0, -3.0]])
  logits = jnp.array([0.0, -jnp.inf, 1.0])
  r = losses.mixture_responsibilities(logits, comp)
  assert float(r[0, 1]) == 0.0
  np.testing.assert_allclose(float(r.sum()), 1.0, rtol=1e-6)
