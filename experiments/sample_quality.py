r"""Sample-quality scores of a trained run, against the real test images.

  python -m experiments.sample_quality --workdir=runs/vae_digits \
      --classifier=runs/classifier_digits [--num_samples=N] [--view=raw]

Builds the run (`jaxgen.train.Experiment` from its config.json), restores
its newest (or --step) checkpoint, draws samples and scores them with the
in-project classifier (`jaxgen.quality.evaluate_workdir`): FID-style
Fréchet distance of its penultimate features, Inception-Score-style score,
label-distribution KL and classes covered, plus the same scores for real
training images (the data reference row).
Writes ``<workdir>/eval/quality_step<step>[_raw].json``. Toy 2-D runs get
modes covered and the high-quality share instead (no classifier needed).

These scores are NOT comparable to Inception-based FID or IS. Run from the
project root (data paths in configs are relative to it).
"""

from __future__ import annotations

import sys
from typing import Any

from absl import app
from absl import flags
from absl import logging

from experiments import entry
from jaxgen import quality
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.errors import DataError

_SHOWN = ('fid_style', 'is_style', 'label_kl_uniform', 'label_kl_reference',
          'classes_covered', 'energy_distance', 'modes_covered',
          'high_quality_share')


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      workdir=flags.DEFINE_string('workdir', None, 'A trained run.',
                                  required=True),
      classifier=flags.DEFINE_string(
          'classifier', None, 'Workdir of experiments.train_classifier on '
          'the same dataset (not needed for toy 2-D runs).'),
      num_samples=flags.DEFINE_integer(
          'num_samples', None, 'Samples to score (default: the size of the '
          'reference split; compare rows with equal counts).'),
      view=flags.DEFINE_enum(
          'view', 'model', list(quality.VIEWS), "Reference images: 'model' "
          '= the data as the model sees it (binarized when it trains on '
          "binarized data), 'raw' = the 8-bit images."),
      split=flags.DEFINE_string('split', None, 'Reference split (default: '
                                'config.eval.split).'),
      seed=flags.DEFINE_integer('seed', 0, 'Seed of the reference '
                                'binarization and the data subsets.'),
      step=flags.DEFINE_integer('step', None, 'Checkpoint step (default: '
                                'the newest).'))


def main(argv, flag_values: dict[str, Any]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in flag_values.items()}
  try:
    exp = train.Experiment.from_workdir(f['workdir'])
    state, _ = exp.restore(f['step'])
    results = quality.evaluate_workdir(
        exp, state, f['classifier'], num_samples=f['num_samples'],
        view=f['view'], split=f['split'], seed=f['seed'])
  except (ConfigError, DataError, FileNotFoundError) as e:
    # Bad input or nothing to restore: one line naming it, no traceback.
    print(f'error: {e}', file=sys.stderr, flush=True)
    sys.exit(2)
  rows = (('samples', ''), ('data: train vs reference', 'data/train_vs_test/'),
          ('data: reference split', 'data/reference/'),
          ('data: reference half vs half', 'data/half_vs_half/'))
  for label, prefix in rows:
    shown = [f'{k}={results[prefix + k]:.4g}' for k in _SHOWN
             if results.get(prefix + k) is not None]
    if shown:
      print(f'{label}: ' + ', '.join(shown), flush=True)
  print(f'wrote {results["path"]}', flush=True)
  if 'note' in results:
    print(results['note'], flush=True)


if __name__ == '__main__':
  _FLAGS = define_flags()
  entry.run(lambda argv: main(argv, _FLAGS))
