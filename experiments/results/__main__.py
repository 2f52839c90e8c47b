"""The command line of `experiments.results` (see the package docstring)."""

from __future__ import annotations

import os
from typing import Any

from absl import app
from absl import flags
from absl import logging

from experiments import catalogue
from experiments import entry
from experiments.results import records
from experiments.results import render
from experiments.results import run
from experiments.results import specs


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      only=flags.DEFINE_list(
          'only', None, 'Experiments to run (default: all): ' +
          ', '.join(catalogue.BY_NAME) + '. RESULTS.md still lists every '
          'experiment.'),
      quick=flags.DEFINE_bool('quick', False, 'Smoke mode: a few steps, '
                              'small k; RESULTS.md says so loudly.'),
      runs_dir=flags.DEFINE_string('runs_dir', None, 'Parent of the '
                                   'workdirs (default runs/results, or '
                                   'runs/results_quick with --quick).'),
      note=flags.DEFINE_string('note', None, 'A sentence added verbatim to '
                               "RESULTS.md's reading notes (e.g. on the "
                               'machine\'s load during the runs).'),
      out=flags.DEFINE_string('out', None, 'Markdown file to write (default '
                              'RESULTS.md, or <runs_dir>/RESULTS.md with '
                              '--quick).'),
      rerun=flags.DEFINE_bool('rerun', False, 'Run the selected experiments '
                              'even when they have a result.json (training '
                              'resumes from the workdir; evaluation runs '
                              'again).'),
      records_dir=flags.DEFINE_string(
          'records_dir', None, 'Where full runs keep one <name>.json record '
          'per experiment, the source of RESULTS.md (default results/, '
          'tracked in git). --quick keeps its records in the workdirs '
          'only.'),
      fresh=flags.DEFINE_bool('fresh', False, 'Delete the selected '
                              'experiments\' workdirs first and train from '
                              'scratch.'),
      render_only=flags.DEFINE_bool(
          'render_only', False, 'Run nothing: rewrite --out, and GALLERY.md '
          'beside it, from the records in --records_dir (what RESULTS.md and '
          'GALLERY.md must equal; a test checks it).'))


def main(argv, flag_values: dict[str, Any]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in flag_values.items()}
  quick = f['quick']
  runs_dir = f['runs_dir'] or ('runs/results_quick' if quick
                               else specs.DEFAULT_RUNS_DIR)
  out = f['out'] or (os.path.join(runs_dir, 'RESULTS.md') if quick
                     else 'RESULTS.md')
  if quick and os.path.abspath(out) == os.path.abspath('RESULTS.md'):
    raise app.UsageError('--quick must not overwrite the project\'s '
                         'RESULTS.md: pass another --out.')
  records_dir = f['records_dir'] or (None if quick
                                     else records.DEFAULT_RECORDS_DIR)
  names = list(f['only']) if f['only'] else list(catalogue.BY_NAME)
  if f['render_only']:
    if f['only'] or f['rerun'] or f['fresh']:
      raise app.UsageError('--render_only runs nothing: drop --only, '
                           '--rerun and --fresh.')
    render.write(out, runs_dir, quick=quick, note=f['note'],
                 records_dir=records_dir)
    print(f'wrote {out} and {render.gallery_path(out)}', flush=True)
    if render.uses_page(records_dir):
      print('wrote ' + os.path.join(records_dir, render.USES_FILE),
            flush=True)
    return
  try:
    run.run_all(names, runs_dir=runs_dir, out=out, quick=quick,
                note=f['note'], rerun=f['rerun'], fresh=f['fresh'],
                records_dir=records_dir)
  except run.Interrupted as e:
    print(e, flush=True)
    raise SystemExit(128 + 15) from None


if __name__ == '__main__':
  _FLAGS = define_flags()
  entry.run(lambda argv: main(argv, _FLAGS))
