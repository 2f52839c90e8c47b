"""Toy mode coverage: the protocol on data, one mode, far points, the edge."""

import math

import jax
import numpy as np
import pytest

from jaxgen import data as data_lib
from jaxgen import metrics


def _reference_coverage(points, centers, std, num_std=3.0, min_count=1):
  """Independent float64 reference, one point at a time."""
  counts = [0] * len(centers)
  good = 0
  for p in np.asarray(points, np.float64):
    dists = [math.hypot(p[0] - c[0], p[1] - c[1])
             for c in np.asarray(centers, np.float64)]
    j = int(np.argmin(dists))
    if dists[j] <= num_std * std:
      counts[j] += 1
      good += 1
  return counts, good / len(points), sum(c >= min_count for c in counts)


@pytest.mark.parametrize('name,num_modes', [('toy:ring8', 8),
                                            ('toy:grid25', 25)])
def test_toy_mode_coverage_on_data_one_mode_and_far_points(name, num_modes):
  centers, std = data_lib.toy_modes(name)
  points = np.asarray(data_lib.sample_toy(name, jax.random.key(0), 20_000))
  out = metrics.toy_mode_coverage(points, centers, std)
  assert out['modes_covered'] == out['num_modes'] == num_modes
  # P(|x - mu| <= 3 sigma) for an isotropic 2-D Gaussian: 1 - exp(-4.5).
  assert out['high_quality_share'] == pytest.approx(1 - math.exp(-4.5),
                                                    abs=0.003)
  assert out['mode_kl_uniform'] < 0.01
  rng = np.random.default_rng(0)
  one = centers[3] + std * rng.normal(size=(500, 2)) * 0.5
  one_out = metrics.toy_mode_coverage(one, centers, std)
  assert one_out['modes_covered'] == 1
  assert one_out['mode_counts'][3] == 500
  assert one_out['mode_kl_uniform'] == pytest.approx(math.log(num_modes))
  far = metrics.toy_mode_coverage(np.full((10, 2), 50.0), centers, std)
  assert far['modes_covered'] == 0 and far['high_quality_share'] == 0.0
  assert far['mode_kl_uniform'] == math.inf
  # The 3-sigma radius is a Euclidean distance: in at 2.99, out at 3.01.
  edge = centers[0] + std * np.array([[2.99, 0.0], [0.0, -3.01]])
  edge_out = metrics.toy_mode_coverage(edge, centers, std)
  assert edge_out['high_quality_share'] == 0.5
  assert metrics.toy_mode_coverage(edge, centers, std, min_count=2)[
      'modes_covered'] == 0


@pytest.mark.parametrize('num_std,min_count', [(3.0, 1), (1.5, 4)])
def test_toy_mode_coverage_matches_a_point_by_point_reference(num_std,
                                                              min_count):
  centers, std = data_lib.toy_modes('toy:grid25')
  rng = np.random.default_rng(7)
  # Mostly on a few modes, spread wide, so every branch is exercised.
  points = (centers[rng.choice([0, 6, 12, 13], 300)]
            + std * 2.0 * rng.normal(size=(300, 2))).astype(np.float32)
  out = metrics.toy_mode_coverage(points, centers, std, num_std=num_std,
                                  min_count=min_count)
  counts, share, covered = _reference_coverage(points, centers, std, num_std,
                                               min_count)
  assert out['mode_counts'] == counts
  assert out['high_quality_share'] == pytest.approx(share, abs=1e-15)
  assert out['modes_covered'] == covered
  h = np.asarray(counts, np.float64) / sum(counts)
  support = h > 0
  np.testing.assert_allclose(out['mode_kl_uniform'],
                             np.sum(h[support] * np.log(h[support] * 25)),
                             rtol=1e-12)


def test_toy_mode_coverage_names_bad_input():
  centers, std = data_lib.toy_modes('toy:ring8')
  with pytest.raises(ValueError, match='points must be'):
    metrics.toy_mode_coverage(np.zeros((4, 3)), centers, std)
  with pytest.raises(ValueError, match='points contains NaN'):
    metrics.toy_mode_coverage(np.full((4, 2), np.nan), centers, std)
  with pytest.raises(ValueError, match='centers must be'):
    metrics.toy_mode_coverage(np.zeros((4, 2)), centers[:, :1], std)
