"""What `pip install` puts into site-packages: jaxgen, and nothing else.

``experiments/`` (the CLI, the configs, the results catalogue) runs from
the checkout root and must not be installed: a top-level package named
``experiments`` would collide with the user's own. Read from setup.cfg,
nothing is built.
"""

from __future__ import annotations

import configparser
import fnmatch
import importlib.util
import os

from tests import helpers

SETUP_CFG = os.path.join(helpers.REPO_ROOT, 'setup.cfg')


def _matches(patterns: list[str], name: str) -> bool:
  return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def test_only_jaxgen_is_installed():
  cfg = configparser.ConfigParser()
  cfg.read(SETUP_CFG)
  assert cfg['options']['packages'].strip() == 'find:'
  include = cfg['options.packages.find']['include'].split()
  for name in ('experiments', 'experiments.configs', 'experiments.results',
               'tests', 'notebooks'):
    assert not _matches(include, name), (name, include)
  assert _matches(include, 'jaxgen') and _matches(include, 'jaxgen.models')
  if importlib.util.find_spec('setuptools') is None:
    return  # a Python without setuptools: the patterns above decide
  from setuptools.config import setupcfg  # pylint: disable=g-import-not-at-top
  cwd = os.getcwd()
  try:
    os.chdir(helpers.REPO_ROOT)  # find: searches the working directory
    packages = setupcfg.read_configuration(SETUP_CFG)['options']['packages']
  finally:
    os.chdir(cwd)
  assert 'jaxgen' in packages and 'jaxgen.models' in packages
  assert {p.split('.')[0] for p in packages} == {'jaxgen'}, sorted(packages)
