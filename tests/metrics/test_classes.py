"""IS-style score and class histograms against float64 references."""

import math

import jax
import numpy as np
import pytest
import scipy.special
import scipy.stats

from jaxgen import metrics


def _reference_inception_score(log_probs):
  """Independent float64 reference: exp mean_x KL(p(y|x) || p(y))."""
  p = np.exp(np.asarray(log_probs, np.float64))
  return np.exp(np.mean(scipy.special.rel_entr(p, p.mean(0)).sum(1)))


def test_inception_style_score_limits_and_reference():
  k = 10
  one_hot = np.full((30, k), -np.inf)
  one_hot[np.arange(30), np.arange(30) % k] = 0.0  # confident, uniform
  assert metrics.inception_style_score(one_hot) == pytest.approx(k, rel=1e-12)
  rng = np.random.default_rng(1)
  logits = rng.normal(size=k) * 3.0
  constant = np.tile(logits - np.log(np.exp(logits).sum()), (25, 1))
  assert metrics.inception_style_score(constant) == pytest.approx(1.0,
                                                                  abs=1e-12)
  # Generic cases against the formula on probabilities (SciPy's rel_entr).
  logits = rng.normal(size=(40, k)) * 2.0
  log_probs = scipy.special.log_softmax(logits, axis=1)
  np.testing.assert_allclose(metrics.inception_style_score(log_probs),
                             _reference_inception_score(log_probs),
                             rtol=1e-12)
  got = metrics.inception_style_score(np.asarray(jax.nn.log_softmax(logits)))
  np.testing.assert_allclose(got, _reference_inception_score(log_probs),
                             rtol=1e-6)  # float32 log_softmax
  # Some classes impossible for some rows (log p = -inf).
  sparse = log_probs.copy()
  sparse[::3, :4] = -np.inf
  sparse = scipy.special.log_softmax(sparse, axis=1)
  np.testing.assert_allclose(metrics.inception_style_score(sparse),
                             _reference_inception_score(sparse), rtol=1e-12)
  with pytest.raises(ValueError, match='normalised'):
    metrics.inception_style_score(logits)
  with pytest.raises(ValueError, match='log_probs'):
    metrics.inception_style_score(np.full((3, k), np.nan))


def test_label_distribution_counts_kls_and_coverage():
  predicted = np.array([0, 0, 0, 1, 2, 2])
  reference = np.array([0, 1, 2, 3])
  out = metrics.label_distribution(predicted, 4, reference, min_count=2)
  h = np.array([3, 1, 2, 0]) / 6
  assert out['class_counts'] == [3, 1, 2, 0]
  assert out['classes_covered'] == 2  # classes 0 and 2 have >= 2 samples
  np.testing.assert_allclose(out['label_kl_uniform'],
                             scipy.stats.entropy(h, np.full(4, 0.25)),
                             rtol=1e-12)
  np.testing.assert_allclose(out['label_kl_reference'],
                             out['label_kl_uniform'])  # reference = uniform
  even = metrics.label_distribution(np.arange(8) % 4, 4, min_count=1)
  assert even['label_kl_uniform'] == 0.0 and even['classes_covered'] == 4
  assert 'label_kl_reference' not in even
  missing = metrics.label_distribution(np.array([3]), 4, np.array([0, 1]))
  assert missing['label_kl_reference'] == math.inf


def test_label_distribution_against_a_skewed_reference():
  rng = np.random.default_rng(2)
  predicted = rng.integers(0, 10, 500)
  reference = rng.choice(10, 800, p=np.arange(1, 11) / 55)
  out = metrics.label_distribution(predicted, 10, reference)
  h = np.bincount(predicted, minlength=10) / 500
  q = np.bincount(reference, minlength=10) / 800
  np.testing.assert_allclose(out['label_kl_reference'],
                             scipy.stats.entropy(h, q), rtol=1e-12)
  np.testing.assert_allclose(out['label_kl_uniform'],
                             scipy.stats.entropy(h, np.full(10, 0.1)),
                             rtol=1e-12)


def test_label_distribution_names_bad_input():
  with pytest.raises(ValueError, match='predicted must be'):
    metrics.label_distribution(np.zeros((0,), int), 3)
  with pytest.raises(ValueError, match=r'predicted classes must lie in \[0, 3\)'):
    metrics.label_distribution(np.array([0, 3]), 3)
