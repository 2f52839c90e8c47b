r"""Figures of Markov chains: block Gibbs (RBM, DBM) and GSN chains.

  python -m experiments.chains --workdir=runs/results/gsn_digits \
      --out=results/chains/gsn_digits.png
  python -m experiments.chains --workdir=runs/results/rbm_digits \
      --out=results/chains/rbm_digits.png --num_steps=200 --every=20

Restores the newest checkpoint of a trained run on images of a family that
draws chains (``chain_figure`` in its module: rbm, dbm, gsn), builds its
`jaxgen.train.Experiment` from its config.json and writes one PNG:
``--num_chains`` rows of chains started from noise, then as many started
from the first test images (preprocessed as the evaluation sees them:
binarized with the evaluation key), one chain per row. The first column is
the start; column j > 0 shows the chain after j * ``--every`` steps, up to
``--num_steps``: what a state shows, how chains start and which key each
step draws from ``key(--seed)`` are in the family's ``chain_figure``
(`jaxgen.models.rbm.chain_figure`: block-Gibbs sweeps;
`jaxgen.models.dbm.chain_figure`: sweeps of (v, h1, h2);
`jaxgen.models.gsn.chain_figure`: corruptions and reconstructions). The
same flags give the same figure.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np

from experiments import entry
from jaxgen import images
from jaxgen import models
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.errors import DataError


def chain_families() -> tuple[str, ...]:
  """The registered families that draw chains (``chain_figure``)."""
  return tuple(name for name in models.FAMILIES
               if hasattr(models.get_family(name), 'chain_figure'))


def chains(exp: train.Experiment, state, *, num_chains: int, num_steps: int,
           every: int, seed: int) -> np.ndarray:
  """uint8 [2 num_chains, num_steps // every + 1, H, W, C]: the chains from
  noise, then from the first test images (the family's ``chain_figure``)."""
  family = exp.config.family
  chain_figure = getattr(exp.family, 'chain_figure', None)
  if chain_figure is None:
    raise ConfigError(f'--workdir holds a {family!r} run; chains are drawn '
                      f'for {chain_families()} only.')
  net = exp.net
  shape = tuple(net.image_shape)
  if len(shape) != 3:
    raise ConfigError(f'--workdir holds a run on points (image_shape='
                      f'{shape}); chains are drawn for images only.')
  variables = exp.eval_params(state)
  batch = exp.batch('test', num_chains)
  if batch['image'].shape[0] < num_chains:
    raise DataError(f'--num_chains={num_chains}: the test split has only '
                    f'{batch["image"].shape[0]} images.')
  parts = chain_figure(variables, batch, jax.random.key(seed), net=net,
                       num_steps=num_steps, every=every)
  return np.concatenate([
      np.stack([np.asarray(r).reshape((num_chains,) + shape) for r in rows],
               1) for rows in parts])


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      workdir=flags.DEFINE_string('workdir', None, 'A trained run on images '
                                  'of a family that draws chains (rbm, dbm, '
                                  'gsn).', required=True),
      out=flags.DEFINE_string('out', None, 'The PNG to write.',
                              required=True),
      num_chains=flags.DEFINE_integer('num_chains', 8, 'Chains from noise, '
                                      'and as many from test images.'),
      num_steps=flags.DEFINE_integer('num_steps', 60, 'Steps (Gibbs '
                                     'sweeps) of each chain.'),
      every=flags.DEFINE_integer('every', 5, 'Keep the state after every '
                                 'this many steps (divides --num_steps).'),
      scale=flags.DEFINE_integer('scale', 2, 'Nearest-neighbour '
                                 'enlargement of the PNG.'),
      seed=flags.DEFINE_integer('seed', 0, 'Seed of the noise and the '
                                'chains.'),
      step=flags.DEFINE_integer('step', None, 'Checkpoint step (default: '
                                'the newest).'))


def main(argv, flag_values: dict[str, Any]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in flag_values.items()}
  for name in ('num_chains', 'num_steps', 'every', 'scale'):
    if f[name] < 1:
      raise app.UsageError(f'--{name}={f[name]} must be >= 1.')
  if f['num_steps'] % f['every']:
    raise app.UsageError(f'--num_steps={f["num_steps"]} must be a multiple '
                         f'of --every={f["every"]}.')
  try:
    exp = train.Experiment.from_workdir(f['workdir'])
    state, _ = exp.restore(f['step'])
    grid = chains(exp, state, num_chains=f['num_chains'],
                  num_steps=f['num_steps'], every=f['every'], seed=f['seed'])
  except (ConfigError, DataError, FileNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr, flush=True)
    sys.exit(2)
  cols = grid.shape[1]
  tiles = grid.reshape((-1,) + grid.shape[2:])
  os.makedirs(os.path.dirname(os.path.abspath(f['out'])), exist_ok=True)
  path = images.save_png(f['out'], images.image_grid(tiles, cols,
                                                     pad_value=0),
                         scale=f['scale'])
  print(f'wrote {path}: {f["num_chains"]} chains from noise, then '
        f'{f["num_chains"]} from test images; columns: steps 0, '
        f'{f["every"]}, ..., {f["num_steps"]} (step {int(state.step)}, '
        f'seed {f["seed"]})', flush=True)


if __name__ == '__main__':
  _FLAGS = define_flags()
  entry.run(lambda argv: main(argv, _FLAGS))
