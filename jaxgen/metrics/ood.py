r"""Outlier-detection and calibration metrics: AUROC, AUPR, FPR95, ECE.

Float64 NumPy on the host, no models. One convention throughout:

* a **score is an outlier score**: higher means "more likely
  out-of-distribution" (e.g. -log p(x) of a generative model);
* **out-of-distribution (OOD) examples are the positives**, the
  in-distribution examples the negatives.

Then:

* `auroc`: the area under the ROC curve, the probability that a random OOD
  example scores above a random in-distribution one (ties count one half):
  the Mann-Whitney U statistic over n_in * n_out, as
  ``sklearn.metrics.roc_auc_score``. 0.5 is chance; below 0.5 the score
  ranks the outliers as *more* typical (Nalisnick et al., "Do Deep
  Generative Models Know What They Don't Know?", ICLR 2019).
* `aupr_out`: average precision with the OOD examples as positives and the
  score as it is; `aupr_in`: average precision with the in-distribution
  examples as positives and the negated score (Hendrycks & Gimpel, ICLR
  2017, report both). Average precision is sum_k (R_k - R_{k-1}) P_k over
  the distinct thresholds, as ``sklearn.metrics.average_precision_score``.
  Chance is the fraction of positives.
* `fpr_at_tpr`: the fraction of in-distribution examples flagged as OOD at
  the highest threshold that flags at least `tpr` (default 95%) of the OOD
  examples. (Some papers call the in-distribution class positive and report
  the OOD examples accepted at 95% in-distribution recall instead; the two
  differ.)

Scores for generative models:

* `typicality`: Nalisnick, Matsukawa, Teh & Lakshminarayanan, "Detecting
  Out-of-Distribution Inputs to Deep Generative Models Using Typicality"
  (2019): with the entropy estimate H = mean of -log p(x) over training
  data (`entropy_estimate`), a batch of M inputs scores
  | (1/M) sum_m -log p(x_m) - H |. M = 1 is the per-example version; a
  high-density input (an all-black image) is atypical too.
* `input_complexity`: Serrà et al., "Input Complexity and
  Out-of-Distribution Detection with Likelihood-based Generative Models"
  (ICLR 2020): S(x) = -log2 p(x) - L(x), with L(x) the length in bits of a
  lossless compression of x. Here L is the PNG code length of the uint8
  image (Pillow, ``optimize=True``, ``compress_level=9``), whole file
  header included (`png_code_length_bits`); Serrà et al. found FLIF
  tighter, PNG is what is at hand.

Classification with a reject option:

* `expected_calibration_error`: sum over equal-width confidence bins of
  |B|/N |accuracy(B) - mean confidence(B)| (Guo et al., "On Calibration of
  Modern Neural Networks", ICML 2017).
* `accuracy_coverage`: accuracy of the kept examples as the examples are
  rejected in order of a rejection score (highest first).
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np


def _scores(x: Any, name: str) -> np.ndarray:
  x = np.asarray(x, np.float64)
  if x.ndim != 1 or x.shape[0] < 1:
    raise ValueError(f'{name} must be a non-empty 1-D array of scores, got '
                     f'shape {x.shape}.')
  if not np.all(np.isfinite(x)):
    raise ValueError(f'{name} contains NaN or inf.')
  return x


def _pair(scores_in: Any, scores_out: Any) -> tuple[np.ndarray, np.ndarray]:
  return (_scores(scores_in, 'scores_in'), _scores(scores_out, 'scores_out'))


def _ranks(x: np.ndarray) -> np.ndarray:
  """1-based ranks of `x`, ties given their average rank (float64)."""
  order = np.argsort(x, kind='mergesort')
  sorted_x = x[order]
  # Start of each run of equal values.
  starts = np.concatenate([[True], sorted_x[1:] != sorted_x[:-1]])
  run = np.cumsum(starts) - 1
  first = np.flatnonzero(starts)
  last = np.concatenate([first[1:], [len(x)]]) - 1
  average = (first + last) / 2.0 + 1.0
  ranks = np.empty(len(x), np.float64)
  ranks[order] = average[run]
  return ranks


def auroc(scores_in: Any, scores_out: Any) -> float:
  """Area under the ROC curve, OOD positive (module docstring).

  Args:
    scores_in: [N_in] outlier scores of in-distribution examples.
    scores_out: [N_out] outlier scores of OOD examples.

  Returns:
    P(score_out > score_in) + P(score_out == score_in) / 2, in [0, 1].
  """
  s_in, s_out = _pair(scores_in, scores_out)
  ranks = _ranks(np.concatenate([s_in, s_out]))
  n_in, n_out = len(s_in), len(s_out)
  u = ranks[n_in:].sum() - n_out * (n_out + 1) / 2.0
  return float(u / (n_in * n_out))


def _counts_by_threshold(negatives: np.ndarray, positives: np.ndarray):
  """Cumulative (true positives, false positives) at each distinct
  threshold, from the highest score down: flagged means score >= t."""
  scores = np.concatenate([positives, negatives])
  is_pos = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
  order = np.argsort(-scores, kind='mergesort')
  scores, is_pos = scores[order], is_pos[order]
  last_of_run = np.concatenate([scores[1:] != scores[:-1], [True]])
  tp = np.cumsum(is_pos)[last_of_run]
  fp = np.cumsum(1.0 - is_pos)[last_of_run]
  return tp, fp


def _average_precision(negatives: np.ndarray, positives: np.ndarray) -> float:
  tp, fp = _counts_by_threshold(negatives, positives)
  precision = tp / (tp + fp)
  recall = tp / len(positives)
  gains = np.diff(np.concatenate([[0.0], recall]))
  return float(np.sum(gains * precision))


def aupr_out(scores_in: Any, scores_out: Any) -> float:
  """Average precision with the OOD examples as positives (module doc)."""
  s_in, s_out = _pair(scores_in, scores_out)
  return _average_precision(s_in, s_out)


def aupr_in(scores_in: Any, scores_out: Any) -> float:
  """Average precision with the in-distribution examples as positives and
  the score negated (module docstring)."""
  s_in, s_out = _pair(scores_in, scores_out)
  return _average_precision(-s_out, -s_in)


def fpr_at_tpr(scores_in: Any, scores_out: Any, tpr: float = 0.95) -> float:
  """In-distribution examples flagged when >= `tpr` of the OOD ones are.

  The threshold is the highest distinct score t such that at least `tpr` of
  the OOD examples score >= t; the result is the fraction of
  in-distribution examples that score >= t.
  """
  if not 0.0 < tpr <= 1.0:
    raise ValueError(f'tpr must be in (0, 1], got {tpr}.')
  s_in, s_out = _pair(scores_in, scores_out)
  tp, fp = _counts_by_threshold(s_in, s_out)
  # The smallest tolerance that survives a division: tp / n >= tpr.
  k = int(np.argmax(tp >= tpr * len(s_out) - 1e-9 * len(s_out)))
  return float(fp[k] / len(s_in))


def detection_report(scores_in: Any, scores_out: Any) -> dict[str, float]:
  """{'auroc', 'aupr_in', 'aupr_out', 'fpr95'} of one pair of score sets."""
  return {'auroc': auroc(scores_in, scores_out),
          'aupr_in': aupr_in(scores_in, scores_out),
          'aupr_out': aupr_out(scores_in, scores_out),
          'fpr95': fpr_at_tpr(scores_in, scores_out, 0.95)}


# ------------------------------------------------------ generative scores


def entropy_estimate(nll_train: Any) -> float:
  """H ~ mean of -log p(x) over training inputs (nats): the typical set's
  centre for `typicality`."""
  return float(np.mean(_scores(nll_train, 'nll_train')))


def typicality(nll: Any, entropy: float, batch_size: int = 1) -> np.ndarray:
  """The typicality test statistic of Nalisnick et al. (2019), per batch.

  Args:
    nll: [N] -log p(x) in nats (or any unit, as `entropy`).
    entropy: the training-set entropy estimate (`entropy_estimate`).
    batch_size: M, inputs per test; consecutive groups of M rows (the
      last incomplete group is dropped). M = 1: one score per example.

  Returns:
    [N // M] float64: | mean of the group's nll - entropy |.
  """
  nll = _scores(nll, 'nll')
  if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
    raise ValueError(f'batch_size must be a positive integer, got '
                     f'{batch_size!r}.')
  if batch_size > len(nll):
    raise ValueError(f'batch_size={batch_size} exceeds the {len(nll)} '
                     'scores.')
  groups = len(nll) // batch_size
  means = nll[:groups * batch_size].reshape(groups, batch_size).mean(1)
  return np.abs(means - float(entropy))


def png_code_length_bits(images: Any) -> np.ndarray:
  """L(x): bits of the PNG file of each uint8 image [N, H, W, C].

  Pillow, ``optimize=True``, ``compress_level=9``; C = 1 is written as a
  greyscale ('L') image, C = 3 as RGB. The length includes the PNG header
  and chunk framing (a constant of a few hundred bits per image).
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  images = np.asarray(images)
  if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (
      1, 3):
    raise ValueError(f'images must be uint8 [N, H, W, C] with C in (1, 3), '
                     f'got {images.dtype} {images.shape}.')
  out = np.empty(len(images), np.float64)
  for i, image in enumerate(images):
    buffer = io.BytesIO()
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    pil.save(buffer, format='PNG', optimize=True, compress_level=9)
    out[i] = 8.0 * len(buffer.getvalue())
  return out


def input_complexity(nll_nats: Any, code_length_bits: Any) -> np.ndarray:
  """S(x) = -log2 p(x) - L(x) in bits (Serrà et al. 2020): [N] float64.

  Args:
    nll_nats: [N] -log p(x) in nats.
    code_length_bits: [N] L(x), e.g. `png_code_length_bits` of the images.
  """
  nll = _scores(nll_nats, 'nll_nats')
  length = _scores(code_length_bits, 'code_length_bits')
  if nll.shape != length.shape:
    raise ValueError(f'nll_nats {nll.shape} and code_length_bits '
                     f'{length.shape} must have the same shape.')
  return nll / math.log(2.0) - length


# ----------------------------------------------------------- classification


def expected_calibration_error(probs: Any, labels: Any,
                               num_bins: int = 15) -> float:
  """ECE of predicted class probabilities [N, K] against int labels [N].

  Confidence is the largest probability, the prediction its class. Bins
  are (i/B, (i+1)/B] for i = 0..B-1 (a confidence of 0 falls in the first).
  """
  probs = np.asarray(probs, np.float64)
  labels = np.asarray(labels)
  if probs.ndim != 2 or labels.shape != (probs.shape[0],) or not len(labels):
    raise ValueError(f'probs must be [N, K] and labels [N], got '
                     f'{probs.shape} and {labels.shape}.')
  if num_bins < 1:
    raise ValueError(f'num_bins must be >= 1, got {num_bins}.')
  confidence = probs.max(1)
  correct = (probs.argmax(1) == labels).astype(np.float64)
  bins = np.clip(np.ceil(confidence * num_bins).astype(int) - 1, 0,
                 num_bins - 1)
  ece = 0.0
  for b in range(num_bins):
    in_bin = bins == b
    if in_bin.any():
      ece += in_bin.mean() * abs(correct[in_bin].mean() -
                                 confidence[in_bin].mean())
  return float(ece)


def accuracy_coverage(reject_score: Any, correct: Any,
                      coverages: Any = None) -> dict[str, np.ndarray]:
  """Accuracy of the examples kept when the highest `reject_score`s go.

  Args:
    reject_score: [N], higher = rejected first (e.g. -log p(x)).
    correct: [N] bool, whether each example's prediction is right (an OOD
      example is never right).
    coverages: fractions kept, in (0, 1] (default 0.05, 0.10, ..., 1.0).

  Returns:
    {'coverage': [C], 'accuracy': [C], 'threshold': [C]}: keeping the
    round(c N) examples with the lowest scores (ties broken by position),
    whose largest score is the threshold.
  """
  score = _scores(reject_score, 'reject_score')
  correct = np.asarray(correct, bool)
  if correct.shape != score.shape:
    raise ValueError(f'correct {correct.shape} must match reject_score '
                     f'{score.shape}.')
  if coverages is None:
    coverages = np.arange(1, 21) / 20.0
  coverages = np.asarray(coverages, np.float64)
  if np.any((coverages <= 0) | (coverages > 1)):
    raise ValueError('coverages must lie in (0, 1].')
  order = np.argsort(score, kind='mergesort')
  kept_correct = np.cumsum(correct[order])
  counts = np.maximum(np.round(coverages * len(score)).astype(int), 1)
  return {'coverage': counts / len(score),
          'accuracy': kept_correct[counts - 1] / counts,
          'threshold': score[order][counts - 1]}
