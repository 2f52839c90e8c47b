"""Input checks and histogram divergences shared by the metrics."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def as_2d_float64(x: Any, name: str, min_rows: int = 1) -> np.ndarray:
  """`x` as a finite float64 [N, D] array with N >= min_rows, or ValueError
  naming `name`."""
  x = np.asarray(x, np.float64)
  if x.ndim != 2 or x.shape[0] < min_rows:
    raise ValueError(f'{name} must be [N, D] with N >= {min_rows}, got shape '
                     f'{x.shape}.')
  if not np.all(np.isfinite(x)):
    raise ValueError(f'{name} contains NaN or inf.')
  return x


def histogram_kl(p: np.ndarray, q: np.ndarray) -> float:
  """KL(p || q) of two distributions [K] in nats; inf where q = 0 < p."""
  support = p > 0
  if np.any(q[support] == 0):
    return math.inf
  return float(np.sum(p[support] * (np.log(p[support]) - np.log(q[support]))))
