"""Linear probes: how much of the labels a representation makes linear.

A multinomial logistic regression (scikit-learn's ``LogisticRegression``,
L2-regularised with C = 1, L-BFGS) is fitted on the features of a few
labelled training examples and scored on the test split, for a growing
number of labels. Features are standardised with the mean and standard
deviation of *all* training features (no labels needed for that); which
examples are labelled is a fixed draw, `labelled_subset`. Raw pixels are
the baseline a learned representation should beat with few labels.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

NUM_LABELS = (10, 100, 1000, 0)  # 0: every training label


def labelled_subset(labels: Any, num: int, seed: int = 0) -> np.ndarray:
  """Indices of `num` labelled examples (0: all), sorted: the first `num`
  of ``numpy.random.default_rng(seed).permutation``, so a larger `num`
  contains every smaller one."""
  n = len(labels)
  if num == 0 or num >= n:
    return np.arange(n)
  if num < 0:
    raise ValueError(f'num must be >= 0, got {num}.')
  return np.sort(np.random.default_rng(seed).permutation(n)[:num])


def probe_accuracy(train_x: Any, train_y: Any, test_x: Any, test_y: Any, *,
                   max_iter: int = 1000) -> float:
  """Test accuracy of a logistic regression fitted on (train_x, train_y).

  A labelled set of one class predicts that class.
  """
  from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
  train_y, test_y = np.asarray(train_y), np.asarray(test_y)
  if len(np.unique(train_y)) < 2:
    return float(np.mean(test_y == train_y[0]))
  model = LogisticRegression(C=1.0, max_iter=max_iter)
  model.fit(np.asarray(train_x, np.float64), train_y)
  return float(model.score(np.asarray(test_x, np.float64), test_y))


def standardise(train_x: Any, test_x: Any) -> tuple[np.ndarray, np.ndarray]:
  """Both sets scaled by the training features' mean and std (constant
  features are left centred)."""
  train_x = np.asarray(train_x, np.float64)
  mean, std = train_x.mean(0), train_x.std(0)
  std = np.where(std > 0, std, 1.0)
  return (train_x - mean) / std, (np.asarray(test_x, np.float64) - mean) / std


def probe_curve(train_x: Any, train_y: Any, test_x: Any, test_y: Any, *,
                num_labels: Sequence[int] = NUM_LABELS,
                seed: int = 0) -> list[dict[str, Any]]:
  """[{'num_labels', 'accuracy'}] for each count (0: all labels)."""
  train_x, test_x = standardise(train_x, test_x)
  train_y = np.asarray(train_y)
  rows = []
  for num in num_labels:
    idx = labelled_subset(train_y, num, seed)
    rows.append({'num_labels': int(len(idx)),
                 'accuracy': probe_accuracy(train_x[idx], train_y[idx],
                                            test_x, test_y)})
  return rows
