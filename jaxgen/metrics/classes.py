"""Scores of a classifier's predictions on samples: IS-style, class histograms.

* `inception_style_score`: exp E_x[KL(p(y|x) || p(y))], p(y) = E_x p(y|x)
  over the samples (the Inception Score of Salimans et al., NeurIPS 2016,
  on one split, from any classifier's log-probabilities). It lies in [1, K].
* `label_distribution`: the histogram of predicted (argmax) classes against
  the uniform distribution and against a reference histogram; a class is
  covered when at least ``min_count`` samples are predicted as it (the mode
  count of stacked-MNIST experiments, Metz et al. 2017 / Srivastava et al.
  2017).

Float64 NumPy on the host.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from jaxgen.metrics import _common


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
  m = np.max(a, axis=axis, keepdims=True)
  m = np.where(np.isfinite(m), m, 0.0)
  with np.errstate(divide='ignore'):
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
  return np.squeeze(out, axis=axis)


def inception_style_score(log_probs: Any) -> float:
  """exp(E_x KL(p(y|x) || p(y))) from log p(y|x) [N, K] (float64).

  p(y) = (1/N) sum_x p(y|x), computed as logsumexp over x minus log N. Terms
  with p(y|x) = 0 contribute 0. One split over all N rows (Salimans et al.
  average over 10 splits of 5,000). Equals K for confident predictions
  spread evenly over K classes and 1 for a classifier whose prediction never
  changes.

  Args:
    log_probs: [N, K] normalised log-probabilities (-inf allowed), e.g.
      ``log_softmax(logits)``.

  Returns:
    The score, in [1, K], as a Python float.
  """
  lp = np.asarray(log_probs, np.float64)
  if lp.ndim != 2 or lp.shape[0] < 1 or np.any(np.isnan(lp)) or np.any(
      lp == np.inf):
    raise ValueError(f'log_probs must be finite-or--inf [N, K], got shape '
                     f'{lp.shape}.')
  norms = _logsumexp(lp, axis=1)
  if np.max(np.abs(norms)) > 1e-4:
    raise ValueError('log_probs rows must be normalised (logsumexp = 0); '
                     f'worst row has {norms[np.argmax(np.abs(norms))]:.3g}.')
  log_py = _logsumexp(lp, axis=0) - math.log(lp.shape[0])
  p = np.exp(lp)
  with np.errstate(invalid='ignore'):
    terms = np.where(p > 0.0, p * (lp - log_py[None, :]), 0.0)
  kl = terms.sum(axis=1)
  return float(np.exp(np.mean(kl)))


def label_distribution(predicted: Any, num_classes: int,
                       reference: Any | None = None, *,
                       min_count: int = 1) -> dict[str, Any]:
  """Class-histogram scores of predicted labels.

  Args:
    predicted: int [N], the classifier's argmax class of each sample.
    num_classes: K.
    reference: int [M], predicted classes of real reference images, or None.
    min_count: samples a class needs to count as covered.

  Returns:
    {'label_kl_uniform': KL(h || U_K), 'classes_covered': #{k: n_k >=
    min_count}, 'class_counts': [K] list, and with a reference
    'label_kl_reference': KL(h || h_ref)} where h is the samples' normalised
    histogram; KL in nats (inf when h puts mass on a class h_ref never
    predicts).
  """
  predicted = np.asarray(predicted)
  if predicted.ndim != 1 or predicted.size == 0:
    raise ValueError(f'predicted must be a non-empty [N], got '
                     f'{predicted.shape}.')
  if predicted.min() < 0 or predicted.max() >= num_classes:
    raise ValueError(f'predicted classes must lie in [0, {num_classes}).')
  counts = np.bincount(predicted, minlength=num_classes)
  h = counts / counts.sum()
  out = {
      'label_kl_uniform': _common.histogram_kl(
          h, np.full(num_classes, 1.0 / num_classes)),
      'classes_covered': int(np.sum(counts >= min_count)),
      'class_counts': [int(c) for c in counts],
  }
  if reference is not None:
    ref = np.bincount(np.asarray(reference), minlength=num_classes)
    out['label_kl_reference'] = _common.histogram_kl(h, ref / ref.sum())
  return out
