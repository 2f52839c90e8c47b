r"""Two-sample distance between point sets: the energy distance.

A score of samples against real points that needs no modes, no classifier
and no kernel bandwidth (Székely & Rizzo, "Energy statistics: A class of
statistics based on distances", J. Stat. Plan. Inference 2013):

    E(P, Q) = 2 E|X - Y| - E|X - X'| - E|Y - Y'|,   X, X' ~ P, Y, Y' ~ Q,

with |.| the Euclidean norm. E >= 0, with equality iff P = Q (for
distributions with finite first moments); it is the squared MMD of the
distance-induced kernel (Sejdinovic et al., Ann. Statist. 2013). The
within-sample terms here are U-statistics (means over i != j), so the
estimate is unbiased and scatters around 0 when both samples come from one
distribution (it may then be slightly negative). It is in the units of the
points: compare it across rows of the same data only. Float64 NumPy on the
host.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxgen.metrics import _common

_BLOCK = 1024  # rows of a pairwise-distance block (memory bound)


def _distance_sum(a: np.ndarray, b: np.ndarray) -> float:
  """Sum over all pairs (i, j) of |a_i - b_j|, in row blocks."""
  total = 0.0
  for start in range(0, len(a), _BLOCK):
    diff = a[start:start + _BLOCK, None, :] - b[None, :, :]
    total += float(np.sqrt((diff * diff).sum(axis=-1)).sum())
  return total


def energy_distance(x: Any, y: Any) -> float:
  """Unbiased estimate of the energy distance between two samples.

  Args:
    x: [N, D] points of one sample (any float dtype; computed in float64),
      N >= 2.
    y: [M, D] points of the other, M >= 2, the same D.

  Returns:
    2 mean_{i,j} |x_i - y_j| - mean_{i != i'} |x_i - x_i'| -
    mean_{j != j'} |y_j - y_j'|, in the units of the points.

  Raises:
    ValueError: for a sample that is not [N >= 2, D], not finite, or of
      another D than the other.
  """
  a = _common.as_2d_float64(x, 'x', min_rows=2)
  b = _common.as_2d_float64(y, 'y', min_rows=2)
  if a.shape[1] != b.shape[1]:
    raise ValueError(f'x and y must have the same number of columns, got '
                     f'{a.shape} and {b.shape}.')
  n, m = len(a), len(b)
  xy = _distance_sum(a, b) / (n * m)
  xx = _distance_sum(a, a) / (n * (n - 1))  # the diagonal adds 0
  yy = _distance_sum(b, b) / (m * (m - 1))
  return 2.0 * xy - xx - yy
