"""Sample-quality scores: references, limits, the classifier and the command."""

import contextlib
import json
import math
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest
import scipy.linalg

from experiments.configs import classifier as classifier_config
from experiments.configs import gan as gan_config
from jaxgen import data as data_lib
from jaxgen import quality
from jaxgen import train
from jaxgen.errors import ConfigError
from tests import helpers


# ------------------------------------------------------- Fréchet distance


def _scipy_frechet(f1, f2):
  """Independent float64 reference: scipy.linalg.sqrtm of C1 C2."""
  f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
  mu1, mu2 = f1.mean(0), f2.mean(0)
  c1, c2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
  covmean = scipy.linalg.sqrtm(c1 @ c2)
  assert np.abs(covmean.imag).max() < 1e-8
  return (np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2)
          - 2.0 * np.trace(covmean.real))


@pytest.mark.parametrize('dim,n1,n2', [(3, 50, 80), (16, 400, 300)])
def test_frechet_distance_matches_scipy_sqrtm(dim, n1, n2):
  rng = np.random.default_rng(dim)
  a1, a2 = rng.normal(size=(dim, dim)), rng.normal(size=(dim, dim))
  f1 = rng.normal(size=(n1, dim)) @ a1 + rng.normal(size=dim)
  f2 = rng.normal(size=(n2, dim)) @ a2 + 0.5
  got = quality.frechet_distance(f1, f2)
  want = _scipy_frechet(f1, f2)
  assert want > 1.0
  np.testing.assert_allclose(got, want, rtol=1e-9)


def test_frechet_distance_closed_form_for_diagonal_gaussians():
  # d^2 = |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2 for diagonal C.
  a, b = np.array([1.0, 4.0, 0.25, 0.0]), np.array([9.0, 1.0, 0.25, 2.0])
  mu1, mu2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
  got = quality.frechet_distance_from_statistics(mu1, np.diag(a), mu2,
                                                 np.diag(b))
  want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  np.testing.assert_allclose(got, want, rtol=1e-12)


def test_frechet_distance_zero_for_identical_sets_and_symmetric():
  rng = np.random.default_rng(0)
  f1 = rng.normal(size=(120, 10)) * 3.0 + 1.0
  f2 = rng.normal(size=(90, 10)) @ rng.normal(size=(10, 10))
  assert quality.frechet_distance(f1, f1) < 1e-9
  assert quality.frechet_distance(f1, f1[::-1]) < 1e-9  # order is irrelevant
  # Rank-deficient covariances (N < F) stay finite and zero on identity.
  few = rng.normal(size=(6, 10))
  assert quality.frechet_distance(few, few) < 1e-9
  d12, d21 = quality.frechet_distance(f1, f2), quality.frechet_distance(f2, f1)
  assert d12 > 1.0
  np.testing.assert_allclose(d12, d21, rtol=1e-10)
  with pytest.raises(ValueError, match='feature dimensions'):
    quality.frechet_distance(f1, f2[:, :3])


# ------------------------------------------------------------- IS-style


def test_inception_style_score_limits_and_reference():
  k = 10
  one_hot = np.full((30, k), -np.inf)
  one_hot[np.arange(30), np.arange(30) % k] = 0.0  # confident, uniform
  assert quality.inception_style_score(one_hot) == pytest.approx(k, rel=1e-12)
  rng = np.random.default_rng(1)
  logits = rng.normal(size=k) * 3.0
  constant = np.tile(logits - np.log(np.exp(logits).sum()), (25, 1))
  assert quality.inception_style_score(constant) == pytest.approx(1.0,
                                                                  abs=1e-12)
  # A generic case against the textbook formula on probabilities.
  logits = rng.normal(size=(40, k)) * 2.0
  log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
  p = np.exp(log_probs)
  want = np.exp(np.mean(np.sum(p * (np.log(p) - np.log(p.mean(0))), 1)))
  got = quality.inception_style_score(np.asarray(jax.nn.log_softmax(logits)))
  np.testing.assert_allclose(got, want, rtol=1e-6)  # float32 log_softmax
  with pytest.raises(ValueError, match='normalised'):
    quality.inception_style_score(logits)


def test_label_distribution_counts_kls_and_coverage():
  predicted = np.array([0, 0, 0, 1, 2, 2])
  reference = np.array([0, 1, 2, 3])
  out = quality.label_distribution(predicted, 4, reference, min_count=2)
  h = np.array([3, 1, 2, 0]) / 6
  support = h > 0
  assert out['class_counts'] == [3, 1, 2, 0]
  assert out['classes_covered'] == 2  # classes 0 and 2 have >= 2 samples
  np.testing.assert_allclose(out['label_kl_uniform'],
                             np.sum(h[support] * np.log(h[support] * 4)))
  np.testing.assert_allclose(out['label_kl_reference'],
                             out['label_kl_uniform'])  # reference = uniform
  even = quality.label_distribution(np.arange(8) % 4, 4, min_count=1)
  assert even['label_kl_uniform'] == 0.0 and even['classes_covered'] == 4
  missing = quality.label_distribution(np.array([3]), 4, np.array([0, 1]))
  assert missing['label_kl_reference'] == math.inf


# -------------------------------------------------------------- toy modes


@pytest.mark.parametrize('name,num_modes', [('toy:ring8', 8),
                                            ('toy:grid25', 25)])
def test_toy_mode_coverage_on_data_one_mode_and_far_points(name, num_modes):
  points = np.asarray(data_lib.sample_toy(name, jax.random.key(0), 20_000))
  out = quality.toy_mode_coverage(points, name)
  assert out['modes_covered'] == out['num_modes'] == num_modes
  # P(|x - mu| <= 3 sigma) for an isotropic 2-D Gaussian: 1 - exp(-4.5).
  assert out['high_quality_share'] == pytest.approx(1 - math.exp(-4.5),
                                                    abs=0.003)
  assert out['mode_kl_uniform'] < 0.01
  centers, std = data_lib.toy_modes(name)
  rng = np.random.default_rng(0)
  one = centers[3] + std * rng.normal(size=(500, 2)) * 0.5
  one_out = quality.toy_mode_coverage(one, name)
  assert one_out['modes_covered'] == 1
  assert one_out['mode_counts'][3] == 500
  assert one_out['mode_kl_uniform'] == pytest.approx(math.log(num_modes))
  far = quality.toy_mode_coverage(np.full((10, 2), 50.0), name)
  assert far['modes_covered'] == 0 and far['high_quality_share'] == 0.0
  # The 3-sigma radius is a Euclidean distance: in at 2.99, out at 3.01.
  edge = centers[0] + std * np.array([[2.99, 0.0], [0.0, -3.01]])
  edge_out = quality.toy_mode_coverage(edge, name)
  assert edge_out['high_quality_share'] == 0.5
  assert quality.toy_mode_coverage(edge, name, min_count=2)[
      'modes_covered'] == 0


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
