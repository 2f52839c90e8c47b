"""jaxgen.workdir: atomic writes, reading a run's config, restoring its
parameters without the trainer."""

import json
import logging as py_logging
import math
import os

import jax
import ml_collections
import numpy as np
import pytest

from experiments.configs import vqvae as vqvae_config
from jaxgen import config_fields
from jaxgen import train
from jaxgen import workdir


def test_atomic_write_text_bytes_and_callable(tmp_path):
  path = str(tmp_path / 'a' / 'b.txt')
  assert workdir.atomic_write(path, 'one') == path
  assert open(path).read() == 'one'
  workdir.atomic_write(path, b'\x00\x01')
  assert open(path, 'rb').read() == b'\x00\x01'
  workdir.atomic_write(path, lambda f: f.write(b'xyz'), binary=True)
  assert open(path, 'rb').read() == b'xyz'
  assert not os.path.exists(path + '.tmp')


def test_failed_write_keeps_the_previous_file(tmp_path):
  path = str(tmp_path / 'keep.json')
  workdir.write_json(path, {'a': 1})

  def broken(f):
    f.write('{"a": ')
    raise RuntimeError('killed mid-write')

  with pytest.raises(RuntimeError):
    workdir.atomic_write(path, broken)
  assert json.load(open(path)) == {'a': 1}
  assert not os.path.exists(path + '.tmp')


def test_write_json_strict_nulls_non_finite(tmp_path):
  path = str(tmp_path / 'x.json')
  workdir.write_json(path, {'b': [math.nan, 1.0], 'a': {'c': math.inf}},
                     strict=True)
  text = open(path).read()
  assert json.loads(text) == {'a': {'c': None}, 'b': [None, 1.0]}
  assert text.index('"a"') < text.index('"b"')  # sorted keys


def test_load_config_locked_and_missing(tmp_path):
  with pytest.raises(FileNotFoundError, match='config.json'):
    workdir.load_config(str(tmp_path))
  config = ml_collections.ConfigDict({'family': 'vae', 'train': {'n': 2}})
  workdir.atomic_write(workdir.config_path(str(tmp_path)),
                       config.to_json_best_effort())
  loaded = workdir.load_config(str(tmp_path))
  assert loaded.family == 'vae' and loaded.train.n == 2
  with pytest.raises(AttributeError):
    loaded.train.num_stpes = 3  # locked: typos are errors


def test_load_config_fills_the_fields_added_since_by_family(tmp_path):
  """A config.json from before an added field gets its neutral value: the
  common sections' fields for every family, a family's model fields only
  for that family (a VAE never gains the GAN's model.d_dropout)."""
  def saved_without(family, *dotted):
    config = {'family': family, 'model': {'latent_dim': 4},
              'train': {'num_steps': 2}, 'eval': {'batch_size': 8}}
    for path in dotted:
      section, name = path.split('.')
      config[section].pop(name, None)
    return config

  gan_dir, vae_dir = tmp_path / 'gan', tmp_path / 'vae'
  for path, family in ((gan_dir, 'gan'), (vae_dir, 'vae')):
    workdir.write_json(workdir.config_path(str(path)), saved_without(family))
  gan = workdir.load_config(str(gan_dir))
  assert gan.model.d_dropout == 0.0 and gan.model.latent_dim == 4
  assert gan.train.profile_steps == 0 and gan.train.num_steps == 2
  assert list(gan.eval.evaluations) == [] and gan.eval.batch_size == 8
  vae = workdir.load_config(str(vae_dir))
  assert 'd_dropout' not in vae.model and vae.train.profile_steps == 0
  # A field the file holds is kept as it is.
  saved = saved_without('gan')
  saved['model']['d_dropout'] = 0.3
  saved['train']['profile_steps'] = 2
  workdir.write_json(workdir.config_path(str(gan_dir)), saved)
  gan = workdir.load_config(str(gan_dir))
  assert gan.model.d_dropout == 0.3 and gan.train.profile_steps == 2
  assert workdir.read_config_dict(str(gan_dir))['model']['d_dropout'] == 0.3


def test_every_registered_family_field_is_in_its_preset():
  """Each family field of `config_fields` is a field of that family's
  config, holding the neutral value in the smoke preset or not (a field a
  family's config lacks would be filled into configs that cannot take it);
  each common field is in every config."""
  import importlib  # pylint: disable=g-import-not-at-top
  for family, fields in config_fields.FAMILY_FIELDS.items():
    config = importlib.import_module(
        f'experiments.configs.{family}').get_config('smoke').to_dict()
    for path in list(fields) + list(config_fields.COMMON_FIELDS):
      section, name = path.split('.')
      assert name in config[section], (family, path)


@pytest.fixture(scope='module')
def vq_run(tmp_path_factory):
  """A tiny VQ-VAE (variables dict with an EMA codebook) with a parameter
  EMA, trained 2 steps with a checkpoint after each."""
  path = str(tmp_path_factory.mktemp('vq'))
  config = vqvae_config.get_config('smoke')
  config.train.num_steps = 2
  config.train.checkpoint_every_steps = 1
  config.train.ema_decay = 0.5
  config.train.eval_every_steps = 0
  config.train.image_every_steps = 0
  exp = train.Experiment(config, path)
  exp.train()
  return exp


def _assert_same_tree(restored, expected):
  expected = jax.tree.map(np.asarray, jax.device_get(expected))
  assert jax.tree.structure(restored) == jax.tree.structure(expected)
  for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(expected),
                  strict=True):
    assert isinstance(a, np.ndarray) and a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_restore_params_equals_the_trainers_restore(vq_run):
  state, step = vq_run.restore()
  assert step == 2
  # By default: what the run evaluates (the EMA here, as eval.use_ema says).
  _assert_same_tree(workdir.restore_params(vq_run.workdir),
                    vq_run.eval_params(state))
  _assert_same_tree(workdir.restore_params(vq_run.workdir, use_ema=True),
                    state.ema_params)
  _assert_same_tree(workdir.restore_params(vq_run.workdir, use_ema=False),
                    state.params)
  first, _ = vq_run.restore(step=1)
  at_1 = workdir.restore_params(vq_run.workdir, step=1, use_ema=False)
  _assert_same_tree(at_1, first.params)
  moved = jax.tree.map(lambda a, b: bool(np.any(a != b)), at_1,
                       jax.tree.map(np.asarray, state.params))
  assert any(jax.tree.leaves(moved))


@pytest.mark.slow
def test_restore_params_reads_without_orbax_logs(vq_run, caplog):
  # Opening a checkpoint read-only (another run's parameters, the
  # sample-quality classifier) prints nothing: orbax's "read only" warning
  # is dropped at the source.
  with caplog.at_level(py_logging.INFO):
    workdir.restore_params(vq_run.workdir)
  noise = [r.getMessage() for r in caplog.records
           if r.levelno >= py_logging.WARNING]
  assert not noise, noise


@pytest.mark.slow
def test_restore_params_errors(vq_run, tmp_path):
  with pytest.raises(FileNotFoundError, match=r'step 7.*\[1, 2\]'):
    workdir.restore_params(vq_run.workdir, step=7)
  with pytest.raises(FileNotFoundError, match='config.json'):
    workdir.restore_params(str(tmp_path))
  config = vq_run.config.copy_and_resolve_references()
  config.train.ema_decay = 0.0
  workdir.atomic_write(workdir.config_path(str(tmp_path)),
                       config.to_json_best_effort())
  with pytest.raises(ValueError, match='ema_decay'):
    workdir.restore_params(str(tmp_path), use_ema=True)
  with pytest.raises(FileNotFoundError, match='No checkpoint in .*checkpoints'):
    workdir.restore_params(str(tmp_path))
