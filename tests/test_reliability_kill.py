"""kill -9 at random points, resume each time: the end is bitwise the same.

A smoke VAE run (asynchronous checkpoints every 3 steps) is killed with
SIGKILL five times at seeded points, each in a fresh process that resumes
the workdir: inside orbax's background save (every file written, the step
not yet renamed into place), between orbax's finalize and the step's
digest, and from outside after a random number of batches plus a random
delay (wherever that lands: a step, a save in flight, a log write). Every
resume must succeed, and the last run's final checkpoint (step, params,
optimizer state) must be bitwise that of an uninterrupted run.
"""

import pathlib
import random
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from jaxgen import checkpoint as ckpt_lib
from jaxgen import train
from tests import helpers

pytestmark = pytest.mark.slow

NUM_STEPS, EVERY = 36, 3
_CONFIG = dict(train__num_steps=NUM_STEPS, train__checkpoint_every_steps=EVERY,
               train__async_checkpointing=True, train__log_every_steps=1,
               train__eval_every_steps=0, train__image_every_steps=0)

# The trainer in a fresh process, with an optional SIGKILL of itself at a
# given point. Each batch is announced on stdout and slowed by 20 ms, so
# that a kill from outside lands somewhere in training (the numbers are
# unchanged: the batches and steps are the same); waiting for that kill,
# the run stops taking batches after `at` of them, so it never finishes
# first however late the kill comes.
_DRIVER = textwrap.dedent('''
    import os, signal, sys, time
    from orbax.checkpoint._src.path import async_path
    from jaxgen import checkpoint as ckpt_lib
    from jaxgen import parallel, train
    from tests import helpers

    workdir, phase, at = sys.argv[1], sys.argv[2], sys.argv[3]
    config = eval(sys.argv[4])

    def die():
      os.kill(os.getpid(), signal.SIGKILL)

    if phase == 'before_rename':  # orbax wrote the step, not yet in place
      rename = async_path.rename
      async def killing_rename(src, dst):
        if dst.name == at:
          die()
        return await rename(src, dst)
      async_path.rename = killing_rename
    elif phase == 'before_digest':  # orbax finalized, no digest yet
      write_digest = ckpt_lib.write_digest
      def killing_write_digest(step_dir):
        if os.path.basename(step_dir) == at:
          die()
        return write_digest(step_dir)
      ckpt_lib.write_digest = killing_write_digest

    global_batch = parallel.global_batch
    taken = 0
    def announced_batch(*args, **kwargs):
      global taken
      taken += 1
      if phase == 'outside' and taken > int(at):
        time.sleep(3600)
      print('batch', flush=True)
      time.sleep(0.02)
      return global_batch(*args, **kwargs)
    parallel.global_batch = announced_batch

    train.Experiment(helpers.smoke_config(**config), workdir).train()
''')


def _steps(workdir):
  """The finalized steps (orbax's names) and the leftover temporary ones."""
  directory = pathlib.Path(workdir) / 'checkpoints'
  if not directory.is_dir():
    return [], []
  names = [p.name for p in directory.iterdir()]
  return (sorted(int(n) for n in names if n.isdigit()),
          sorted(n for n in names if 'tmp' in n))


def _run(workdir, phase, at=0, kill_after=None):
  """(exit status, stderr) of one run; `kill_after`: (batches, seconds)
  after which this process sends it SIGKILL."""
  log = pathlib.Path(workdir).with_suffix('.stderr')
  with open(log, 'w') as stderr:
    proc = subprocess.Popen(
        [sys.executable, '-c', _DRIVER, str(workdir), phase, str(at),
         repr(_CONFIG)], cwd=helpers.REPO_ROOT, env=helpers.subprocess_env(),
        stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
      if kill_after is not None:
        _kill_after(proc, *kill_after)
      proc.communicate(timeout=300)
    finally:
      if proc.poll() is None:
        proc.kill()
        proc.wait()
  return proc.returncode, log.read_text()


def _kill_after(proc, batches, delay):
  """SIGKILL once `proc` has taken `batches` batches and `delay` seconds."""
  seen = 0
  while seen < batches:
    line = proc.stdout.readline()
    if not line:  # ended by itself
      return
    seen += line.strip() == 'batch'
  time.sleep(delay)
  proc.kill()


def _plan(seed, kills=5):
  """The kills: both points inside a save, then from outside, shuffled."""
  rng = random.Random(seed)
  phases = ['before_rename', 'before_digest'] + ['outside'] * (kills - 2)
  rng.shuffle(phases)
  return rng, phases


def _full_state(workdir, config):
  exp = train.Experiment(config, str(workdir))
  state, step = exp.restore(step=NUM_STEPS)
  return jax.tree.map(np.asarray, jax.device_get(state)), step


def test_kill_9_loop_resumes_to_the_uninterrupted_result(tmp_path):
  config = helpers.smoke_config(**_CONFIG)
  reference = tmp_path / 'reference'
  train.Experiment(config, str(reference)).train()

  workdir = tmp_path / 'killed'
  rng, phases = _plan(seed=0)
  landed = []
  for i, phase in enumerate(phases):
    finalized, _ = _steps(workdir)
    resume = max(finalized, default=0)
    if phase != 'outside':
      # A save this run will make: the next one or the one after.
      at = min(resume + EVERY * rng.randint(1, 2), NUM_STEPS)
      status, err = _run(workdir, phase, at)
    else:
      batches = rng.randint(1, 4)
      at = batches + 2  # the most it takes: killed by then
      status, err = _run(workdir, phase, at, kill_after=(
          batches, rng.uniform(0, 0.05)))
    # Every run resumes, and each is killed before it can finish.
    assert status == -signal.SIGKILL, (
        f'run {i} ({phase}): exit {status}\n{err[-3000:]}')
    assert 'Traceback' not in err, err[-3000:]
    if i and landed[-1] == 'before_digest':
      # It resumed from the step whose digest was never written.
      assert 'restored unverified' in err, err[-3000:]
    finalized, tmp = _steps(workdir)
    if phase == 'before_rename':
      assert at not in finalized
      assert any(n.startswith(f'{at}.orbax-checkpoint-tmp') for n in tmp), tmp
    elif phase == 'before_digest':
      assert at in finalized
      step_dir = workdir / 'checkpoints' / str(at)
      assert not (step_dir / ckpt_lib.DIGEST_FILE).exists()
    landed.append(phase)

  # The last run: resumes and finishes.
  status, err = _run(workdir, 'none')
  assert status == 0, err[-3000:]
  assert 'Traceback' not in err, err[-3000:]

  got, step = _full_state(workdir, config)
  want, _ = _full_state(reference, config)
  assert step == int(got.step) == NUM_STEPS
  helpers.assert_trees_equal(got, want)  # step, params, opt state, EMA
  assert ckpt_lib.verify_digest(str(workdir / 'checkpoints' / str(NUM_STEPS)))
