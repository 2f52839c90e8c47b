r"""The Fréchet distance between Gaussians fitted to two feature sets.

The FID of Heusel et al. (NeurIPS 2017), on any features:

    d^2 = |mu_1 - mu_2|^2 + Tr(C_1) + Tr(C_2) - 2 Tr((C_1 C_2)^{1/2}).

Float64 NumPy on the host. The matrix square root is taken through a
symmetric eigendecomposition rather than ``scipy.linalg.sqrtm`` (see
`frechet_distance_from_statistics`), so SciPy stays a test-only dependency.
The distance of finite samples is biased upward, the more so the fewer the
samples (Chong & Forsyth, CVPR 2020): compare values at equal sample sizes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxgen.metrics import _common


def gaussian_statistics(features: Any) -> tuple[np.ndarray, np.ndarray]:
  """Mean [F] and unbiased covariance [F, F] of features [N, F], float64."""
  f = _common.as_2d_float64(features, 'features', min_rows=2)
  return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1],
                                                         f.shape[1])


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
  """Principal square root of a symmetric PSD matrix (negative eigenvalues
  from round-off clipped to 0): V diag(sqrt(max(w, 0))) V^T."""
  w, v = np.linalg.eigh((matrix + matrix.T) / 2.0)
  return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance_from_statistics(mu1: Any, cov1: Any, mu2: Any,
                                     cov2: Any) -> float:
  """Squared Fréchet distance between N(mu1, cov1) and N(mu2, cov2).

      d^2 = |mu1 - mu2|^2 + Tr(C1) + Tr(C2) - 2 Tr((C1 C2)^{1/2})

  The trace term is computed as Tr((S C2 S)^{1/2}) with S = C1^{1/2}:
  S C2 S is similar to C1 C2 (S^{-1} (C1 C2) S when S is invertible, by
  continuity otherwise), so it has the same eigenvalues, and it is
  symmetric positive semi-definite, so `numpy.linalg.eigh` gives them real
  and, up to round-off, non-negative. This avoids what makes
  ``scipy.linalg.sqrtm(C1 @ C2)`` fragile on the rank-deficient covariances
  of a few hundred samples (complex parts, the eps-offset retry of
  pytorch-fid) and keeps SciPy out of the runtime dependencies. Float64.

  Args:
    mu1, mu2: means [F].
    cov1, cov2: symmetric PSD covariances [F, F].

  Returns:
    d^2 >= 0 as a Python float (a round-off negative is returned as 0).
  """
  mu1, mu2 = (np.asarray(m, np.float64) for m in (mu1, mu2))
  cov1, cov2 = (np.asarray(c, np.float64) for c in (cov1, cov2))
  f = mu1.shape[0]
  if (mu1.shape != (f,) or mu2.shape != (f,) or cov1.shape != (f, f)
      or cov2.shape != (f, f)):
    raise ValueError(f'shapes do not fit: mu1 {mu1.shape}, cov1 {cov1.shape}, '
                     f'mu2 {mu2.shape}, cov2 {cov2.shape}.')
  s1 = _symmetric_sqrt(cov1)
  middle = s1 @ cov2 @ s1
  eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2.0)
  trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
  diff = mu1 - mu2
  d2 = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt
  return float(max(d2, 0.0))


def frechet_distance(features1: Any, features2: Any) -> float:
  """FID-style squared Fréchet distance of two feature sets [N1, F], [N2, F].

  Gaussians are fitted with `gaussian_statistics` (float64, unbiased
  covariance); see `frechet_distance_from_statistics`. Symmetric in its
  arguments; 0 for identical sets.
  """
  mu1, cov1 = gaussian_statistics(features1)
  mu2, cov2 = gaussian_statistics(features2)
  if mu1.shape != mu2.shape:
    raise ValueError(f'feature dimensions differ: {mu1.shape[0]} vs '
                     f'{mu2.shape[0]}.')
  return frechet_distance_from_statistics(mu1, cov1, mu2, cov2)
