"""Checkpoints and workdirs under failure: corrupt or unreadable steps, two
trainers on one workdir, failed saves, refused runs.

One tiny run (the VAE smoke config, asynchronous saves at steps 2, 4, 6) is
trained once per module; each test damages its own copy.
"""

import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import types

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxgen import checkpoint as ckpt_lib
from jaxgen import train
from jaxgen import workdir as workdir_lib
from jaxgen.errors import CheckpointError
from jaxgen.errors import CheckpointSaveError
from jaxgen.errors import ConfigError
from jaxgen.errors import WorkdirLockedError
from tests import helpers

pytestmark = pytest.mark.slow

STEPS = [2, 4, 6]


def _config(**overrides):
  overrides = dict(dict(
      train__num_steps=6, train__checkpoint_every_steps=2,
      train__async_checkpointing=True, train__eval_every_steps=0,
      train__image_every_steps=0), **overrides)
  return helpers.smoke_config(**overrides)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """(workdir, {step: params}) of the shared run, never modified."""
  path = tmp_path_factory.mktemp('reliab') / 'run'
  exp = train.Experiment(_config(), str(path))
  exp.train()
  params = {s: helpers.params_of(exp.restore(step=s)[0]) for s in STEPS}
  return path, params


@pytest.fixture
def run(trained, tmp_path):
  """A fresh copy of the shared run: (workdir, {step: params})."""
  source, params = trained
  path = tmp_path / 'run'
  shutil.copytree(source, path)
  return path, params


def _snapshot(root):
  """{relative path: sha256} of every file (and '/' for every folder)."""
  out = {}
  for dirpath, dirs, files in os.walk(root):
    rel = os.path.relpath(dirpath, root)
    out[rel + '/'] = ''
    for name in files:
      data = pathlib.Path(dirpath, name).read_bytes()
      out[os.path.join(rel, name)] = hashlib.sha256(data).hexdigest()
  return out


def _step(workdir, step):
  return pathlib.Path(workdir) / 'checkpoints' / str(step)


def _largest_chunk(workdir, step):
  files = [p for p in (_step(workdir, step) / 'state').rglob('*')
           if p.is_file()]
  return max(files, key=lambda p: p.stat().st_size)


def _flip_bit(path, offset=None):
  data = bytearray(path.read_bytes())
  i = len(data) // 2 if offset is None else offset
  data[i] ^= 0x01
  path.write_bytes(bytes(data))


def _flip_64(path):
  data = bytearray(path.read_bytes())
  i = len(data) // 2
  data[i:i + 64] = bytes(b ^ 0xFF for b in data[i:i + 64])
  path.write_bytes(bytes(data))


def _truncate(path):
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])


def _garbage(path):
  path.write_bytes(b'\x00garbage{' * 7)


# Each damages step 6 of a workdir; the warning's reason starts as given.
DAMAGE = {
    'one_bit_in_largest_chunk': (lambda w: _flip_bit(_largest_chunk(w, 6)),
                                 'digest mismatch in state/'),
    '64_bytes_in_largest_chunk': (lambda w: _flip_64(_largest_chunk(w, 6)),
                                  'digest mismatch in state/'),
    'truncated_chunk': (lambda w: _truncate(_largest_chunk(w, 6)),
                        'digest mismatch in state/'),
    'deleted_chunk': (lambda w: _largest_chunk(w, 6).unlink(),
                      'missing file state/'),
    'garbage_METADATA': (
        lambda w: _garbage(_step(w, 6) / 'state' / '_METADATA'),
        'digest mismatch in state/_METADATA)'),
    'garbage_manifest': (
        lambda w: _garbage(_step(w, 6) / 'state' / 'manifest.ocdbt'),
        'digest mismatch in state/manifest.ocdbt)'),
    'deleted_state': (lambda w: shutil.rmtree(_step(w, 6) / 'state'),
                      'missing file state/'),
    'deleted_data_json': (
        lambda w: (_step(w, 6) / 'data' / 'process_0-of-1.json').unlink(),
        'missing file data/process_0-of-1.json)'),
    'garbage_data_json': (
        lambda w: _garbage(_step(w, 6) / 'data' / 'process_0-of-1.json'),
        'digest mismatch in data/process_0-of-1.json)'),
}


def _one_warning(capsys):
  err = capsys.readouterr().err
  lines = [l for l in err.splitlines() if l.startswith('warning:')]
  assert len(lines) == 1, err
  return lines[0]


def test_every_step_has_a_digest_that_orbax_does_not_list(run):
  workdir, _ = run
  for step in STEPS:
    assert ckpt_lib.verify_digest(str(_step(workdir, step))) is True
  ckpt = ckpt_lib.Checkpointer(str(workdir / 'checkpoints'), create=False)
  try:
    assert ckpt.all_steps() == STEPS
  finally:
    ckpt.close()
  assert (workdir / workdir_lib.LOCK_FILE).read_text().startswith('pid ')


@pytest.mark.parametrize('damage', sorted(DAMAGE))
def test_damaged_latest_step_falls_back_with_one_warning(run, damage,
                                                         capsys):
  workdir, params = run
  damage, reason = DAMAGE[damage]
  damage(workdir)
  before = _snapshot(workdir)
  capsys.readouterr()
  exp = train.Experiment(_config(), str(workdir))
  state, step = exp.restore()
  assert step == 4
  helpers.assert_trees_equal(helpers.params_of(state), params[4])
  warning = _one_warning(capsys)
  assert warning.startswith(f'warning: checkpoint step 6 ({reason}')
  assert warning.endswith(f' in {workdir}/checkpoints cannot be used; '
                          'restored step 4')
  # The evaluate / notebook path: the same fallback, nothing changed.
  restored = workdir_lib.restore_params(str(workdir))
  helpers.assert_trees_equal(restored, params[4])
  assert _one_warning(capsys) == warning
  assert _snapshot(workdir) == before


def test_one_bit_is_named_with_its_file(run, capsys):
  workdir, _ = run
  chunk = _largest_chunk(workdir, 6)
  _flip_bit(chunk, offset=100)
  train.Experiment(_config(), str(workdir)).restore()
  rel = chunk.relative_to(_step(workdir, 6)).as_posix()
  assert f'(digest mismatch in {rel})' in _one_warning(capsys)


def test_step_without_digest_unreadable_is_skipped(run, capsys):
  """No digest to check (an older run): orbax's read error decides."""
  workdir, params = run
  (_step(workdir, 6) / ckpt_lib.DIGEST_FILE).unlink()
  _garbage(_step(workdir, 6) / 'state' / '_METADATA')
  capsys.readouterr()
  state, step = train.Experiment(_config(), str(workdir)).restore()
  assert step == 4
  helpers.assert_trees_equal(helpers.params_of(state), params[4])
  warning = _one_warning(capsys)
  assert warning.startswith('warning: checkpoint step 6 (unreadable: ')


def test_step_without_digest_that_reads_is_restored_unverified(run, capsys):
  workdir, params = run
  (_step(workdir, 6) / ckpt_lib.DIGEST_FILE).unlink()
  capsys.readouterr()
  state, step = train.Experiment(_config(), str(workdir)).restore()
  assert step == 6
  helpers.assert_trees_equal(helpers.params_of(state), params[6])
  warning = _one_warning(capsys)
  assert 'step 6' in warning and 'restored unverified' in warning


def test_several_bad_steps_are_one_warning(run, capsys):
  workdir, params = run
  _flip_bit(_largest_chunk(workdir, 6))
  shutil.rmtree(_step(workdir, 4) / 'state')
  capsys.readouterr()
  state, step = train.Experiment(_config(), str(workdir)).restore()
  assert step == 2
  helpers.assert_trees_equal(helpers.params_of(state), params[2])
  warning = _one_warning(capsys)
  assert warning.startswith('warning: checkpoint steps 6 (digest mismatch')
  assert '4 (missing file state/' in warning
  assert warning.endswith('restored step 2')


def test_asked_for_step_that_is_corrupt_is_an_error(run):
  workdir, _ = run
  _flip_bit(_largest_chunk(workdir, 4))
  exp = train.Experiment(_config(), str(workdir))
  with pytest.raises(CheckpointError,
                     match=r'Checkpoint step 4 .* cannot be used \(digest'):
    exp.restore(step=4)
  with pytest.raises(CheckpointError, match='step 4'):
    workdir_lib.restore_params(str(workdir), step=4)
  with pytest.raises(FileNotFoundError, match=r'step 5 .*\[2, 4, 6\]'):
    exp.restore(step=5)


def test_no_usable_step_is_one_error_line_and_status_2(run):
  workdir, _ = run
  for step in STEPS:
    _flip_bit(_largest_chunk(workdir, step))
  before = _snapshot(workdir)
  with pytest.raises(CheckpointError, match=(
      r'No usable checkpoint in .*: step 6 \(digest mismatch .*\); step 4 '
      r'\(digest mismatch .*\); step 2 \(digest mismatch .*\)\.')):
    train.Experiment(_config(), str(workdir)).restore()
  proc = helpers.run_main(workdir, '--mode=evaluate', config=None,
                          check=False)
  assert proc.returncode == 2, proc.stderr[-3000:]
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(
      'error: No usable checkpoint in '), proc.stderr[-3000:]
  assert _snapshot(workdir) == before


def test_training_on_no_usable_step_changes_no_byte(run):
  """The refusal comes after the lock was taken: the lock file is put back
  as it was (or removed, when the run created it)."""
  workdir, _ = run
  for step in STEPS:
    _flip_bit(_largest_chunk(workdir, step))
  lock = workdir / workdir_lib.LOCK_FILE
  exp = train.Experiment(_config(train__num_steps=8), str(workdir))
  ckpt = exp.checkpointer()
  try:
    assert ckpt.latest_usable_step() is None
  finally:
    ckpt.close()
  for previous in (None, 'pid 1 on elsewhere\n'):
    if previous is None:
      lock.unlink()
    else:
      lock.write_text(previous)
    before = _snapshot(workdir)
    with pytest.raises(CheckpointError, match='No usable checkpoint in '):
      exp.train()
    assert _snapshot(workdir) == before
  assert lock.read_text() == 'pid 1 on elsewhere\n'


def test_start_step_is_the_newest_usable_one(run, monkeypatch, capsys):
  """main's start step (and its 'resuming from' line) skips a corrupt
  newest step, as the restore does."""
  from experiments import main  # pylint: disable=g-import-not-at-top
  workdir, _ = run
  _flip_bit(_largest_chunk(workdir, 6))
  exp = train.Experiment(_config(train__num_steps=8), str(workdir))
  ckpt = exp.checkpointer()
  try:
    assert (ckpt.latest_step(), ckpt.latest_usable_step()) == (6, 4)
  finally:
    ckpt.close()
  # Training itself (restore step 4, set step 6 aside) is tested above.
  monkeypatch.setattr(exp, 'train', lambda: types.SimpleNamespace(step=4))
  capsys.readouterr()
  trained = main.train_and_evaluate(exp)
  assert trained.start_step == 4
  out, err = capsys.readouterr()
  assert f'resuming from step 4 of 8 in {workdir}\n' in out
  assert not err  # the restore's one warning comes from training


def test_resumed_training_sets_the_bad_step_aside_and_saves_it_again(
    run, capsys):
  workdir, params = run
  chunk = _largest_chunk(workdir, 6)
  _flip_bit(chunk)
  bad = _snapshot(_step(workdir, 6))
  capsys.readouterr()
  exp = train.Experiment(_config(train__num_steps=8), str(workdir))
  state = exp.train()
  assert int(state.step) == 8
  assert 'restored step 4' in _one_warning(capsys)
  # The bad step is kept, untouched, where orbax does not look.
  assert _snapshot(workdir / 'checkpoints' / 'corrupt' / '6') == bad
  ckpt = exp.checkpointer()
  try:
    assert ckpt.all_steps() == [4, 6, 8]  # max_to_keep 3; 6 saved afresh
  finally:
    ckpt.close()
  for step in (6, 8):
    assert ckpt_lib.verify_digest(str(_step(workdir, step)))
  # The new step 6 continues from step 4: the uninterrupted run's step 6.
  helpers.assert_trees_equal(helpers.params_of(exp.restore(step=6)[0]),
                             params[6])
  capsys.readouterr()
  assert exp.restore()[1] == 8
  assert 'warning' not in capsys.readouterr().err


# ------------------------------------------------------------------- lock
_HOLDER = textwrap.dedent('''
    import sys, time
    from jaxgen import workdir
    with workdir.exclusive(sys.argv[1]):
      print('locked', flush=True)
      time.sleep(600)
''')


def test_second_trainer_fails_fast_and_kill_9_frees_the_lock(
    run, monkeypatch):
  from experiments import main  # pylint: disable=g-import-not-at-top
  workdir, _ = run
  holder = subprocess.Popen(
      [sys.executable, '-c', _HOLDER, str(workdir)], cwd=helpers.REPO_ROOT,
      env=helpers.subprocess_env(), stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'locked'
    before = _snapshot(workdir)
    exp = train.Experiment(_config(train__num_steps=8), str(workdir))
    with pytest.raises(WorkdirLockedError,
                       match=rf'in use by another training run \(pid '
                       rf'{holder.pid} on '):
      exp.train()
    assert _snapshot(workdir) == before
    # Readers take no lock.
    assert exp.restore()[1] == 6
    # experiments.main reads no checkpoint before it holds the lock: the
    # first run may be deleting the step it would read (max_to_keep).
    def no_reading(*args, **kwargs):
      raise AssertionError('a checkpoint was read before the lock was held')
    monkeypatch.setattr(ckpt_lib.Checkpointer, '__init__', no_reading)
    with pytest.raises(WorkdirLockedError, match=str(holder.pid)):
      main.train_and_evaluate(exp)
    monkeypatch.undo()
    assert _snapshot(workdir) == before
  finally:
    holder.kill()  # SIGKILL: the operating system releases the lock
    holder.wait(timeout=60)
  with workdir_lib.exclusive(str(workdir)):
    pass


def _latest(workdir):
  """The newest digested step, read from the directory listing alone: an
  orbax manager opened here would race the trainer's deletion of old steps
  (max_to_keep) in the other process."""
  directory = pathlib.Path(workdir) / 'checkpoints'
  if not directory.is_dir():
    return None
  steps = [int(p.name) for p in directory.iterdir()
           if p.name.isdigit() and (p / ckpt_lib.DIGEST_FILE).is_file()]
  return max(steps, default=None)


def test_two_trainers_on_one_workdir(tmp_path):
  """The second stops at once naming the first's PID; the first goes on
  and ends cleanly."""
  workdir = tmp_path / 'two'
  first = subprocess.Popen(
      helpers.main_command(workdir, '--config.train.num_steps=1000000',
                           '--config.train.checkpoint_every_steps=5',
                           '--config.train.async_checkpointing=True'),
      cwd=helpers.REPO_ROOT, env=helpers.subprocess_env(),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    start = time.time()
    while (_latest(workdir) or 0) < 5:
      assert first.poll() is None, first.communicate()
      assert time.time() - start < 180
      time.sleep(0.2)
    second = helpers.run_main(workdir, check=False)
    assert second.returncode == 2
    errors = [l for l in second.stderr.splitlines() if l.startswith('error')]
    assert len(errors) == 1 and 'Traceback' not in second.stderr
    assert f'in use by another training run (pid {first.pid} on ' in (
        errors[0])
    reached = _latest(workdir)
    while _latest(workdir) < reached + 5:  # the first still trains
      assert first.poll() is None, first.communicate()
      time.sleep(0.2)
  finally:
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=120)
  assert first.returncode == 128 + signal.SIGTERM, err[-3000:]
  step = _latest(workdir)
  assert f'stopped at step {step}' in out
  assert ckpt_lib.verify_digest(str(_step(workdir, step)))
  assert not list((workdir / 'checkpoints').glob('*tmp*'))


# ------------------------------------------------------------ failed saves
def _checkpoint_files(workdir):
  return _snapshot(pathlib.Path(workdir) / 'checkpoints')


def test_failed_save_stops_training_and_touches_nothing(run, monkeypatch):
  workdir, _ = run
  before = _checkpoint_files(workdir)
  real_save = ocp.CheckpointManager.save
  saved = []

  def save(self, step, *args, **kwargs):
    if step > 6:
      raise OSError(28, 'No space left on device')
    saved.append(step)
    return real_save(self, step, *args, **kwargs)

  monkeypatch.setattr(ocp.CheckpointManager, 'save', save)
  exp = train.Experiment(_config(train__num_steps=12,
                                 train__log_every_steps=1), str(workdir))
  with pytest.raises(CheckpointSaveError, match=(
      r'Saving checkpoint step 8 to .*checkpoints failed: OSError: \[Errno '
      r'28\] No space left on device\. Training stopped; the last intact '
      r'checkpoint is step 6\.')):
    exp.train()
  assert saved == []
  assert _checkpoint_files(workdir) == before
  steps = [json.loads(l)['step']
           for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert max(steps) == 8  # stopped at the failed save


def test_full_disk_is_found_before_writing(run, monkeypatch):
  workdir, _ = run
  before = _checkpoint_files(workdir)
  usage = shutil.disk_usage(workdir)
  monkeypatch.setattr(ckpt_lib.shutil, 'disk_usage',
                      lambda path: usage._replace(free=1000))
  exp = train.Experiment(_config(train__num_steps=12), str(workdir))
  with pytest.raises(CheckpointSaveError, match=(
      r'Saving checkpoint step 8 to .* failed: OSError: \[Errno 28\] No '
      r'space left on device: 1,000 bytes free, a checkpoint takes about '
      r'[\d,]+\. Training stopped; the last intact checkpoint is step 6\.')):
    exp.train()
  assert _checkpoint_files(workdir) == before


_FILE_SIZE_LIMIT = textwrap.dedent('''
    import resource, runpy, signal, sys
    # Writes past 200 kB fail with EFBIG ("File too large"), as a full disk
    # fails them: in orbax's background thread, while training goes on.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    sys.argv = ['main'] + sys.argv[1:]
    runpy.run_module('experiments.main', run_name='__main__')
''')


def test_one_line_drops_tensorstore_payloads_but_the_os_error():
  spec = '{\\"driver\\":\\"zarr\\",\\"shape\\":[256,16],' + 'x' * 3000 + '}'
  error = ValueError(
      'OUT_OF_RANGE: Error writing "params/0": Failed to write 5 bytes to '
      "file 9: File too large [source locations='file.cc:12'] "
      f"[tensorstore_spec='{spec}'] [os_error_code='27']\nsecond line")
  assert ckpt_lib._one_line(error) == (
      'ValueError: OUT_OF_RANGE: Error writing "params/0": Failed to write 5 '
      "bytes to file 9: File too large [os_error_code='27']")


def _without_progress_bar(stderr):
  """stderr without tqdm's redrawn progress bar (``vae train:  25%|...``)."""
  return re.sub(r'\r?\w+ train: +\d+%\|[^|\n]*\| *\d+/\d+ \[[^\]\n]*\]', '',
                stderr)


def test_failed_background_save_stops_at_once_via_main(run):
  workdir, _ = run
  before = _checkpoint_files(workdir)
  cmd = [sys.executable, '-c', _FILE_SIZE_LIMIT] + helpers.main_command(
      workdir, '--config.train.num_steps=40',
      '--config.train.checkpoint_every_steps=2',
      '--config.train.async_checkpointing=True',
      '--config.train.log_every_steps=1')[3:]
  env = helpers.subprocess_env(JAX_ENABLE_COMPILATION_CACHE='false')
  proc = subprocess.run(cmd, cwd=helpers.REPO_ROOT, env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr[-3000:]
  # stderr holds the progress bar and the one error line, nothing else: no
  # orbax error logs, no tracebacks of the save's other writes (before,
  # after or inside the line).
  errors = [l for l in _without_progress_bar(proc.stderr).splitlines()
            if l.strip()]
  assert len(errors) == 1, proc.stderr[-3000:]
  assert errors[0].startswith(
      f'error: Saving checkpoint step 8 to {workdir}/checkpoints failed: ')
  assert 'File too large' in errors[0]
  assert errors[0].endswith(
      'Training stopped; the last intact checkpoint is step 6.')
  after = _checkpoint_files(workdir)
  assert {k: v for k, v in after.items() if not k.startswith('8.')} == before
  # Stopped at the first check after the failure, not at step 40.
  records = (workdir / 'metrics.jsonl').read_text().splitlines()
  assert len(records) < 12


# ------------------------------------------------------------ refused runs
def test_refused_changed_config_leaves_the_workdir_as_it_was(run):
  workdir, _ = run
  before = _snapshot(workdir)
  exp = train.Experiment(_config(model__latent_dim=5, train__num_steps=8),
                         str(workdir))
  with pytest.raises(ConfigError, match='posterior/kernel'):
    exp.train()
  assert _snapshot(workdir) == before  # no config_<time>.json either


@pytest.mark.parametrize('mode', ['evaluate', 'sample'])
def test_reading_an_empty_workdir_creates_nothing(tmp_path, mode):
  from experiments import main  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / 'empty'
  workdir.mkdir()
  (workdir / 'notes.txt').write_text('mine')
  before = _snapshot(workdir)
  with pytest.raises(FileNotFoundError, match='(?i)no checkpoint in'):
    main.run(_config(), str(workdir), mode)
  assert _snapshot(workdir) == before
  with pytest.raises(FileNotFoundError):
    workdir_lib.restore_params(str(workdir))
  assert _snapshot(workdir) == before


# ------------------------------------------------------- multi-process stop
def _train_records(workdir):
  path = pathlib.Path(workdir) / 'metrics.jsonl'
  return path.read_text().splitlines() if path.exists() else []


def test_two_processes_agree_on_the_step_to_save(tmp_path):
  """A SIGTERM to one process of two (not the one that reports): both save
  the same step and exit 143 (orbax's save is collective; a step each
  would hang)."""
  signalled = 1
  workdir = tmp_path / 'two'
  port = helpers.free_port()
  procs = []
  for pid in range(2):
    cmd = helpers.main_command(
        workdir, '--config.train.num_steps=1000000',
        '--config.train.log_every_steps=1',
        '--config.train.checkpoint_every_steps=1000000',
        '--config.parallel.num_processes=2',
        f'--config.parallel.process_id={pid}',
        f'--config.parallel.coordinator_address=localhost:{port}',
        '--config.parallel.local_device_count=1')
    procs.append(subprocess.Popen(
        cmd, cwd=helpers.REPO_ROOT, env=helpers.subprocess_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  try:
    start = time.time()
    while len(_train_records(workdir)) < 3:
      for p in procs:
        assert p.poll() is None, p.communicate()
      assert time.time() - start < 240
      time.sleep(0.2)
    procs[signalled].send_signal(signal.SIGTERM)
    outputs = [p.communicate(timeout=120) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  for p, (out, err) in zip(procs, outputs):
    assert p.returncode == 128 + signal.SIGTERM, f'{out[-2000:]}\n{err[-3000:]}'
  step = _latest(workdir)
  assert step is not None and step >= 3
  assert f'stopped at step {step} of 1000000' in outputs[0][0]
  assert ckpt_lib.verify_digest(str(_step(workdir, step)))


def test_asyncio_logs_of_failed_orbax_writes_are_dropped():
  """A failed save's unretrieved write futures, logged by asyncio when they
  are collected (possibly after the run stopped), are not shown; other
  asyncio errors are."""
  import logging as py_logging
  logger = py_logging.getLogger('asyncio')
  def passes(message):
    record = logger.makeRecord('asyncio', py_logging.ERROR, __file__, 1,
                               message, (), None)
    return logger.filter(record)
  assert not passes('_GatheringFuture exception was never retrieved\n'
                    'future: <... Error writing "x" in OCDBT database at '
                    '"/w/checkpoints/8.orbax-checkpoint-tmp/state" ...>')
  assert passes('Task exception was never retrieved\nfuture: <Task other>')


def test_host_non_finite_check_agrees_with_the_jitted_reduction():
  """The trainer's check before a save reads the replicated parameters on
  the host; it names the same leaves as a reduction on the devices."""
  w = np.ones((3, 2), jnp.bfloat16)
  w[1, 0] = np.inf
  tree = jax.device_put({
      'w': w, 'b': np.zeros(4, np.float32), 'count': np.arange(3),
      'ema': {'k': np.full((2,), np.nan, np.float16),
              'ok': np.ones((2, 2), np.float16)}})
  host = train.non_finite_leaves((tree, None))
  assert host == {'0/w': True, '0/b': False, '0/ema/k': True,
                  '0/ema/ok': False}
  device = jax.device_get(
      train._non_finite_on_device((tree, None)))  # pylint: disable=protected-access
  assert host == {k: bool(v) for k, v in device.items()}
