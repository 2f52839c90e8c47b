r"""Trains the feature classifier of the sample-quality scores.

  python -m experiments.train_classifier --dataset=digits \
      --workdir=runs/classifier_digits
  python -m experiments.train_classifier --dataset=mnist8k \
      --workdir=runs/classifier_mnist8k

The config is ``experiments/configs/classifier.py:<dataset>``; pass
``--config=experiments/configs/classifier.py:mnist8k`` instead of --dataset
to override fields (``--config.train.num_steps=500``). The classifier is the
'classifier' family (`jaxgen.models.classifier`): it trains through the
shared trainer exactly as ``python -m experiments.main`` would
(`experiments.main.train_and_evaluate`: checkpoints, metrics.jsonl, the
test-split evaluation with its 'accuracy'; resuming a stopped run), then the
'classifier_accuracy' evaluation (`jaxgen.evaluations`) writes
``<workdir>/accuracy.json``. A workdir that already holds the classifier of
this config is only reported; one trained by experiments.main alone gets its
accuracy.json without training again. Run from the project root (mnist8k is
read from ``../shared``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any, Callable

from absl import app
from absl import flags
from absl import logging
import ml_collections
from ml_collections import config_flags

from experiments import entry
from experiments import main as main_lib
from experiments.configs import classifier as classifier_config
from jaxgen import evaluations
from jaxgen import quality
from jaxgen import train
from jaxgen import workdir as workdir_lib
from jaxgen.errors import ConfigError
from jaxgen.errors import DataError


def train_classifier(config: ml_collections.ConfigDict, workdir: str, *,
                     log: Callable[[str], None] = print
                     ) -> quality.FeatureClassifier | None:
  """Trains (resuming) the classifier of `config` in `workdir`; returns it.

  Training and the test-split evaluation are `experiments.main`'s; then the
  'classifier_accuracy' evaluation writes ``<workdir>/accuracy.json`` and
  the classifier is loaded back (`quality.load_classifier`), with the
  parameters of the final checkpoint. A workdir whose accuracy.json was
  written for this config is loaded without training.

  Returns:
    The classifier, or None when training was stopped by SIGTERM (the
    trainer saved the step reached; the same call resumes).

  Raises:
    ConfigError: `config` is not a classifier config, the workdir holds an
      unreadable old-format classifier or a run of another family
      (`quality.check_classifier_workdir`), or a classifier trained with
      another config.
  """
  if config.family != quality.CLASSIFIER_FAMILY:
    raise ConfigError(f'config.family={config.family!r}: this trains the '
                      f'{quality.CLASSIFIER_FAMILY!r} family '
                      '(experiments/configs/classifier.py).')
  workdir = os.path.abspath(workdir)
  quality.check_classifier_workdir(workdir)
  if os.path.isfile(workdir_lib.config_path(workdir)):
    saved = workdir_lib.read_config_dict(workdir)
    if saved != json.loads(config.to_json_best_effort()):
      raise ConfigError(f'{workdir} holds a classifier trained with another '
                        'config; use a new --workdir.')
    if os.path.exists(quality.accuracy_path(workdir)):
      log(f'{workdir} already holds this classifier; loading it.')
      return quality.load_classifier(workdir)
  exp = train.Experiment(config, workdir)
  if exp.is_main:
    log(exp.describe())
  trained = main_lib.train_and_evaluate(exp)
  if trained.results is None:
    return None
  # The wall time is the training's only when it ran here from step 0.
  seconds = trained.train_seconds if trained.start_step == 0 else None
  evaluations.run('classifier_accuracy', exp, trained.state, out_dir=workdir,
                  train_seconds=seconds)
  return quality.load_classifier(workdir)


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      config=config_flags.DEFINE_config_file(
          'config', None, 'Classifier config file and argument, e.g. '
          'experiments/configs/classifier.py:digits (default: from '
          '--dataset).', lock_config=True),
      dataset=flags.DEFINE_string(
          'dataset', None, 'digits | mnist8k | smoke: picks '
          'experiments/configs/classifier.py:<dataset> when --config is '
          'absent.'),
      workdir=flags.DEFINE_string('workdir', None, 'Where to train the '
                                  'classifier.', required=True))


def main(argv, flag_values: dict[str, Any]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in flag_values.items()}
  config = f['config']
  if config is None:
    if f['dataset'] is None:
      raise app.UsageError('pass --dataset (digits | mnist8k | smoke) or '
                           '--config.')
    config = classifier_config.get_config(f['dataset'])
  elif f['dataset'] is not None:
    raise app.UsageError('pass --dataset or --config, not both.')
  try:
    clf = train_classifier(config, f['workdir'],
                           log=lambda s: print(s, flush=True))
  except (ConfigError, DataError, FileNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr, flush=True)
    sys.exit(2)
  if clf is None:
    print('stopped by SIGTERM: checkpoint saved, accuracy not measured; the '
          'same command resumes.', flush=True)
    sys.exit(128 + signal.SIGTERM)
  info = clf.info
  seconds = info.get('train_seconds')
  print(f'{config.data.name}: test accuracy {info["test_accuracy"]:.4f} '
        f'(binarized {info["test_accuracy_binarized"]:.4f}) over '
        f'{info["num_test"]} images, {info["num_params"]:,} parameters'
        + ('' if seconds is None else f', trained in {seconds:.1f} s')
        + f'; saved in {clf.workdir}', flush=True)


if __name__ == '__main__':
  _FLAGS = define_flags()
  entry.run(lambda argv: main(argv, _FLAGS))
