"""Every registered family: the contract, and a few steps through the trainer."""

import importlib

import numpy as np
import pytest

from jaxgen import models
from jaxgen import train


@pytest.mark.parametrize('name', sorted(models.FAMILIES))
def test_family_has_the_contract(name):
  family = models.get_family(name)
  for attr in models.REQUIRED:
    assert hasattr(family, attr), f'{name} lacks {attr}'
  assert family.LIKELIHOOD in ('exact', 'bound', None)
  assert (family.LIKELIHOOD is None) == (family.log_likelihood is None)


@pytest.mark.parametrize('name', sorted(models.FAMILIES))
def test_family_trains_with_its_smoke_config(name, tmp_path):
  config_module = importlib.import_module(f'experiments.configs.{name}')
  config = config_module.get_config('smoke')
  config.train.num_steps = 2
  exp = train.Experiment(config, str(tmp_path))
  state = exp.train()
  assert int(state.step) == 2
  results = exp.evaluate(state)
  assert results['num_examples'] == len(exp.dataset.splits['test'])
  assert all(np.isfinite(v) for v in results.values())
  paths = exp.write_images(state)
  assert paths, 'a family writes samples or reconstructions'
  if exp.family.sample is not None:
    # The grid's sample count: the sampler write_images compiled is reused.
    num = config.eval.num_grid_samples
    images = exp.sample_images(state, num)
    assert images.shape == (num,) + tuple(exp.dataset.image_shape)
    assert images.dtype == np.uint8
