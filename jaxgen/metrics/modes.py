"""Mode coverage of samples from a mixture of isotropic Gaussians.

The mode-collapse protocol of Metz et al. ("Unrolled Generative Adversarial
Networks", ICLR 2017) and Srivastava et al. ("VEEGAN", NeurIPS 2017) on
toy 2-D mixtures (the ring of 8 and the grid of 25 modes of
`jaxgen.data.toy_modes`). Float64 NumPy on the host.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from jaxgen.metrics import _common


def toy_mode_coverage(points: Any, centers: Any, std: float, *,
                      num_std: float = 3.0,
                      min_count: int = 1) -> dict[str, Any]:
  """Modes covered and the share of high-quality samples on a toy mixture.

  Each point is assigned to its nearest mode centre; it is high quality
  when its Euclidean distance to that centre is at most ``num_std``
  standard deviations; a mode is covered when at least ``min_count``
  high-quality points are assigned to it (1 as in VEEGAN; PacGAN, Lin et
  al. 2018, uses 20 of 2,500 on the 25-mode grid). For isotropic 2-D
  Gaussians a real sample is within 3 sigma with probability
  1 - e^{-9/2} ~ 0.989, so data drawn from the mixture itself scores about
  98.9%.

  Args:
    points: [N, 2] samples (any float dtype; computed in float64).
    centers: [K, 2] mode centres, e.g. the first value of
      ``jaxgen.data.toy_modes(name)``.
    std: the per-coordinate standard deviation of every mode (the second).
    num_std: the quality radius in standard deviations.
    min_count: high-quality points a mode needs to count as covered.

  Returns:
    {'modes_covered': int, 'num_modes': K, 'high_quality_share': float in
    [0, 1], 'mode_counts': [K] high-quality points per mode,
    'mode_kl_uniform': KL(high-quality mode histogram || uniform) in nats
    (inf when no point is high quality)}.
  """
  pts = _common.as_2d_float64(points, 'points')
  if pts.shape[1] != 2:
    raise ValueError(f'points must be [N, 2], got {pts.shape}.')
  centers = np.asarray(centers, np.float64)
  if centers.ndim != 2 or centers.shape[1] != 2 or not len(centers):
    raise ValueError(f'centers must be [K, 2] with K >= 1, got '
                     f'{centers.shape}.')
  d2 = ((pts[:, None, :] - centers[None, :, :]) ** 2).sum(axis=-1)
  nearest = np.argmin(d2, axis=1)
  dist = np.sqrt(d2[np.arange(len(pts)), nearest])
  good = dist <= num_std * std
  k = len(centers)
  counts = np.bincount(nearest[good], minlength=k)
  kl = (_common.histogram_kl(counts / counts.sum(), np.full(k, 1.0 / k))
        if counts.sum() else math.inf)
  return {'modes_covered': int(np.sum(counts >= min_count)),
          'num_modes': k,
          'high_quality_share': float(good.mean()),
          'mode_counts': [int(c) for c in counts],
          'mode_kl_uniform': kl}
