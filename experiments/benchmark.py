r"""Benchmarks one config's train step: size, compile time, throughput, FLOPs.

  python -m experiments.benchmark --config=experiments/configs/vae.py:mnist8k
  python -m experiments.benchmark --config=experiments/configs/vae.py:mnist8k,conv \
      --steps=100 --json=/tmp/bench.json

Run from the project root (configs name data paths relative to it). Any
config field can be overridden as in `experiments.main`
(``--config.train.batch_size=256``). Measured in one process:

- parameters of the model (the reference MLP VAE 784-512-512, 32-d latent,
  Bernoulli decoder has 1,379,152);
- compile time: the first call of the jitted, sharded `Experiment.train_step`
  (trace + lower + compile + one step), then, with JAX's caches cleared, an
  ahead-of-time ``lower(...)`` and ``compile()`` of the same step;
- device throughput: ``--steps`` steps after ``--warmup`` on batches built
  on the device beforehand (`parallel.global_batch`), no host
  synchronisation inside the timed loop (one ``block_until_ready`` at the
  end); the jitted step's cache size and a count of XLA compilations show
  that nothing recompiled after warm-up;
- data pipeline alone (the real grain iterator + `global_batch`) and the
  end-to-end loop (pipeline feeding the step, as in `Experiment.train`
  without logging or checkpoints), so the gap between them is visible;
- FLOPs per step from XLA's cost analysis of the compiled step and the
  achieved GFLOP/s; the float32 GFLOP/s of an N x N @ N x N jitted matmul
  (best of several) on the same machine, and the ratio of the two;
- the machine: device kind and count, JAX version, CPU model and cores, and
  the load average before and after (other work on the machine skews every
  number here).

Timings are wall-clock; on a shared machine take the best of a few runs.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections
from ml_collections import config_flags
import numpy as np

from experiments import entry
from experiments import machine
from jaxgen import parallel
from jaxgen import train
from jaxgen import workdir as workdir_lib

DEFAULT_CONFIG = 'experiments/configs/vae.py:mnist8k'

def count_params(config: ml_collections.ConfigDict) -> int:
  """Number of model parameters for `config`, without data or computation.

  Shapes only (`jax.eval_shape` of the family's init on one example of
  ``config.model.image_shape``), so it needs neither the dataset nor a
  device computation.
  """
  family, net, _, batch = train.model_pieces(config)

  def init(key):
    return family.init(key, batch, net=net)

  shapes = jax.eval_shape(init, jax.random.key(0))
  return train.count_params(shapes)


def run(config: ml_collections.ConfigDict, *, steps: int = 200,
        warmup: int = 5, num_batches: int = 32, matmul_size: int = 2048,
        matmul_repeats: int = 5, repeats: int = 3) -> dict[str, Any]:
  """Measures everything the module docstring lists; returns the numbers."""
  if steps < 1 or warmup < 0 or num_batches < 1 or repeats < 1:
    raise ValueError(f'need steps >= 1, warmup >= 0, num_batches >= 1, '
                     f'repeats >= 1; got {steps}, {warmup}, {num_batches}, '
                     f'{repeats}.')
  load_before = os.getloadavg()
  out: dict[str, Any] = {'machine': machine.machine_info()}
  with tempfile.TemporaryDirectory() as workdir:  # never written: no train()
    exp = train.Experiment(config, workdir)
  mesh, key = exp.mesh, exp.train_key
  batch_size = config.train.batch_size
  step_fn = exp.train_step
  out['model'] = {
      'family': config.family,
      'architecture': config.model.get('architecture'),
      'image_shape': list(config.model.image_shape),
      'params': count_params(config),
      'batch_size': batch_size,
      'train_rows': len(exp.dataset.splits['train']),
  }

  # Device batches, built and on the device before anything is timed.
  host_iter = exp.train_iterator()
  batches = [parallel.global_batch(next(host_iter), mesh)
             for _ in range(min(num_batches, steps + warmup + 1))]
  jax.block_until_ready(batches)
  state = exp.init_state()
  jax.block_until_ready(state)

  # Compile: first call (trace + lower + compile + run) ...
  compiles_before = machine.compilations()
  start = time.perf_counter()
  state, metrics = step_fn(state, batches[0], key)
  jax.block_until_ready((state, metrics))
  first_call = time.perf_counter() - start
  first_call_compiles = machine.compilations() - compiles_before
  # ... then ahead-of-time, from cold caches.
  jax.clear_caches()
  start = time.perf_counter()
  lowered = step_fn.lower(state, batches[0], key)
  lower_s = time.perf_counter() - start
  start = time.perf_counter()
  compiled = lowered.compile()
  compile_s = time.perf_counter() - start
  flops = machine.xla_flops(compiled)
  out['compile'] = {'first_call_s': first_call, 'lower_s': lower_s,
                    'compile_s': compile_s,
                    'first_call_compilations': first_call_compiles,
                    'persistent_cache_dir': jax.config.jax_compilation_cache_dir}

  # Warm-up, then `repeats` rounds of (device-only, pipeline, end-to-end)
  # loops, interleaved so that load from other work hits all three alike;
  # the best round of each is reported.
  for i in range(warmup):
    state, metrics = step_fn(state, batches[(i + 1) % len(batches)], key)
  jax.block_until_ready((state, metrics))
  cache_after_warmup = step_fn._cache_size()  # pylint: disable=protected-access
  it = exp.train_iterator()
  for _ in range(warmup):  # starts grain's reader threads and prefetch
    jax.block_until_ready(parallel.global_batch(next(it), mesh))
  compiles_before = machine.compilations()
  device_s, pipe_s, e2e_s = [], [], []
  for _ in range(repeats):
    # Device only: pre-built device batches, no host sync inside the loop.
    start = time.perf_counter()
    for i in range(steps):
      state, metrics = step_fn(state, batches[i % len(batches)], key)
    jax.block_until_ready((state, metrics))
    device_s.append(time.perf_counter() - start)
    # Data pipeline alone: the grain iterator and the host-to-device copy.
    start = time.perf_counter()
    for _ in range(steps):
      batch = parallel.global_batch(next(it), mesh)
    jax.block_until_ready(batch)
    pipe_s.append(time.perf_counter() - start)
    # End to end: the pipeline feeding the step, as the trainer's loop does.
    start = time.perf_counter()
    for _ in range(steps):
      state, metrics = step_fn(state, parallel.global_batch(next(it), mesh),
                               key)
    jax.block_until_ready((state, metrics))
    e2e_s.append(time.perf_counter() - start)
  compiles = machine.compilations() - compiles_before
  cache_after = step_fn._cache_size()  # pylint: disable=protected-access
  loss = float(metrics['loss'])
  del batches

  def rates(seconds):
    best = min(seconds)
    return {'steps': steps, 'repeats': repeats, 'seconds': seconds,
            'best_s': best, 'step_ms': 1e3 * best / steps,
            'images_per_s': steps * batch_size / best,
            'median_images_per_s': steps * batch_size / float(
                np.median(seconds))}

  out['train_step'] = {
      **rates(device_s), 'warmup': warmup,
      'cache_size_after_warmup': cache_after_warmup,
      'cache_size_after': cache_after,
      'compilations_during_timing': compiles,
      'recompiled': not (cache_after_warmup == cache_after == 1
                         and compiles == 0),
      'final_loss': loss,
  }
  out['pipeline'] = rates(pipe_s)
  out['end_to_end'] = {**rates(e2e_s),
                       'slowdown_vs_device': min(e2e_s) / min(device_s)}
  device_best = min(device_s)

  out['matmul'] = machine.matmul_gflops(matmul_size, matmul_repeats)
  achieved = None if flops is None else flops * steps / device_best / 1e9
  out['flops'] = {
      'per_step': flops,
      'per_image': None if flops is None else flops / batch_size,
      'achieved_gflops': achieved,
      'matmul_gflops': out['matmul']['gflops'],
      'ratio_to_matmul': (None if achieved is None
                          else achieved / out['matmul']['gflops']),
  }
  out['load_average'] = {'before': list(load_before),
                         'after': list(os.getloadavg())}
  return out


def _fmt(value: float | None, spec: str) -> str:
  return 'n/a' if value is None else format(value, spec)


def _gflop(value: float | None, unit: float = 1e9, spec: str = '.3f') -> str:
  return _fmt(None if value is None else value / unit, spec)


def format_table(r: dict[str, Any], config_name: str = '') -> str:
  """A compact human-readable summary of `run`'s numbers."""
  m, mo, c = r['machine'], r['model'], r['compile']
  ts, pipe, e2e, fl = r['train_step'], r['pipeline'], r['end_to_end'], r['flops']
  arch = f" {mo['architecture']}" if mo['architecture'] else ''
  rows = [
      ('config', config_name or '-'),
      ('model', f"{mo['family']}{arch}, image {tuple(mo['image_shape'])}"),
      ('parameters', f"{mo['params']:,}"),
      ('batch', f"{mo['batch_size']} (global); train split "
                f"{mo['train_rows']:,} rows"),
      ('compile: first call', f"{c['first_call_s']:.2f} s (trace + lower + "
                              'compile + 1 step)'),
      ('compile: AOT', f"trace + lower {c['lower_s']:.2f} s, compile "
                       f"{c['compile_s']:.2f} s (caches cleared first)"
                       + (f"; persistent cache {c['persistent_cache_dir']}!"
                          if c['persistent_cache_dir'] else '')),
      ('train step (device)', f"{ts['images_per_s']:,.0f} images/s, "
                              f"{ts['step_ms']:.2f} ms/step (best of "
                              f"{ts['repeats']} x {ts['steps']} steps after "
                              f"{ts['warmup']} warm-up; median "
                              f"{ts['median_images_per_s']:,.0f})"),
      ('recompilation', 'none after warm-up (jit cache size '
                        f"{ts['cache_size_after_warmup']} -> "
                        f"{ts['cache_size_after']}, 0 XLA compilations in "
                        'the timed loops)' if not ts['recompiled'] else
                        'RECOMPILED after warm-up (jit cache size '
                        f"{ts['cache_size_after_warmup']} -> "
                        f"{ts['cache_size_after']}, "
                        f"{ts['compilations_during_timing']} XLA "
                        'compilations in the timed loops)'),
      ('data pipeline alone', f"{pipe['images_per_s']:,.0f} images/s "
                              '(grain iterator + global_batch; median '
                              f"{pipe['median_images_per_s']:,.0f})"),
      ('end to end', f"{e2e['images_per_s']:,.0f} images/s, "
                     f"{e2e['step_ms']:.2f} ms/step, "
                     f"{e2e['slowdown_vs_device']:.2f}x the device-only "
                     f"time (median {e2e['median_images_per_s']:,.0f})"),
      ('FLOPs / step (XLA)', f"{_gflop(fl['per_step'])} GFLOP "
                             f"({_gflop(fl['per_image'], 1e6, '.2f')} MFLOP "
                             'per image)'),
      ('achieved', f"{_fmt(fl['achieved_gflops'], '.1f')} GFLOP/s"),
      ('f32 matmul', f"{fl['matmul_gflops']:.1f} GFLOP/s "
                     f"({r['matmul']['n']}^3, best of several)"),
      ('ratio achieved/matmul', _fmt(fl['ratio_to_matmul'], '.3f')),
      ('device', f"{m['device_count']} x {m['device_kind']} "
                 f"({m['platform']}), {m['process_count']} process(es)"),
      ('jax', f"{m['jax_version']} (jaxlib {m['jaxlib_version']}), Python "
              f"{m['python']}"),
      ('CPU', f"{m['cpu_model']}; {m['cpu_count']} cores "
              f"({m['cpu_usable']} usable)"),
      ('load average', f"{r['load_average']['before'][0]:.2f} before, "
                       f"{r['load_average']['after'][0]:.2f} after (1 min)"),
  ]
  width = max(len(k) for k, _ in rows)
  return '\n'.join(f'{k:<{width}}  {v}' for k, v in rows)


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      config=config_flags.DEFINE_config_file(
          'config', DEFAULT_CONFIG, 'Config file and argument, e.g. '
          'experiments/configs/vae.py:mnist8k.', lock_config=True),
      steps=flags.DEFINE_integer('steps', 200, 'Timed train steps '
                                 '(device-only and end-to-end each).'),
      warmup=flags.DEFINE_integer('warmup', 5, 'Untimed steps before each '
                                  'timed loop.'),
      num_batches=flags.DEFINE_integer(
          'num_batches', 32, 'Distinct device batches built before the '
          'device-only loop (cycled through).'),
      matmul_size=flags.DEFINE_integer('matmul_size', 2048, 'N of the '
                                       'float32 N x N @ N x N reference '
                                       'matmul.'),
      matmul_repeats=flags.DEFINE_integer('matmul_repeats', 5, 'Timed '
                                          'matmuls; the best is reported.'),
      repeats=flags.DEFINE_integer(
          'repeats', 3, 'Rounds of the timed loops (device-only, pipeline, '
          'end to end, interleaved); the best round of each is reported.'),
      json=flags.DEFINE_string('json', None, 'Also write the numbers as JSON '
                               'to this path.'))


def main(argv, flag_values: dict[str, Any]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in flag_values.items()}
  # The config as given, with any --config.* overrides, for the record.
  config_name = ' '.join(a for a in sys.argv[1:] if a.startswith('--config'))
  config_name = config_name or f'--config={DEFAULT_CONFIG}'
  results = run(f['config'], steps=f['steps'], warmup=f['warmup'],
                num_batches=f['num_batches'], matmul_size=f['matmul_size'],
                matmul_repeats=f['matmul_repeats'], repeats=f['repeats'])
  results['config'] = config_name
  if f['json']:
    workdir_lib.write_json(f['json'], results)
  print(format_table(results, config_name), flush=True)
  if f['json']:
    print(f'wrote {f["json"]}', flush=True)


if __name__ == '__main__':
  _FLAGS = define_flags()
  entry.run(lambda argv: main(argv, _FLAGS))
