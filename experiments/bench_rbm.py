r"""Block Gibbs sweeps of a Bernoulli RBM in JAX against plain NumPy.

  python -m experiments.bench_rbm
  python -m experiments.bench_rbm --rounds=7 --sweeps=200 --ais_betas=0

Run from the project root. Measured in one process, on one device:

- the machine (`experiments.machine.machine_info`) and the float32 GFLOP/s
  of an N x N @ N x N jitted matmul (flags ``--matmul_size`` and
  ``--matmul_repeats``), in the same run;
- block Gibbs sweeps per second (h ~ p(h | v), then v ~ p(v | h)) of a
  ``--visible_dim`` x ``--hidden_dim`` Bernoulli RBM (784 x 500 by
  default, the MNIST size of Salakhutdinov & Murray 2008) on
  ``--batch_size`` chains: the family's jitted chain
  (`jaxgen.models.rbm.gibbs_chain`, a ``lax.scan`` of
  `jaxgen.models.rbm.gibbs_sweep` over ``--sweeps`` sweeps) beside
  `gibbs_chain_numpy`, the same sweep written in float32 NumPy with the
  same shapes (one block of uniforms per sweep, u < p as the Bernoulli
  draw); each round runs both once, in turn (the starting one rotating),
  and the medians over ``--rounds`` rounds are compared (JAX / NumPy in
  sweeps per second: above 1, JAX is faster);
- AIS intermediate distributions per second
  (`jaxgen.models.rbm.ais_log_partition` with ``--ais_betas`` inverse
  temperatures and ``--ais_chains`` chains: one free-energy difference
  and one Gibbs sweep per distribution), the median of the rounds;
  ``--ais_betas=0`` skips it.

JAX's compilation happens before the timed rounds. The load average
before and after each table is printed: other work on a shared machine
skews every number, and the ratio is the result.
"""

from __future__ import annotations

import os
from typing import Any

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from experiments import bench_classics
from experiments import bench_common
from experiments import entry
from jaxgen.models import rbm


def random_rbm(key: jax.Array, visible_dim: int, hidden_dim: int,
               scale: float = 0.1) -> dict[str, jax.Array]:
  """{'w', 'b', 'c'}: normal weights of std `scale` and normal biases."""
  w_key, b_key, c_key = jax.random.split(key, 3)
  return {'w': scale * jax.random.normal(w_key, (visible_dim, hidden_dim)),
          'b': jax.random.normal(b_key, (visible_dim,)),
          'c': jax.random.normal(c_key, (hidden_dim,))}


def _sigmoid(x: np.ndarray) -> np.ndarray:
  return np.float32(1) / (np.float32(1) + np.exp(-x))


def gibbs_chain_numpy(p: dict[str, np.ndarray], v: np.ndarray,
                      rng: np.random.Generator,
                      num_sweeps: int) -> tuple[np.ndarray, np.ndarray]:
  """`rbm.gibbs_chain` (Bernoulli visibles) written in float32 NumPy.

  Args:
    p: {'w' [D, H], 'b' [D], 'c' [H]}, float32 arrays.
    v: [B, D] float32 binary starting states.
    rng: the source of the uniforms, one [B, H + D] block per sweep.
    num_sweeps: sweeps v -> h -> v'.

  Returns:
    (v after the last sweep, E[v | h] of the last sweep).
  """
  w, b, c = p['w'], p['b'], p['c']
  num, hidden_dim = v.shape[0], w.shape[1]
  mean = np.zeros_like(v)
  for _ in range(num_sweeps):
    u = rng.random((num, hidden_dim + v.shape[1]), dtype=np.float32)
    h = (u[:, :hidden_dim] < _sigmoid(v @ w + c)).astype(np.float32)
    mean = _sigmoid(h @ w.T + b)
    v = (u[:, hidden_dim:] < mean).astype(np.float32)
  return v, mean


def bench_gibbs(visible_dim: int, hidden_dim: int, batch_size: int,
                sweeps: int, rounds: int) -> None:
  """Sweeps per second of the jitted chain and the NumPy loop."""
  key = jax.random.key(0)
  p = random_rbm(key, visible_dim, hidden_dim)
  v0 = jax.random.bernoulli(jax.random.key(1), 0.5,
                            (batch_size, visible_dim)).astype(jnp.float32)
  chain = jax.jit(rbm.gibbs_chain, static_argnums=(3, 4))
  run_key = jax.random.key(2)
  jax.block_until_ready(chain(p, v0, run_key, sweeps, 'bernoulli'))  # compile
  p_np = {k: np.asarray(a, np.float32) for k, a in p.items()}
  v0_np = np.asarray(v0)
  rng = np.random.default_rng(0)
  v_jax, _ = chain(p, v0, run_key, sweeps, 'bernoulli')
  v_np, _ = gibbs_chain_numpy(p_np, v0_np, rng, sweeps)
  print(f'\nblock Gibbs, Bernoulli RBM {visible_dim} x {hidden_dim}, batch '
        f'{batch_size}, {sweeps} sweeps per call; mean v after them: JAX '
        f'{float(jnp.mean(v_jax)):.3f}, NumPy {float(np.mean(v_np)):.3f}')
  load = os.getloadavg()[0]
  t = bench_classics.interleave({
      'jax': lambda: jax.block_until_ready(
          chain(p, v0, run_key, sweeps, 'bernoulli')),
      'numpy': lambda: gibbs_chain_numpy(p_np, v0_np, rng, sweeps)}, rounds)
  print(f'{rounds} rounds (load average {load:.2f} -> '
        f'{os.getloadavg()[0]:.2f}):')
  print(f"{'':6s} {'median s':>9s} {'sweeps/s':>9s} {'best sweeps/s':>13s}")
  for name in ('jax', 'numpy'):
    print(f'{name:6s} {t[name][0]:9.3f} {sweeps / t[name][0]:9.1f} '
          f'{sweeps / t[name][1]:13.1f}')
  print(f"jax/numpy sweeps/s: {t['numpy'][0] / t['jax'][0]:.2f} (medians), "
        f"{t['numpy'][1] / t['jax'][1]:.2f} (bests)", flush=True)


def bench_ais(visible_dim: int, hidden_dim: int, num_betas: int,
              num_chains: int, rounds: int) -> None:
  """Intermediate distributions per second of the family's AIS."""
  p = random_rbm(jax.random.key(0), visible_dim, hidden_dim)
  base_b = jnp.zeros((visible_dim,))
  ais = jax.jit(lambda p, k: rbm.ais_log_partition(
      p, k, base_b=base_b, visible='bernoulli', num_betas=num_betas,
      num_chains=num_chains))
  key = jax.random.key(3)
  log_z, stderr = jax.block_until_ready(ais(p, key))  # compile
  load = os.getloadavg()[0]
  t = bench_classics.interleave(
      {'jax': lambda: jax.block_until_ready(ais(p, key))}, rounds)['jax']
  steps = num_betas - 1
  print(f'\nAIS, same RBM, {num_betas} betas ({steps} intermediate '
        f'distributions), {num_chains} chains, {rounds} rounds (load '
        f'average {load:.2f} -> {os.getloadavg()[0]:.2f}): median '
        f'{t[0]:.3f} s, {steps / t[0]:.1f} distributions/s (best '
        f'{steps / t[1]:.1f}); log Z {float(log_z):.2f} +- '
        f'{float(stderr):.2f}', flush=True)


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      rounds=flags.DEFINE_integer('rounds', 5, 'Interleaved rounds.'),
      sweeps=flags.DEFINE_integer('sweeps', 100, 'Gibbs sweeps per timed '
                                  'call.'),
      visible_dim=flags.DEFINE_integer('visible_dim', 784, 'Visible units.'),
      hidden_dim=flags.DEFINE_integer('hidden_dim', 500, 'Hidden units.'),
      batch_size=flags.DEFINE_integer('batch_size', 100, 'Chains sampled '
                                      'in parallel.'),
      ais_betas=flags.DEFINE_integer('ais_betas', 1000, 'Inverse '
                                     'temperatures of the timed AIS run '
                                     '(0: skip it).'),
      ais_chains=flags.DEFINE_integer('ais_chains', 100, 'AIS chains.'),
      **bench_common.define_matmul_flags())


def main(argv, flag_values: dict[str, Any]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in flag_values.items()}
  bench_common.header(f['matmul_size'], f['matmul_repeats'])
  bench_gibbs(f['visible_dim'], f['hidden_dim'], f['batch_size'],
              f['sweeps'], f['rounds'])
  if f['ais_betas']:
    bench_ais(f['visible_dim'], f['hidden_dim'], f['ais_betas'],
              f['ais_chains'], f['rounds'])
  print(f'\nload average after: {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
  _FLAGS = define_flags()
  entry.run(lambda argv: main(argv, _FLAGS))
