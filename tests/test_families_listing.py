"""`python -m experiments.families` lists every family, option, preset,
dataset and config field; the expectations here are computed from the
registry and the config files, not from the listing's own helpers."""

import importlib
import re
import subprocess
import sys

import ml_collections
import pytest

from experiments import families
from jaxgen import models
from tests import helpers

NAMES = sorted(models.FAMILIES)


def _config_module(name):
  return importlib.import_module(f'experiments.configs.{name}')


def _declared_by_error(name):
  """{slot: options} from the error get_config raises on an unknown token."""
  with pytest.raises(ValueError, match='is not known') as info:
    _config_module(name).get_config('no_such_option_xyz')
  listed = re.search(r'is not known \((.*)\)\.', str(info.value)).group(1)
  return {slot: tuple(opts.split('|'))
          for slot, opts in (part.split(': ') for part in listed.split(', '))}


@pytest.fixture(scope='module')
def summary():
  return families.summary(families.all_families())


def _block(text, name):
  """The summary's paragraph about family `name`."""
  match = re.search(rf'^{re.escape(name)}  \[.*?(?=^\S|\Z)', text,
                    flags=re.M | re.S)
  assert match, f'{name} is not listed'
  return match.group(0)


@pytest.mark.parametrize('name', NAMES)
def test_summary_lists_every_family_with_its_contract(summary, name):
  block = _block(summary, name)
  family = models.get_family(name)
  contract = next(l for l in block.splitlines() if 'contract:' in l)
  assert f'likelihood={family.LIKELIHOOD or "none"};' in contract
  assert f'data={",".join(getattr(family, "DATA", ("images",)))};' in contract
  expected = {h for h in models.OPTIONAL + models.CODES
              if getattr(family, h, None) is not None}
  assert set(contract.split('hooks=')[1].split(',')) == (expected or {'-'})
  assert f'experiments/configs/{name}.py' in block


@pytest.mark.parametrize('name', NAMES)
def test_summary_lists_every_option_and_preset(summary, name):
  block = _block(summary, name)
  for slot, options in _declared_by_error(name).items():
    line = next((l for l in block.splitlines()
                 if l.startswith(f'    {slot}: ')), None)
    assert line, f'{name}: no line for option slot {slot!r}'
    shown = {o.replace(' (default)', '') for o in
             line.split(': ', 1)[1].split(' | ')}
    assert set(options) <= shown, (name, slot, set(options) - shown)
  module = _config_module(name)
  for preset in _declared_by_error(name)['dataset']:
    data_name = module.get_config(preset).data.name
    assert f'{preset} -> {data_name}' in block, (name, preset)
    assert re.search(rf'^    {re.escape(data_name)}\b.*\b{name}\b', summary,
                     flags=re.M), (name, data_name)


def _leaves(tree, prefix=''):
  for key, value in tree.items():
    if isinstance(value, dict) and value:
      yield from _leaves(value, f'{prefix}{key}.')
    else:
      yield f'{prefix}{key}', value


@pytest.mark.parametrize('name', NAMES)
def test_family_details_show_every_field_with_its_default(name):
  text = families.family_details(name)
  config = _config_module(name).get_config('')
  for key, value in _leaves(config.to_dict()):
    if isinstance(value, ml_collections.ConfigDict):
      value = {}
    assert f'\n  {key} = {value!r}' in text, (name, key, value)
  for slot in _declared_by_error(name):
    assert f'\n    {slot}: ' in text


def test_family_details_of_a_preset():
  text = families.family_details('vae', 'binarized_mnist,conv')
  assert "\n  data.name = 'binarized_mnist'" in text
  assert "\n  model.architecture = 'conv'" in text
  assert "\n  data.splits.validation = 'validation'" in text


def test_command_line():
  proc = subprocess.run(
      [sys.executable, '-m', 'experiments.families', '--family=vea'],
      cwd=helpers.REPO_ROOT, env=helpers.subprocess_env(),
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2
  assert "error: --family='vea' is not a registered family" in proc.stderr
  assert 'vae' in proc.stderr and 'Traceback' not in proc.stderr
