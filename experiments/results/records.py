"""Records of finished experiments: where they live, staleness, provenance.

A record is one JSON file per experiment: ``<runs_dir>/<name>/result.json``
beside its workdir, and, for full runs, a copy ``<records_dir>/<name>.json``
(tracked in git with the figures it links, ``<name>_<kind>.png``: workdirs
are not, so the records are what RESULTS.md is rendered from).
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
from typing import Any

from absl import app

from experiments import catalogue
from experiments.catalogue import Spec
from experiments.results import specs
from jaxgen import config_fields
from jaxgen import workdir as workdir_lib

RESULT_FILE = 'result.json'
FORMAT_VERSION = 1
DEFAULT_RECORDS_DIR = 'results'


# What a results run writes into the checkout (the records with their
# figures, and the two rendered pages): changes there are the run's outputs,
# not a change to the code that produced them.
RECORD_OUTPUTS = (DEFAULT_RECORDS_DIR, 'RESULTS.md', 'GALLERY.md')


def git_revision() -> str | None:
  """'<short sha>' of the checkout, '+dirty' when tracked code changed.

  Changes under `RECORD_OUTPUTS` (paths from the top of the checkout) do not
  count: a run of several experiments rewrites earlier records before the
  later ones ask for the revision.
  """
  excludes = [f':(top,exclude){path}' for path in RECORD_OUTPUTS]
  try:
    sha = subprocess.run(['git', 'rev-parse', '--short=12', 'HEAD'],
                         capture_output=True, text=True, check=True,
                         timeout=10).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain',
                            '--untracked-files=no', '--', ':(top)',
                            *excludes], capture_output=True,
                           text=True, check=True, timeout=10).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None
  return sha + ('+dirty' if dirty else '')


def result_path(runs_dir: str, name: str,
                records_dir: str | None = None) -> str:
  """The record of `name`: ``<records_dir>/<name>.json`` when records are
  kept apart (full runs), else ``<runs_dir>/<name>/result.json``."""
  if records_dir:
    return os.path.join(records_dir, f'{name}.json')
  return os.path.join(runs_dir, name, RESULT_FILE)


def load_result(runs_dir: str, name: str,
                records_dir: str | None = None) -> dict[str, Any] | None:
  path = result_path(runs_dir, name, records_dir)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def save(runs_dir: str, name: str, record: dict[str, Any],
         records_dir: str | None = None) -> None:
  """Writes the record beside the workdir and, given `records_dir`, there."""
  workdir_lib.write_json(result_path(runs_dir, name), record)
  if records_dir:
    workdir_lib.write_json(result_path(runs_dir, name, records_dir), record)


def keep_figure(path: str, records_dir: str, name: str,
                kind: str = 'samples') -> str:
  """Copies a figure (samples, codebook) beside the records (workdirs are
  not tracked): ``<records_dir>/<name>_<kind>.png``; returns its path."""
  with open(path, 'rb') as f:
    return workdir_lib.atomic_write(
        os.path.join(records_dir, f'{name}_{kind}.png'), f.read())


def record_names(runs_dir: str,
                 records_dir: str | None) -> tuple[str, list[str]]:
  """(the glob the records come from, the experiment names found there)."""
  if records_dir:
    return (f'{records_dir}/*.json',
            [os.path.splitext(os.path.basename(p))[0]
             for p in glob.glob(os.path.join(records_dir, '*.json'))])
  return (f'{runs_dir}/*/{RESULT_FILE}',
          [os.path.basename(os.path.dirname(p))
           for p in glob.glob(os.path.join(runs_dir, '*', RESULT_FILE))])


def check_not_mixed(runs_dir: str, records_dir: str | None,
                    quick: bool) -> None:
  """Refuses a runs (or records) directory holding records of the other
  kind: quick and full results never mix."""
  for path in (glob.glob(os.path.join(runs_dir, '*', RESULT_FILE)) +
               glob.glob(os.path.join(records_dir or runs_dir, '*.json'))):
    with open(path) as f:
      was_quick = bool(json.load(f).get('quick'))
    if was_quick != quick:
      raise app.UsageError(
          f'{path} was written {"with" if was_quick else "without"} --quick; '
          'quick and full results do not mix: use another --runs_dir.')


def stale_reason(spec: Spec, record: dict[str, Any], quick: bool,
                 runs_dir: str = specs.DEFAULT_RUNS_DIR) -> str | None:
  """Why a stored result no longer matches the current preset, or None.

  A config field of `catalogue.NEUTRAL_ADDED_FIELDS` that the record lacks
  does not make it stale while the preset holds the neutral value; only the
  fields the preset's family has count (`jaxgen.config_fields`).
  """
  try:
    current = specs.config_dict(specs.build_config(spec, quick, runs_dir))
  except Exception as e:  # pylint: disable=broad-except
    return f'the preset no longer builds ({e})'
  stored = record.get('config') or {}
  own = config_fields.added_fields(current.get('family'))
  neutral = {f: v for f, v in catalogue.NEUTRAL_ADDED_FIELDS.items()
             if f in own}
  changed = sorted(_diff(current, stored))
  changed = [f for f in changed
             if not (f in neutral and _lookup(stored, f) is None
                     and _lookup(current, f) == neutral[f])]
  if changed:
    return 'config changed since it ran: ' + ', '.join(changed[:6]) + (
        ', ...' if len(changed) > 6 else '')
  return None


def _lookup(tree: dict[str, Any], dotted: str) -> Any:
  for k in dotted.split('.'):
    if not isinstance(tree, dict) or k not in tree:
      return None
    tree = tree[k]
  return tree


def _diff(a: Any, b: Any, prefix: str = '') -> list[str]:
  if isinstance(a, dict) and isinstance(b, dict):
    out = []
    for k in sorted(set(a) | set(b)):
      out += _diff(a.get(k), b.get(k), f'{prefix}{k}.')
    return out
  return [] if a == b else [prefix.rstrip('.')]
