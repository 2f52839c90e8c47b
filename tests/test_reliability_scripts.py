"""Every script's command line: a bad flag is one ``error:`` line, status 2.

The scripts end in `experiments.entry.run`; four of them, each with
another kind of bad flag, stand for all (each is a fresh process).
"""

import subprocess
import sys

import pytest

from tests import helpers

pytestmark = pytest.mark.slow


def test_bad_flags_are_one_error_line_and_status_2(tmp_path):
  cases = [
      # An unknown flag.
      (['experiments.results', '--nosuch=1'],
       "error: Unknown command line flag 'nosuch'"),
      # A value of the wrong type.
      (['experiments.sample_quality', '--num_samples=many'],
       "error: --num_samples=many: invalid literal for int() with base 10: "
       "'many' (expected an integer)"),
      # A --config file that does not exist.
      (['experiments.kmeans_codebook', f'--workdir={tmp_path}',
        '--config=experiments/configs/nosuch.py'],
       'error: --config=experiments/configs/nosuch.py: [Errno 2] No such '
       "file or directory: 'experiments/configs/nosuch.py'"),
      # A --workdir that holds no run (`train.Experiment.from_workdir`).
      (['experiments.chains', f'--workdir={tmp_path / "none"}',
        f'--out={tmp_path / "none" / "chains.png"}'],
       f'error: --workdir={tmp_path / "none"} holds no trained run (no '
       f'{tmp_path / "none" / "config.json"}).'),
  ]
  for args, line in cases:
    proc = subprocess.run([sys.executable, '-m'] + args,
                          cwd=helpers.REPO_ROOT, env=helpers.subprocess_env(),
                          capture_output=True, text=True, timeout=300)
    assert (proc.returncode, proc.stderr, proc.stdout) == (2, line + '\n',
                                                           ''), args
  assert not list(tmp_path.iterdir())
