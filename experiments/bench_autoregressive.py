r"""Benchmarks the reference PixelCNN and Gated PixelCNN: training and sampling.

  python -m experiments.bench_autoregressive
  python -m experiments.bench_autoregressive --train_steps=3 \
      --sample_batch_sizes=1,16 --naive_positions=14      # a quicker run
  python -m experiments.bench_autoregressive --dataset=smoke  # the tests'

Run from the project root. Measured in one process, on one device:

- the machine (`experiments.machine.machine_info`), the load average
  before and after (other work on a shared machine skews every number), and
  the float32 GFLOP/s of an N x N @ N x N jitted matmul
  (`experiments.machine.matmul_gflops`, flags ``--matmul_size`` and
  ``--matmul_repeats``);
- train step (the shared trainer's generic step, `steps.make_train_step`,
  with Adam and dynamic binarization, on a device batch of random pixels;
  batch 32) for the reference models of the ``mnist8k`` presets: PixelCNN
  (7x7 mask A to 128 channels, 12 residual blocks, 665,089 parameters) and
  Gated PixelCNN (10 gated layers of 64 channels): images/s, FLOPs per step
  from XLA's cost analysis of the compiled step, the achieved GFLOP/s and
  its ratio to the matmul figure;
- sampling 28x28 binary images from the reference PixelCNN (random
  parameters: the work does not depend on their values) at each batch size
  of ``--sample_batch_sizes``: the cached sampler (Ramachandran et al. 2017)
  over all 784 positions, and the naive one (a full network pass per
  position). The naive sampler is timed on its first ``--naive_positions``
  positions (the others are marked observed, so the network runs exactly
  that many times; the loop over the rest costs microseconds) and scaled to
  784, except at batch sizes <= ``--naive_full_max_batch``, where it runs in
  full and its samples are checked bitwise against the cached sampler's.
  Seconds per call, seconds for 16 images (calls of the batch size needed to
  make 16), and the speed-up. Compilation is excluded (one untimed call
  first).

``--dataset`` picks the presets (``mnist8k``, the default, is the reference
above; ``smoke``, the tests' tiny 8x8 models, only checks that the script
runs end to end: its figures measure nothing of interest).
"""

from __future__ import annotations

import functools
import math
import os
import time
from typing import Any, Callable

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from experiments import bench_common
from experiments import entry
from experiments.configs import gated_pixelcnn as gated_config
from experiments.configs import pixelcnn as pixelcnn_config
from jaxgen import steps as steps_lib
from jaxgen import train
from jaxgen.models import pixelcnn

CONFIGS = {'pixelcnn': pixelcnn_config, 'gated_pixelcnn': gated_config}
SAMPLED_IMAGES = 16


def _timed(fn: Callable[[], Any], repeats: int = 1) -> float:
  """Best wall-clock seconds of `fn()` (blocked until ready)."""
  best = math.inf
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    best = min(best, time.perf_counter() - start)
  return best


def bench_train(name: str, steps: int, warmup: int,
                dataset: str = 'mnist8k') -> dict[str, Any]:
  """Images/s, FLOPs and GFLOP/s of a model's generic train step (the
  reference model with the default `dataset`)."""
  config = CONFIGS[name].get_config(dataset)
  family, net, preprocess, params = bench_common.setup(config)
  tx = steps_lib.make_optimizer(config.optimizer, config.train.num_steps)
  step = steps_lib.make_train_step(
      functools.partial(family.loss_fn, net=net, train=True), tx,
      preprocess=preprocess)
  b = config.train.batch_size
  timing = bench_common.time_step(step, tx, params, config.model.image_shape,
                                  b, steps=steps, warmup=warmup)
  metrics = timing.pop('metrics')
  return {
      'family': name, 'params': train.count_params(params), 'batch_size': b,
      **timing,
      'loss': float(metrics['loss']),
  }


def bench_sampling(batch_sizes, naive_positions: int,
                   naive_full_max_batch: int,
                   dataset: str = 'mnist8k') -> list[dict[str, Any]]:
  """Naive vs cached sampling times for the PixelCNN of `dataset`'s preset
  (the reference PixelCNN by default)."""
  net = train.make_net(pixelcnn, pixelcnn_config.get_config(dataset).model)
  shape = tuple(net.image_shape)
  positions = math.prod(shape)
  params = jax.jit(functools.partial(pixelcnn.init, net=net))(
      jax.random.key(0), {'image': jnp.zeros((1,) + shape)})
  rows = []
  for b in batch_sizes:
    cached = jax.jit(lambda p, k, b=b: pixelcnn.sample(p, k, b, net=net))
    naive = jax.jit(lambda p, k, obs, m, b=b: pixelcnn.sample(
        p, k, b, net=net, observed=obs, observed_mask=m, method='naive'))
    key = jax.random.key(3)
    jax.block_until_ready(cached(params, key))  # compile
    cached_s = _timed(lambda: cached(params, key))
    full = naive_positions <= 0 or b <= naive_full_max_batch
    timed_positions = positions if full else min(naive_positions, positions)
    # Positions >= timed_positions are 'observed': the naive loop skips the
    # network there (lax.cond), so it runs exactly timed_positions passes.
    observed = jnp.zeros((b,) + shape, jnp.uint8)
    mask = (np.arange(positions) >= timed_positions).reshape(shape)
    jax.block_until_ready(naive(params, key, observed, mask))  # compile
    start = time.perf_counter()
    naive_out = jax.block_until_ready(naive(params, key, observed, mask))
    naive_s = (time.perf_counter() - start) * positions / timed_positions
    row = {'batch_size': b, 'cached_s': cached_s, 'naive_s': naive_s,
           'naive_positions_timed': timed_positions,
           'speedup': naive_s / cached_s,
           'calls_for_16': math.ceil(SAMPLED_IMAGES / b)}
    if full:
      row['bitwise_equal'] = bool(np.array_equal(
          np.asarray(naive_out), np.asarray(cached(params, key))))
    rows.append(row)
  return rows


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      models=flags.DEFINE_list('models', ['pixelcnn', 'gated_pixelcnn'],
                               'Families whose train step is timed.'),
      dataset=flags.DEFINE_enum(
          'dataset', 'mnist8k', ['mnist8k', 'smoke'], 'The presets '
          'benchmarked: mnist8k (the reference models) or smoke (tiny 8x8 '
          'models: checks that the script runs, measures nothing).'),
      train_steps=flags.DEFINE_integer('train_steps', 10, 'Timed train steps '
                                       'per model (0 skips training).'),
      train_warmup=flags.DEFINE_integer('train_warmup', 2, 'Untimed steps '
                                        'after compilation.'),
      sample_batch_sizes=flags.DEFINE_list(
          'sample_batch_sizes', ['1', '16', '64'], 'Sampler batch sizes '
          '(empty skips sampling).'),
      naive_positions=flags.DEFINE_integer(
          'naive_positions', 28, 'Positions the naive sampler is timed on, '
          'scaled to all of them (784 at 28x28; 0: all of them).'),
      naive_full_max_batch=flags.DEFINE_integer(
          'naive_full_max_batch', 1, 'Batch sizes up to this run the naive '
          'sampler over every position (and compare samples with the cached '
          'one).'),
      **bench_common.define_matmul_flags())


def main(argv, flag_values: dict[str, Any]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in flag_values.items()}
  mm = bench_common.header(f['matmul_size'], f['matmul_repeats'])

  dataset = f['dataset']
  shape = pixelcnn_config.get_config(dataset).model.image_shape
  size = 'x'.join(str(n) for n in shape)
  positions = math.prod(shape)
  if f['train_steps'] > 0:
    print(f'\ntrain step (generic trainer step, Adam, {size} binarized, '
          f'{dataset} presets):')
    print(f"{'model':16s} {'params':>9s} {'batch':>5s} {'compile s':>9s} "
          f"{'s/step':>8s} {'images/s':>9s} {'GFLOP/step':>10s} "
          f"{'GFLOP/s':>8s} {'/matmul':>7s}")
    for name in f['models']:
      r = bench_train(name, f['train_steps'], f['train_warmup'], dataset)
      gf = r['gflops_per_s']
      print(f"{name:16s} {r['params']:9,d} {r['batch_size']:5d} "
            f"{r['compile_s']:9.1f} "
            f"{r['step_s']:8.3f} {r['images_per_s']:9.1f} "
            f"{r['flops_per_step'] / 1e9:10.1f} {gf:8.1f} "
            f"{gf / mm['gflops']:7.2f}", flush=True)

  sizes = [int(s) for s in f['sample_batch_sizes']]
  if sizes:
    print(f'\nsampling {size} binary images, {dataset} PixelCNN '
          f'({positions} positions; compile excluded):')
    print(f"{'batch':>5s} {'cached s':>9s} {'naive s':>9s} {'speed-up':>8s} "
          f"{'cached s/16 img':>15s} {'naive s/16 img':>14s}  naive timed on")
    for r in bench_sampling(sizes, f['naive_positions'],
                            f['naive_full_max_batch'], dataset):
      n = r['calls_for_16']
      note = (f"all {positions} (samples bitwise equal: "
              f"{r['bitwise_equal']})" if 'bitwise_equal' in r else
              f"{r['naive_positions_timed']} positions, x"
              f"{positions / r['naive_positions_timed']:.0f}")
      print(f"{r['batch_size']:5d} {r['cached_s']:9.3f} {r['naive_s']:9.2f} "
            f"{r['speedup']:7.0f}x {r['cached_s'] * n:15.3f} "
            f"{r['naive_s'] * n:14.2f}  {note}", flush=True)
  print(f'\nload average after: {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
  _FLAGS = define_flags()
  entry.run(lambda argv: main(argv, _FLAGS))
