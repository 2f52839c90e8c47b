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

import json
import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections
from ml_collections import config_flags
import numpy as np

from experiments.configs import kmeans as kmeans_config
from jaxgen import data as data_lib
from jaxgen import images as images_lib
from jaxgen import train

DEFAULT_CONFIG = 'experiments/configs/kmeans.py:mnist8k,k64'
DEFAULT_ARG = 'mnist8k,k64'


def cluster_sizes(exp: train.Experiment, params, split: str = 'train',
                  batch_size: int = 1000) -> np.ndarray:
  """Training images per code: hard counts (K-means) or summed posteriors.

  Uses the family's ``encode(params, batch, *, net) -> [B, K]`` (one-hot
  for K-means, responsibilities for the GMM) on the preprocessed split.
  """
  encode = jax.jit(lambda p, b: exp.family.encode(p, b, net=exp.net))
  source = exp.dataset.splits[split]
  total = None
  for i, batch in enumerate(data_lib.eval_batches(source,
                                                  batch_size=batch_size)):
    key = jax.random.fold_in(exp.eval_key, i)
    pre = exp.preprocess(jax.tree.map(np.asarray, batch), key)
    codes = np.asarray(encode(params, pre), np.float64)
    codes = codes * np.asarray(batch['mask'], np.float64)[:, None]
    total = codes.sum(0) if total is None else total + codes.sum(0)
  return total


def write_codebook(config: ml_collections.ConfigDict, workdir: str, *,
                   order: str = 'size', columns: int = 8,
                   scale: int = 0) -> tuple[str, np.ndarray]:
  """Trains (or resumes) to num_steps, then writes the codebook PNG.

  Returns:
    (path of ``<workdir>/images/codebook.png``, sizes [K] in grid order).
  """
  exp = train.Experiment(config, workdir)
  state = exp.train()
  params = jax.device_get(exp.eval_params(state))
  images = np.asarray(exp.family.codebook(params, net=exp.net))
  sizes = cluster_sizes(exp, params)
  if order == 'size':
    perm = np.argsort(-sizes, kind='stable')
    images, sizes = images[perm], sizes[perm]
  height = exp.dataset.image_shape[0]
  grid = images_lib.image_grid(images, columns)
  path = images_lib.save_png(os.path.join(workdir, 'images', 'codebook.png'),
                             grid, scale or max(1, 64 // height))
  return path, sizes


def _load_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, 'config.json')
  if os.path.exists(path):
    with open(path) as f:
      return ml_collections.ConfigDict(json.load(f)).lock()
  return kmeans_config.get_config(DEFAULT_ARG)


def _define_flags():
  """The command line's flags, defined only when run as a script: the
  functions above are imported (by tests) beside other experiment modules
  that own the same flag names."""
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


def main(argv, flag_values):
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
  _FLAGS = _define_flags()
  sys.exit(app.run(lambda argv: main(argv, _FLAGS)))
