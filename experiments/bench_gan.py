r"""Benchmarks the reference DCGAN's two-player train step.

  python -m experiments.bench_gan
  python -m experiments.bench_gan --steps=5 --objectives=nonsaturating
  python -m experiments.bench_gan --preset=smoke   # the tests' tiny nets

Run from the project root. Measured in one process, on one device:

- the machine (`experiments.machine.machine_info`), the load average
  before and after (other work on a shared machine skews every number), and
  the float32 GFLOP/s of an N x N @ N x N jitted matmul
  (`experiments.machine.matmul_gflops`, flags ``--matmul_size`` and
  ``--matmul_repeats``), in the same run;
- the reference DCGAN for 32x32x1 images (generator z = 100 -> transposed
  4x4 convolutions 256/128/64/1 with batch norm, 1,066,880 parameters;
  discriminator 4x4 stride-2 convolutions 64/128/256/1, LeakyReLU 0.2, batch
  norm, 661,248 parameters; no biases), trained by the family's own step
  (`jaxgen.models.gan.make_train_step`) with one discriminator step plus one
  generator step at batch 64, the generator's update through the
  discriminator step's fakes as the PyTorch peer's step does
  (``model.reuse_fakes``; ``--noreuse_fakes``: fresh latents, a second
  generator pass) (Adam 2e-4, b1 = 0.5; random 8-bit images
  scaled to [-1, 1] on device), for each objective of ``--objectives``
  (wgan-gp uses layer norm in the critic, as the family requires, and its
  double backpropagation). Per objective: compile seconds, seconds per step,
  images/s (64 real images through one D step + one G step), FLOPs per
  step from XLA's cost analysis of the compiled step, achieved GFLOP/s and
  its ratio to the matmul figure, and the XLA compilations counted during
  the timed steps (0: nothing recompiles).

``--preset=smoke`` times ``gan.py:smoke``'s tiny 8x8 nets (with the same
one D step per G step and batch) instead of the reference: it only checks
that the script runs end to end, its figures measure nothing of interest.
"""

from __future__ import annotations

import os
from typing import Any

from absl import app
from absl import flags
from absl import logging

from experiments import bench_common
from experiments import entry
from experiments.configs import gan as gan_config
from jaxgen import train
from jaxgen.models import gan

REFERENCE = dict(image_shape=(32, 32, 1), latent_dim=100,
                 g_channels=(256, 128, 64), d_channels=(64, 128, 256),
                 kernel_size=4, use_bias=False, g_norm='batch', d_steps=1)


def reference_config(objective: str, batch_size: int,
                     preset: str = 'reference', reuse_fakes: bool = True):
  """The gan.py config with the reference DCGAN (or, for `preset` 'smoke',
  the smoke preset's nets) and one D step per G step, the G step through
  the D step's fakes unless `reuse_fakes` is False."""
  if preset == 'smoke':
    config = gan_config.get_config(f'smoke,{objective}')
    config.model.d_steps = 1
  else:
    config = gan_config.get_config(f'mnist8k,{objective}')
    for field, value in REFERENCE.items():
      config.model[field] = value
  config.model.d_norm = 'layer' if objective == 'wgan-gp' else 'batch'
  config.model.reuse_fakes = reuse_fakes
  config.train.batch_size = batch_size
  return config


def bench_step(objective: str, steps: int, warmup: int, batch_size: int,
               preset: str = 'reference',
               reuse_fakes: bool = True) -> dict[str, Any]:
  """Images/s, FLOPs and GFLOP/s of the reference DCGAN's two-player step
  (of the smoke nets for `preset` 'smoke')."""
  config = reference_config(objective, batch_size, preset, reuse_fakes)
  _, net, preprocess, params = bench_common.setup(config)
  tx = gan.make_optimizer(config)
  step = gan.make_train_step(net=net, tx=tx, preprocess=preprocess,
                             config=config)
  timing = bench_common.time_step(step, tx, params, config.model.image_shape,
                                  batch_size, steps=steps, warmup=warmup)
  metrics = timing.pop('metrics')
  return {
      'objective': objective,
      'g_params': train.count_params(params['generator']['params']),
      'd_params': train.count_params(params['discriminator']['params']),
      'batch_size': batch_size, **timing,
      'd_loss': float(metrics['d_loss']), 'g_loss': float(metrics['g_loss']),
  }


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      objectives=flags.DEFINE_list('objectives', ['nonsaturating', 'wgan-gp'],
                                   'Objectives whose step is timed.'),
      steps=flags.DEFINE_integer('steps', 10, 'Timed train steps per '
                                 'objective.'),
      warmup=flags.DEFINE_integer('warmup', 2, 'Untimed steps after '
                                  'compilation.'),
      batch_size=flags.DEFINE_integer('batch_size', 64, 'Real images per '
                                      'step.'),
      preset=flags.DEFINE_enum(
          'preset', 'reference', ['reference', 'smoke'], 'The nets timed: '
          'the reference DCGAN, or gan.py:smoke\'s tiny 8x8 ones (checks that '
          'the script runs, measures nothing).'),
      reuse_fakes=flags.DEFINE_bool(
          'reuse_fakes', True, "The generator's update through the "
          "discriminator step's fakes (the peer's step); false: fresh "
          'latents and a second generator pass (the papers\' algorithm).'),
      **bench_common.define_matmul_flags())


def main(argv, flag_values: dict[str, Any]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in flag_values.items()}
  mm = bench_common.header(f['matmul_size'], f['matmul_repeats'])
  preset = f['preset']
  shape = reference_config('nonsaturating', 1, preset).model.image_shape
  name = 'reference DCGAN' if preset == 'reference' else 'smoke GAN'
  g_step = ("through D's fakes" if f['reuse_fakes'] else
            'on fresh latents')
  print(f'\n{name} {"x".join(str(n) for n in shape)}, one D step + one G '
        f'step ({g_step}) per train step, batch {f["batch_size"]}, '
        f'{f["steps"]} timed steps:')
  print(f"{'objective':14s} {'G params':>9s} {'D params':>9s} "
        f"{'compile s':>9s} {'s/step':>7s} {'images/s':>9s} "
        f"{'GFLOP/step':>10s} {'GFLOP/s':>8s} {'/matmul':>7s} {'recomp':>6s}")
  for objective in f['objectives']:
    r = bench_step(objective, f['steps'], f['warmup'], f['batch_size'],
                   preset, f['reuse_fakes'])
    gf = r['gflops_per_s']
    print(f"{objective:14s} {r['g_params']:9,d} {r['d_params']:9,d} "
          f"{r['compile_s']:9.1f} {r['step_s']:7.3f} "
          f"{r['images_per_s']:9.1f} {r['flops_per_step'] / 1e9:10.2f} "
          f"{gf:8.1f} {gf / mm['gflops']:7.2f} {r['recompilations']:6d}",
          flush=True)
  print(f'\nload average after: {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
  _FLAGS = define_flags()
  entry.run(lambda argv: main(argv, _FLAGS))
