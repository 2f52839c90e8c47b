r"""Runs an experiment: train (resuming), evaluate or sample, over a workdir.

  python -m experiments.main --config=experiments/configs/vae.py:digits \
      --workdir=runs/vae
  python -m experiments.main --workdir=runs/vae --mode=evaluate
  python -m experiments.main --workdir=runs/vae --mode=sample

Override any config field on the command line
(``--config.train.num_steps=100``); a mistyped field is an error. Without
--config, evaluate and sample read ``<workdir>/config.json``, written by
training. The workdir holds orbax checkpoints (checkpoints/), metrics.jsonl,
TensorBoard events (tensorboard/), PNG grids (images/) and evaluation
results (eval/).
"""

from __future__ import annotations

import signal
import sys

from absl import app
from absl import flags
from absl import logging
import ml_collections
from ml_collections import config_flags

from jaxgen import evaluate as eval_lib
from jaxgen import train
from jaxgen import workdir as workdir_lib
from jaxgen.errors import ConfigError
from jaxgen.errors import DataError

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Config file and argument, e.g. '
    'experiments/configs/vae.py:digits.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Working directory.',
                               required=True)
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'evaluate', 'sample'],
                          'train (resumes from the workdir), evaluate the '
                          'latest checkpoint, or write a sample grid.')
_SPLIT = flags.DEFINE_string('split', None, 'Split to evaluate (default: '
                             'config.eval.split).')


def _print_results(step: int, split: str, results: dict[str, float]) -> None:
  print(f'step {step} {split}: ' + ', '.join(
      f'{k}={v:.4f}' for k, v in sorted(results.items())), flush=True)


def run(config: ml_collections.ConfigDict, workdir: str, mode: str,
        split: str | None = None) -> dict[str, float] | list[str] | None:
  """What `main` does, callable from Python (tests, notebooks).

  Returns the evaluation results (train, evaluate), the written paths
  (sample), or None when training was stopped by SIGTERM before
  ``config.train.num_steps``: the trainer has saved that step, and nothing is
  evaluated, so the job exits promptly (the same command resumes it).
  """
  exp = train.Experiment(config, workdir)
  if exp.is_main:
    print(exp.describe(), flush=True)
  split = split or config.eval.split
  if mode == 'train':
    state = exp.train()
    step = int(state.step)
    if step < config.train.num_steps:
      if exp.is_main:
        print(f'stopped at step {step} of {config.train.num_steps} '
              '(SIGTERM): checkpoint saved, not evaluated; the same command '
              'resumes.', flush=True)
      return None
  else:
    state, step = exp.restore()
  if mode == 'sample':
    paths = exp.write_images(state)
    for p in paths:
      print(f'wrote {p}', flush=True)
    return paths
  results = exp.evaluate(state, split=split, progress=True)
  paths = exp.write_images(state) if mode == 'train' else []
  if exp.is_main:
    paths.append(eval_lib.write_eval_json(workdir, step, split, results))
    _print_results(step, split, results)
    for p in paths:
      print(f'wrote {p}', flush=True)
  return results


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  config = _CONFIG.value
  if config is None:
    try:
      config = workdir_lib.load_config(_WORKDIR.value)
    except FileNotFoundError as e:
      raise app.UsageError(f'--config is missing and {e}: pass --config for '
                           'a new workdir.') from e
  try:
    result = run(config, _WORKDIR.value, _MODE.value, _SPLIT.value)
  except (ConfigError, DataError, FileNotFoundError) as e:
    # Bad input (found before anything is compiled) or nothing to restore:
    # one line naming the field, no traceback.
    print(f'error: {e}', file=sys.stderr, flush=True)
    sys.exit(2)
  if result is None:
    sys.exit(128 + signal.SIGTERM)  # stopped by SIGTERM, after saving


if __name__ == '__main__':
  sys.exit(app.run(main))
