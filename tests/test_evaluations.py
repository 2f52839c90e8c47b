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
                     'code_usage, codebook_figure, inpainting_figure, '
                     'sample_quality, sampler_quality, superres_figure, '
                     'translation_figure'):
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


# Completions and super-resolution of the autoregressive image families.
def test_inpainting_figure_keeps_the_top_and_splits_the_exact_nll(tmp_path):
  from experiments.configs import pixelcnn as pixelcnn_config  # pylint: disable=g-import-not-at-top
  exp = train.Experiment(pixelcnn_config.get_config('smoke'),
                         str(tmp_path / 'w'))
  state = exp.init_state()
  out = evaluations.run('inpainting_figure', exp, state,
                        out_dir=str(tmp_path / 'fig'), num=4,
                        samples=2)['inpainting']
  h, w = exp.net.image_shape[:2]
  assert out['num_known'] == (h // 2) * w
  # -log p(top) - log p(bottom | top) is the evaluator's exact NLL: the same
  # binarization of every batch, the chain rule split at the prefix.
  nll = exp.evaluate(state)['exact/nll_nats']
  np.testing.assert_allclose(out['prefix_nll_nats'] + out['suffix_nll_nats'],
                             nll, rtol=1e-5)
  assert 0 < out['suffix_nll_nats'] and 0 < out['prefix_nll_nats']
  # Rows: known, 2 completions, truth; each completion keeps the top half.
  figure = np.asarray(Image.open(out['png']))
  assert figure.ndim >= 2 and figure.shape[0] > figure.shape[1] / 4
  images = exp.batch(num=4, preprocess=False)['image']
  read = np.where(np.asarray(images) >= 128, 255, 0)
  for k in range(2):
    done = np.asarray(exp.family.complete(
        exp.eval_params(state), images, out['num_known'],
        jax.random.fold_in(exp.eval_key, k), net=exp.net))
    np.testing.assert_array_equal(done[:, :h // 2], read[:, :h // 2])


def test_superres_figure_needs_a_multiscale_family(kmeans_run, tmp_path):
  km_exp, km_state = kmeans_run
  with pytest.raises(ConfigError, match='super_resolve|subsample'):
    evaluations.run('superres_figure', km_exp, km_state,
                    out_dir=str(tmp_path))


# ------------------------------------------------- named in the config
def _with(config, **fields):
  config = config.copy_and_resolve_references()
  with config.unlocked():
    for name, value in fields.items():
      del config.eval[name]  # a value of another type, as in a config.json
      config.eval[name] = value
  return config


def test_config_names_evaluations_checked_by_field():
  config = kmeans_config.get_config('smoke')
  assert evaluations.from_config(config) == []
  named = _with(config, evaluations=('codebook_figure',),
                evaluation_options={'codebook_figure': {'columns': 2}})
  assert evaluations.from_config(named) == [('codebook_figure',
                                             {'columns': 2})]
  with config.unlocked():  # a config.json written before the fields
    del config.eval['evaluations']
    del config.eval['evaluation_options']
  assert evaluations.from_config(config) == []
  for fields, needles in [
      (dict(evaluations=('fid',)),
       ("config.eval.evaluations: 'fid' is unknown; known: "
        'classifier_accuracy, code_usage, codebook_figure')),
      (dict(evaluations='codebook_figure'),
       ('config.eval.evaluations=', 'must be a tuple of names')),
      (dict(evaluations=('codebook_figure',),
            evaluation_options={'code_usage': {'split': 'test'}}),
       ("config.eval.evaluation_options.code_usage: 'code_usage' is not in "
        'config.eval.evaluations',)),
      (dict(evaluations=('code_usage',)),
       ("'code_usage' needs a family with encode_codes; "
        "config.family='kmeans'",)),
      (dict(evaluations=('classifier_accuracy',)),
       ("'classifier_accuracy' measures a 'classifier' run",)),
  ]:
    with pytest.raises(ConfigError) as e:
      evaluations.from_config(_with(kmeans_config.get_config('smoke'),
                                    **fields))
    for needle in needles:
      assert needle in str(e.value), str(e.value)
  vq = _with(vqvae_config.get_config('smoke'), evaluations=('code_usage',),
             evaluation_options={'code_usage': {'splits': 'test'}})
  with pytest.raises(ConfigError, match=r"evaluation_options.code_usage."
                     r"splits: 'code_usage' takes no option 'splits'; its "
                     r'options: split\.'):
    evaluations.from_config(vq)


def _cli(capsys, *args):
  """(exit status, stdout, stderr) of `experiments.main` in this process."""
  from experiments import main as main_lib  # pylint: disable=g-import-not-at-top
  capsys.readouterr()
  status = main_lib.cli(['main'] + list(args))
  out, err = capsys.readouterr()
  return status, out, err


def test_main_runs_the_named_evaluations_after_training_and_in_evaluate(
    tmp_path, capsys, repo_cwd):
  del repo_cwd
  workdir = str(tmp_path / 'run')
  kmeans_smoke = '--config=experiments/configs/kmeans.py:smoke'
  # An unknown name: one error line, before anything is built or written.
  status, _, err = _cli(capsys, kmeans_smoke, f'--workdir={workdir}',
                        "--config.eval.evaluations=('codebook_figure','fid')")
  assert status == 2 and err.count('\n') == 1, err
  assert err.startswith("error: config.eval.evaluations: 'fid' is unknown; "
                        'known: classifier_accuracy'), err
  assert not os.path.exists(workdir)
  status, out, err = _cli(capsys, kmeans_smoke, f'--workdir={workdir}',
                          "--config.eval.evaluations=('codebook_figure',)")
  assert status == 0, err
  record = json.loads(open(os.path.join(workdir, 'eval',
                                        'test_step0000004.json')).read())
  sizes = record['codebook']['sizes']
  assert sum(sizes) == 256 and sizes == sorted(sizes, reverse=True)
  assert record['codebook']['png'] == os.path.join(workdir, 'images',
                                                   'codebook.png')
  assert os.path.isfile(record['codebook']['png'])
  assert 'step 4 test: evaluation field codebook: {"png": ' in out
  # Evaluate: the same fields, the figure beside the JSON named by its
  # inputs; an identical rerun writes identical bytes.
  status, out, err = _cli(capsys, f'--workdir={workdir}', '--mode=evaluate')
  assert status == 0, err
  path = os.path.join(workdir, 'eval', 'test_step0000004_seed0.json')
  again = json.loads(open(path).read())
  assert again['codebook']['sizes'] == sizes
  assert again['codebook']['png'] == os.path.join(
      workdir, 'eval', 'test_step0000004_seed0', 'codebook.png')
  assert os.path.isfile(again['codebook']['png'])
  status, _, err = _cli(capsys, f'--workdir={workdir}', '--mode=evaluate')
  assert status == 0, err
  # A config.json written before the fields names no evaluation, and a
  # --config that names some is still the trained run's config.
  config_json = os.path.join(workdir, 'config.json')
  saved = json.loads(open(config_json).read())
  del saved['eval']['evaluations'], saved['eval']['evaluation_options']
  with open(config_json, 'w') as f:
    json.dump(saved, f)
  status, _, err = _cli(capsys, f'--workdir={workdir}', '--mode=evaluate',
                        '--seed=1')
  assert status == 0, err
  old = json.loads(open(os.path.join(
      workdir, 'eval', 'test_step0000004_seed1.json')).read())
  assert 'codebook' not in old
  status, _, err = _cli(capsys, kmeans_smoke, f'--workdir={workdir}',
                        '--mode=evaluate', '--seed=2',
                        "--config.eval.evaluations=('codebook_figure',)")
  assert status == 0, err
  assert 'codebook' in json.loads(open(os.path.join(
      workdir, 'eval', 'test_step0000004_seed2.json')).read())
  status, _, err = _cli(capsys, kmeans_smoke, f'--workdir={workdir}',
                        '--mode=evaluate', '--config.seed=3')
  assert status == 2 and 'config.seed (0 in config.json, 3 here)' in err, err
