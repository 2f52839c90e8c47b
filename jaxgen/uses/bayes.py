r"""Classification by Bayes' rule from class-conditional likelihoods.

A class-conditional density gives log p(x | y) for every class; with the
class prior p(y),

    log p(y | x) = log p(x | y) + log p(y) - log p(x),
    log p(x)     = logsumexp_y [log p(x | y) + log p(y)],

and the prediction is argmax_y p(y | x): the Bayes-optimal classifier when
the densities are exact. log p(x) comes for free and gives a reject
option: refuse to classify an input the model finds unlikely (e.g. one
from another dataset). So does max_y log p(x, y), the joint of the
predicted class (`max_log_joint`): it ranks inputs by how well their best
class explains them. Bounds (a VAE's ELBO) enter in place of
log p(x | y).

NumPy, float64, no models: `jaxgen.uses.scoring.class_nll` computes the
per-class NLLs of a trained run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxgen.metrics import ood as ood_metrics


def log_posterior(class_nlls: Any, prior: Any) -> tuple[np.ndarray,
                                                        np.ndarray]:
  """(log p(y | x) [N, K], log p(x) [N]) from -log p(x | y) [N, K], p(y) [K].

  A class with prior 0 gets log-posterior -inf.
  """
  nlls = np.asarray(class_nlls, np.float64)
  prior = np.asarray(prior, np.float64)
  if nlls.ndim != 2 or prior.shape != (nlls.shape[1],):
    raise ValueError(f'class_nlls must be [N, K] and prior [K], got '
                     f'{nlls.shape} and {prior.shape}.')
  if np.any(prior < 0) or not np.isclose(prior.sum(), 1.0):
    raise ValueError(f'prior must be non-negative and sum to 1, got {prior}.')
  with np.errstate(divide='ignore'):
    joint = -nlls + np.log(prior)[None]
  top = joint.max(1, keepdims=True)
  log_px = top + np.log(np.exp(joint - top).sum(1, keepdims=True))
  return joint - log_px, log_px[:, 0]


def max_log_joint(class_nlls: Any, prior: Any) -> np.ndarray:
  """max_y [log p(x | y) + log p(y)]: float64 [N]."""
  log_post, log_px = log_posterior(class_nlls, prior)
  return log_px + log_post.max(1)


def classify(class_nlls: Any, prior: Any, labels: Any,
             num_bins: int = 15) -> dict[str, Any]:
  """Accuracy and calibration of the Bayes classifier on labelled inputs.

  Returns:
    {'accuracy', 'ece' (`jaxgen.metrics.ood.expected_calibration_error`),
     'nll_labels' (mean -log p(y | x) of the true labels, nats),
     'predictions' [N], 'log_px' [N], 'correct' [N] bool}.
  """
  log_post, log_px = log_posterior(class_nlls, prior)
  labels = np.asarray(labels)
  pred = log_post.argmax(1)
  probs = np.exp(log_post)
  return {'accuracy': float(np.mean(pred == labels)),
          'ece': ood_metrics.expected_calibration_error(probs, labels,
                                                        num_bins),
          'nll_labels': float(-np.mean(log_post[np.arange(len(labels)),
                                                labels])),
          'predictions': pred, 'log_px': log_px, 'correct': pred == labels}


def reject_by_likelihood(log_px_in: Any, correct_in: Any,
                         log_px_out: Any = None,
                         coverages: Any = None) -> dict[str, np.ndarray]:
  """Accuracy against coverage when the least likely inputs are refused.

  The in-distribution inputs (`correct_in`: whether each prediction is
  right) are pooled with the out-of-distribution ones, which are never
  right; inputs are refused in order of increasing log p(x)
  (`jaxgen.metrics.ood.accuracy_coverage` with -log p(x) as the score).

  Returns:
    {'coverage', 'accuracy', 'threshold' (-log p(x) of the last kept
    input), 'ood_kept' (fraction of the kept inputs that are OOD)}.
  """
  log_px_in = np.asarray(log_px_in, np.float64)
  out = (np.zeros(0) if log_px_out is None
         else np.asarray(log_px_out, np.float64))
  scores = -np.concatenate([log_px_in, out])
  correct = np.concatenate([np.asarray(correct_in, bool),
                            np.zeros(len(out), bool)])
  curve = ood_metrics.accuracy_coverage(scores, correct, coverages)
  is_out = np.concatenate([np.zeros(len(log_px_in)), np.ones(len(out))])
  order = np.argsort(scores, kind='mergesort')
  kept = np.round(curve['coverage'] * len(scores)).astype(int)
  curve['ood_kept'] = np.cumsum(is_out[order])[kept - 1] / kept
  return curve


def gmm_class_nlls(train_x: Any, train_y: Any, test_x: Any, *,
                   num_classes: int, num_components: int = 10,
                   seed: int = 0) -> np.ndarray:
  """The classic baseline: one Gaussian mixture per class, -log p(x | y).

  scikit-learn's ``GaussianMixture`` with diagonal covariances (floor
  ``reg_covar=1e-3``, k-means initialisation, seed `seed`) is fitted by EM
  on each class's training rows; a class with fewer rows than
  `num_components` gets that many components.

  Args:
    train_x: float [N, D] training features (e.g. pixels in [0, 1]).
    train_y: int [N] labels in [0, num_classes).
    test_x: float [M, D].
    num_classes: K; every class must have training rows.

  Returns:
    float64 [M, K]: -log p(x | y) of each test row under each class's
    mixture (a density: compare across classes, not with other models).
  """
  from sklearn.mixture import GaussianMixture  # pylint: disable=g-import-not-at-top
  train_x = np.asarray(train_x, np.float64)
  train_y = np.asarray(train_y)
  test_x = np.asarray(test_x, np.float64)
  out = np.empty((len(test_x), num_classes), np.float64)
  for y in range(num_classes):
    rows = train_x[train_y == y]
    if not len(rows):
      raise ValueError(f'class {y} has no training rows.')
    gmm = GaussianMixture(min(num_components, len(rows)),
                          covariance_type='diag', reg_covar=1e-3,
                          random_state=seed)
    out[:, y] = -gmm.fit(rows).score_samples(test_x)
  return out
