"""The discriminative reference beside a Bayes classifier."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from experiments import uses as uses_cli
from jaxgen.errors import ConfigError
from jaxgen.uses import reports


class _Classifier:
  """Stands for `jaxgen.quality.FeatureClassifier`: log p(y | x) from a
  table keyed by the image's first pixel."""

  def __init__(self, table):
    self.table = table
    self.workdir = 'runs/classifier'
    self.config = types.SimpleNamespace(
        data=types.SimpleNamespace(name='digits'))

  def outputs(self, images):
    log_post = np.log(self.table[images[:, 0, 0, 0]])
    return np.zeros((len(images), 1)), log_post


def test_classifier_reference_scores_the_same_rows():
  # Rows 0..3 are test digits (pixel value = row), 4..7 outliers. The
  # classifier is sure and right on rows 0-2, sure and wrong on row 3, and
  # unsure (0.5) on every outlier.
  table = np.full((8, 2), 0.5)
  table[:4] = [[0.9, 0.1], [0.1, 0.9], [0.8, 0.2], [0.7, 0.3]]
  images = np.arange(8, dtype=np.uint8).reshape(8, 1, 1, 1)
  labels = np.array([0, 1, 0, 1])
  ref = reports.classifier_reference(_Classifier(table), images[:4], labels,
                                     images[4:])
  assert ref['accuracy'] == 0.75
  assert ref['nll_labels'] == pytest.approx(
      -np.mean(np.log([0.9, 0.9, 0.8, 0.3])))
  assert ref['ood_auroc_max_prob'] == 1.0
  curve = ref['reject_with_ood']
  half = curve['coverage'].index(0.5)
  assert curve['ood_kept'][half] == 0.0 and curve['accuracy'][half] == 0.75
  assert curve['accuracy'][-1] == pytest.approx(3 / 8)
  # ECE: bins of confidence 0.9 (two rows, right), 0.8 (right), 0.7 (wrong).
  assert ref['ece'] == pytest.approx((2 * 0.1 + 0.2 + 0.7) / 4)


def test_render_shows_the_reference(tmp_path):
  table = np.full((8, 2), 0.5)
  table[:4] = [[0.9, 0.1], [0.1, 0.9], [0.8, 0.2], [0.7, 0.3]]
  images = np.arange(8, dtype=np.uint8).reshape(8, 1, 1, 1)
  ref = reports.classifier_reference(_Classifier(table), images[:4],
                                     np.array([0, 1, 0, 1]), images[4:])
  curve = ref['reject_with_ood']
  record = {'command': 'python -m experiments.uses bayes', 'workdir': 'w',
            'step': 1, 'num': 4, 'accuracy': 0.5, 'ece': 0.1,
            'nll_labels': 0.7, 'num_ood': 4, 'sets': ['noise'],
            'ood_auroc_log_px': 0.9, 'reject_with_ood': curve,
            'classifier_reference': ref}
  (tmp_path / 'bayes_x.json').write_text(json.dumps(record))
  page = uses_cli.render(str(tmp_path))
  assert 'Reference, the discriminative classifier `runs/classifier`' in page
  assert '| Accuracy, classifier refusing by max_y p(y|x) |' in page


def _run_on(name):
  return types.SimpleNamespace(config=types.SimpleNamespace(
      data=types.SimpleNamespace(name=name)))


def test_digits_are_no_outliers_of_a_digits_run():
  digits_run, mnist_run = _run_on('digits'), _run_on('npz:mnist8k.npz')
  assert 'digits' not in reports.outlier_sets(digits_run)
  assert 'flip' in reports.outlier_sets(digits_run)
  assert 'digits' in reports.outlier_sets(mnist_run)
  assert reports.outlier_sets(mnist_run, ['digits', 'noise']) == [
      'digits', 'noise']
  with pytest.raises(ConfigError, match="config.data.name='digits'"):
    reports.outlier_sets(digits_run, ['noise', 'digits'])
