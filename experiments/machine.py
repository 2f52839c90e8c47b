"""What benchmark and results scripts record about the machine they run on.

No flags here, so any script can import it: CPU model and core counts, JAX
devices and versions, the load average, the float32 matmul rate measured in
the same run (the yardstick for achieved FLOP/s), XLA's FLOP count of a
compiled step, and a count of XLA compilations (to prove that nothing
recompiles after warm-up).
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

# XLA compilations seen by JAX's monitoring hook, counted once per process.
_COMPILE_EVENT = '/jax/core/compile/backend_compile_duration'
_compilations = 0


def compilations() -> int:
  """XLA compilations in this process so far (JAX's monitoring hook)."""
  return _compilations


def _count_compilations(event: str, duration: float, **kwargs) -> None:
  del duration, kwargs
  global _compilations
  if event == _COMPILE_EVENT:
    _compilations += 1


jax.monitoring.register_event_duration_secs_listener(_count_compilations)


def cpu_model() -> str:
  """The CPU model name from /proc/cpuinfo (or `platform`), e.g. 'Intel(R) ...'."""
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine() or 'unknown'


def machine_info() -> dict[str, Any]:
  """Device kind/count, JAX version, CPU model and counts."""
  devices = jax.devices()
  try:
    usable = len(os.sched_getaffinity(0))
  except AttributeError:
    usable = os.cpu_count()
  return {
      'platform': devices[0].platform,
      'device_kind': devices[0].device_kind,
      'device_count': jax.device_count(),
      'process_count': jax.process_count(),
      'jax_version': jax.__version__,
      'jaxlib_version': jaxlib.__version__,
      'cpu_model': cpu_model(),
      'cpu_count': os.cpu_count(),
      'cpu_usable': usable,
      'python': platform.python_version(),
      # 1-minute load average: other work on the machine stretches timings.
      'load_average': os.getloadavg()[0],
  }


def xla_flops(compiled) -> float | None:
  """FLOPs of a compiled executable from XLA's cost analysis (or None)."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):  # older JAX: one dict per module
    analysis = analysis[0] if analysis else None
  if not analysis or 'flops' not in analysis:
    return None
  return float(analysis['flops'])


def matmul_gflops(n: int, repeats: int) -> dict[str, float]:
  """Best float32 GFLOP/s of a jitted [n, n] @ [n, n] over `repeats` calls."""
  ka, kb = jax.random.split(jax.random.key(0))
  a = jax.random.normal(ka, (n, n), jnp.float32)
  b = jax.random.normal(kb, (n, n), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  matmul(a, b).block_until_ready()
  times = []
  for _ in range(max(repeats, 1)):
    start = time.perf_counter()
    matmul(a, b).block_until_ready()
    times.append(time.perf_counter() - start)
  best = min(times)
  return {'n': n, 'best_s': best, 'median_s': float(np.median(times)),
          'gflops': 2.0 * n ** 3 / best / 1e9}


def print_header(matmul_size: int, matmul_repeats: int) -> dict[str, Any]:
  """Prints the machine line and the float32 matmul rate every benchmark
  script starts with; returns {'info', 'matmul', 'load_before'}."""
  load_before = os.getloadavg()[0]
  info = machine_info()
  print(f"machine: {info['cpu_model']}, {info['cpu_usable']} usable cores, "
        f"{info['device_count']} {info['platform']} device(s), jax "
        f"{info['jax_version']}; load average before {load_before:.2f} "
        '(shared machine: other jobs skew every number)', flush=True)
  mm = matmul_gflops(matmul_size, matmul_repeats)
  print(f"float32 matmul {mm['n']}x{mm['n']}: {mm['gflops']:.1f} GFLOP/s "
        f'(best of {matmul_repeats})', flush=True)
  return {'info': info, 'matmul': mm, 'load_before': load_before}


def random_batch(image_shape, batch_size: int,
                 seed: int = 1) -> dict[str, jax.Array]:
  """A batch of uniform random uint8 images (label 0, all valid)."""
  shape = (batch_size,) + tuple(image_shape)
  return {
      'image': jax.random.randint(jax.random.key(seed), shape, 0,
                                  256).astype(jnp.uint8),
      'label': jnp.zeros((batch_size,), jnp.int32),
      'mask': jnp.ones((batch_size,), bool),
  }


def time_train_step(step, state, batch: dict[str, jax.Array], *, steps: int,
                    warmup: int) -> dict[str, Any]:
  """Compiles ``step(state, batch, key)`` ahead of time and times it.

  The state is donated; `warmup` untimed steps, then `steps` timed ones
  with one host synchronization at the end (none per step).

  Returns:
    {'compile_s', 'step_s', 'images_per_s', 'flops_per_step' (XLA's count,
    or None), 'gflops_per_s', 'recompilations' (during the timed steps),
    'metrics' (the last step's, on the host)}.
  """
  key = jax.random.key(2)
  start = time.perf_counter()
  compiled = jax.jit(step, donate_argnums=0).lower(state, batch, key).compile()
  compile_s = time.perf_counter() - start
  flops = xla_flops(compiled)
  for _ in range(warmup):
    state, metrics = compiled(state, batch, key)
  jax.block_until_ready(state)
  before = compilations()
  start = time.perf_counter()
  for _ in range(steps):
    state, metrics = compiled(state, batch, key)
  jax.block_until_ready((state, metrics))
  step_s = (time.perf_counter() - start) / steps
  return {
      'compile_s': compile_s, 'step_s': step_s,
      'images_per_s': batch['image'].shape[0] / step_s,
      'flops_per_step': flops,
      'gflops_per_s': flops / step_s / 1e9 if flops else None,
      'recompilations': compilations() - before,
      'metrics': jax.device_get(metrics),
  }
