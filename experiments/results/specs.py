"""A catalogue entry as a run: its config, command line and descriptions."""

from __future__ import annotations

import importlib
import json
import os
import shlex
from typing import Any

import ml_collections

from experiments.catalogue import Spec
from jaxgen import data as data_lib

DEFAULT_RUNS_DIR = 'runs/results'

# --quick: applied after each experiment's own overrides (only the fields a
# config has); small enough that every row runs in seconds (a smoke test of
# the runner: train, checkpoint, evaluate, render; the numbers mean nothing).
QUICK_STEPS = 5
QUICK_OVERRIDES = (
    ('train.num_steps', QUICK_STEPS),
    ('train.log_every_steps', QUICK_STEPS),
    ('train.eval_every_steps', 0),
    ('train.checkpoint_every_steps', QUICK_STEPS),
    ('eval.estimators.iwae.num_samples', 16),
    ('eval.estimators.iwae.chunk_size', 8),
    ('eval.num_grid_samples', 16),
)


def _config_module(path: str):
  """'experiments/configs/<name>.py' -> the imported module."""
  module = os.path.splitext(os.path.normpath(path))[0].replace(os.sep, '.')
  return importlib.import_module(module)


def _preset(spec: Spec) -> ml_collections.ConfigDict:
  path, _, arg = spec.config.partition(':')
  return _config_module(path).get_config(arg)


def _has_field(config: ml_collections.ConfigDict, dotted: str) -> bool:
  node = config
  for part in dotted.split('.'):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      return False
    node = node[part]
  return True


def overrides_for(spec: Spec, quick: bool,
                  runs_dir: str = DEFAULT_RUNS_DIR) -> list[tuple[str, Any]]:
  """The (dotted field, value) pairs for `spec`, quick ones last."""
  pairs = [(k, v.format(runs_dir=runs_dir) if isinstance(v, str) else v)
           for k, v in spec.overrides]
  if quick:
    config = _preset(spec)
    pairs += [(k, v) for k, v in QUICK_OVERRIDES if _has_field(config, k)]
  return pairs


def build_config(spec: Spec, quick: bool,
                 runs_dir: str = DEFAULT_RUNS_DIR) -> ml_collections.ConfigDict:
  """The locked config of `spec` (preset, then overrides)."""
  config = _preset(spec)
  config.update_from_flattened_dict(dict(overrides_for(spec, quick,
                                                       runs_dir)))
  return config


def config_dict(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config as plain JSON data (what a record stores)."""
  return json.loads(config.to_json_best_effort(sort_keys=True))


def command(spec: Spec, workdir: str, quick: bool) -> str:
  """The `experiments.main` command line that reproduces the row."""
  parts = ['python', '-m', 'experiments.main', f'--config={spec.config}',
           f'--workdir={workdir}']
  runs_dir = os.path.dirname(workdir)
  parts += [f'--config.{k}={v}'
            for k, v in overrides_for(spec, quick, runs_dir)]
  return ' '.join(shlex.quote(p) for p in parts)


def missing_data(config: ml_collections.ConfigDict) -> str | None:
  """The path of a file-backed dataset that does not exist, else None."""
  name = config.data.name
  if name.startswith('npz:') and not data_lib.resolve_npz_path(
      name[len('npz:'):]):
    return name[len('npz:'):]
  return None


def describe_model(config: ml_collections.ConfigDict, num_params: int) -> str:
  """'<family> (<N> params)'; tables show `Spec.label` instead."""
  return f'{config.family} ({num_params:,} params)'


def describe_data(config: ml_collections.ConfigDict) -> str:
  d = config.data
  name = d.name
  if name.startswith('npz:'):
    name = os.path.splitext(os.path.basename(name))[0]
  if name.startswith('toy:'):
    return f'{name}, 2-D points'
  if d.binarize == 'dynamic':
    pixels = 'dynamically binarized (Bernoulli, p = pixel/255, redrawn each use)'
  elif d.binarize == 'fixed':
    pixels = f'binarized once (fixed, seed {d.binarize_seed})'
  elif d.dequantize:
    pixels = '8-bit, uniformly dequantized'
  else:
    pixels = '8-bit'
  return f'{name}, {pixels}'


# The papers' data sets beside the CPU-sized one a preset argument names:
# a config that builds with one of them (same file, same other options) is
# the paper's setting that `budget_cuts` compares a row with.
PAPER_DATA = {'mnist8k': ('binarized_mnist', 'mnist')}
# Fields whose smaller integer value means less training or a smaller net.
_BUDGET_FIELDS = ('train.num_steps', 'train.batch_size')
_BUDGET_PREFIX = 'model.'


def _int_leaves(tree: Any, prefix: str = '') -> dict[str, Any]:
  """Dotted field -> value, for ints and tuples of ints (bools excluded)."""
  out = {}
  for k, v in tree.items():
    if isinstance(v, (dict, ml_collections.ConfigDict)):
      out.update(_int_leaves(v, f'{prefix}{k}.'))
      continue
    items = v if isinstance(v, (tuple, list)) else (v,)
    if items and all(isinstance(x, int) and not isinstance(x, bool)
                     for x in items):
      out[f'{prefix}{k}'] = tuple(items)
  return out


def _paper_config(spec: Spec) -> tuple[str, ml_collections.ConfigDict] | None:
  """(argument, config) of the paper-data preset of `spec`, or None."""
  path, _, arg = spec.config.partition(':')
  options = arg.split(',')
  for ours, papers in PAPER_DATA.items():
    if ours not in options:
      continue
    for paper in papers:
      alt = ','.join(paper if o == ours else o for o in options)
      try:
        return paper, _config_module(path).get_config(alt)
      except (ValueError, KeyError):
        continue
  return None


def budget_cuts(spec: Spec) -> tuple[str, ...]:
  """What makes `spec` smaller or shorter than its reference setting.

  The reference setting is the paper-data preset of the same config file
  (`PAPER_DATA`, e.g. ``vae.py:binarized_mnist`` for ``vae.py:mnist8k``)
  where it builds, and the row's own preset for its overrides: a training
  length, batch size or integer net size (`model.*`) below it is a cut,
  a list of layer sizes that is shorter or narrower included (`_smaller`).
  Returns one phrase per cut, e.g. 'train.num_steps 3,000 < 10,000 (the
  preset)'; () when none.
  """
  key = (spec.config, repr(spec.overrides))
  if key not in _BUDGET_CUTS:
    try:
      _BUDGET_CUTS[key] = _budget_cuts(spec)
    except Exception:  # pylint: disable=broad-except
      # A preset that no longer builds: the record's stale note says so.
      _BUDGET_CUTS[key] = ()
  return _BUDGET_CUTS[key]


# budget_cuts of each (config, overrides) met so far: the pages ask often.
_BUDGET_CUTS: dict[tuple[str, str], tuple[str, ...]] = {}


def _budget_cuts(spec: Spec) -> tuple[str, ...]:
  row = _int_leaves(build_config(spec, quick=False))
  refs = [('the preset', _preset(spec))]
  paper = _paper_config(spec)
  if paper:
    refs.insert(0, (f'the {paper[0]} preset', paper[1]))
  fmt = lambda v: ', '.join(f'{x:,}' for x in v)
  cuts, seen = [], set()
  for source, config in refs:
    ref = _int_leaves(config)
    for field in sorted(row):
      if field in seen or field not in ref or not (
          field in _BUDGET_FIELDS or field.startswith(_BUDGET_PREFIX)):
        continue
      if _smaller(row[field], ref[field]):
        seen.add(field)
        cuts.append(f'{field} {fmt(row[field])} < {fmt(ref[field])} '
                    f'({source})')
  return tuple(cuts)


def _smaller(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
  """Whether the int list `a` is a cut of `b`: as long with a smaller sum
  (fewer steps, a narrower net), or shorter with no entry wider than the
  one in its place (fewer and no wider layers: (16, 16) of (64, 64, 64)).
  A shorter but wider list trades depth for width: not a cut."""
  if len(a) == len(b):
    return sum(a) < sum(b)
  return len(a) < len(b) and all(x <= y for x, y in zip(a, b))


def cpu_budget(spec: Spec) -> bool:
  """Whether the row runs on a CPU budget: `Spec.cpu_budget` where the
  entry states it, else whether `budget_cuts` finds a cut."""
  if spec.cpu_budget is not None:
    return spec.cpu_budget
  return bool(budget_cuts(spec))
