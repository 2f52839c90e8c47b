r"""Figures of Markov chains: block Gibbs (RBM, DBM) and GSN chains.

  python -m experiments.chains --workdir=runs/results/gsn_digits \
      --out=results/chains/gsn_digits.png
  python -m experiments.chains --workdir=runs/results/rbm_digits \
      --out=results/chains/rbm_digits.png --num_steps=200 --every=20

Restores the newest checkpoint of a trained rbm, dbm or gsn run on images
(`jaxgen.train.Experiment` from its config.json) and writes one PNG:
``--num_chains`` rows of chains started from noise, then as many started
from the first test images (preprocessed as the evaluation sees them:
binarized with the evaluation key), one chain per row. The first column is
the start; column j > 0 shows the chain after j * ``--every`` steps, up to
``--num_steps``:

- rbm: block-Gibbs sweeps (`jaxgen.models.rbm.gibbs_chain`), shown as the
  mean of p(v | h) of the last sweep (Gaussian visibles: mapped back to
  pixels); noise starts are Bernoulli(1/2) pixels, or N(0, I) in the
  standardised space of Gaussian visibles;
- dbm: block-Gibbs sweeps of (v, h1, h2) (`jaxgen.models.dbm.gibbs_chain`),
  shown as p(v = 1 | h1); noise starts draw v, h1 and h2 from
  Bernoulli(1/2), data starts draw h2 from the mean-field posterior of the
  image (h1 is drawn by the first sweep);
- gsn: the chain of corruptions and reconstructions (`gsn.chain`, or
  `gsn.latent_chain` from h = 0 with a latent state), shown as the mean of
  the reconstruction distribution each kept state was drawn from; noise
  starts as `gsn.start`.

Keys: the noise from ``fold_in(key(--seed), 0)``, the data chains' h2
from ``fold_in(key, 1)``. RBM and DBM: the sweeps of block j (steps
j * every + 1 .. (j + 1) * every) of the noise chains from
``fold_in(key, 2 + 2 j)``, of the data chains from ``fold_in(key, 3 +
2 j)``; GSN: the noise chains from ``fold_in(key, 2)``, the data chains
from ``fold_in(key, 3)`` (step t from ``fold_in`` of that key and t). The
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
import jax.numpy as jnp
import numpy as np

from experiments import entry
from jaxgen import images
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.errors import DataError
from jaxgen.models import dbm
from jaxgen.models import gsn
from jaxgen.models import rbm

FAMILIES = ('rbm', 'dbm', 'gsn')


def _rbm_pixels(variables, mean: jax.Array, net) -> jax.Array:
  """E[v | h] [N, D] as uint8 pixels [N, D]."""
  if net.visible == 'bernoulli':
    return jnp.round(jnp.clip(mean, 0.0, 1.0) * 255).astype(jnp.uint8)
  s = variables[rbm.STATE]
  y = mean * s['std'] + s['mean']
  return jnp.floor(jnp.clip(y, 0.0, 1.0 - 1e-6) * 256).astype(jnp.uint8)


def _rbm_trace(variables, net, v, keys, every: int) -> list[jax.Array]:
  p = variables['params']
  kept = [_rbm_pixels(variables, v, net)]
  for key in keys:
    v, mean = rbm.gibbs_chain(p, v, key, every, net.visible)
    kept.append(_rbm_pixels(variables, mean, net))
  return kept


def _dbm_trace(variables, state, keys, every: int) -> list[jax.Array]:
  p = variables['params']
  kept = [state[0]]
  for key in keys:
    state, pv = dbm.gibbs_chain(p, state, key, every)
    kept.append(pv)
  return [jnp.round(x * 255).astype(jnp.uint8) for x in kept]


def _gsn_trace(params, net, x, key, num_steps: int,
               every: int) -> list[jax.Array]:
  """One chain of `num_steps` steps from `key` (step t from
  ``fold_in(key, t)``, as `gsn.chain` and `gsn.latent_chain` draw)."""
  if not net.latent_dim:
    kept = list(gsn.chain(params, key, x, net=net, num_steps=num_steps,
                          every=every, mean=True))
  else:
    kept, h = [x], jnp.zeros((x.shape[0], net.latent_dim))
    for j in range(num_steps // every):
      x, h, mean = gsn.latent_chain(params, key, x, h, net=net,
                                    num_steps=every,
                                    first_step=1 + j * every)
      kept.append(mean)
  return [gsn.to_uint8(k, net=net) for k in kept]


def chains(exp: train.Experiment, state, *, num_chains: int, num_steps: int,
           every: int, seed: int) -> np.ndarray:
  """uint8 [2 num_chains, num_steps // every + 1, H, W, C]: the chains from
  noise, then from the first test images (see the module docstring)."""
  family = exp.config.family
  if family not in FAMILIES:
    raise ConfigError(f'--workdir holds a {family!r} run; chains are drawn '
                      f'for {FAMILIES} only.')
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
  root = jax.random.key(seed)
  noise_key = jax.random.fold_in(root, 0)
  blocks = num_steps // every
  noise_keys = [jax.random.fold_in(root, 2 + 2 * j) for j in range(blocks)]
  data_keys = [jax.random.fold_in(root, 3 + 2 * j) for j in range(blocks)]
  flat = batch['image'].reshape(num_chains, -1).astype(jnp.float32)
  if family == 'rbm':
    if net.visible == 'bernoulli':
      v0 = jax.random.bernoulli(noise_key, 0.5, flat.shape).astype(
          jnp.float32)
    else:
      v0 = jax.random.normal(noise_key, flat.shape)
    data = rbm.visible_units(variables, batch, net)
    rows = (_rbm_trace(variables, net, v0, noise_keys, every)
            + _rbm_trace(variables, net, data, data_keys, every))
  elif family == 'dbm':
    h1_dim, h2_dim = net.hidden_dims
    kv, k1, k2 = jax.random.split(noise_key, 3)
    noise = tuple(jax.random.bernoulli(k, 0.5, (num_chains, n)).astype(
        jnp.float32) for k, n in ((kv, flat.shape[1]), (k1, h1_dim),
                                  (k2, h2_dim)))
    _, mu2 = dbm.mean_field(variables['params'], flat, net.mean_field_steps)
    h2 = jax.random.bernoulli(jax.random.fold_in(root, 1), mu2).astype(
        jnp.float32)
    data = (flat, jnp.zeros((num_chains, h1_dim)), h2)
    rows = (_dbm_trace(variables, noise, noise_keys, every)
            + _dbm_trace(variables, data, data_keys, every))
  else:
    x0 = gsn.start(noise_key, num_chains, net=net)
    data = batch['image'].astype(jnp.float32)
    rows = (_gsn_trace(variables, net, x0, jax.random.fold_in(root, 2),
                       num_steps, every)
            + _gsn_trace(variables, net, data, jax.random.fold_in(root, 3),
                         num_steps, every))
  half = len(rows) // 2
  noise_part = np.stack([np.asarray(r).reshape((num_chains,) + shape)
                         for r in rows[:half]], 1)
  data_part = np.stack([np.asarray(r).reshape((num_chains,) + shape)
                        for r in rows[half:]], 1)
  return np.concatenate([noise_part, data_part])


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      workdir=flags.DEFINE_string('workdir', None, 'A trained rbm, dbm or '
                                  'gsn run on images.', required=True),
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
