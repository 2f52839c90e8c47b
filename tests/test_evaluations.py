"""Evaluations by name: code usage, the codebook figure, the registry."""

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from experiments.configs import kmeans as kmeans_config
from experiments.configs import vqvae as vqvae_config
from jaxgen import data as data_lib
from jaxgen import evaluations
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.models import vqvae


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


def test_unknown_evaluation_lists_the_known_ones():
  with pytest.raises(ConfigError, match="'fid'.*code_usage, "
                     'codebook_figure, sample_quality'):
    evaluations.get('fid')
