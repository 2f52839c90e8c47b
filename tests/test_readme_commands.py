"""README.md's shell commands name things that exist.

Every ``python -m experiments.<script> ...`` in README.md (code blocks and
inline) is read without running it: the script exists, each ``--flag`` is
one the script defines, a ``--config=FILE[:ARG]`` loads, and each
``--config.<path>=...`` override names a field of that config. Placeholders
(``<...>``, ``[...]``) are skipped. Running them is the other tests' job
(tests/test_main.py and friends run the same scripts on smoke configs).
"""

from __future__ import annotations

import importlib
import importlib.util
import re

import pytest

from tests import helpers

_COMMAND = re.compile(r'python -m experiments\.(\w+)([^`\n#]*)')


def _commands() -> list[tuple[str, list[str]]]:
  text = (helpers.REPO_ROOT / 'README.md').read_text()
  text = re.sub(r'\\\n\s*', ' ', text)  # continuation lines
  return [(m.group(1), m.group(2).split()) for m in _COMMAND.finditer(text)]


COMMANDS = _commands()


def _defines(script: str, flag: str) -> bool:
  """Whether the script's source (a package's ``__main__``) defines it."""
  path = helpers.REPO_ROOT / 'experiments' / f'{script}.py'
  if not path.exists():
    path = helpers.REPO_ROOT / 'experiments' / script / '__main__.py'
  source = path.read_text()
  return re.search(rf"DEFINE_\w+\(\s*'{re.escape(flag)}'", source) is not None


def test_readme_has_commands():
  assert len(COMMANDS) >= 30
  assert {'main', 'results', 'families'} <= {s for s, _ in COMMANDS}


@pytest.mark.parametrize('script, args', COMMANDS,
                         ids=[' '.join([s] + a)[:80] for s, a in COMMANDS])
def test_readme_command_names_what_exists(script, args):
  assert importlib.util.find_spec(f'experiments.{script}'), script
  config = None
  for arg in args:
    if not arg.startswith('--') or re.search(r'[<>\[\]]', arg):
      continue  # a subcommand (uses bayes) or a placeholder
    name, _, value = arg[2:].partition('=')
    if name == 'config':
      path, _, preset = value.partition(':')
      module = re.fullmatch(r'experiments/configs/(\w+)\.py', path)
      assert module, arg
      get_config = importlib.import_module(
          f'experiments.configs.{module.group(1)}').get_config
      config = get_config(preset) if preset else get_config()
    elif name.startswith('config.'):
      assert config is not None, f'{arg} before --config'
      node = config
      for key in name.split('.')[1:]:
        assert key in node, f'{arg}: no field {key!r}'
        node = node[key]
    else:
      assert _defines(script, name), f'experiments.{script} has no --{name}'
