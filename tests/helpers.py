"""Helpers shared by the trainer, CLI and multi-process tests."""

import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


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
  env = dict(os.environ)
  env.pop('XLA_FLAGS', None)
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
