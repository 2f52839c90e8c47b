"""Bayes' rule with a class-conditional DDPM: one image's class bounds share
their timesteps and noise (common random numbers)."""

from __future__ import annotations

import glob
import json
import os
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import uses as uses_cli
from experiments.configs import ddpm as ddpm_config
from experiments.configs import vae as vae_config
from jaxgen import models
from jaxgen import train
from jaxgen import workdir as workdir_lib
from jaxgen.uses import reports
from jaxgen.uses import scoring

NUM = 6


@pytest.fixture(scope='module')
def cond_ddpm(tmp_path_factory):
  """An untrained conditional smoke DDPM (T = 20), its parameters with a
  random label embedding, and the same with a zero one (labels ignored)."""
  config = ddpm_config.get_config('smoke,cond')
  exp = train.Experiment(config.lock(),
                         str(tmp_path_factory.mktemp('ddpm_cond')))
  state = exp._init_state(exp.init_key)  # pylint: disable=protected-access
  embed = state.params['unet']['label_embed']['embedding']
  rand = jax.random.normal(jax.random.key(1), embed.shape)

  def with_embed(value):
    params = jax.tree.map(lambda a: a, state.params)
    params['unet']['label_embed']['embedding'] = value
    return params

  images, _ = scoring.split_images(exp, 'test', NUM)
  return {'exp': exp, 'state': state, 'images': images,
          'aware': with_embed(rand), 'blind': with_embed(jnp.zeros_like(rand))}


def _class_nll(run, params, key):
  # 'bound20' of the smoke config: L_0 and 3 stratified timesteps of 20.
  return scoring.class_nll(run['exp'], params, run['images'], key,
                           estimator='bound20')


def test_class_bounds_share_timesteps_and_noise(cond_ddpm):
  key = jax.random.key(0)
  blind = _class_nll(cond_ddpm, cond_ddpm['blind'], key)
  assert blind.shape == (NUM, 10) and np.isfinite(blind).all()
  # A network that ignores the label gives one bound for every class only
  # if every class sees the same timesteps and noise ...
  np.testing.assert_array_equal(blind, blind[:, :1].repeat(10, axis=1))
  # ... while another key (other draws) changes the estimate.
  other = _class_nll(cond_ddpm, cond_ddpm['blind'], jax.random.key(1))
  assert np.abs(other - blind).max() > 1e-3
  # With the label read, the classes differ, and the same key repeats.
  aware = _class_nll(cond_ddpm, cond_ddpm['aware'], key)
  assert np.ptp(aware, axis=1).min() > 0
  np.testing.assert_array_equal(
      aware, _class_nll(cond_ddpm, cond_ddpm['aware'], key))


def test_bayes_record_states_the_timesteps(cond_ddpm, tmp_path):
  exp = cond_ddpm['exp']
  state = cond_ddpm['state']
  report = reports.bayes_report(exp, state, sets=['noise'], num=NUM,
                                estimator='bound20', seed=0)
  assert report['draws']['timesteps_per_image'] == 4
  assert report['estimator']['arguments']['num_timesteps'] == 4
  assert 'L_0 and 3 timesteps stratified over T = 20' in (
      report['draws']['note'])
  assert 0.0 <= report['accuracy'] <= 1.0 and report['num'] == NUM
  workdir_lib.write_json(
      str(tmp_path / 'bayes_x.json'),
      {'command': 'python -m experiments.uses bayes', 'workdir': 'w',
       'step': 0, **report})
  table = uses_cli.render(str(tmp_path))
  assert 'same timesteps and noise for every class' in table
  # The table's row names the terms per image beside the estimator.
  assert '| `w` (bound20, 4 timesteps) | 6 |' in table
  # 0 means all T terms.
  all_t = scoring.class_draws(exp, 'bound')
  assert all_t['timesteps_per_image'] == 20
  assert 'all T = 20 terms' in all_t['note']


def _unbuilt_run(family: str, config) -> types.SimpleNamespace:
  """What `scoring.class_draws` reads of a run, without compiling it."""
  module = models.get_family(family)
  return types.SimpleNamespace(config=config, family=module,
                               net=train.make_net(module, config.model))


def test_committed_ddpm_notes_come_from_the_family():
  # The records of the digits DDPM were written when the scorer composed
  # the sentence itself; the family's describe_estimator gives it again.
  run = _unbuilt_run('ddpm', ddpm_config.get_config('digits,cond'))
  paths = glob.glob(os.path.join(
      os.path.dirname(__file__), '..', 'results', 'uses',
      'ddpm_cond_digits', 'bayes_*.json'))
  assert paths
  for path in paths:
    with open(path) as f:
      record = json.load(f)
    est = record['estimator']
    draws = scoring.class_draws(run, est['name'], est['arguments'])
    assert draws == record['draws'], path


def test_a_family_without_describe_estimator_gets_the_generic_note():
  assert not hasattr(models.get_family('vae'), 'describe_estimator')
  run = _unbuilt_run('vae', vae_config.get_config('smoke,cond'))
  draws = scoring.class_draws(run, sorted(run.config.eval.estimators)[0])
  assert draws == {'note': (
      'every class of an image is scored with one key: the same '
      'preprocessing noise and the same estimator draws (common random '
      'numbers)')}


def test_num_timesteps_overrides_the_terms_per_image(cond_ddpm, tmp_path,
                                                     capsys):
  exp = cond_ddpm['exp']
  args = scoring.check_estimator_arguments(exp, 'bound20',
                                           {'num_timesteps': 8})
  assert args == {'chunk_size': 4, 'num_timesteps': 8}
  assert scoring.class_draws(exp, 'bound20', {'num_timesteps': 8})[
      'timesteps_per_image'] == 8
  # Eight terms per image, still shared by every class of an image.
  key = jax.random.key(0)
  blind = scoring.class_nll(exp, cond_ddpm['blind'], cond_ddpm['images'],
                            key, estimator='bound20', arguments=args)
  np.testing.assert_array_equal(blind, blind[:, :1].repeat(10, axis=1))
  assert np.abs(blind - _class_nll(cond_ddpm, cond_ddpm['blind'],
                                   key)).max() > 1e-3
  # The record's stem names the override beside the estimator.
  assert uses_cli._stem(2500, 0, num=400, est='bound20', k=None,  # pylint: disable=protected-access
                        t=50) == 'step0002500_seed0_num400_estbound20_t50'
  # Values the family refuses, and a family without the argument: one
  # error line each, before any checkpoint is read.
  workdir = str(tmp_path / 'ddpm')
  os.makedirs(workdir)
  workdir_lib.write_json(workdir_lib.config_path(workdir),
                         json.loads(exp.config.to_json_best_effort()))
  vae = str(tmp_path / 'vae')
  os.makedirs(vae)
  workdir_lib.write_json(
      workdir_lib.config_path(vae),
      json.loads(vae_config.get_config('smoke,cond').to_json_best_effort()))
  cases = [
      (['--estimator=bound20', f'--workdir={workdir}', '--num_timesteps=1'],
       "overriding estimator 'bound20' with {'num_timesteps': 1}: "
       'config.eval.estimators.bound20.num_timesteps=1 must be 0'),
      (['--estimator=bound20', f'--workdir={workdir}', '--num_timesteps=21'],
       'an integer in [2, 20]'),
      ([f'--workdir={vae}', '--num_timesteps=8'],
       "no argument 'num_timesteps'"),
  ]
  for argv, expected in cases:
    assert uses_cli.cli(['uses', 'bayes', *argv]) == 2, argv
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: '), (argv, err)
    assert expected in err[0], (argv, err)
