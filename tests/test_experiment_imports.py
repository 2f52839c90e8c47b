"""Experiment modules: importing them defines no flag; each script parses its
own; the benchmarks run one step (the autoregressive and GAN ones on smoke
nets, with their reference models' sizes checked from shapes)."""

import json
import subprocess
import sys

import jax
import pytest

from experiments import bench_gan
from experiments import benchmark
from experiments.configs import pixelcnn as pixelcnn_config
from jaxgen import train
from tests import helpers

# Every script under experiments/ with one flag it defines.
_SCRIPTS = (
    ('experiments.main', '--mode'),
    ('experiments.families', '--family'),
    ('experiments.results', '--records_dir'),
    ('experiments.kmeans_codebook', '--order'),
    ('experiments.sample_quality', '--view'),
    ('experiments.train_classifier', '--dataset'),
    ('experiments.benchmark', '--num_batches'),
    ('experiments.bench_autoregressive', '--sample_batch_sizes'),
    ('experiments.bench_gan', '--objectives'),
    ('experiments.bench_vqvae', '--sample_methods'),
    ('experiments.bench_peers', '--peer_python'),
    ('experiments.bench_layers', '--steps_per_round'),
    ('experiments.uses', '--typicality_batch'),
    ('experiments.classics', '--dip_steps'),
    ('experiments.bench_classics', '--patchmatch_size'),
    ('experiments.bench_rbm', '--ais_betas'),
    ('experiments.check_compute_dtype', '--families'),
    ('experiments.chains', '--every'),
    ('experiments.render_notebooks', '--colors'),
)

# One process imports every experiments module as a library and reports
# the flags they define (none); then each script runs as ``python -m`` runs
# it (`runpy.run_module` as __main__) with --helpfull, in a fork of that
# process: a fresh flag registry per script, without paying the imports of
# the stack once per script.
_IMPORT_ALL_THEN_HELP = '''
import importlib, json, os, pkgutil, runpy, sys, tempfile
from absl import flags
import experiments
names = [m.name for m in pkgutil.walk_packages(experiments.__path__,
                                               'experiments.')
         if not m.name.endswith('__main__')]
for name in names:
  importlib.import_module(name)
owners = sorted(m for m in flags.FLAGS.flags_by_module_dict()
                if m.split('.')[0] == 'experiments')
from jax._src import xla_bridge
started = xla_bridge.backends_are_initialized()
helps = {}
for module in sys.argv[1:]:
  with tempfile.TemporaryFile('w+') as out, tempfile.TemporaryFile('w+') as err:
    sys.stdout.flush(), sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
      os.dup2(out.fileno(), 1), os.dup2(err.fileno(), 2)
      sys.argv = [module, '--helpfull']
      status = 0
      try:
        runpy.run_module(module, run_name='__main__', alter_sys=True)
      except SystemExit as e:
        status = e.code if isinstance(e.code, int) else 1
      except BaseException:
        import traceback
        traceback.print_exc()
        status = 1
      sys.stdout.flush(), sys.stderr.flush()
      os._exit(status)
    _, wait_status = os.waitpid(pid, 0)
    out.seek(0), err.seek(0)
    helps[module] = dict(stdout=out.read(), stderr=err.read(),
                         status=os.waitstatus_to_exitcode(wait_status))
print(json.dumps(dict(count=len(names), owners=owners, started=started,
                      helps=helps)))
'''


@pytest.fixture(scope='module')
def imported_then_helped():
  """The report of `_IMPORT_ALL_THEN_HELP` over every script."""
  proc = subprocess.run(
      [sys.executable, '-c', _IMPORT_ALL_THEN_HELP] +
      [module for module, _ in _SCRIPTS], cwd=helpers.REPO_ROOT,
      env=helpers.subprocess_env(), capture_output=True, text=True,
      timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.splitlines()[-1])


def test_importing_every_experiments_module_defines_no_flag(
    imported_then_helped):
  """Flags belong to the command lines: a module imported as a library
  (by tests, notebooks, another script) defines none, so any of them can
  share one process. Nor does an import start a JAX backend: XLA reads
  XLA_FLAGS when the first one starts, after `experiments.entry.run` has
  added the experiments' XLA options."""
  assert imported_then_helped['count'] >= len(_SCRIPTS) + 5  # and libraries
  assert imported_then_helped['owners'] == []
  assert imported_then_helped['started'] is False


@pytest.mark.slow
@pytest.mark.parametrize('module, flag', _SCRIPTS)
def test_each_script_parses_its_flags(module, flag, imported_then_helped):
  """absl's --helpfull lists the script's flags and exits before main."""
  run = imported_then_helped['helps'][module]
  assert 'Traceback' not in run['stderr'], run['stderr'][-3000:]
  assert flag in run['stdout']


def test_gan_benchmark_reference_nets_have_the_dcgan_sizes():
  """bench_gan's default nets are the reference DCGAN's (shapes only:
  nothing is compiled)."""
  config = bench_gan.reference_config('nonsaturating', 8)
  family, net, _, example = train.model_pieces(config)
  shapes = jax.eval_shape(lambda k: family.init(k, example, net=net),
                          jax.random.key(0))
  assert train.count_params(shapes['generator']['params']) == 1_066_880
  assert train.count_params(shapes['discriminator']['params']) == 661_248


@pytest.mark.slow
def test_gan_benchmark_runs_one_step_and_prints_its_ratios():
  """bench_gan's main on the smoke nets, one step of batch 8: the parameter
  counts, and the throughput, FLOP and matmul-ratio columns."""
  proc = subprocess.run(
      [sys.executable, '-m', 'experiments.bench_gan', '--preset=smoke',
       '--steps=1', '--warmup=0', '--batch_size=8',
       '--objectives=nonsaturating', '--matmul_size=128',
       '--matmul_repeats=1'],
      cwd=helpers.REPO_ROOT, env=helpers.subprocess_env(),
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = proc.stdout
  assert 'float32 matmul 128x128' in out
  assert ("smoke GAN 8x8x1, one D step + one G step (through D's fakes) "
          'per train step') in out
  config = bench_gan.reference_config('nonsaturating', 8, 'smoke')
  family, net, _, example = train.model_pieces(config)
  shapes = jax.eval_shape(lambda k: family.init(k, example, net=net),
                          jax.random.key(0))
  g = train.count_params(shapes['generator']['params'])
  d = train.count_params(shapes['discriminator']['params'])
  row = next(l for l in out.splitlines() if l.startswith('nonsaturating'))
  assert row.split()[1:3] == [f'{g:,}', f'{d:,}']
  for column in ('images/s', 'GFLOP/step', '/matmul', 'recomp'):
    assert column in out
  assert row.split()[-1] == '0'  # no recompilation after warm-up


@pytest.mark.slow
def test_rbm_benchmark_prints_both_rates_their_ratio_and_ais():
  """bench_rbm's main on a 16 x 8 RBM, one round of two sweeps (a few
  seconds): the JAX and NumPy rows, the ratio and the AIS line."""
  proc = subprocess.run(
      [sys.executable, '-m', 'experiments.bench_rbm', '--rounds=1',
       '--sweeps=2', '--visible_dim=16', '--hidden_dim=8', '--batch_size=4',
       '--ais_betas=5', '--ais_chains=4', '--matmul_size=128',
       '--matmul_repeats=1'],
      cwd=helpers.REPO_ROOT, env=helpers.subprocess_env(),
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = proc.stdout
  assert 'Bernoulli RBM 16 x 8, batch 4, 2 sweeps per call' in out
  rows = {l.split()[0]: l.split() for l in out.splitlines()
          if l.startswith(('jax ', 'numpy '))}
  assert set(rows) == {'jax', 'numpy'}
  assert all(float(rows[n][2]) > 0 for n in rows)  # sweeps/s
  assert 'jax/numpy sweeps/s:' in out
  assert '4 intermediate distributions), 4 chains' in out


def test_autoregressive_benchmark_reference_is_the_665089_parameter_pixelcnn():
  """The script's default presets are the reference models (shapes only:
  nothing is compiled)."""
  assert benchmark.count_params(pixelcnn_config.get_config('mnist8k')) == (
      665_089)


@pytest.mark.slow
def test_autoregressive_benchmark_runs_one_step_and_a_timed_sample():
  """bench_autoregressive's main on the smoke PixelCNN (8x8, 64 positions):
  one train step, batch-1 sampling with the naive sampler timed on 2
  positions and scaled."""
  proc = subprocess.run(
      [sys.executable, '-m', 'experiments.bench_autoregressive',
       '--dataset=smoke', '--models=pixelcnn', '--train_steps=1',
       '--train_warmup=0', '--sample_batch_sizes=1', '--naive_positions=2',
       '--naive_full_max_batch=0', '--matmul_size=128', '--matmul_repeats=1'],
      cwd=helpers.REPO_ROOT, env=helpers.subprocess_env(),
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = proc.stdout
  params = benchmark.count_params(pixelcnn_config.get_config('smoke'))
  assert next(l for l in out.splitlines()
              if l.startswith('pixelcnn')).split()[1] == f'{params:,}'
  assert '8x8x1 binarized, smoke presets' in out
  assert '(64 positions; compile excluded)' in out
  sample_row = next(l for l in out.splitlines() if l.strip().startswith('1 '))
  assert sample_row.rstrip().endswith('2 positions, x32')
  assert 'x' in sample_row.split()[3]  # the speed-up column
