"""Energy distance: against scipy's distances, same vs shifted samples."""

import numpy as np
import pytest
from scipy.spatial import distance

from jaxgen import metrics
from jaxgen.metrics import twosample


def _reference(x, y):
  """Independent float64 computation with scipy's pairwise distances."""
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  dxx = distance.pdist(x)  # the n (n - 1) / 2 pairs i < i'
  dyy = distance.pdist(y)
  return 2 * distance.cdist(x, y).mean() - dxx.mean() - dyy.mean()


@pytest.mark.parametrize('block', [1024, 7])
def test_energy_distance_matches_scipy(monkeypatch, block):
  monkeypatch.setattr(twosample, '_BLOCK', block)
  rng = np.random.default_rng(0)
  x = rng.normal(size=(50, 2)).astype(np.float32)
  y = rng.normal(size=(31, 2)) * 2.0 + 0.5
  assert metrics.energy_distance(x, y) == pytest.approx(_reference(x, y),
                                                        rel=1e-12)
  assert metrics.energy_distance(x, y) == pytest.approx(
      metrics.energy_distance(y, x), rel=1e-12)


def test_energy_distance_near_zero_for_one_distribution_larger_shifted():
  rng = np.random.default_rng(1)
  n = 800
  x = rng.normal(size=(n, 2))
  same = rng.normal(size=(n, 2))
  shifted = rng.normal(size=(n, 2)) + np.array([0.5, 0.0])
  e_same = metrics.energy_distance(x, same)
  e_shift = metrics.energy_distance(x, shifted)
  # Unbiased: mean 0 for one distribution, standard deviation O(1/n).
  assert abs(e_same) < 0.01
  # A mean shift of 0.5 sigma: roughly 0.07 in population.
  assert e_shift > 0.04
  assert e_shift > 10 * abs(e_same)
  # Identical samples: the cross term keeps its zero diagonal, the
  # U-statistics do not, so E = -2 mean_{i != i'} |x_i - x_i'| / n.
  assert metrics.energy_distance(x, x) == pytest.approx(
      -2 * distance.pdist(x).mean() / n, rel=1e-10)


def test_energy_distance_rejects_bad_input():
  good = np.zeros((4, 2))
  with pytest.raises(ValueError, match='same number of columns'):
    metrics.energy_distance(good, np.zeros((4, 3)))
  with pytest.raises(ValueError, match='x must be'):
    metrics.energy_distance(np.zeros((1, 2)), good)
  with pytest.raises(ValueError, match='y contains NaN'):
    metrics.energy_distance(good, np.full((4, 2), np.nan))
