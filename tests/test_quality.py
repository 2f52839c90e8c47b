"""Sample quality of a run: the classifier family (trained by the shared
trainer, loaded without it), image scores and the command."""

import contextlib
import dataclasses
import json
import math
import os
import subprocess
import sys
import types

import jax
import ml_collections
import numpy as np
import pytest
import scipy.special

from experiments import train_classifier
from experiments.configs import classifier as classifier_config
from experiments.configs import gan as gan_config
from experiments.results import run as run_lib
from jaxgen import data as jaxgen_data
from jaxgen import evaluations
from jaxgen import metrics
from jaxgen import quality
from jaxgen import train
from jaxgen import writers
from jaxgen.errors import ConfigError
from jaxgen.models import classifier as classifier_model
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
  config.train.num_steps = num_steps
  config.train.log_every_steps = 5
  config.train.checkpoint_every_steps = 5
  return config


@pytest.fixture(scope='module')
def classifier_dir(tmp_path_factory):
  """The smoke classifier, trained once by experiments.train_classifier's
  function (the shared trainer, then the 'classifier_accuracy' evaluation)."""
  workdir = tmp_path_factory.mktemp('classifier')
  with contextlib.chdir(helpers.REPO_ROOT):
    clf = train_classifier.train_classifier(_smoke_classifier_config(),
                                            str(workdir), log=lambda s: None)
  return workdir, clf


@pytest.mark.slow
def test_classifier_trains_through_the_trainer(classifier_dir):
  workdir, clf = classifier_dir
  # The trainer's files: checkpoints of steps 5 and 10, the train log and
  # the test-split evaluation, whose loss metrics include the accuracy.
  assert sorted(os.listdir(workdir / 'checkpoints'), key=int) == ['5', '10']
  assert not (workdir / quality.OLD_CHECKPOINT_DIR).exists()
  train_log = writers.read_metrics(str(workdir), 'train')
  assert [r['step'] for r in train_log] == [5, 10]
  evaluation = json.loads((workdir / 'eval' / 'test_step0000010.json')
                          .read_text())
  assert set(evaluation) >= {'nll', 'accuracy', 'num_examples'}
  saved = json.loads((workdir / 'accuracy.json').read_text())
  assert saved == clf.info
  assert saved['step'] == saved['num_steps'] == 10
  assert saved['split'] == 'test' and saved['num_test'] == 80
  assert saved['dataset'] == 'digits'
  # The evaluation's mean accuracy over the same 80 test images.
  assert saved['test_accuracy'] == pytest.approx(evaluation['accuracy'],
                                                 abs=1e-9)
  assert 0.0 <= saved['test_accuracy_binarized'] <= 1.0
  assert saved['num_params'] == sum(
      x.size for x in jax.tree.leaves(clf.params)) > 0
  assert [r['step'] for r in saved['train_log']] == [5, 10]
  assert saved['train_log'][0]['loss'] == train_log[0]['loss']
  assert saved['train_log'][1]['loss'] < math.log(10) + 0.1
  assert saved['train_seconds'] > 0.0
  assert 'not comparable to Inception' in saved['note']


@pytest.mark.slow
def test_load_classifier_gives_the_trained_parameters(classifier_dir):
  workdir, clf = classifier_dir
  with contextlib.chdir(helpers.REPO_ROOT):
    exp = train.Experiment(_smoke_classifier_config(), str(workdir))
    state, step = exp.restore()
  assert step == 10
  loaded = quality.load_classifier(str(workdir))
  helpers.assert_trees_equal(jax.device_get(exp.eval_params(state)),
                             loaded.params)
  assert isinstance(loaded.net, classifier_model.Net)
  assert loaded.info == clf.info and loaded.workdir == str(workdir)
  # A relative path is kept as given (records name it, not this machine's
  # absolute path) and loads the same parameters.
  with contextlib.chdir(workdir.parent):
    relative = quality.load_classifier(workdir.name)
  assert relative.workdir == workdir.name
  helpers.assert_trees_equal(relative.params, loaded.params)
  images = np.random.default_rng(0).integers(0, 256, (7, 8, 8, 1), np.uint8)
  f1, lp1 = clf.outputs(images)
  f2, lp2 = loaded.outputs(images)
  np.testing.assert_array_equal(f1, f2)
  np.testing.assert_array_equal(lp1, lp2)
  assert f1.shape == (7, 64) and lp1.shape == (7, 10)
  np.testing.assert_allclose(np.exp(lp1).sum(1), 1.0, rtol=1e-5)
  # Features of the net the trainer built, on pixel / 255.
  logits, features = exp.net.apply(loaded.params, images / 255.0)
  np.testing.assert_allclose(f1, features, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(lp1, jax.nn.log_softmax(logits), rtol=1e-5,
                             atol=1e-5)


@pytest.mark.slow
def test_classifier_training_is_deterministic(classifier_dir, tmp_path):
  """Same seed twice through the trainer: bitwise the same parameters."""
  workdir, _ = classifier_dir
  with contextlib.chdir(helpers.REPO_ROOT):
    state = train.Experiment(_smoke_classifier_config(),
                             str(tmp_path)).train()
  helpers.assert_trees_equal(jax.device_get(state.params),
                             quality.load_classifier(str(workdir)).params)


@pytest.mark.slow
def test_a_trained_classifier_is_loaded_not_retrained(classifier_dir):
  workdir, clf = classifier_dir
  before = sorted(os.listdir(workdir / 'checkpoints'))
  logged = []
  again = train_classifier.train_classifier(
      _smoke_classifier_config(), str(workdir), log=logged.append)
  assert logged == [f'{workdir} already holds this classifier; loading it.']
  assert again.info == clf.info
  assert sorted(os.listdir(workdir / 'checkpoints')) == before
  with pytest.raises(ConfigError, match='another config'):
    train_classifier.train_classifier(_smoke_classifier_config(11),
                                      str(workdir))


def test_old_format_and_unfinished_workdirs_are_refused(tmp_path):
  old = tmp_path / 'classifier_smoke'
  (old / 'checkpoint').mkdir(parents=True)
  (old / 'config.json').write_text('{"seed": 0}')
  (old / 'accuracy.json').write_text('{"test_accuracy": 0.9}')
  for fn in (quality.load_classifier,
             lambda w: train_classifier.train_classifier(
                 classifier_config.get_config('smoke'), w)):
    with pytest.raises(ConfigError, match='format that is no longer read'):
      fn(str(old))
  # The results runner refuses it too, before training anything.
  with pytest.raises(ConfigError, match='format that is no longer read'):
    run_lib.ensure_classifier('smoke', str(tmp_path), quick=True)
  assert sorted(p.name for p in old.iterdir()) == [
      'accuracy.json', 'checkpoint', 'config.json']
  # Another family's run, and a workdir without accuracy.json.
  other = tmp_path / 'vae'
  other.mkdir()
  (other / 'config.json').write_text('{"family": "vae"}')
  with pytest.raises(ConfigError, match="config.family='vae'"):
    quality.load_classifier(str(other))
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(FileNotFoundError, match='experiments.train_classifier'):
    quality.load_classifier(str(empty))


def test_training_binarizes_a_share_of_the_rows():
  x = jax.random.uniform(jax.random.key(0), (64, 8, 8, 1))
  key = jax.random.key(1)
  np.testing.assert_array_equal(classifier_model.binarize_share(key, x, 0.0),
                                x)
  all_bits = np.asarray(classifier_model.binarize_share(key, x, 1.0))
  assert set(np.unique(all_bits)) <= {0.0, 1.0}
  assert abs(all_bits.mean() - float(x.mean())) < 0.05
  half = np.asarray(classifier_model.binarize_share(key, x, 0.5))
  kept = (half == np.asarray(x)).all(axis=(1, 2, 3))
  binary = np.isin(half, (0.0, 1.0)).all(axis=(1, 2, 3))
  assert (kept | binary).all() and 10 < kept.sum() < 54  # whole rows
  # Training (train=True) sees the binarized rows; evaluation the images.
  config = _smoke_classifier_config()
  net = train.make_net(classifier_model, config.model)
  batch = {'image': x, 'label': jax.numpy.zeros((64,), jax.numpy.int32),
           'mask': jax.numpy.ones((64,), bool)}
  params = classifier_model.init(jax.random.key(2), batch, net=net)
  ev1, _ = classifier_model.loss_fn(params, batch, key, net=net, train=False)
  ev2, _ = classifier_model.loss_fn(params, batch, jax.random.key(3),
                                    net=net, train=False)
  tr, metrics = classifier_model.loss_fn(params, batch, key, net=net,
                                         train=True)
  assert ev1 == ev2 and tr != ev1
  assert set(metrics) == {'nll', 'accuracy'}
  assert metrics['nll'].shape == metrics['accuracy'].shape == (64,)


@pytest.mark.parametrize('field, value, match', [
    ('data.binarize', 'dynamic', 'config.data.binarize'),
    ('data.value_range', 'symmetric', 'config.data.value_range'),
    ('model.binarize_prob', 1.5, 'config.model.binarize_prob'),
    ('model.num_classes', 5, 'config.model.num_classes'),
    ('model.pool', 'max', 'config.model.pool'),
    ('train.batch_size', 512, 'config.train.batch_size'),
])
def test_bad_classifier_config_names_the_field(field, value, match, tmp_path):
  config = _smoke_classifier_config()
  config.update_from_flattened_dict({field: value})
  with pytest.raises(ConfigError, match=match):
    train.Experiment(config, str(tmp_path))
  assert not list(tmp_path.iterdir())  # nothing written


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
    exp = train.Experiment(helpers.smoke_config(), str(vae_dir))
    state = exp.train()
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
  assert out['classifier/workdir'] == str(clf_dir)
  assert out['classifier/test_accuracy'] == clf.info['test_accuracy']
  # In-process, from the trained state through the 'sample_quality'
  # evaluation, the same seed gives the same numbers (samples, binarization
  # of the reference and data subsets are all keyed).
  with contextlib.chdir(helpers.REPO_ROOT):
    fields = evaluations.run('sample_quality', exp, state,
                             out_dir=str(tmp_path), classifier=clf,
                             num_samples=50, write=False)
  again = fields['quality']
  for key in ('fid_style', 'is_style', 'data/train_vs_test/fid_style',
              'data/half_vs_half/fid_style', 'class_counts'):
    assert again[key] == pytest.approx(out[key], rel=1e-6), key
  # A classifier of other data splits is refused by name.
  other = ml_collections.ConfigDict(clf.config.to_dict())
  other.data.split_seed = 1
  with pytest.raises(ConfigError, match='config.data.split_seed'):
    quality.evaluate_workdir(exp, state, dataclasses.replace(
        clf, config=other), num_samples=50, write=False)


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
  exp = train.Experiment(c, str(tmp_path))
  out = quality.evaluate_workdir(exp, exp.train(), None, num_samples=300)
  written = json.loads((tmp_path / 'eval' / 'quality_step0000002.json')
                       .read_text())
  assert written['modes_covered'] == out['modes_covered']
  assert out['num_samples'] == 300 and out['num_modes'] == 8
  assert sum(out['mode_counts']) == round(300 * out['high_quality_share'])
  # The data row: 200 real test points cover every mode, ~98.9% within 3 sd.
  assert out['data/reference/num_samples'] == 200
  assert out['data/reference/modes_covered'] == 8
  assert out['data/reference/high_quality_share'] > 0.95
  # Two steps of training: far from the data, unlike its training points.
  assert out['data/train_vs_test/num_samples'] == 300
  assert out['energy_distance'] > 10 * abs(
      out['data/train_vs_test/energy_distance'])


@pytest.mark.parametrize('name', ['toy:moons', 'toy:ring8'])
def test_toy_scores_energy_distance_everywhere_modes_where_there_are(name):
  splits = {'train': 'all[:60%]', 'test': 'all[60%:]'}
  dataset = jaxgen_data.load_dataset(name, splits=splits, num_points=1000)
  exp = types.SimpleNamespace(
      dataset=dataset,
      config=ml_collections.ConfigDict({'data': {'name': name}}))
  real = quality.whole_split(dataset.splits['test'])['point']
  shifted = real[:300] + np.float32(1.0)
  out = quality._toy_scores(exp, shifted, 'test', seed=0, min_count=1)
  floor = out['data/train_vs_test/energy_distance']
  assert out['data/reference/num_samples'] == 300
  assert out['data/train_vs_test/num_samples'] == 300
  assert abs(floor) < 0.05 and out['energy_distance'] > 0.5
  same = quality._toy_scores(exp, real[:300], 'test', seed=0, min_count=1)
  assert abs(same['energy_distance']) < 0.05
  assert ('modes_covered' in out) == (name == 'toy:ring8')
  if name == 'toy:ring8':
    assert out['modes_covered'] == 0 and same['modes_covered'] == 8
