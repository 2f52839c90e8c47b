"""Data parallelism: 8 virtual CPU devices and two jax.distributed processes.

Both must reproduce the single-device run: the global batch is the same
whatever the device or process count (see `jaxgen.data.train_iterator`), the
parameters are replicated and XLA inserts the gradient all-reduce, so only
the order of floating-point sums differs.
"""

import subprocess

import pytest

from jaxgen import parallel
from jaxgen import train
from jaxgen.errors import ConfigError
from tests import helpers

STEPS = 4


@pytest.fixture(scope='module')
def single_device(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('single')
  exp = train.Experiment(helpers.smoke_config(train__num_steps=STEPS),
                         str(workdir))
  assert exp.mesh.devices.size == 1
  return exp, helpers.params_of(exp.train())


def _restored_params(exp, workdir):
  other = train.Experiment(exp.config, str(workdir))
  state, step = other.restore()
  assert step == STEPS
  return helpers.params_of(state)


@pytest.mark.slow
def test_eight_virtual_devices_match_one(single_device, tmp_path):
  exp, expected = single_device
  env = helpers.subprocess_env(
      XLA_FLAGS='--xla_force_host_platform_device_count=8')
  proc = helpers.run_main(tmp_path, f'--config.train.num_steps={STEPS}',
                          env=env)
  assert '8 cpu device(s), 1 process(es)' in proc.stdout
  assert 'test (80 examples' in proc.stdout  # the whole test split, exactly
  helpers.assert_trees_close(_restored_params(exp, tmp_path), expected,
                             atol=1e-5)


@pytest.mark.slow
def test_two_processes_match_one(single_device, tmp_path):
  exp, expected = single_device
  port = helpers.free_port()
  procs = []
  for pid in range(2):
    cmd = helpers.main_command(
        tmp_path, f'--config.train.num_steps={STEPS}',
        '--config.parallel.num_processes=2',
        f'--config.parallel.process_id={pid}',
        f'--config.parallel.coordinator_address=localhost:{port}',
        '--config.parallel.local_device_count=2')
    procs.append(subprocess.Popen(
        cmd, cwd=helpers.REPO_ROOT, env=helpers.subprocess_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  outputs = [p.communicate(timeout=300) for p in procs]
  for p, (out, err) in zip(procs, outputs):
    assert p.returncode == 0, f'{out[-2000:]}\n{err[-4000:]}'
  # Process 0 reports on the whole split; both ran every collective.
  assert '4 cpu device(s), 2 process(es)' in outputs[0][0]
  assert 'test (80 examples' in outputs[0][0]
  helpers.assert_trees_close(_restored_params(exp, tmp_path), expected,
                             atol=1e-5)


def test_batch_must_divide_over_devices():
  mesh = parallel.make_mesh()
  assert parallel.local_batch_size(32, mesh) == 32
  with pytest.raises(ConfigError, match='config.eval.batch_size=-2'):
    parallel.local_batch_size(-2, mesh, 'config.eval.batch_size')


@pytest.mark.slow
@pytest.mark.parametrize('config', ['gan.py:smoke', 'vqvae.py:smoke',
                                    'pix2pix.py:smoke'])
def test_family_steps_on_eight_devices_match_one(config, tmp_path):
  """The two-player step (batch norm in both nets, the batch dealt into k
  minibatches), the VQ-VAE's EMA-codebook step and pix2pix's step (keyed
  dropout, the ring buffer written from the sharded batch) see the global
  batch under sharding exactly as on one device."""
  module = __import__(f'experiments.configs.{config.split(".")[0]}',
                      fromlist=['get_config'])
  c = module.get_config('smoke')
  c.train.num_steps = STEPS
  exp = train.Experiment(c, str(tmp_path / 'one'))
  expected = helpers.params_of(exp.train())
  env = helpers.subprocess_env(
      XLA_FLAGS='--xla_force_host_platform_device_count=8')
  proc = helpers.run_main(tmp_path / 'eight', f'--config.train.num_steps={STEPS}',
                          env=env, config=f'experiments/configs/{config}')
  assert '8 cpu device(s), 1 process(es)' in proc.stdout
  other = train.Experiment(c, str(tmp_path / 'eight'))
  state, step = other.restore()
  assert step == STEPS
  helpers.assert_trees_close(helpers.params_of(state), expected, atol=1e-5)
