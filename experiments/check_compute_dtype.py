r"""bfloat16 against float32 training: one step of every family, compared.

  python -m experiments.check_compute_dtype
  python -m experiments.check_compute_dtype --families=vae,ddpm --arg=digits

Run from the project root. For each family of `jaxgen.models.FAMILIES`
(or ``--families``), builds its ``get_config(--arg)`` preset twice, with
``config.train.compute_dtype`` 'float32' and 'bfloat16', and runs one
train step of each (`jaxgen.train.make_step`, jitted) from the same
initial state on the same first training batch. Prints a table: the
step's loss in both (computed on the initial parameters, so the two differ
by the bfloat16 rounding alone), their relative difference, the largest
relative difference of the gradient norms (a two-player step has one per
player), whether every metric and updated parameter is finite,
whether parameters and optimizer state stayed float32, and the share of
the bfloat16 step's matmuls and convolutions (forward and backward) that
run in bfloat16. A family that computes in float32 only (its
``FLOAT32_ONLY`` says why: EM, K-means, the Boltzmann machines), or whose
step never applies its Net in the compute dtype, is refused by the trainer
(`jaxgen.train.Experiment`); its row gives the reason.
"""

from __future__ import annotations

import copy
import importlib
import math
import re
from typing import Any

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp

from experiments import entry
from jaxgen import models
from jaxgen import parallel
from jaxgen import train
from jaxgen.errors import ConfigError

# Primitives counted as matmuls (`bf16_matmul_share`).
_MATMULS = ('dot_general', 'conv_general_dilated')


def bf16_matmul_share(jaxpr: Any) -> tuple[int, int]:
  """(bfloat16, all) counts of matmul and convolution equations in the
  printed `jaxpr` (nested jaxprs included), by their output's dtype."""
  lines = [line for line in str(jaxpr).splitlines()
           if re.search(r'\b(' + '|'.join(_MATMULS) + r')\[', line)]
  return sum(':bf16[' in line for line in lines), len(lines)


def _relative(a: float, b: float) -> float:
  return abs(a - b) / max(abs(a), 1e-12)


def _all_float32(tree: Any) -> bool:
  return all(x.dtype == jnp.float32 for x in jax.tree.leaves(tree)
             if jnp.issubdtype(x.dtype, jnp.floating))


def compare(family: str, arg: str = 'smoke',
            overrides: dict[str, Any] | None = None) -> dict[str, Any]:
  """One step of `family`'s ``get_config(arg)`` in float32 and bfloat16.

  `overrides` sets config fields first, by dotted path (e.g.
  ``{'model.d_steps': 1}``).

  Returns:
    {'family', 'error': the trainer's ConfigError for bfloat16 (then no
    other field) or None, 'loss': (float32, bfloat16), 'loss_rel',
    'grad_norm': ({name: float32}, {name: bfloat16}) of the step's
    gradient norms ('grad_norm', a two-player step's 'd_grad_norm' and
    'g_grad_norm'), 'grad_norm_rel': the largest relative difference among
    them, 'finite': every
    metric and updated parameter of both steps, 'float32_state':
    parameters and optimizer state of the bfloat16 step are float32,
    'bf16_matmuls': (bfloat16, all) matmul counts of its step}.
  """
  module = importlib.import_module(f'experiments.configs.{family}')
  configs = {'float32': module.get_config(arg)}
  for path, value in (overrides or {}).items():
    *parents, name = path.split('.')
    node = configs['float32']
    for parent in parents:
      node = node[parent]
    node[name] = value
  configs['bfloat16'] = copy.deepcopy(configs['float32'])
  configs['bfloat16'].train.compute_dtype = 'bfloat16'
  out: dict[str, Any] = {'family': family, 'error': None}
  exps = {}
  for dtype, config in configs.items():
    try:
      exps[dtype] = train.Experiment(config, workdir='unused')
    except ConfigError as e:
      if dtype == 'float32':
        raise
      out['error'] = str(e)
      return out
  exp = exps['float32']
  state = exp.init_state()
  batch = parallel.global_batch(next(exp.train_iterator()), exp.mesh)
  losses, norms, finite, steps = {}, {}, True, {}
  for dtype, e in exps.items():
    steps[dtype] = train.make_step(e.family, e.net, e.tx, e.preprocess,
                                   e.config)
    new, metrics = jax.jit(steps[dtype])(state, batch, e.train_key)
    metrics = jax.device_get(metrics)
    losses[dtype] = float(metrics['loss'])
    norms[dtype] = {k: float(v) for k, v in metrics.items()
                    if k.endswith('grad_norm')}
    finite &= all(math.isfinite(float(v)) for v in metrics.values())
    finite &= not any(bool(v) for v in
                      train.non_finite_leaves(new.params).values())
    if dtype == 'bfloat16':
      out['float32_state'] = (_all_float32(new.params) and
                              _all_float32(new.opt_state))
  out['bf16_matmuls'] = bf16_matmul_share(jax.make_jaxpr(
      steps['bfloat16'])(state, batch, exp.train_key))
  out['loss'] = (losses['float32'], losses['bfloat16'])
  out['loss_rel'] = _relative(*out['loss'])
  out['grad_norm'] = (norms['float32'], norms['bfloat16'])
  out['grad_norm_rel'] = max(_relative(norms['float32'][k],
                                       norms['bfloat16'][k])
                             for k in norms['float32'])
  out['finite'] = finite
  return out


def row(r: dict[str, Any]) -> str:
  """One line of the table for a `compare` result."""
  if r['error'] is not None:
    return f'{r["family"]:<20} bfloat16 refused: {r["error"]}'
  bf16, total = r['bf16_matmuls']
  return (f'{r["family"]:<20} {r["loss"][0]:>12.6g} {r["loss"][1]:>12.6g} '
          f'{r["loss_rel"]:>9.2e} {r["grad_norm_rel"]:>9.2e} '
          f'{str(r["finite"]):>6} {str(r["float32_state"]):>7} '
          f'{bf16:>4}/{total:<4}')


HEADER = (f'{"family":<20} {"f32 loss":>12} {"bf16 loss":>12} '
          f'{"loss rel":>9} {"|g| rel":>9} {"finite":>6} {"f32 st":>7} '
          'bf16 matmuls')


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      families=flags.DEFINE_list('families', sorted(models.FAMILIES),
                                 'Families to compare (default: all).'),
      arg=flags.DEFINE_string('arg', 'smoke', "Each family's get_config "
                              'argument.'))


def main(argv, flag_values: dict[str, Any]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in flag_values.items()}
  unknown = sorted(set(f['families']) - set(models.FAMILIES))
  if unknown:
    raise app.UsageError(f'--families: unknown {unknown}; known: '
                         f'{sorted(models.FAMILIES)}.')
  print(HEADER, flush=True)
  for family in f['families']:
    print(row(compare(family, f['arg'])), flush=True)


if __name__ == '__main__':
  _FLAGS = define_flags()
  entry.run(lambda argv: main(argv, _FLAGS))
