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

import dataclasses
import signal
import sys
import time
from typing import Any

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


def _print_results(step: int, split: str, results: dict[str, float]) -> None:
  print(f'step {step} {split}: ' + ', '.join(
      f'{k}={v:.4f}' for k, v in sorted(results.items())), flush=True)


@dataclasses.dataclass
class Trained:
  """What `train_and_evaluate` did.

  Attributes:
    state: the trained state.
    start_step: the checkpoint step training resumed from (0: fresh).
    num_steps: the steps training was asked to reach.
    train_seconds: wall time of `Experiment.train`.
    split: the split to evaluate.
    results: its evaluation (`Experiment.evaluate`), None when training
      stopped early (SIGTERM) and nothing was evaluated.
    paths: the files written: image grids, then (process 0) the eval JSON.
    eval_seconds: wall time of `Experiment.evaluate`.
  """
  state: Any
  start_step: int
  num_steps: int
  train_seconds: float
  split: str
  results: dict[str, float] | None = None
  paths: list[str] = dataclasses.field(default_factory=list)
  eval_seconds: float = 0.0

  @property
  def step(self) -> int:
    return int(self.state.step)


def train_and_evaluate(exp: train.Experiment,
                       split: str | None = None) -> Trained:
  """Trains `exp` (resuming), then evaluates `split` and writes its files.

  Writes the sample (and reconstruction) grids and
  ``<workdir>/eval/<split>_step<step>.json`` (`jaxgen.evaluate`). When
  training was stopped by SIGTERM before ``config.train.num_steps``, the
  trainer has saved that step and nothing is evaluated (``results`` is
  None).
  """
  split = split or exp.config.eval.split
  num_steps = exp.config.train.num_steps
  ckpt = exp.checkpointer()
  try:
    start_step = ckpt.latest_step() or 0
  finally:
    ckpt.close()
  start = time.perf_counter()
  state = exp.train()
  trained = Trained(state=state, start_step=start_step, num_steps=num_steps,
                    split=split, train_seconds=time.perf_counter() - start)
  if trained.step < num_steps:
    return trained
  start = time.perf_counter()
  trained.results = exp.evaluate(state, split=split, progress=True)
  trained.eval_seconds = time.perf_counter() - start
  trained.paths = exp.write_images(state)
  if exp.is_main:
    trained.paths.append(eval_lib.write_eval_json(
        exp.workdir, trained.step, split, trained.results))
  return trained


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
    trained = train_and_evaluate(exp, split)
    if trained.results is None:
      if exp.is_main:
        print(f'stopped at step {trained.step} of {trained.num_steps} '
              '(SIGTERM): checkpoint saved, not evaluated; the same command '
              'resumes.', flush=True)
      return None
    step, results, paths = trained.step, trained.results, trained.paths
  else:
    state, step = exp.restore()
    if mode == 'sample':
      paths = exp.write_images(state)
      for p in paths:
        print(f'wrote {p}', flush=True)
      return paths
    results = exp.evaluate(state, split=split, progress=True)
    paths = []
    if exp.is_main:
      paths.append(eval_lib.write_eval_json(workdir, step, split, results))
  if exp.is_main:
    _print_results(step, split, results)
    for p in paths:
      print(f'wrote {p}', flush=True)
  return results


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      config=config_flags.DEFINE_config_file(
          'config', None, 'Config file and argument, e.g. '
          'experiments/configs/vae.py:digits.', lock_config=True),
      workdir=flags.DEFINE_string('workdir', None, 'Working directory.',
                                  required=True),
      mode=flags.DEFINE_enum('mode', 'train', ['train', 'evaluate', 'sample'],
                             'train (resumes from the workdir), evaluate the '
                             'latest checkpoint, or write a sample grid.'),
      split=flags.DEFINE_string('split', None, 'Split to evaluate (default: '
                                'config.eval.split).'))


def main(argv, flag_values: dict[str, Any]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in flag_values.items()}
  config = f['config']
  if config is None:
    try:
      config = workdir_lib.load_config(f['workdir'])
    except FileNotFoundError as e:
      raise app.UsageError(f'--config is missing and {e}: pass --config for '
                           'a new workdir.') from e
  try:
    result = run(config, f['workdir'], f['mode'], f['split'])
  except (ConfigError, DataError, FileNotFoundError) as e:
    # Bad input (found before anything is compiled) or nothing to restore:
    # one line naming the field, no traceback.
    print(f'error: {e}', file=sys.stderr, flush=True)
    sys.exit(2)
  if result is None:
    sys.exit(128 + signal.SIGTERM)  # stopped by SIGTERM, after saving


if __name__ == '__main__':
  _FLAGS = define_flags()
  sys.exit(app.run(lambda argv: main(argv, _FLAGS)))
