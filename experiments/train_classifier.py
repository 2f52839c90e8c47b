r"""Trains the feature classifier of the sample-quality scores.

  python -m experiments.train_classifier --dataset=digits \
      --workdir=runs/classifier_digits
  python -m experiments.train_classifier --dataset=mnist8k \
      --workdir=runs/classifier_mnist8k

The config is ``experiments/configs/classifier.py:<dataset>``; pass
``--config=experiments/configs/classifier.py:mnist8k`` instead of --dataset
to override fields (``--config.train.num_steps=500``). Deterministic from
``config.seed``. Writes ``<workdir>/config.json``, an orbax checkpoint of the
parameters (``<workdir>/checkpoint``) and ``<workdir>/accuracy.json``; a
workdir that already holds the same classifier is only reported. Run from the
project root (mnist8k is read from ``../shared``).
"""

from __future__ import annotations

import sys
from typing import Any

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from experiments.configs import classifier as classifier_config
from jaxgen import quality

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
      workdir=flags.DEFINE_string('workdir', None, 'Where to save the '
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
  clf = quality.train_classifier(
      config, f['workdir'], log=lambda s: print(s, flush=True))
  info = clf.info
  print(f'{config.data.name}: test accuracy {info["test_accuracy"]:.4f} '
        f'(binarized {info["test_accuracy_binarized"]:.4f}) over '
        f'{info["num_test"]} images, {info["num_params"]:,} parameters, '
        f'{info["train_seconds"]:.1f} s; saved in {clf.workdir}', flush=True)


if __name__ == '__main__':
  _FLAGS = define_flags()
  sys.exit(app.run(lambda argv: main(argv, _FLAGS)))
