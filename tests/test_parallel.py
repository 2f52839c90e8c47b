"""Data parallelism: 8 virtual CPU devices and two jax.distributed processes.

Both must reproduce the single-device run: the global batch is the same
whatever the device or process count (see `jaxgen.data.train_iterator`), the
parameters are replicated and XLA inserts the gradient all-reduce, so only
the order of floating-point sums differs.
"""

import json
import subprocess
import sys

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


# The smoke configs whose 8-device runs are checked against one device.
EIGHT_DEVICE_CONFIGS = ('vae.py:smoke', 'gan.py:smoke', 'vqvae.py:smoke',
                        'pix2pix.py:smoke')

# One process with 8 virtual devices runs the command line once per config
# (`experiments.main.cli`, as `python -m experiments.main` parses it), each
# into its own workdir, and prints each run's exit status and stdout.
_EIGHT_DEVICE_RUNS = '''
import contextlib, io, json, sys
from experiments import main
out = {}
root, steps = sys.argv[1], sys.argv[2]
for config in sys.argv[3:]:
  text = io.StringIO()
  with contextlib.redirect_stdout(text):
    status = main.cli(['main', f'--config=experiments/configs/{config}',
                       f'--workdir={root}/{config}',
                       f'--config.train.num_steps={steps}'])
  out[config] = dict(status=status, stdout=text.getvalue())
print(json.dumps(out))
'''


@pytest.fixture(scope='module')
def eight_devices(tmp_path_factory):
  """{config: (workdir, stdout)} of the 8-device runs, in one process."""
  root = tmp_path_factory.mktemp('eight')
  env = helpers.subprocess_env(
      XLA_FLAGS='--xla_force_host_platform_device_count=8')
  proc = subprocess.run(
      [sys.executable, '-c', _EIGHT_DEVICE_RUNS, str(root), str(STEPS),
       *EIGHT_DEVICE_CONFIGS], cwd=helpers.REPO_ROOT, env=env,
      capture_output=True, text=True,
      timeout=300 * len(EIGHT_DEVICE_CONFIGS))  # 300 s a run, as before
  assert proc.returncode == 0, proc.stderr[-5000:]
  runs = json.loads(proc.stdout.splitlines()[-1])
  for config, run in runs.items():
    assert run['status'] == 0, (config, run['stdout'][-2000:],
                                proc.stderr[-4000:])
  return {config: (root / config, run['stdout'])
          for config, run in runs.items()}


@pytest.mark.slow
def test_eight_virtual_devices_match_one(single_device, eight_devices):
  exp, expected = single_device
  workdir, stdout = eight_devices['vae.py:smoke']
  assert '8 cpu device(s), 1 process(es)' in stdout
  assert 'test (80 examples' in stdout  # the whole test split, exactly
  helpers.assert_trees_close(_restored_params(exp, workdir), expected,
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
@pytest.mark.parametrize('config', EIGHT_DEVICE_CONFIGS[1:])
def test_family_steps_on_eight_devices_match_one(config, tmp_path,
                                                 eight_devices):
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
  workdir, stdout = eight_devices[config]
  assert '8 cpu device(s), 1 process(es)' in stdout
  other = train.Experiment(c, str(workdir))
  state, step = other.restore()
  assert step == STEPS
  helpers.assert_trees_close(helpers.params_of(state), expected, atol=1e-5)
