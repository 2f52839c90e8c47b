r"""Lists what exists: families, their config options, presets and datasets.

  python -m experiments.families
  python -m experiments.families --family=vae
  python -m experiments.families --family=vae --arg=mnist,conv

Without --family: every registered family (`jaxgen.models.FAMILIES`) with
what its likelihood is ('exact', 'bound', 'estimate' or none), the kinds of
data it models, the optional contract names it defines, its config file's
options (the dataset option is the preset) and the dataset each preset
reads; then every dataset the presets read (embedded, npz files, TFDS
names, toy densities, synthetic signals, crops of scikit-image's photos).
With --family: that family's options and every field of its config
(``get_config(--arg)``) with its value and the one-line comment of the
config source where it has one.

Everything is derived from the registry and the config files
(`experiments.configs.common.declared_options`), so a new family or preset
appears here without editing this file. Run from the checkout root.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import re
import sys
import types
from typing import Any, Iterator

from absl import app
from absl import flags
import ml_collections

from experiments import entry
from experiments.configs import common
from jaxgen import models

# Contract names beyond `models.REQUIRED` that a family may define.
HOOKS = models.OPTIONAL + models.CODES


@dataclasses.dataclass(frozen=True)
class FamilyInfo:
  """What the listing says about one family.

  Attributes:
    name: the `models.FAMILIES` key (``config.family``).
    module: the family module's import path.
    likelihood: 'exact', 'bound', 'estimate' or 'none'.
    data: the kinds of data it models ('images', 'points').
    hooks: the optional contract names it defines (`HOOKS`), in that order.
    config_path: its config file, relative to the checkout root.
    options: {slot: allowed options} its get_config accepts; the 'dataset'
      slot holds the presets.
    defaults: {slot: default option} ('' = chosen per dataset).
    datasets: {dataset option: config.data.name it reads}.
  """
  name: str
  module: str
  likelihood: str
  data: tuple[str, ...]
  hooks: tuple[str, ...]
  config_path: str
  options: dict[str, tuple[str, ...]]
  defaults: dict[str, str]
  datasets: dict[str, str]


def config_module(name: str) -> types.ModuleType:
  """``experiments.configs.<name>``, the family's config file."""
  return importlib.import_module(f'experiments.configs.{name}')


def family_info(name: str) -> FamilyInfo:
  """Everything listed about family `name`, read from its module and config."""
  family = models.get_family(name)
  module = config_module(name)
  options, defaults = common.declared_options(module.get_config)
  datasets = {}
  for option in options.get('dataset', ()):
    try:
      datasets[option] = module.get_config(option).data.name
    except ValueError:  # an option that needs another one alongside it
      continue
  likelihood = family.LIKELIHOOD or 'none'
  return FamilyInfo(
      name=name, module=models.FAMILIES[name], likelihood=likelihood,
      data=tuple(getattr(family, 'DATA', ('images',))),
      hooks=tuple(h for h in HOOKS if getattr(family, h, None) is not None),
      config_path=os.path.relpath(inspect.getfile(module),
                                  _checkout_root()),
      options=options, defaults=defaults, datasets=datasets)


def _checkout_root() -> str:
  return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def all_families() -> list[FamilyInfo]:
  """`family_info` of every registered family, sorted by name."""
  return [family_info(name) for name in sorted(models.FAMILIES)]


def dataset_kind(name: str) -> str:
  """'embedded', 'npz', 'tfds', 'toy', 'signal' or 'photos' for a
  data.name."""
  if name == 'digits':
    return 'embedded'
  if name.startswith('npz:'):
    return 'npz'
  if name.startswith('toy:'):
    return 'toy'
  if name.startswith('signal:'):
    return 'signal'
  if name.startswith('skimage_photos:'):
    return 'photos'
  return 'tfds'


def _format_options(info: FamilyInfo) -> list[str]:
  lines = []
  for slot, allowed in info.options.items():
    default = info.defaults.get(slot, '')
    shown = [f'{o} (default)' if o == default else o for o in allowed]
    if not default:
      shown.append('none (default)' if slot != 'dataset' and len(allowed) == 1
                    else '(default chosen per dataset)')
    lines.append(f'{slot}: ' + ' | '.join(shown))
  return lines


def _header(info: FamilyInfo) -> list[str]:
  return [f'{info.name}  [{info.module}]',
          f'  contract: likelihood={info.likelihood}; data='
          f'{",".join(info.data)}; hooks={",".join(info.hooks) or "-"}',
          f'  config: {info.config_path}']


def summary(infos: list[FamilyInfo]) -> str:
  """The listing of every family, then every dataset the presets read."""
  out = ['Families (jaxgen.models.FAMILIES); run one with',
         '  python -m experiments.main '
         '--config=experiments/configs/<family>.py:<options> '
         '--workdir=runs/<name>',
         'where <options> is comma-separated, one per slot; the dataset '
         'option is the preset.', '']
  for info in infos:
    out += _header(info)
    if info.options:
      out += ['  options:'] + ['    ' + line for line in _format_options(info)]
    else:
      out.append('  options: not declared through '
                 'experiments.configs.common.parse_arg')
    if info.datasets:
      out.append('  presets read: ' + ', '.join(
          f'{option} -> {name}' for option, name in info.datasets.items()))
    out.append('')

  users: dict[str, list[str]] = {}
  for info in infos:
    for name in info.datasets.values():
      users.setdefault(name, [])
      if info.name not in users[name]:
        users[name].append(info.name)
  out.append('Datasets the presets read (config.data.name; nothing is '
             'downloaded at run time):')
  titles = {
      'embedded': "embedded (scikit-learn's bundled 8x8 digits)",
      'npz': 'npz files (a relative path: under the working directory, '
             'else the checkout root)',
      'tfds': 'TFDS, prepared array_record data in config.data.data_dir or '
              'TFDS_DATA_DIR (README.md: "Reproducing the papers")',
      'toy': 'toy 2-D densities (drawn with data.split_seed)',
      'signal': 'synthetic 8-bit 1-D signals',
      'photos': "colour crops of scikit-image's bundled photos, split by "
                'photo',
  }
  for kind, title in titles.items():
    names = sorted(n for n in users if dataset_kind(n) == kind)
    if not names:
      continue
    out.append(f'  {title}:')
    for name in names:
      where = ''
      if kind == 'npz':
        from jaxgen import data as data_lib  # pylint: disable=g-import-not-at-top
        found = data_lib.resolve_npz_path(name[len('npz:'):])
        where = f'  [{found or "absent"}]'
      out.append(f'    {name}{where}: {", ".join(users[name])}')
  return '\n'.join(out) + '\n'


def _field_comments(paths: list[str]) -> dict[str, str]:
  """{dotted field: its trailing comment} from config sources.

  Reads assignments such as ``c.train.batch_size = 128  # global`` or
  ``m.latent_dim = 8  # ...`` (``m`` is ``c.model``, ``d`` ``c.data``,
  ``o`` ``c.optimizer``); the first comment of a field wins.
  """
  prefixes = {'c': '', 'm': 'model.', 'd': 'data.', 'o': 'optimizer.'}
  pattern = re.compile(r'^\s*([cmdo])\.([\w.]+)\s*=[^#]*#\s*(.+)$')
  comments: dict[str, str] = {}
  for path in paths:
    with open(path) as f:
      for line in f:
        match = pattern.match(line)
        code = line.split('#', 1)[0]
        if match and code.count("'") % 2 == 0 and code.count('"') % 2 == 0:
          key = prefixes[match.group(1)] + match.group(2)
          comments.setdefault(key, match.group(3).strip())
  return comments


def flat_fields(config: ml_collections.ConfigDict,
                prefix: str = '') -> Iterator[tuple[str, Any]]:
  """(dotted name, value) of every leaf of `config`, in insertion order."""
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      if len(value):
        yield from flat_fields(value, f'{prefix}{key}.')
      else:
        yield f'{prefix}{key}', {}
    else:
      yield f'{prefix}{key}', value


def family_details(name: str, arg: str = '') -> str:
  """One family: its options, then every config field of get_config(arg)."""
  info = family_info(name)
  module = config_module(name)
  config = module.get_config(arg)
  out = _header(info)
  out += ['  options:'] + ['    ' + line for line in _format_options(info)]
  if info.datasets:
    out.append('  presets read: ' + ', '.join(
        f'{option} -> {dname}' for option, dname in info.datasets.items()))
  out += ['', f"Every field of get_config({arg!r}), with its value "
          f'(override with --config.<field>=...):']
  comments = _field_comments([inspect.getfile(module),
                              inspect.getfile(common)])
  for key, value in flat_fields(config):
    comment = comments.get(key)
    out.append(f'  {key} = {value!r}' + (f'  # {comment}' if comment else ''))
  return '\n'.join(out) + '\n'


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      family=flags.DEFINE_string(
          'family', None, 'A family name: list its options and every config '
          'field with its default.'),
      arg=flags.DEFINE_string(
          'arg', '', 'With --family: the config argument to show (e.g. '
          "'mnist,conv'; default: the config's defaults)."))


def main(argv, flag_values: dict[str, Any]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  family = flag_values['family'].value
  arg = flag_values['arg'].value
  if family is None:
    if arg:
      raise app.UsageError('--arg needs --family.')
    sys.stdout.write(summary(all_families()))
    return
  if family not in models.FAMILIES:
    print(f'error: --family={family!r} is not a registered family; known: '
          f'{", ".join(sorted(models.FAMILIES))}.', file=sys.stderr)
    sys.exit(2)
  try:
    text = family_details(family, arg)
  except ValueError as e:  # an unknown option in --arg
    print(f'error: --arg={arg!r}: {e}', file=sys.stderr)
    sys.exit(2)
  sys.stdout.write(text)


if __name__ == '__main__':
  _FLAGS = define_flags()
  entry.run(lambda argv: main(argv, _FLAGS))
