"""Fréchet distance: float64 references (SciPy's sqrtm), closed forms, limits."""

import numpy as np
import pytest
import scipy.linalg

from jaxgen import metrics


def _scipy_frechet_from_statistics(mu1, c1, mu2, c2):
  """Independent float64 reference: scipy.linalg.sqrtm of C1 C2."""
  covmean = scipy.linalg.sqrtm(c1 @ c2)
  assert np.abs(covmean.imag).max() < 1e-8
  return (np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2)
          - 2.0 * np.trace(covmean.real))


def _scipy_frechet(f1, f2):
  f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
  return _scipy_frechet_from_statistics(
      f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0),
      np.cov(f2, rowvar=False))


def test_gaussian_statistics_are_the_mean_and_unbiased_covariance():
  rng = np.random.default_rng(0)
  f = rng.normal(size=(37, 5)).astype(np.float32) @ rng.normal(size=(5, 5))
  mu, cov = metrics.gaussian_statistics(f)
  assert mu.dtype == cov.dtype == np.float64
  x = np.asarray(f, np.float64)
  centred = x - x.sum(0) / len(x)
  np.testing.assert_allclose(mu, x.sum(0) / len(x), rtol=1e-12)
  np.testing.assert_allclose(cov, centred.T @ centred / (len(x) - 1),
                             rtol=1e-10)
  # One feature: still a [1, 1] matrix.
  mu1, cov1 = metrics.gaussian_statistics(x[:, :1])
  assert mu1.shape == (1,) and cov1.shape == (1, 1)
  np.testing.assert_allclose(cov1[0, 0], np.var(x[:, 0], ddof=1), rtol=1e-12)
  with pytest.raises(ValueError, match='features must be'):
    metrics.gaussian_statistics(x[:1])
  with pytest.raises(ValueError, match='features contains NaN'):
    metrics.gaussian_statistics(np.where(x > 2, np.nan, x))


@pytest.mark.parametrize('dim,n1,n2', [(3, 50, 80), (16, 400, 300)])
def test_frechet_distance_matches_scipy_sqrtm(dim, n1, n2):
  rng = np.random.default_rng(dim)
  a1, a2 = rng.normal(size=(dim, dim)), rng.normal(size=(dim, dim))
  f1 = rng.normal(size=(n1, dim)) @ a1 + rng.normal(size=dim)
  f2 = rng.normal(size=(n2, dim)) @ a2 + 0.5
  got = metrics.frechet_distance(f1, f2)
  want = _scipy_frechet(f1, f2)
  assert want > 1.0
  np.testing.assert_allclose(got, want, rtol=1e-9)


def test_frechet_distance_from_statistics_matches_scipy_sqrtm():
  rng = np.random.default_rng(3)
  a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
  c1, c2 = a @ a.T + 0.1 * np.eye(6), b @ b.T
  mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
  got = metrics.frechet_distance_from_statistics(mu1, c1, mu2, c2)
  np.testing.assert_allclose(
      got, _scipy_frechet_from_statistics(mu1, c1, mu2, c2), rtol=1e-8)
  with pytest.raises(ValueError, match='shapes do not fit'):
    metrics.frechet_distance_from_statistics(mu1, c1, mu2[:5], c2)


def test_frechet_distance_closed_form_for_diagonal_gaussians():
  # d^2 = |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2 for diagonal C.
  a, b = np.array([1.0, 4.0, 0.25, 0.0]), np.array([9.0, 1.0, 0.25, 2.0])
  mu1, mu2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
  got = metrics.frechet_distance_from_statistics(mu1, np.diag(a), mu2,
                                                 np.diag(b))
  want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  np.testing.assert_allclose(got, want, rtol=1e-12)


def test_frechet_distance_zero_for_identical_sets_and_symmetric():
  rng = np.random.default_rng(0)
  f1 = rng.normal(size=(120, 10)) * 3.0 + 1.0
  f2 = rng.normal(size=(90, 10)) @ rng.normal(size=(10, 10))
  assert metrics.frechet_distance(f1, f1) < 1e-9
  assert metrics.frechet_distance(f1, f1[::-1]) < 1e-9  # order is irrelevant
  # Rank-deficient covariances (N < F) stay finite and zero on identity.
  few = rng.normal(size=(6, 10))
  assert metrics.frechet_distance(few, few) < 1e-9
  d12, d21 = metrics.frechet_distance(f1, f2), metrics.frechet_distance(f2, f1)
  assert d12 > 1.0
  np.testing.assert_allclose(d12, d21, rtol=1e-10)
  with pytest.raises(ValueError, match='feature dimensions'):
    metrics.frechet_distance(f1, f2[:, :3])
