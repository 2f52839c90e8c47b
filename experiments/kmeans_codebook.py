r"""The codebook figure: every K-means centre (or GMM mean) as one PNG grid.

  python -m experiments.kmeans_codebook --workdir=runs/kmeans_mnist8k_k64
  python -m experiments.kmeans_codebook --workdir=runs/gmm_mnist8k \
      --config=experiments/configs/gmm.py:mnist8k,k64

Trains first when the workdir has not reached ``config.train.num_steps``
(resuming; the default config is ``kmeans.py:mnist8k,k64``, 64 centres on
mnist8k), then writes ``<workdir>/images/codebook.png``: the K centres in
an 8-column grid, sorted by how many training images they encode (largest
first; ``--order=index`` keeps the index order), and prints the sizes.
Without --config, an existing workdir's config.json is used.
"""

from __future__ import annotations

import os
from typing import Any

from absl import app
from absl import flags
from absl import logging
import ml_collections
from ml_collections import config_flags
import numpy as np

from experiments import entry
from experiments.configs import kmeans as kmeans_config
from jaxgen import evaluations
from jaxgen import train
from jaxgen import workdir as workdir_lib

DEFAULT_CONFIG = 'experiments/configs/kmeans.py:mnist8k,k64'
DEFAULT_ARG = 'mnist8k,k64'


def write_codebook(config: ml_collections.ConfigDict, workdir: str, *,
                   order: str = 'size', columns: int = 8,
                   scale: int = 0) -> tuple[str, np.ndarray]:
  """Trains (or resumes) to num_steps, then writes the codebook PNG
  (`jaxgen.evaluations.codebook_grid`).

  Returns:
    (path of ``<workdir>/images/codebook.png``, sizes [K] in grid order).
  """
  exp = train.Experiment(config, workdir)
  state = exp.train()
  return evaluations.codebook_grid(
      exp, state, out_dir=os.path.join(workdir, 'images'), order=order,
      columns=columns, scale=scale)


def _load_config(workdir: str) -> ml_collections.ConfigDict:
  if os.path.exists(workdir_lib.config_path(workdir)):
    return workdir_lib.load_config(workdir)
  return kmeans_config.get_config(DEFAULT_ARG)


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      config=config_flags.DEFINE_config_file(
          'config', None, f'Config file and argument (default: '
          f"{DEFAULT_CONFIG}, or the workdir's config.json).",
          lock_config=True),
      workdir=flags.DEFINE_string('workdir', None, 'Working directory.',
                                  required=True),
      order=flags.DEFINE_enum('order', 'size', ['size', 'index'],
                              'Sort the centres by training-set usage or '
                              'keep their index order.'),
      columns=flags.DEFINE_integer('columns', 8, 'Grid columns.'),
      scale=flags.DEFINE_integer('scale', 0, 'Pixel enlargement (0: to '
                                 '~64 px per image).'))


def main(argv, flag_values: dict[str, Any]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in flag_values.items()}
  config = f['config'] or _load_config(f['workdir'])
  path, sizes = write_codebook(config, f['workdir'], order=f['order'],
                               columns=f['columns'], scale=f['scale'])
  print(f'{len(sizes)} codes; training images per code (grid order): '
        + ' '.join(f'{s:.0f}' for s in sizes), flush=True)
  print(f'wrote {path}', flush=True)


if __name__ == '__main__':
  _FLAGS = define_flags()
  entry.run(lambda argv: main(argv, _FLAGS))
