"""Glow's data-dependent initialisation is the same on 8 devices as on 1.

The trainer runs `jaxgen.models.glow.data_init` once, on the first global
batch sharded over the device mesh (`jaxgen.train.Experiment.init_state`).
The actnorm statistics must be those of the whole batch, not of each
device's shard: one process with 8 virtual CPU devices must give the
parameters of the single-device run up to float32 rounding.
"""

import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import traverse_util

from experiments.configs import glow as glow_config
from jaxgen import data as data_lib
from jaxgen import train
from jaxgen.nn import flows
from tests import helpers

DEVICES = 8
RTOL, ATOL = 1e-5, 1e-6

# The 8-device process: the smoke preset's init_state, parameters to npz.
_EIGHT_DEVICE_INIT = f'''
import sys
import jax
import numpy as np
from flax import traverse_util
from experiments.configs import glow as glow_config
from jaxgen import train
exp = train.Experiment(glow_config.get_config('smoke'), sys.argv[1])
assert exp.mesh.devices.size == {DEVICES}, exp.mesh
params = jax.device_get(exp.init_state().params)
flat = traverse_util.flatten_dict(params, sep='/')
np.savez(sys.argv[2], **{{k: np.asarray(v) for k, v in flat.items()}})
'''


@pytest.mark.slow
def test_data_init_on_eight_devices_equals_one_device(tmp_path):
  env = helpers.subprocess_env(
      XLA_FLAGS=f'--xla_force_host_platform_device_count={DEVICES}')
  out = tmp_path / 'eight.npz'
  proc = subprocess.run(
      [sys.executable, '-c', _EIGHT_DEVICE_INIT, str(tmp_path / 'eight'),
       str(out)], cwd=helpers.REPO_ROOT, env=env, capture_output=True,
      text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-5000:]

  config = glow_config.get_config('smoke')
  exp = train.Experiment(config, str(tmp_path / 'one'))
  assert exp.mesh.devices.size == 1
  one = traverse_util.flatten_dict(
      jax.device_get(exp.init_state().params), sep='/')
  with np.load(out, allow_pickle=False) as f:
    eight = {k: f[k] for k in f.files}
  assert sorted(eight) == sorted(one)
  actnorms = [k for k in one if '/actnorm/' in k]
  assert len(actnorms) == 2 * config.model.levels * (
      config.model.steps_per_level)  # a bias and a log-scale per step
  for k in one:
    np.testing.assert_allclose(eight[k], one[k], rtol=RTOL, atol=ATOL,
                               err_msg=k)
  # The actnorms were set from data (they start at 0 without it).
  assert max(np.abs(one[k]).max() for k in actnorms) > 0.1

  # The tolerance would catch per-device statistics: the first actnorm's
  # per-channel input mean (pixels at mid-bin, squeezed) over one device's
  # rows of the first global batch is far from the whole batch's.
  batch = next(data_lib.train_iterator(
      exp.dataset.splits['train'], batch_size=config.train.batch_size,
      seed=config.seed, num_threads=0, prefetch_buffer_size=0))
  y = (batch['image'].astype(np.float64) + 0.5) / 256 - 0.5
  h = np.asarray(flows.squeeze(y))
  rows = config.train.batch_size // DEVICES
  shard_mean = h[:rows].mean(axis=(0, 1, 2))
  whole_mean = h.mean(axis=(0, 1, 2))
  assert np.abs(shard_mean - whole_mean).max() > 100 * ATOL
