"""Evaluations by name: code usage, the codebook figure, the classifier's
accuracy (tested with the classifier in test_quality), the samplers'
quality side by side, the registry."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from experiments.configs import classifier as classifier_config
from experiments.configs import ddpm as ddpm_config
from experiments.configs import kmeans as kmeans_config
from experiments.configs import vqvae as vqvae_config
from jaxgen import data as data_lib
from jaxgen import evaluations
from jaxgen import quality
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.models import vqvae
from tests import helpers

# They train through the trainer or start processes.
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def vq_run(tmp_path_factory):
  config = vqvae_config.get_config('smoke')
  config.train.num_steps = 3
  config.train.eval_every_steps = 0
  config.train.checkpoint_every_steps = 3
  config.eval.batch_size = 24  # the last test batch is padded and masked
  exp = train.Experiment(config, str(tmp_path_factory.mktemp('vq')))
  return exp, exp.train()


def _reference_code_usage(exp, state, split):
  """Per level, code counts the direct way: one process, each eval batch
  preprocessed eagerly with fold_in(eval_key, i), counted by the family's
  jitted `code_counts`, summed in float64."""
  variables = exp.eval_params(state)
  totals = None
  for i, local in enumerate(data_lib.eval_batches(
      exp.dataset.splits[split], batch_size=exp.local_eval_batch_size)):
    batch = exp.preprocess({k: jnp.asarray(v) for k, v in local.items()},
                           jax.random.fold_in(exp.eval_key, i))
    counts = [np.asarray(c, np.float64) for c in vqvae.code_counts(
        variables, batch, family=exp.family, net=exp.net)]
    totals = counts if totals is None else [t + c for t, c in
                                            zip(totals, counts)]
  return totals


def test_code_usage_counts_every_code_position_of_the_split_once(vq_run):
  exp, state = vq_run
  (level,) = evaluations.split_code_usage(exp, state, 'test')
  (want,) = _reference_code_usage(exp, state, 'test')
  # Bitwise the counts of the direct computation on one process.
  np.testing.assert_array_equal(level['counts'], want)
  (h, w), = vqvae.code_shapes(exp.net)
  num_test = len(exp.dataset.splits['test'])
  assert level['counts'].sum() == num_test * h * w  # padding not counted
  k = exp.net.num_codes
  p = want / want.sum()
  nz = p[p > 0]
  assert level['perplexity'] == pytest.approx(
      np.exp(-(nz * np.log(nz)).sum()), rel=1e-12)
  assert 1.0 <= level['perplexity'] <= k
  assert level['codes_used'] == int((want > 0).sum())


def test_code_usage_through_the_registry_is_json_fields(vq_run, tmp_path):
  exp, state = vq_run
  fields = evaluations.run('code_usage', exp, state, out_dir=str(tmp_path),
                           split='test')
  (level,) = evaluations.split_code_usage(exp, state, 'test')
  assert fields == {'code_usage': [{
      'perplexity': level['perplexity'], 'codes_used': level['codes_used'],
      'num_codes': exp.net.num_codes}]}
  assert not list(tmp_path.iterdir())  # nothing written


def test_code_usage_names_the_split(vq_run, tmp_path):
  exp, state = vq_run
  with pytest.raises(ConfigError, match="split 'nosuch'"):
    evaluations.run('code_usage', exp, state, out_dir=str(tmp_path),
                    split='nosuch')


_TWO_PROCESSES = """
import json, sys
from experiments.configs import vqvae as vqvae_config
from jaxgen import evaluations, train
pid, port, workdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
config = vqvae_config.get_config('smoke')
config.train.num_steps = 1
config.train.eval_every_steps = 0
config.eval.batch_size = 24
config.parallel.num_processes = 2
config.parallel.process_id = pid
config.parallel.coordinator_address = f'localhost:{port}'
config.parallel.local_device_count = 2
exp = train.Experiment(config, workdir)
(level,) = evaluations.split_code_usage(exp, exp.train(), 'test')
print(json.dumps({'counts': level['counts'].tolist(),
                  'perplexity': level['perplexity'],
                  'rows': len(exp.dataset.splits['test']),
                  'eval_batch': exp.local_eval_batch_size}))
"""


def test_code_usage_over_two_processes_counts_each_example_once(tmp_path):
  """Each process reads its share of the split: over the global batches
  every test example is counted exactly once (not once per process), and
  both processes get the same usage."""
  port = helpers.free_port()
  procs = [subprocess.Popen(
      [sys.executable, '-c', _TWO_PROCESSES, str(pid), str(port),
       str(tmp_path)], cwd=helpers.REPO_ROOT, env=helpers.subprocess_env(),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for pid in range(2)]
  outputs = [p.communicate(timeout=300) for p in procs]
  for p, (out, err) in zip(procs, outputs):
    assert p.returncode == 0, f'{out[-2000:]}\n{err[-4000:]}'
  results = [json.loads(out.splitlines()[-1]) for out, _ in outputs]
  assert results[0] == results[1]
  r = results[0]
  assert r['eval_batch'] == 12  # each process reads half of a global batch
  config = vqvae_config.get_config('smoke')
  net = train.make_net(vqvae, config.model)
  (h, w), = vqvae.code_shapes(net)
  assert sum(r['counts']) == r['rows'] * h * w
  assert len(r['counts']) == net.num_codes


@pytest.fixture(scope='module')
def kmeans_run(tmp_path_factory):
  config = kmeans_config.get_config('smoke')
  config.train.num_steps = 3
  config.train.eval_every_steps = 0
  config.train.checkpoint_every_steps = 3
  exp = train.Experiment(config, str(tmp_path_factory.mktemp('km')))
  return exp, exp.train()


def test_codebook_figure_sorts_the_centres_by_training_usage(kmeans_run,
                                                             tmp_path):
  exp, state = kmeans_run
  fields = evaluations.run('codebook_figure', exp, state,
                           out_dir=str(tmp_path / 'images'), columns=2,
                           scale=1)
  sizes = fields['codebook']['sizes']
  k = exp.net.num_clusters
  # K-means codes are one-hot: every training image counted exactly once.
  assert len(sizes) == k and sum(sizes) == len(exp.dataset.splits['train'])
  assert sizes == sorted(sizes, reverse=True)
  raw = evaluations.cluster_sizes(exp, exp.eval_params(state))
  assert sizes == sorted((int(s) for s in raw), reverse=True)
  path = fields['codebook']['png']
  assert path == str(tmp_path / 'images' / 'codebook.png')
  grid = np.asarray(Image.open(path))
  rows = -(-k // 2)
  assert grid.shape == (rows * 9 + 1, 2 * 9 + 1)  # 8x8 centres, padding 1


def test_a_family_without_codes_is_refused_by_name(kmeans_run, tmp_path):
  exp, state = kmeans_run
  with pytest.raises(ConfigError, match="family 'kmeans' has no "
                     'encode_codes'):
    evaluations.run('code_usage', exp, state, out_dir=str(tmp_path))
  with pytest.raises(ConfigError, match="order='largest'"):
    evaluations.run('codebook_figure', exp, state, out_dir=str(tmp_path),
                    order='largest')


def test_classifier_accuracy_measures_only_the_classifier(kmeans_run,
                                                         tmp_path):
  exp, state = kmeans_run
  with pytest.raises(ConfigError, match="config.family='kmeans'.*"
                     "'classifier'"):
    evaluations.run('classifier_accuracy', exp, state, out_dir=str(tmp_path))
  assert not (tmp_path / 'accuracy.json').exists()
  assert not os.path.exists(os.path.join(exp.workdir, 'accuracy.json'))


def test_unknown_evaluation_lists_the_known_ones():
  with pytest.raises(ConfigError, match="'fid'.*classifier_accuracy, "
                     'code_usage, codebook_figure, sample_quality'):
    evaluations.get('fid')


# The samplers of one run side by side (DDPM).
@pytest.fixture(scope='module')
def ddpm_run(tmp_path_factory):
  """A smoke DDPM (T = 20) at its initial state and an untrained smoke
  classifier."""
  exp = train.Experiment(ddpm_config.get_config('smoke'),
                         str(tmp_path_factory.mktemp('ddpm')))
  clf_config = classifier_config.get_config('smoke')
  net = quality.classifier_net(clf_config)
  shape = (1,) + tuple(net.image_shape)
  clf = quality.FeatureClassifier(
      net, net.init(jax.random.key(0), jnp.zeros(shape)), clf_config,
      batch_size=8)
  return exp, exp.init_state(), clf


def test_sampler_quality_scores_each_sampler_from_the_same_key(ddpm_run,
                                                               tmp_path):
  exp, state, clf = ddpm_run
  fields = evaluations.run(
      'sampler_quality', exp, state, out_dir=str(tmp_path), classifier=clf,
      samplers=(('ancestral', 0), ('ddim', 5)), num_samples=6, columns=3)
  s = fields['samplers']
  assert s['num_samples'] == 6 and s['split'] == exp.config.eval.split
  rows = s['rows']
  assert [(r['method'], r['num_steps'], r['sampler']) for r in rows] == [
      ('ancestral', 20, 'ancestral 20 steps'), ('ddim', 5, 'ddim 5 steps')]
  json.dumps(fields)  # record fields
  # Each row scores the family's own samples from fold_in(sample_key, step).
  key = jax.random.fold_in(exp.keys()[3], int(state.step))
  params = exp.eval_params(state)
  reference = quality.reference_images(
      exp, s['split'], 'model', jax.random.split(jax.random.key(0))[0])
  ref_f, ref_lp = clf.outputs(reference)
  images = exp.family.sample(params, key, 6, net=exp.net, method='ddim',
                             num_steps=5)
  want = quality.image_scores(*clf.outputs(np.asarray(images)), ref_f,
                              ref_lp)
  for k in ('fid_style', 'is_style', 'classes_covered', 'label_kl_reference',
            'num_samples'):
    np.testing.assert_allclose(rows[1][k], want[k], rtol=1e-5)
  assert all(r['seconds'] > 0 and r['num_classes'] == clf.num_classes
             for r in rows)
  assert rows[0]['fid_style'] != rows[1]['fid_style']
  grid = np.asarray(Image.open(s['png']))
  h = exp.net.image_shape[0]
  scale = max(1, 64 // h)
  assert grid.shape[0] == (2 * (h + 1) + 1) * scale  # one row per sampler


def test_sampler_quality_refuses_other_families_and_samplers(ddpm_run,
                                                             kmeans_run,
                                                             tmp_path):
  exp, state, clf = ddpm_run
  with pytest.raises(ConfigError, match='samplers=.*method one of'):
    evaluations.run('sampler_quality', exp, state, out_dir=str(tmp_path),
                    classifier=clf, samplers=(('euler', 10),))
  with pytest.raises(ConfigError, match='num_samples=1'):
    evaluations.run('sampler_quality', exp, state, out_dir=str(tmp_path),
                    classifier=clf, num_samples=1)
  km_exp, km_state = kmeans_run
  with pytest.raises(ConfigError, match="family 'kmeans' names no SAMPLERS"):
    evaluations.run('sampler_quality', km_exp, km_state,
                    out_dir=str(tmp_path), classifier=clf)
