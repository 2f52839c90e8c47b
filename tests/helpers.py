"""Helpers shared by the trainer, CLI and multi-process tests."""

import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np

from experiments import entry

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

# Compile-time settings the session adds to XLA_FLAGS (tests/conftest.py):
# they change how fast XLA compiles, not what the programs compute.
COMPILE_XLA_FLAGS = ('--xla_backend_optimization_level=0',
                     '--xla_cpu_use_fusion_emitters=false')
# Those of them that a later jaxlib may no longer know (XLA aborts on an
# unknown flag): the session adds them only if a child process accepts them.
NEWER_XLA_FLAGS = ('--xla_cpu_use_fusion_emitters=false',)


flag_name = entry.xla_flag_name  # '--name' of an XLA flag '--name=value'


def smoke_config(arg='smoke', **overrides):
  """The VAE smoke config with dotted overrides, e.g. train__num_steps=6."""
  from experiments.configs import vae as vae_config  # pylint: disable=g-import-not-at-top
  config = vae_config.get_config(arg)
  for dotted, value in overrides.items():
    node = config
    *parents, leaf = dotted.split('__')
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


def subprocess_env(**extra):
  """This environment for a child process: CPU only, unbuffered output.

  Of ``XLA_FLAGS`` only the session's compile settings and the
  experiments' XLA options (`experiments.entry.DEFAULT_XLA_FLAGS`) pass on,
  so a child compiles and computes as the test process does; a device
  count or other flag comes from ``extra['XLA_FLAGS']`` alone.
  """
  env = dict(os.environ)
  names = {flag_name(f) for f in COMPILE_XLA_FLAGS + entry.DEFAULT_XLA_FLAGS}
  inherited = [f for f in env.pop('XLA_FLAGS', '').split()
               if flag_name(f) in names]
  flags = inherited + extra.pop('XLA_FLAGS', '').split()
  if flags:
    env['XLA_FLAGS'] = ' '.join(flags)
  env['PYTHONUNBUFFERED'] = '1'
  env['JAX_PLATFORMS'] = 'cpu'
  env.update(extra)
  return env


def main_command(workdir, *args, config='experiments/configs/vae.py:smoke'):
  cmd = [sys.executable, '-m', 'experiments.main', f'--workdir={workdir}']
  if config:
    cmd.append(f'--config={config}')
  return cmd + list(args)


def run_main(workdir, *args, env=None, check=True, timeout=300, **kwargs):
  """Runs `python -m experiments.main` in a fresh process at the repo root."""
  proc = subprocess.run(main_command(workdir, *args, **kwargs),
                        cwd=REPO_ROOT, env=env or subprocess_env(),
                        capture_output=True, text=True, timeout=timeout)
  if check and proc.returncode != 0:
    raise AssertionError(f'exit {proc.returncode}\n{proc.stdout[-3000:]}\n'
                         f'{proc.stderr[-5000:]}')
  return proc


def free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def params_of(state):
  return jax.tree.map(np.asarray, jax.device_get(state.params))


def assert_trees_equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(x, y)


def assert_trees_close(a, b, atol):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_allclose(x, y, rtol=0, atol=atol)


def train_step_and_batch(exp):
  """(step, batch): the Experiment's family train step, built as the
  trainer builds it, and the first training batch as a global array."""
  from jaxgen import parallel  # pylint: disable=g-import-not-at-top
  step = exp.family.make_train_step(net=exp.net, tx=exp.tx,
                                    preprocess=exp.preprocess,
                                    config=exp.config)
  return step, parallel.global_batch(next(exp.train_iterator()), exp.mesh)
