"""What the bench_* scripts share: the matmul flags and the timed-step setup.

The ``XLA_FLAGS`` in effect (printed first), ``--matmul_size`` /
``--matmul_repeats`` for the float32 matmul yardstick
that `machine.print_header` measures in the same run (defined by
`define_matmul_flags`, which only a script's own flag definitions call:
importing this module defines no flag), and the init -> state ->
`machine.time_train_step` sequence every timed step goes through.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from absl import flags
import jax
import jax.numpy as jnp

from experiments import machine
from jaxgen import steps as steps_lib
from jaxgen import train

def define_matmul_flags() -> dict[str, Any]:
  """Defines ``--matmul_size`` and ``--matmul_repeats``; for a script's
  flag definitions (see `header`)."""
  return dict(
      matmul_size=flags.DEFINE_integer('matmul_size', 2048, 'N of the '
                                       'float32 N x N @ N x N reference '
                                       'matmul.'),
      matmul_repeats=flags.DEFINE_integer('matmul_repeats', 5, 'Timed '
                                          'reference matmuls; the best is '
                                          'reported.'))


def xla_flags() -> str:
  """The ``XLA_FLAGS`` of this process, which its backend started with:
  the user's, plus the options `experiments.entry.run` adds before any
  computation (`entry.set_xla_flags`), so a benchmark times the programs
  the experiments run."""
  return os.environ.get('XLA_FLAGS', '')


def print_xla_flags() -> str:
  """Prints and returns `xla_flags`."""
  value = xla_flags()
  print(f'XLA_FLAGS: {value or "(none)"}', flush=True)
  return value


def header(matmul_size: int, matmul_repeats: int) -> dict[str, float]:
  """Prints the machine line, the XLA flags and the matmul rate; returns
  the matmul dict."""
  print_xla_flags()
  return machine.print_header(matmul_size, matmul_repeats)['matmul']


def setup(config) -> tuple[Any, Any, Callable, Any]:
  """(family, net, preprocess, variables initialised with key 0)."""
  family, net, preprocess, example = train.model_pieces(config)
  variables = jax.jit(lambda k, b: family.init(k, b, net=net))(
      jax.random.key(0), example)
  return family, net, preprocess, variables


def time_step(step: Callable, tx, variables, image_shape, batch_size: int, *,
              steps: int, warmup: int) -> dict[str, Any]:
  """`machine.time_train_step` from step 0 of `variables` with `tx`'s state,
  on a random uint8 batch of `batch_size` images."""
  state = steps_lib.TrainState(step=jnp.zeros((), jnp.int32),
                               params=variables,
                               opt_state=jax.jit(tx.init)(variables))
  return machine.time_train_step(
      step, state, machine.random_batch(image_shape, batch_size),
      steps=steps, warmup=warmup)
