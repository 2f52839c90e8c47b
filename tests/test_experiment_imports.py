"""Experiment modules that others import must not collide on absl flags."""

import subprocess
import sys

import pytest

from tests import helpers

# Modules imported as libraries by tests or notebooks (their functions), in
# one process; a flag defined twice raises DuplicateFlagError at import.
_IMPORTED_TOGETHER = ('experiments.benchmark', 'experiments.results',
                      'experiments.kmeans_codebook')


def test_imported_experiment_modules_share_one_process():
  code = ''.join(f'import {m}\n' for m in _IMPORTED_TOGETHER)
  proc = subprocess.run([sys.executable, '-c', code], cwd=helpers.REPO_ROOT,
                        env=helpers.subprocess_env(), capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]


def test_kmeans_codebook_command_line_parses_its_flags():
  proc = subprocess.run(
      [sys.executable, '-m', 'experiments.kmeans_codebook', '--helpfull'],
      cwd=helpers.REPO_ROOT, env=helpers.subprocess_env(),
      capture_output=True, text=True, timeout=300)
  assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]  # absl's help
  for flag in ('--config', '--workdir', '--order', '--columns', '--scale'):
    assert flag in proc.stdout, flag


@pytest.mark.parametrize('module, flag', [
    ('experiments.bench_autoregressive', '--sample_batch_sizes'),
    ('experiments.bench_gan', '--objectives'),
    ('experiments.bench_vqvae', '--sample_methods'),
])
def test_benchmark_scripts_import_and_parse_their_flags(module, flag):
  """The reference-size benchmarks are too slow for the suite; at least
  each imports and parses its flags (absl's --helpfull exits before main)."""
  proc = subprocess.run([sys.executable, '-m', module, '--helpfull'],
                        cwd=helpers.REPO_ROOT, env=helpers.subprocess_env(),
                        capture_output=True, text=True, timeout=300)
  assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
  assert flag in proc.stdout


def test_gan_benchmark_runs_one_step_and_prints_its_ratios():
  """bench_gan's main at the reference DCGAN size, one step of batch 8
  (about 15 s): the parameter counts of the reference nets, and
  the throughput, FLOP and matmul-ratio columns."""
  proc = subprocess.run(
      [sys.executable, '-m', 'experiments.bench_gan', '--steps=1',
       '--warmup=0', '--batch_size=8', '--objectives=nonsaturating',
       '--matmul_size=128', '--matmul_repeats=1'],
      cwd=helpers.REPO_ROOT, env=helpers.subprocess_env(),
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = proc.stdout
  assert 'float32 matmul 128x128' in out
  row = next(l for l in out.splitlines() if l.startswith('nonsaturating'))
  assert '1,066,880' in row and '661,248' in row  # G and D, no biases
  for column in ('images/s', 'GFLOP/step', '/matmul', 'recomp'):
    assert column in out
  assert row.split()[-1] == '0'  # no recompilation after warm-up


def test_autoregressive_benchmark_runs_one_step_and_a_timed_sample():
  """bench_autoregressive's main on the reference PixelCNN (665,089
  parameters): one train step, batch-1 sampling with the naive sampler
  timed on 2 positions and scaled (about 20 s)."""
  proc = subprocess.run(
      [sys.executable, '-m', 'experiments.bench_autoregressive',
       '--models=pixelcnn', '--train_steps=1', '--train_warmup=0',
       '--sample_batch_sizes=1', '--naive_positions=2',
       '--naive_full_max_batch=0', '--matmul_size=128', '--matmul_repeats=1'],
      cwd=helpers.REPO_ROOT, env=helpers.subprocess_env(),
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = proc.stdout
  assert next(l for l in out.splitlines()
              if l.startswith('pixelcnn')).split()[1] == '665,089'
  sample_row = next(l for l in out.splitlines() if l.strip().startswith('1 '))
  assert sample_row.rstrip().endswith('2 positions, x392')
  assert 'x' in sample_row.split()[3]  # the speed-up column
