"""`experiments.chains`: Markov-chain figures through each family's
``chain_figure`` (rbm, dbm, gsn), from freshly initialised parameters."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from experiments import chains as chains_lib
from jaxgen import train
from jaxgen.errors import ConfigError


def _experiment(family, arg, tmp_path):
  config = importlib.import_module(
      f'experiments.configs.{family}').get_config(arg)
  return train.Experiment(config, str(tmp_path / f'{family}_{arg}'))


def test_the_chain_families_are_the_markov_chain_models():
  assert chains_lib.chain_families() == ('dbm', 'gsn', 'rbm')


# Two of the four kinds of chain (each costs seconds of op-by-op sweeps):
# Bernoulli RBM sweeps and the GSN chain with a latent state.
@pytest.mark.parametrize('family,arg', [('rbm', 'smoke'),
                                        ('gsn', 'smoke,latent')])
def test_chains_start_at_the_test_images_and_repeat_with_the_seed(
    family, arg, tmp_path):
  exp = _experiment(family, arg, tmp_path)
  state = exp.init_state()
  draw = lambda seed: chains_lib.chains(exp, state, num_chains=2,
                                        num_steps=4, every=2, seed=seed)
  grid = draw(0)
  h, w, c = exp.net.image_shape
  assert grid.shape == (4, 3, h, w, c) and grid.dtype == np.uint8
  # Rows 2-3 start from the first test images as the evaluation sees them.
  images = np.asarray(exp.batch('test', 2)['image'], np.float32)
  start = grid[2:, 0].astype(np.float32)
  if family == 'gsn':
    np.testing.assert_array_equal(start, np.asarray(
        chains_lib.models.get_family('gsn').to_uint8(images, net=exp.net)))
  else:  # binarized {0, 1} pixels shown as 0 / 255
    np.testing.assert_array_equal(start, images * 255)
  np.testing.assert_array_equal(draw(0), grid)
  assert not np.array_equal(draw(1)[:2], grid[:2])


def test_a_family_without_chains_is_refused(tmp_path):
  exp = _experiment('vae', 'smoke', tmp_path)
  with pytest.raises(ConfigError, match=r"^--workdir holds a 'vae' run; "
                     r"chains are drawn for \('dbm', 'gsn', 'rbm'\) only.$"):
    chains_lib.chains(exp, None, num_chains=2, num_steps=4, every=2, seed=0)
