r"""Benchmarks the VQ-VAE, its code prior, and two-stage sampling.

  python -m experiments.bench_vqvae
  python -m experiments.bench_vqvae --train_steps=3 --sample_methods=cached

Run from the project root. Measured in one process, on one device:

- the machine (`experiments.machine.machine_info`), the load average before
  and after (other work on a shared machine stretches every number), and the
  float32 GFLOP/s of an N x N @ N x N jitted matmul
  (`experiments.machine.matmul_gflops`);
- train step, 28x28 images, batch 64 (the ``mnist8k`` presets, dynamically
  binarized random pixels), through each family's own step
  (`make_train_step`, Adam on 'params'): the VQ-VAE (7x7 map, K=64, EMA
  codebook with restarts), the VQ-VAE-2 (4x4 over 7x7), and the code prior
  (Gated PixelCNNs of 10 layers x 64 channels over the 4x4 top and 7x7
  bottom maps, the frozen VQ-VAE-2 encoding each batch inside the step;
  a randomly initialised frozen model: the work does not depend on its
  values): images/s, XLA FLOPs per step, achieved GFLOP/s and its ratio to
  the matmul figure;
- two-stage sampling of 16 images (`code_prior.sample`: the top map, then
  the bottom map given the top, by the Gated PixelCNN's cached sampler or
  the naive one, then the VQ-VAE-2 decoder), seconds per call, compilation
  excluded (one untimed call first).
"""

from __future__ import annotations

import os
import time
from typing import Any

from absl import app
from absl import flags
from absl import logging
import jax

from experiments import bench_common
from experiments import entry
from experiments.configs import code_prior as prior_config
from experiments.configs import vqvae as vqvae_config
from experiments.configs import vqvae2 as vqvae2_config
from jaxgen import train

BATCH = 64
NUM_SAMPLES = 16


def _prior_config():
  """The mnist8k code prior on a random frozen VQ-VAE-2 (mnist8k fields)."""
  config = prior_config.get_config('mnist8k')
  config.model.vqvae_workdir = ''
  config.model.vqvae_family = 'vqvae2'
  return config


def bench_train(name: str, config, steps: int, warmup: int) -> dict[str, Any]:
  """Images/s, FLOPs and GFLOP/s of a family's own train step, batch 64."""
  config.unlock()
  config.train.batch_size = BATCH
  family, net, preprocess, variables = bench_common.setup(config)
  tx = family.make_optimizer(config)
  step = family.make_train_step(net=net, tx=tx, preprocess=preprocess,
                                config=config)
  timing = bench_common.time_step(step, tx, variables,
                                  config.model.image_shape, BATCH,
                                  steps=steps, warmup=warmup)
  del timing['metrics']
  return {
      'model': name, 'params': train.count_params(variables['params']),
      **timing,
  }


def bench_sampling(methods, repeats: int) -> list[dict[str, Any]]:
  """Seconds to draw 16 two-stage samples (prior codes, then decoding)."""
  config = _prior_config()
  family, net, _, variables = bench_common.setup(config)
  rows = []
  for method in methods:
    fn = jax.jit(lambda v, k, method=method: family.sample(
        v, k, NUM_SAMPLES, net=net, method=method))
    key = jax.random.key(3)
    start = time.perf_counter()
    images = jax.block_until_ready(fn(variables, key))
    first_s = time.perf_counter() - start
    best = float('inf')
    for _ in range(repeats):
      start = time.perf_counter()
      jax.block_until_ready(fn(variables, key))
      best = min(best, time.perf_counter() - start)
    rows.append({'method': method, 'seconds': best,
                 'first_call_s': first_s, 'shape': tuple(images.shape),
                 'dtype': str(images.dtype)})
  return rows


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      train_steps=flags.DEFINE_integer('train_steps', 10, 'Timed train steps '
                                       'per model (0 skips training).'),
      train_warmup=flags.DEFINE_integer('train_warmup', 2, 'Untimed steps '
                                        'after compilation.'),
      sample_methods=flags.DEFINE_list('sample_methods', ['cached', 'naive'],
                                       'Prior samplers to time (empty '
                                       'skips).'),
      sample_repeats=flags.DEFINE_integer('sample_repeats', 3, 'Timed '
                                          'sampling calls; the best is '
                                          'reported.'),
      **bench_common.define_matmul_flags())


def main(argv, flag_values: dict[str, Any]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in flag_values.items()}
  mm = bench_common.header(f['matmul_size'], f['matmul_repeats'])

  if f['train_steps'] > 0:
    print(f'\ntrain step (family step, Adam, batch {BATCH}, 28x28x1 '
          'binarized):')
    print(f"{'model':12s} {'params':>9s} {'compile s':>9s} {'s/step':>8s} "
          f"{'images/s':>9s} {'GFLOP/step':>10s} {'GFLOP/s':>8s} "
          f"{'/matmul':>7s}")
    for name, config in (('vqvae', vqvae_config.get_config('mnist8k')),
                         ('vqvae2', vqvae2_config.get_config('mnist8k')),
                         ('code_prior', _prior_config())):
      r = bench_train(name, config, f['train_steps'], f['train_warmup'])
      gf = r['gflops_per_s'] or float('nan')
      print(f"{name:12s} {r['params']:9,d} {r['compile_s']:9.1f} "
            f"{r['step_s']:8.3f} {r['images_per_s']:9.1f} "
            f"{(r['flops_per_step'] or 0) / 1e9:10.2f} {gf:8.1f} "
            f"{gf / mm['gflops']:7.2f}", flush=True)

  if f['sample_methods']:
    print(f'\ntwo-stage sampling of {NUM_SAMPLES} images (4x4 top + 7x7 '
          'bottom codes, then the VQ-VAE-2 decoder; compile excluded):')
    for r in bench_sampling(f['sample_methods'], f['sample_repeats']):
      print(f"{r['method']:7s} {r['seconds']:8.3f} s  (first call with "
            f"compilation {r['first_call_s']:.1f} s; images {r['shape']} "
            f"{r['dtype']})", flush=True)
  print(f'\nload average after: {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
  _FLAGS = define_flags()
  entry.run(lambda argv: main(argv, _FLAGS))
