"""Outlier metrics against scikit-learn, typicality against a Gaussian."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from jaxgen.metrics import ood


def _scores(seed, n_in=300, n_out=200, shift=0.7, ties=False):
  rng = np.random.default_rng(seed)
  s_in = rng.normal(0.0, 1.0, n_in)
  s_out = rng.normal(shift, 1.0, n_out)
  if ties:  # coarse scores: many ties within and across the two sets
    s_in, s_out = np.round(s_in), np.round(s_out)
  return s_in, s_out


def _labelled(s_in, s_out):
  y = np.concatenate([np.zeros(len(s_in)), np.ones(len(s_out))])
  return y, np.concatenate([s_in, s_out])


@pytest.mark.parametrize('seed,ties', [(0, False), (1, True), (2, True)])
def test_auroc_and_aupr_match_sklearn(seed, ties):
  s_in, s_out = _scores(seed, ties=ties)
  y, s = _labelled(s_in, s_out)
  assert ood.auroc(s_in, s_out) == pytest.approx(skm.roc_auc_score(y, s),
                                                 abs=1e-12)
  assert ood.aupr_out(s_in, s_out) == pytest.approx(
      skm.average_precision_score(y, s), abs=1e-12)
  assert ood.aupr_in(s_in, s_out) == pytest.approx(
      skm.average_precision_score(1 - y, -s), abs=1e-12)


@pytest.mark.parametrize('seed,ties', [(3, False), (4, True)])
def test_fpr_at_95_tpr_matches_the_sklearn_roc_curve(seed, ties):
  s_in, s_out = _scores(seed, ties=ties)
  fpr, tpr, _ = skm.roc_curve(*_labelled(s_in, s_out),
                              drop_intermediate=False)
  expected = fpr[np.argmax(tpr >= 0.95)]
  assert ood.fpr_at_tpr(s_in, s_out) == pytest.approx(expected, abs=1e-12)
  report = ood.detection_report(s_in, s_out)
  assert set(report) == {'auroc', 'aupr_in', 'aupr_out', 'fpr95'}
  assert report['fpr95'] == ood.fpr_at_tpr(s_in, s_out)


def test_separated_and_reversed_scores():
  s_in, s_out = np.arange(10.0), np.arange(10.0) + 100
  assert ood.auroc(s_in, s_out) == 1.0
  assert ood.aupr_in(s_in, s_out) == ood.aupr_out(s_in, s_out) == 1.0
  assert ood.fpr_at_tpr(s_in, s_out) == 0.0
  # The outliers look *more* typical than the data: AUROC 0, all flagged.
  assert ood.auroc(s_out, s_in) == 0.0
  assert ood.fpr_at_tpr(s_out, s_in) == 1.0


def test_bad_scores_are_named():
  with pytest.raises(ValueError, match='scores_out'):
    ood.auroc([1.0, 2.0], [np.nan])
  with pytest.raises(ValueError, match='scores_in'):
    ood.auroc(np.zeros((2, 2)), [1.0])


def test_typicality_on_a_gaussian_matches_the_closed_form():
  d, n = 16, 200_000
  rng = np.random.default_rng(0)
  x = rng.standard_normal((n, d))
  nll = 0.5 * d * math.log(2 * math.pi) + 0.5 * (x ** 2).sum(1)
  entropy = 0.5 * d * math.log(2 * math.pi * math.e)  # float64 closed form
  # The training-set estimate is the entropy within Monte Carlo error:
  # sd of -log p is sqrt(d / 2), so the standard error is ~9e-3.
  assert ood.entropy_estimate(nll) == pytest.approx(entropy, abs=0.05)
  # The mode (x = 0) has the highest density and is atypical by d/2 nats.
  mode_nll = 0.5 * d * math.log(2 * math.pi)
  assert ood.typicality([mode_nll], entropy)[0] == pytest.approx(d / 2,
                                                                 rel=1e-12)
  # Batches of M: | mean over the batch of |x|^2 / 2 - d / 2 |.
  m = 50
  got = ood.typicality(nll[:1010], entropy, batch_size=m)
  sq = (x[:1000] ** 2).sum(1).reshape(20, m).mean(1)
  np.testing.assert_allclose(got, np.abs(sq / 2 - d / 2), rtol=1e-9,
                             atol=1e-9)
  with pytest.raises(ValueError, match='batch_size'):
    ood.typicality(nll[:3], entropy, batch_size=4)


def test_input_complexity_uses_the_png_length():
  flat = np.zeros((1, 28, 28, 1), np.uint8)
  noise = np.random.default_rng(0).integers(0, 256, (1, 28, 28, 1),
                                            dtype=np.uint8)
  lengths = ood.png_code_length_bits(np.concatenate([flat, noise]))
  assert lengths.dtype == np.float64 and np.all(lengths % 8 == 0)
  # Noise does not compress: more than 8 bits a pixel; a constant image does.
  assert lengths[1] > 8 * 28 * 28 > 5 * lengths[0]
  nll = np.array([100.0, 200.0])
  np.testing.assert_allclose(ood.input_complexity(nll, lengths),
                             nll / math.log(2) - lengths)


def test_expected_calibration_error():
  labels = np.array([0, 1, 0, 1])
  # Confidence 1, half right: ECE 0.5.
  sure = np.array([[1.0, 0.0]] * 4)
  assert ood.expected_calibration_error(sure, labels) == pytest.approx(0.5)
  # Confidence 0.75 and right three times in four: calibrated.
  calibrated = np.array([[0.75, 0.25]] * 3 + [[0.25, 0.75]])
  assert ood.expected_calibration_error(
      calibrated, np.array([0, 0, 0, 0])) == pytest.approx(0.0, abs=1e-12)
  # Two bins: (0.6 conf, right) and (0.9 conf, wrong) -> 0.5*0.4 + 0.5*0.9.
  two = np.array([[0.6, 0.4], [0.1, 0.9]])
  assert ood.expected_calibration_error(two, np.array([0, 0])) == (
      pytest.approx(0.5 * 0.4 + 0.5 * 0.9))


def test_accuracy_coverage_rejects_the_highest_scores_first():
  score = np.array([0.1, 5.0, 0.2, 4.0])
  correct = np.array([True, False, True, True])
  curve = ood.accuracy_coverage(score, correct, coverages=[0.5, 0.75, 1.0])
  np.testing.assert_allclose(curve['accuracy'], [1.0, 1.0, 0.75])
  np.testing.assert_allclose(curve['threshold'], [0.2, 4.0, 5.0])
