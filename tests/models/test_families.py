"""Every registered family: the written contract, and a few steps through
the trainer.

The contract is the docstring of `jaxgen.models`; the calls below are made
the way the trainer, the evaluator and the code prior make them.
"""

import ast
import dataclasses
import importlib
import inspect
import os

import numpy as np
import pytest

from jaxgen import models
from jaxgen import train

NAMES = sorted(models.FAMILIES)
# Families that neither sample nor reconstruct: measured by their loss
# metrics alone (the feature classifier of jaxgen.quality).
DISCRIMINATIVE = ('classifier',)

# name -> (positional arguments, keyword arguments) of the contract's calls.
CALLS = {
    'init': (('key', 'batch'), ('net',)),
    'loss_fn': (('params', 'batch', 'key'), ('net', 'train')),
    'log_likelihood': (('params', 'batch', 'key'), ('net',)),
    'sample': (('params', 'key'), ('num', 'net')),
    'reconstruct': (('params', 'batch', 'key'), ('net',)),
    'validate': (('config', 'dataset'), ()),
    'make_train_step': ((), ('net', 'tx', 'preprocess', 'config')),
    'make_optimizer': (('config',), ()),
    'code_shapes': (('net',), ()),
    'encode_codes': (('variables', 'batch'), ('net',)),
    'decode_codes': (('variables', 'codes'), ('net',)),
}
# Arguments the contract passes by keyword only (after ``*``).
KEYWORD_ONLY = {'net', 'train', 'tx', 'preprocess'}


def _check_call(family, attr):
  """`family.attr` accepts the contract's call, with `net` keyword-only."""
  positional, keywords = CALLS[attr]
  sig = inspect.signature(getattr(family, attr))
  try:
    sig.bind(*positional, **{k: k for k in keywords})
  except TypeError as e:
    raise AssertionError(
        f'{family.__name__}.{attr}{sig} cannot be called as '
        f'{attr}({", ".join(positional + tuple(k + "=" for k in keywords))})'
        f': {e}') from e
  for name in KEYWORD_ONLY.intersection(keywords):
    if name in sig.parameters:
      assert sig.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, (
          f'{family.__name__}.{attr}: {name!r} must be keyword-only')


def _config(name, arg='smoke'):
  return importlib.import_module(f'experiments.configs.{name}').get_config(arg)


@pytest.mark.parametrize('name', NAMES)
def test_family_has_the_contract(name):
  family = models.get_family(name)
  for attr in models.REQUIRED:
    assert hasattr(family, attr), f'{name} lacks {attr}'
  assert inspect.isclass(family.Net)
  assert family.LIKELIHOOD in ('exact', 'bound', 'estimate', None)
  assert (family.LIKELIHOOD is None) == (family.log_likelihood is None)
  for attr in ('init', 'loss_fn', 'log_likelihood', 'sample'):
    if getattr(family, attr) is not None:
      _check_call(family, attr)
  draws = (family.sample is not None or
           getattr(family, 'reconstruct', None) is not None)
  assert draws != (name in DISCRIMINATIVE), (
      f'{name} neither samples nor reconstructs' if not draws else
      f'{name} is listed as discriminative but draws images')


@pytest.mark.parametrize('name', NAMES)
def test_optional_names_have_the_documented_form(name):
  family = models.get_family(name)
  public = {n for n in dir(family) if not n.startswith('_')}
  for attr in public & {'reconstruct', 'validate', 'make_train_step',
                        'make_optimizer'}:
    if getattr(family, attr) is not None:
      _check_call(family, attr)
  data = getattr(family, 'DATA', ('images',))
  assert isinstance(data, tuple) and data
  assert set(data) <= {'images', 'points'}, data
  choices = getattr(family, 'ESTIMATOR_CHOICES', {})
  assert isinstance(choices, dict)
  if choices:
    params = inspect.signature(family.log_likelihood).parameters
    for arg, allowed in choices.items():
      assert arg in params and arg not in ('params', 'batch', 'key', 'net'), (
          f'{name}.ESTIMATOR_CHOICES names {arg!r}, which is no estimator '
          'argument of log_likelihood')
      assert isinstance(allowed, tuple) and allowed
      default = params[arg].default
      assert default is inspect.Parameter.empty or default in allowed


@pytest.mark.parametrize('name', NAMES)
def test_discrete_code_families_export_all_three_functions(name):
  family = models.get_family(name)
  present = [attr for attr in models.CODES if hasattr(family, attr)]
  if name == 'code_prior':
    return  # code_shapes of the frozen model; it has no codes of its own
  assert present in ([], list(models.CODES)), (name, present)
  from jaxgen.models import code_prior  # pylint: disable=g-import-not-at-top
  assert bool(present) == (name in code_prior.VQ_FAMILIES), name
  if not present:
    return
  for attr in models.CODES:
    _check_call(family, attr)
  net = train.make_net(family, _config(name).model)
  shapes = family.code_shapes(net)
  assert isinstance(shapes, tuple) and shapes
  for shape in shapes:
    assert len(shape) == 2 and all(isinstance(n, int) and n > 0
                                   for n in shape), shapes
  assert 0 < net.num_codes <= 256
  assert net.likelihood and net.sample_mode


@pytest.mark.parametrize('name', NAMES)
def test_config_file_is_named_after_the_family(name):
  family = models.get_family(name)
  module = importlib.import_module(f'experiments.configs.{name}')
  assert callable(module.get_config)
  for arg in ('', 'smoke'):
    config = module.get_config(arg)
    assert config.family == name
    assert config.is_locked
    # Net(**config.model): every key a field; fields left out have defaults.
    fields = {f.name: f for f in dataclasses.fields(family.Net)
              if f.name not in ('parent', 'name')}
    assert set(config.model) <= set(fields), set(config.model) - set(fields)
    for f in set(fields) - set(config.model):
      assert (fields[f].default is not dataclasses.MISSING or
              fields[f].default_factory is not dataclasses.MISSING), f
    if family.log_likelihood is not None:
      train.check_estimators(family, config.eval.estimators,
                             tuple(config.eval.final_estimators) +
                             tuple(config.eval.periodic_estimators))
    else:
      assert not len(config.eval.estimators)


def _imported_modules(path):
  """Every module a source file imports, at any depth (functions too)."""
  with open(path) as f:
    tree = ast.parse(f.read())
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      yield from (a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      yield node.module
      yield from (f'{node.module}.{a.name}' for a in node.names)


MODELS_DIR = os.path.dirname(models.__file__)
ABOVE_THE_MODELS = ('jaxgen.train', 'jaxgen.evaluate', 'jaxgen.quality',
                    'experiments')


@pytest.mark.parametrize('filename', sorted(
    f for f in os.listdir(MODELS_DIR) if f.endswith('.py')))
def test_models_import_nothing_above_them(filename):
  """Imports point down: no module of jaxgen/models reaches the trainer,
  the evaluator or the experiments, even inside a function."""
  bad = sorted({m for m in _imported_modules(os.path.join(MODELS_DIR, filename))
                if any(m == a or m.startswith(a + '.')
                       for a in ABOVE_THE_MODELS)})
  assert not bad, f'jaxgen/models/{filename} imports {bad}'


@pytest.mark.slow
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
  if name in DISCRIMINATIVE:
    assert not paths
  else:
    assert paths, 'a family writes samples or reconstructions'
  if exp.family.sample is not None:
    # The grid's sample count: the sampler write_images compiled is reused.
    num = config.eval.num_grid_samples
    images = exp.sample_images(state, num)
    assert images.shape == (num,) + tuple(exp.dataset.image_shape)
    assert images.dtype == np.uint8
