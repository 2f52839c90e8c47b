"""orbax checkpoints of the whole train state and the data iterator position.

Each step directory holds two items: ``state`` (the `TrainState` pytree,
restored onto an abstract target so optax states come back with their
types) and ``data`` (the grain iterator's JSON state, so a resumed run
continues at the same batch). `read_state_subtree` reads one subtree of the
state (the parameters) as NumPy arrays without that target, for code that
uses a finished run without training it.

Safety, by construction of orbax and of this wrapper:
- a save writes into a temporary directory that is renamed only once
  complete; a step killed mid-save is ignored by `latest_step` and never
  restored;
- once orbax has finalized a step, its SHA-256 digest of every file is
  written into ``<step>/jaxgen_digest.json`` (`DIGEST_FILE`, atomically):
  at the next save, at `Checkpointer.poll` once the background save is
  done, or at `Checkpointer.close`;
- a restore verifies that digest first. A step whose files differ from it,
  or that orbax cannot read, is skipped: the newest intact step is restored
  instead, with one ``warning:`` line on stderr naming the skipped steps
  and why. Nothing is deleted; a trainer moves the skipped steps aside into
  ``corrupt/`` (`Checkpointer.set_aside`), out of orbax's sight, so the
  same step numbers can be saved again. A step without a digest (written
  by an older version, or the process died between orbax's finalize and
  the digest) is restored when orbax can read it, with a warning that it
  is unverified. No readable step left: a `CheckpointError`;
- a failed save (disk full, permissions; an asynchronous one surfaces at
  the next `poll`, `save` or `close`) raises `CheckpointSaveError` naming
  the cause and the last intact step; earlier steps are not touched. It is
  the only report: orbax's error logs and the tracebacks of the save's
  other writes (asyncio's logs, tensorstore's callbacks to a closed loop)
  are dropped, whenever they come;
- an existing step is never overwritten (`save` skips a step that exists);
- restoring into a state whose shapes differ (the model config changed)
  raises a `ConfigError` that names the leaf, before anything is loaded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import logging as py_logging
import os
import re
import shutil
import sys
import threading
from typing import Any, Callable, Iterable

from absl import logging
import grain
import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxgen.errors import CheckpointError
from jaxgen.errors import CheckpointSaveError
from jaxgen.errors import ConfigError

STATE, DATA = 'state', 'data'  # the two items of a step directory
DIGEST_FILE = 'jaxgen_digest.json'  # in each step directory
CORRUPT_DIR = 'corrupt'  # beside the steps: the ones a trainer set aside


def _leaf_name(path) -> str:
  return jax.tree_util.keystr(path, simple=True, separator='/')


# A payload tensorstore appends to a message, e.g. [tensorstore_spec='{...}'].
_PAYLOAD = re.compile(r"\s*\[([^\[\]=']+)='(?:[^'\\]|\\.)*'\]")


def _one_line(error: BaseException, head: int = 120, tail: int = 280) -> str:
  """``Type: first line of the message``: the cause, in one line.

  tensorstore's payloads are dropped but for the operating system's error
  code (a spec of the array written can run to thousands of characters). A
  long message keeps its start and its end (tensorstore ends with the
  operating system's reason, e.g. ``File too large``).
  """
  text = str(error).strip().splitlines()
  text = text[0] if text else ''
  text = _PAYLOAD.sub(
      lambda m: m.group(0) if m.group(1) == 'os_error_code' else '', text)
  if len(text) > head + tail + 5:
    text = f'{text[:head]} ... {text[-tail:]}'
  return f'{type(error).__name__}: {text}' if text else type(error).__name__


class _DropOrbaxErrors(py_logging.Filter):
  """Drops orbax's own error logs (tracebacks from its background threads).

  Every failure they report reaches the caller as one `CheckpointError`
  naming the cause, so the logs would only repeat it at length. Also drops
  orbax's warning that a manager opened read-only is read-only.
  """

  def filter(self, record: py_logging.LogRecord) -> bool:
    if f'{os.sep}orbax{os.sep}' not in record.pathname:
      return True
    if record.levelno >= py_logging.ERROR:
      return False
    # A read-only manager (`read_state_subtree`: another run's parameters, the
    # sample-quality classifier) is what jaxgen asked for, not news.
    return not (record.levelno == py_logging.WARNING and
                record.getMessage().startswith('Given directory is read only'))


class _QuietOrbax:
  """Keeps `_DropOrbaxErrors` on absl's logger while anyone needs it (open
  Checkpointers, reads), counted, so one closing does not end another's."""

  def __init__(self):
    self._filter = _DropOrbaxErrors()
    self._users = 0
    self._lock = threading.Lock()

  def start(self) -> None:
    with self._lock:
      if not self._users:
        logging.get_absl_logger().addFilter(self._filter)
      self._users += 1

  def end(self) -> None:
    with self._lock:
      self._users -= 1
      if not self._users:
        logging.get_absl_logger().removeFilter(self._filter)


_QUIET = _QuietOrbax()


class _DropOrbaxAsyncioErrors(py_logging.Filter):
  """Drops asyncio's "exception was never retrieved" logs of orbax writes.

  When a background save fails, orbax's other pending writes fail with the
  same cause; asyncio logs each unretrieved one when its future is
  collected, which can be after the save's `CheckpointError` has stopped
  the run and the orbax filter is gone. The cause was already reported
  once, so these records are dropped whenever they come.
  """

  def filter(self, record: py_logging.LogRecord) -> bool:
    if record.levelno < py_logging.ERROR:
      return True
    if 'orbax' in record.getMessage():
      return False
    tb = record.exc_info[2] if record.exc_info else None
    while tb is not None:
      if f'{os.sep}orbax{os.sep}' in tb.tb_frame.f_code.co_filename:
        return False
      tb = tb.tb_next
    return True


py_logging.getLogger('asyncio').addFilter(_DropOrbaxAsyncioErrors())


def _is_closed_loop_callback(unraisable: Any) -> bool:
  """Whether an unraisable exception is a callback refused by a closed loop.

  tensorstore completes each write by handing a callback to the asyncio
  loop that awaits it (``loop.call_soon_threadsafe``), from its own
  threads. When a background save fails, orbax's loop ends with the first
  error and closes while the save's other writes are still in flight; each
  of them then fails in ``call_soon_threadsafe`` with "Event loop is
  closed", which tensorstore can only report as unraisable: a traceback on
  stderr, at any time, possibly in the middle of the run's one ``error:``
  line. Only exceptions raised inside asyncio itself match.
  """
  if (unraisable.exc_type is not RuntimeError or
      str(unraisable.exc_value) != 'Event loop is closed'):
    return False
  tb = unraisable.exc_traceback
  files = []
  while tb is not None:
    files.append(tb.tb_frame.f_code.co_filename)
    tb = tb.tb_next
  return bool(files) and all(f'{os.sep}asyncio{os.sep}' in f for f in files)


class _DropClosedLoopCallbacks:
  """`sys.unraisablehook` without `_is_closed_loop_callback`'s tracebacks.

  The failed save they belong to is reported once, as a
  `CheckpointSaveError`; every other unraisable exception goes to the hook
  that was installed before.
  """

  def __init__(self, previous: Callable[[Any], Any]):
    self.previous = previous

  def __call__(self, unraisable: Any) -> None:
    if not _is_closed_loop_callback(unraisable):
      self.previous(unraisable)


if not isinstance(sys.unraisablehook, _DropClosedLoopCallbacks):
  sys.unraisablehook = _DropClosedLoopCallbacks(sys.unraisablehook)


@contextlib.contextmanager
def _quiet_orbax_errors():
  _QUIET.start()
  try:
    yield
  finally:
    _QUIET.end()


# ------------------------------------------------------------------ digests
def _step_dir(directory: str, step: int) -> str:
  return os.path.join(directory, str(step))


def _file_digests(step_dir: str) -> dict[str, str]:
  """{path relative to `step_dir`: sha256 hex} of every file but the digest."""
  digests = {}
  for root, dirs, files in os.walk(step_dir):
    dirs.sort()
    for name in sorted(files):
      path = os.path.join(root, name)
      rel = os.path.relpath(path, step_dir).replace(os.sep, '/')
      if rel in (DIGEST_FILE, DIGEST_FILE + '.tmp'):
        continue
      h = hashlib.sha256()
      with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
          h.update(block)
      digests[rel] = h.hexdigest()
  return digests


def write_digest(step_dir: str) -> str:
  """Writes ``<step_dir>/jaxgen_digest.json``: sha256 of each file in it."""
  # jaxgen.workdir sits above this module (it reads checkpoints).
  from jaxgen import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  text = json.dumps({'sha256': _file_digests(step_dir)}, indent=1,
                    sort_keys=True)
  return workdir_lib.atomic_write(os.path.join(step_dir, DIGEST_FILE), text)


class _Unusable(Exception):
  """A step that cannot be restored; the message says why (one line)."""


def verify_digest(step_dir: str) -> bool:
  """Checks the files of a step against its digest.

  Returns:
    True when every file matches; False when the step has no digest
    (unverified: written before digests, or before its digest was recorded).

  Raises:
    _Unusable: a file differs from the digest, is missing or was added, or
      the digest itself is unreadable.
  """
  path = os.path.join(step_dir, DIGEST_FILE)
  if not os.path.isfile(path):
    if not os.path.isdir(step_dir):
      raise _Unusable('the step directory is gone')
    return False
  try:
    with open(path) as f:
      expected = json.load(f)['sha256']
    if not isinstance(expected, dict):
      raise TypeError('sha256 is not a mapping')
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise _Unusable(f'unreadable {DIGEST_FILE} ({_one_line(e)})') from e
  actual = _file_digests(step_dir)
  for rel in sorted(expected):
    if rel not in actual:
      raise _Unusable(f'missing file {rel}')
    if actual[rel] != expected[rel]:
      raise _Unusable(f'digest mismatch in {rel}')
  extra = sorted(set(actual) - set(expected))
  if extra:
    raise _Unusable(f'unexpected file {extra[0]}')
  return True


@dataclasses.dataclass
class Restored:
  """What `restore_newest` read, and what it passed over.

  Attributes:
    value: what the read function returned for `step`.
    step: the step restored.
    skipped: (step, reason) of each newer step that could not be used.
    verified: whether `step` matched its digest (False: it has none).
  """
  value: Any
  step: int
  skipped: list[tuple[int, str]]
  verified: bool


def _try_step(directory: str, step: int, read: Callable[[int], Any],
              passthrough: tuple[type[BaseException], ...]
              ) -> tuple[Restored | None, str]:
  """(Restored, '') when `step` verifies and reads, else (None, why)."""
  try:
    verified = verify_digest(_step_dir(directory, step))
    with _quiet_orbax_errors():
      value = read(step)
  except passthrough:
    raise
  except _Unusable as e:
    return None, str(e)
  except Exception as e:  # pylint: disable=broad-except
    return None, f'unreadable: {_one_line(e)}'
  return Restored(value, step, [], verified), ''


def _warn(directory: str, restored: Restored) -> None:
  message = restore_warning(directory, restored)
  if message and jax.process_index() == 0:
    print(message, file=sys.stderr, flush=True)


def restore_newest(directory: str, steps: Iterable[int],
                   read: Callable[[int], Any], *,
                   passthrough: tuple[type[BaseException], ...] = (
                       ConfigError,)) -> Restored:
  """Restores the newest of `steps` that matches its digest and reads.

  Prints one ``warning:`` line on stderr (process 0) when a step was
  skipped or the one restored is unverified (`restore_warning`).

  Args:
    directory: the step directories' folder.
    steps: the candidates; tried newest first.
    read: reads one step (orbax); any exception but `passthrough` marks the
      step unusable.
    passthrough: exceptions of `read` that are not about the files (a config
      that does not fit the checkpoint): raised as they are.

  Raises:
    FileNotFoundError: `steps` is empty.
    CheckpointError: no step is usable (one line naming each and why).
  """
  skipped = []
  for step in sorted(steps, reverse=True):
    restored, why = _try_step(directory, step, read, passthrough)
    if restored is not None:
      restored.skipped = skipped
      _warn(directory, restored)
      return restored
    skipped.append((step, why))
  if not skipped:
    raise FileNotFoundError(f'No checkpoint in {directory}.')
  raise CheckpointError(
      f'No usable checkpoint in {directory}: '
      + '; '.join(f'step {s} ({why})' for s, why in skipped)
      + '. Nothing was changed; move the folder aside to start afresh.')


def restore_warning(directory: str, restored: Restored) -> str | None:
  """The one ``warning:`` line for a restore that skipped steps or is
  unverified, or None."""
  parts = []
  if restored.skipped:
    steps = ', '.join(f'{s} ({why})' for s, why in restored.skipped)
    plural = 's' if len(restored.skipped) > 1 else ''
    parts.append(f'checkpoint step{plural} {steps} in {directory} cannot be '
                 f'used; restored step {restored.step}')
  if not restored.verified:
    parts.append(f'checkpoint step {restored.step} in {directory} has no '
                 f'{DIGEST_FILE} (an older run, or one stopped before its '
                 'digest was written): restored unverified')
  return 'warning: ' + '; '.join(parts) if parts else None


def _restore_one(directory: str, step: int, read: Callable[[int], Any],
                 passthrough=(ConfigError,)) -> Restored:
  """Restores exactly `step` (verified); a `CheckpointError` if unusable."""
  restored, why = _try_step(directory, step, read, passthrough)
  if restored is None:
    raise CheckpointError(
        f'Checkpoint step {step} in {directory} cannot be used ({why}).')
  _warn(directory, restored)
  return restored


# ------------------------------------------------------------ checkpointer
class Checkpointer:
  """An orbax `CheckpointManager` for (train state, data iterator) pairs.

  Args:
    directory: where step directories live.
    max_to_keep: newest checkpoints kept; older ones are deleted.
    save_every: orbax's save interval; the trainer decides when to save and
      passes `force=True`.
    async_save: write in a background thread while training continues.
    create: create `directory` now (a trainer). Otherwise it is created by
      the first `save`, so reading a workdir never adds a folder to it.
  """

  def __init__(self, directory: str, *, max_to_keep: int = 3,
               save_every: int = 1000, async_save: bool = True,
               create: bool = True):
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep,
        save_interval_steps=save_every,
        enable_async_checkpointing=async_save,
        create=create)
    self._manager = ocp.CheckpointManager(
        self.directory, options=options,
        item_handlers={STATE: ocp.StandardCheckpointHandler(),
                       DATA: grain.checkpoint.CheckpointHandler()})
    self._undigested: list[int] = []  # saved, digest not yet written
    self._failed = False
    # orbax's background threads log a failed save at length; it is
    # raised here as one CheckpointSaveError instead.
    _QUIET.start()
    self._quiet = True

  def latest_step(self) -> int | None:
    """The newest complete step, or None (partial saves are not listed).

    It may still fail verification: `restore_latest` falls back past it.
    """
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def latest_usable_step(self) -> int | None:
    """The step `restore_latest` would restore, without restoring it.

    The newest step that matches its digest (or has none) and whose
    metadata orbax reads; None when there is no step or none is usable.
    Prints nothing and reads no array. A step without a digest whose arrays
    are unreadable passes here and is skipped by `restore_latest`.
    """
    for step in sorted(self.all_steps(), reverse=True):
      restored, _ = _try_step(self.directory, step,
                              self._manager.item_metadata, passthrough=())
      if restored is not None:
        return step
    return None

  # ------------------------------------------------------------- saving
  def _save_error(self, step: int, error: BaseException) -> CheckpointSaveError:
    self._failed = True
    self._undigested.clear()
    try:
      self._manager.reload()
      intact = [s for s in self._manager.all_steps() if s != step]
    except Exception:  # pylint: disable=broad-except
      intact = []
    last = (f'the last intact checkpoint is step {max(intact)}' if intact
            else 'no checkpoint was completed before it')
    return CheckpointSaveError(
        f'Saving checkpoint step {step} to {self.directory} failed: '
        f'{_one_line(error)}. Training stopped; {last}.')

  def _finish(self) -> None:
    """Waits for the save in flight; digests what it finalized."""
    try:
      with _quiet_orbax_errors():
        self._manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      step = self._undigested[-1] if self._undigested else -1
      raise self._save_error(step, e) from e
    if jax.process_index() == 0:
      for step in self._undigested:
        step_dir = _step_dir(self.directory, step)
        if os.path.isdir(step_dir):  # not yet deleted by max_to_keep
          write_digest(step_dir)
    self._undigested.clear()

  def poll(self) -> None:
    """Digests a finished background save; raises `CheckpointSaveError` if
    it failed. Cheap while the save is still running: call it every step."""
    if self._undigested and not self._manager.is_saving_in_progress():
      self._finish()

  def _bytes_needed(self, state: Any) -> int:
    """About what a save takes: the newest step's files, else the state's
    arrays."""
    steps = self._manager.all_steps()
    if steps:
      step_dir = _step_dir(self.directory, max(steps))
      total = 0
      for root, _, files in os.walk(step_dir):
        for name in files:
          try:
            total += os.path.getsize(os.path.join(root, name))
          except OSError:
            pass
      if total:
        return total
    return sum(getattr(x, 'nbytes', 0) for x in jax.tree.leaves(state))

  def save(self, step: int, state: Any, data_iterator: Any = None, *,
           force: bool = False) -> bool:
    """Saves `state` (and the iterator position) at `step`.

    Returns True when a save was started. A step that already exists is left
    untouched, so a good checkpoint is never replaced. Raises
    `CheckpointSaveError` when this save, or the previous background one,
    failed, or when the disk has less room than the newest step takes (a
    full disk found before writing, rather than halfway through).
    """
    self._finish()
    if step in self._manager.all_steps():
      return False
    items = {STATE: ocp.args.StandardSave(state)}
    if data_iterator is not None:
      items[DATA] = grain.checkpoint.CheckpointSave(data_iterator)
    os.makedirs(self.directory, exist_ok=True)
    needed, free = self._bytes_needed(state), shutil.disk_usage(
        self.directory).free
    if free < needed:
      raise self._save_error(step, OSError(
          errno.ENOSPC, f'{os.strerror(errno.ENOSPC)}: {free:,} bytes free, '
          f'a checkpoint takes about {needed:,}'))
    try:
      with _quiet_orbax_errors():
        saved = self._manager.save(step, args=ocp.args.Composite(**items),
                                   force=force)
    except Exception as e:  # pylint: disable=broad-except
      raise self._save_error(step, e) from e
    if saved:
      logging.info('Saving checkpoint for step %d to %s', step, self.directory)
      self._undigested.append(step)
      self.poll()  # a synchronous save is complete already
    return saved

  # ------------------------------------------------------------ restoring
  def check_compatible(self, step: int, abstract_state: Any) -> None:
    """Raises `ConfigError` naming each leaf whose saved shape differs."""
    metadata = self._manager.item_metadata(step)[STATE]
    tree = getattr(metadata, 'tree', metadata)
    saved = {_leaf_name(p): tuple(getattr(m, 'shape', ()))
             for p, m in jax.tree_util.tree_leaves_with_path(tree)}
    wanted = {_leaf_name(p): tuple(getattr(a, 'shape', ()))
              for p, a in jax.tree_util.tree_leaves_with_path(abstract_state)}
    missing = sorted(set(wanted) - set(saved))
    extra = sorted(set(saved) - set(wanted))
    differ = sorted(k for k in set(saved) & set(wanted)
                    if saved[k] != wanted[k])
    if missing or extra or differ:
      lines = [f'  {k}: checkpoint {saved[k]} vs config {wanted[k]}'
               for k in differ[:10]]
      lines += [f'  {k}: not in the checkpoint' for k in missing[:10]]
      lines += [f'  {k}: only in the checkpoint' for k in extra[:10]]
      raise ConfigError(
          f'The checkpoint at step {step} in {self.directory} does not fit '
          'the model built from this config (config.model or the data shape '
          'differ from the run that wrote it). Use a new --workdir or the '
          'original config. Leaves that differ:\n' + '\n'.join(lines))

  def _read(self, step: int, abstract_state: Any,
            data_iterator: Any = None) -> Any:
    self.check_compatible(step, abstract_state)
    items = {STATE: ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None:
      items[DATA] = grain.checkpoint.CheckpointRestore(data_iterator)
    restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    logging.info('Restored checkpoint for step %d from %s', step,
                 self.directory)
    return restored[STATE]

  def restore(self, step: int, abstract_state: Any,
              data_iterator: Any = None) -> Any:
    """Restores the state at `step` onto `abstract_state`'s types/shardings.

    When `data_iterator` is given its position is restored in place. The
    step is verified against its digest; a `CheckpointError` when it
    cannot be used (no fallback: this step was asked for), a
    `FileNotFoundError` when there is no such step.
    """
    steps = self.all_steps()
    if step not in steps:
      raise FileNotFoundError(f'No checkpoint of step {step} in '
                              f'{self.directory}; its steps are {steps}.')
    return _restore_one(
        self.directory, step,
        lambda s: self._read(s, abstract_state, data_iterator)).value

  def restore_latest(self, abstract_state: Any,
                     data_iterator: Any = None) -> Restored:
    """The newest usable step (verified, readable), see `restore_newest`.

    Raises:
      FileNotFoundError: no checkpoint at all.
      CheckpointError: checkpoints, but none usable.
      ConfigError: the newest usable one does not fit `abstract_state`.
    """
    steps = self.all_steps()
    if not steps:
      raise FileNotFoundError(f'No checkpoint in {self.directory}.')
    return restore_newest(
        self.directory, steps,
        lambda s: self._read(s, abstract_state, data_iterator))

  def set_aside(self, steps: Iterable[int]) -> list[str]:
    """Moves unusable steps into ``corrupt/`` (never deletes them).

    orbax no longer lists them, so training saves those step numbers
    afresh and ``max_to_keep`` never counts or deletes them. Only process 0
    moves; all processes then reload the step list. Returns the new paths.
    """
    steps = list(steps)
    moved = []
    if steps and jax.process_index() == 0:
      aside = os.path.join(self.directory, CORRUPT_DIR)
      os.makedirs(aside, exist_ok=True)
      for step in steps:
        target = os.path.join(aside, str(step))
        n = 1
        while os.path.exists(target):
          target = os.path.join(aside, f'{step}-{n}')
          n += 1
        os.rename(_step_dir(self.directory, step), target)
        moved.append(target)
    if steps and jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      multihost_utils.sync_global_devices('jaxgen_checkpoint_set_aside')
    self._manager.reload()
    return moved

  def wait_until_finished(self) -> None:
    self._finish()

  def close(self) -> None:
    """Waits for the save in flight and digests it. After a failed save,
    closes quietly (the failure was raised already)."""
    try:
      if not self._failed:
        self._finish()
    finally:
      try:
        self._manager.close()
      except Exception:  # pylint: disable=broad-except
        if not self._failed:
          raise
      finally:
        if self._quiet:
          self._quiet = False
          _QUIET.end()


class _NoSubtree(KeyError):
  """The saved state has no such subtree: the caller's mistake, not the
  checkpoint's."""


def read_state_subtree(directory: str, name: str, *,
                       step: int | None = None) -> tuple[Any, int]:
  """One subtree of a saved state, as NumPy arrays, without a target state.

  Only the leaves under ``state[name]`` (e.g. 'params' or 'ema_params' of
  the `TrainState`) are read: orbax's partial restore, with the structure
  taken from the checkpoint's own metadata, so nothing needs to be built
  (no model, optimizer, mesh or data) and the optimizer state is never
  loaded. The values are the saved ones, bit for bit. The step is verified
  against its digest; without `step`, the newest usable one is read (the
  skipped ones named in one warning line), as `Checkpointer.restore_latest`.

  Args:
    directory: the step directories' folder (``<workdir>/checkpoints``).
    name: the key of the subtree in the saved state.
    step: the step to read; None reads the newest usable one.

  Returns:
    (nested dicts of np.ndarray, the step read).

  Raises:
    FileNotFoundError: no (such) complete checkpoint in `directory`.
    CheckpointError: the step (or, without `step`, every step) is unusable.
    KeyError: the saved state has no subtree `name`, or it is empty.
  """
  directory = os.path.abspath(directory)
  if not os.path.isdir(directory):
    raise FileNotFoundError(f'No checkpoint in {directory}: the folder does '
                            'not exist.')
  options = ocp.CheckpointManagerOptions(
      read_only=True, create=False, save_interval_steps=0, max_to_keep=None)
  with _quiet_orbax_errors():
    manager = ocp.CheckpointManager(
        directory, options=options,
        item_handlers={STATE: ocp.PyTreeCheckpointHandler(),
                       DATA: grain.checkpoint.CheckpointHandler()})

  def read(step):
    metadata = manager.item_metadata(step)[STATE]
    tree = getattr(metadata, 'tree', metadata)
    subtree = tree.get(name) if isinstance(tree, dict) else None
    if not jax.tree.leaves(subtree):
      raise _NoSubtree(f'The state saved at step {step} in {directory} has '
                       f'no {name!r}; it holds {sorted(tree)}.')
    restore_args = jax.tree.map(
        lambda _: ocp.RestoreArgs(restore_type=np.ndarray), subtree)
    restored = manager.restore(step, args=ocp.args.Composite(**{
        STATE: ocp.args.PyTreeRestore(item={name: subtree},
                                      restore_args={name: restore_args},
                                      partial_restore=True)}))
    return restored[STATE][name]

  try:
    steps = list(manager.all_steps())
    if step is None:
      if not steps:
        raise FileNotFoundError(f'No checkpoint in {directory}.')
      restored = restore_newest(directory, steps, read,
                                passthrough=(ConfigError, _NoSubtree))
    elif step not in steps:
      raise FileNotFoundError(f'No checkpoint of step {step} in {directory}; '
                              f'its steps are {sorted(steps)}.')
    else:
      restored = _restore_one(directory, step, read,
                              passthrough=(ConfigError, _NoSubtree))
  except _NoSubtree as e:
    raise KeyError(str(e.args[0])) from None
  finally:
    manager.close()
  return restored.value, restored.step
