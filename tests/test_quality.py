"""Sample quality of a run: the classifier, image scores and the command."""

import contextlib
import json
import math
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest
import scipy.special

from experiments.configs import classifier as classifier_config
from experiments.configs import gan as gan_config
from jaxgen import metrics
from jaxgen import quality
from jaxgen import train
from jaxgen.errors import ConfigError
from tests import helpers


def test_image_scores_are_the_metrics_of_samples_against_reference():
  rng = np.random.default_rng(0)
  f, ref_f = rng.normal(size=(30, 4)), rng.normal(size=(40, 4)) + 1.0
  lp = scipy.special.log_softmax(rng.normal(size=(30, 3)) * 3.0, axis=1)
  ref_lp = scipy.special.log_softmax(rng.normal(size=(40, 3)), axis=1)
  out = quality.image_scores(f, lp, ref_f, ref_lp, min_count=5)
  assert out['fid_style'] == metrics.frechet_distance(f, ref_f)
  assert out['is_style'] == metrics.inception_style_score(lp)
  assert out['num_samples'] == 30
  labels = metrics.label_distribution(lp.argmax(1), 3, ref_lp.argmax(1),
                                      min_count=5)
  assert {k: out[k] for k in labels} == labels
  assert sum(out['class_counts']) == 30


# ------------------------------------------------- classifier and command


def _smoke_classifier_config(num_steps=10):
  config = classifier_config.get_config('smoke')
  with config.unlocked():
    config.train.num_steps = num_steps
    config.train.log_every_steps = 5
  return config


@pytest.fixture(scope='module')
def classifier_dir(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('classifier')
  with contextlib.chdir(helpers.REPO_ROOT):
    clf = quality.train_classifier(_smoke_classifier_config(), str(workdir),
                                   log=lambda s: None)
  return workdir, clf


@pytest.mark.slow
def test_classifier_trains_saves_and_restores(classifier_dir):
  workdir, clf = classifier_dir
  log = clf.info['train_log']
  assert [r['step'] for r in log] == [5, 10]
  assert log[1]['loss'] < log[0]['loss'] < math.log(10) + 0.1
  saved = json.loads((workdir / 'accuracy.json').read_text())
  assert saved['num_steps'] == 10 and 0.0 <= saved['test_accuracy'] <= 1.0
  loaded = quality.load_classifier(str(workdir))
  helpers.assert_trees_equal(jax.device_get(clf.params), loaded.params)
  images = np.random.default_rng(0).integers(0, 256, (7, 8, 8, 1), np.uint8)
  f1, lp1 = clf.outputs(images)
  f2, lp2 = loaded.outputs(images)
  np.testing.assert_array_equal(f1, f2)
  np.testing.assert_array_equal(lp1, lp2)
  assert f1.shape == (7, 64) and lp1.shape == (7, 10)
  np.testing.assert_allclose(np.exp(lp1).sum(1), 1.0, rtol=1e-5)
  # Same config, same workdir: loaded, not retrained; another config: error.
  again = quality.train_classifier(_smoke_classifier_config(), str(workdir),
                                   log=lambda s: None)
  assert again.info == saved
  with pytest.raises(ConfigError, match='another config'):
    quality.train_classifier(_smoke_classifier_config(11), str(workdir))


@pytest.mark.slow
def test_classifier_training_is_deterministic(classifier_dir, tmp_path):
  _, clf = classifier_dir
  with contextlib.chdir(helpers.REPO_ROOT):
    other = quality.train_classifier(_smoke_classifier_config(),
                                     str(tmp_path), log=lambda s: None)
  helpers.assert_trees_equal(jax.device_get(clf.params),
                             jax.device_get(other.params))


def test_classifier_pooling_options():
  """'mean' pools over positions (fewer feature weights); bad names fail."""
  from jaxgen.nn import classifier as classifier_nn
  x = jax.numpy.ones((2, 8, 8, 1))
  sizes = {}
  for pool in classifier_nn.POOLS:
    net = classifier_nn.Classifier(image_shape=(8, 8, 1), channels=(4, 6),
                                   strides=(1, 2), feature_dim=5, pool=pool)
    net.check()
    params = net.init(jax.random.key(0), x)
    logits, features = net.apply(params, x)
    assert logits.shape == (2, 10) and features.shape == (2, 5)
    sizes[pool] = params['params']['features']['kernel'].shape[0]
  assert sizes == {'flatten': 4 * 4 * 6, 'mean': 6}
  with pytest.raises(ConfigError, match='config.model.pool'):
    classifier_nn.Classifier(pool='max').check()


def test_data_mismatch_names_the_field():
  a = ml_collections.ConfigDict(dict(
      name='digits', shuffle_before_split=True, split_seed=0,
      splits=dict(train='all[:70%]', test='all[80%:]')))
  b = ml_collections.ConfigDict(a.to_dict())
  b.split_seed = 1
  with pytest.raises(ConfigError, match='config.data.split_seed'):
    quality.check_same_data(a, b, 'test')
  b.split_seed, b.splits.test = 0, 'all[90%:]'
  with pytest.raises(ConfigError, match='config.data.splits.test'):
    quality.check_same_data(a, b, 'test')


@pytest.mark.slow
def test_sample_quality_command_end_to_end(classifier_dir, tmp_path):
  clf_dir, clf = classifier_dir
  vae_dir = tmp_path / 'vae'
  with contextlib.chdir(helpers.REPO_ROOT):
    train.Experiment(helpers.smoke_config(), str(vae_dir)).train()
  proc = subprocess.run(
      [sys.executable, '-m', 'experiments.sample_quality',
       f'--workdir={vae_dir}', f'--classifier={clf_dir}', '--num_samples=50'],
      cwd=helpers.REPO_ROOT, env=helpers.subprocess_env(),
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'not comparable to Inception' in proc.stdout
  out = json.loads((vae_dir / 'eval' / 'quality_step0000004.json')
                   .read_text())
  assert out['family'] == 'vae' and out['step'] == 4
  assert out['num_samples'] == 50 and out['num_reference'] == 80
  assert out['data/train_vs_test/num_samples'] == 50
  assert out['data/half_vs_half/num_samples'] == 40
  assert sum(out['class_counts']) == 50
  assert 0 <= out['classes_covered'] <= 10
  assert 1.0 <= out['is_style'] <= 10.0
  for key in ('fid_style', 'data/train_vs_test/fid_style',
              'data/half_vs_half/fid_style', 'label_kl_uniform'):
    assert np.isfinite(out[key]) and out[key] >= 0.0
  # In-process, the same seed gives the same numbers (samples, binarization
  # of the reference and data subsets are all keyed).
  with contextlib.chdir(helpers.REPO_ROOT):
    again = quality.evaluate_workdir(str(vae_dir), clf, num_samples=50,
                                     write=False)
  for key in ('fid_style', 'is_style', 'data/train_vs_test/fid_style',
              'data/half_vs_half/fid_style', 'class_counts'):
    assert again[key] == pytest.approx(out[key], rel=1e-6), key


@pytest.mark.slow
def test_toy_run_gets_mode_coverage_without_a_classifier(tmp_path):
  c = gan_config.get_config('ring8')
  c.data.num_points = 2000
  c.model.g_hidden = c.model.d_hidden = (8,)
  c.model.latent_dim = 2
  c.train.batch_size = 32
  c.train.num_steps = 2
  c.train.checkpoint_every_steps = 2
  c.train.image_every_steps = 0
  c.train.eval_every_steps = 0
  c.train.async_checkpointing = False
  train.Experiment(c, str(tmp_path)).train()
  out = quality.evaluate_workdir(str(tmp_path), None, num_samples=300)
  written = json.loads((tmp_path / 'eval' / 'quality_step0000002.json')
                       .read_text())
  assert written['modes_covered'] == out['modes_covered']
  assert out['num_samples'] == 300 and out['num_modes'] == 8
  assert sum(out['mode_counts']) == round(300 * out['high_quality_share'])
  # The data row: 200 real test points cover every mode, ~98.9% within 3 sd.
  assert out['data/reference/num_samples'] == 200
  assert out['data/reference/modes_covered'] == 8
  assert out['data/reference/high_quality_share'] > 0.95
