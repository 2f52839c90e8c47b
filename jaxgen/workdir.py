"""A workdir without the trainer: its config and parameters, safe writes.

A finished run leaves ``<workdir>/config.json`` (the locked config it ran
with), orbax checkpoints, metrics and images. Code that only reads a run
(a code prior over a frozen VQ-VAE, the sample-quality scorer, the results
catalogue, notebooks) goes through this module instead of building a
trainer: `load_config` for its config (with the fields added since the run
was written filled in: `jaxgen.config_fields`), `restore_params` for the
parameters it evaluates with. Every file the project writes goes through
`atomic_write`, so a kill mid-write leaves the previous file or the new
one, never half of each. A training run holds `exclusive` (an flock on
``<workdir>/.lock``) for its whole life, so two trainers never write into
one workdir; readers (evaluate, sample, `restore_params`) take no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import socket
from typing import Any, Callable, IO, Iterator

import ml_collections

from jaxgen import checkpoint as ckpt_lib
from jaxgen import config_fields
from jaxgen.errors import WorkdirLockedError

CONFIG_FILE = 'config.json'
CHECKPOINT_DIR = 'checkpoints'
LOCK_FILE = '.lock'


def atomic_write(path: str, content: str | bytes | Callable[[IO], Any],
                 *, binary: bool = False) -> str:
  """Writes `path` through ``<path>.tmp`` and `os.replace`; returns `path`.

  Args:
    path: the file to (re)write; its folder is created when missing.
    content: the text or bytes to write, or a function that writes into the
      open temporary file (e.g. ``lambda f: image.save(f, format='PNG')``).
    binary: open the temporary file in binary mode (implied by bytes).
  """
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  binary = binary or isinstance(content, bytes)
  tmp = path + '.tmp'
  try:
    with open(tmp, 'wb' if binary else 'w') as f:
      if callable(content):
        content(f)
      else:
        f.write(content)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  return path


def _open_lock(path: str) -> tuple[int, bool]:
  """(descriptor, whether this call created the file) of the lock file."""
  while True:
    try:
      return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
    except FileExistsError:
      pass
    try:
      return os.open(path, os.O_RDWR), False
    except FileNotFoundError:  # removed in between by a run that failed
      continue


def _same_file(fd: int, path: str) -> bool:
  try:
    current = os.stat(path)
  except FileNotFoundError:
    return False
  held = os.fstat(fd)
  return (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino)


def _read_all(fd: int) -> bytes:
  return os.pread(fd, os.fstat(fd).st_size, 0)


@contextlib.contextmanager
def exclusive(workdir: str) -> Iterator[str]:
  """Holds the workdir's lock (one training run per workdir) while open.

  An exclusive, non-blocking ``fcntl.flock`` on ``<workdir>/.lock``, which
  then names the holder (``pid <pid> on <host>``). The operating system
  releases the lock when the process ends, however it ends (kill -9
  included), so a lock is never stale. When the block ends normally the
  file stays, naming the last holder, and a later run reuses it; when it
  ends with an exception (a refused run: every checkpoint corrupt, a
  config that does not fit), the file is put back as it was, or removed if
  this call created it, so a refused run leaves the workdir byte for byte
  as it found it. Creates the workdir when missing. Yields the lock file's
  path.

  Raises:
    WorkdirLockedError: another process holds the lock; nothing was
      changed in the workdir.
  """
  path = os.path.join(workdir, LOCK_FILE)
  os.makedirs(workdir, exist_ok=True)
  while True:
    fd, created = _open_lock(path)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = _read_all(fd)[:256].decode(errors='replace').strip()
      os.close(fd)
      raise WorkdirLockedError(
          f'--workdir={workdir} is in use by another training run '
          f'({holder or "its process is starting"}; lock file {path}). '
          'Wait for it to end, or use another --workdir.') from None
    except BaseException:
      os.close(fd)
      raise
    if _same_file(fd, path):
      break
    # A failed run removed the file it had created after this call opened
    # it: the lock is on a name no other run sees. Lock the file there now.
    os.close(fd)
  try:
    previous = _read_all(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'pid {os.getpid()} on {socket.gethostname()}\n'.encode(),
              0)
    try:
      yield path
    except BaseException:
      if created:
        os.remove(path)
      else:
        os.ftruncate(fd, 0)
        os.pwrite(fd, previous, 0)
      raise
  finally:
    os.close(fd)  # releases the lock


def _strict(value: Any) -> Any:
  """Non-finite floats to None, recursively (strict JSON has no NaN)."""
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, dict):
    return {k: _strict(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_strict(v) for v in value]
  return value


def write_json(path: str, obj: Any, *, strict: bool = False) -> str:
  """Atomic JSON write (indent 2, sorted keys); returns `path`.

  With `strict`, NaN and infinities are written as null.
  """
  return atomic_write(path, json_text(obj, strict=strict))


def json_text(obj: Any, *, strict: bool = False) -> str:
  """The text `write_json` writes for `obj`."""
  return json.dumps(_strict(obj) if strict else obj, indent=2,
                    sort_keys=True)


def refuse_other_contents(path: str, content: str | bytes) -> None:
  """Raises FileExistsError if `path` exists with contents other than these.

  For results named by everything that determines them: a rerun writes the
  same bytes under the same name, and a different result never silently
  replaces an existing one.
  """
  if not os.path.exists(path):
    return
  data = content.encode() if isinstance(content, str) else content
  with open(path, 'rb') as f:
    if f.read() == data:
      return
  raise FileExistsError(f'{path} exists and holds a different result; '
                        'refusing to overwrite it (move it away, or choose '
                        'another --out).')


def config_path(workdir: str) -> str:
  return os.path.join(workdir, CONFIG_FILE)


def read_config_dict(workdir: str) -> dict[str, Any]:
  """``<workdir>/config.json`` as a plain dict, complete.

  A config.json written before a field of `jaxgen.config_fields` existed
  gets that field with the value that reproduces the run
  (`config_fields.fill_added_fields`: only the fields of its family's
  config), so every reader sees the fields the current code reads.

  Raises:
    FileNotFoundError: the workdir has no config.json (nothing trained there).
  """
  path = config_path(workdir)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path} does not exist')
  with open(path) as f:
    return config_fields.fill_added_fields(json.load(f))


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run saved in ``<workdir>/config.json``, locked.

  Fields added after the run was written are filled (`read_config_dict`).

  Raises:
    FileNotFoundError: the workdir has no config.json (nothing trained there).
  """
  return ml_collections.ConfigDict(read_config_dict(workdir)).lock()


def uses_ema(config: dict[str, Any] | ml_collections.ConfigDict) -> bool:
  """Whether a run evaluates its EMA parameters: ``config.train.ema_decay``
  > 0 and ``config.eval.use_ema`` (as `jaxgen.train.Experiment.eval_params`
  chooses)."""
  return bool(config['train']['ema_decay'] and config['eval']['use_ema'])


def restore_params(workdir: str, *, step: int | None = None,
                   use_ema: bool | None = None) -> Any:
  """A run's parameters from its newest (or given) checkpoint, as NumPy.

  Reads ``<workdir>/config.json`` and only the parameter leaves of the saved
  `jaxgen.steps.TrainState` (`checkpoint.read_state_subtree`): no trainer,
  dataset, optimizer or device mesh is built, and the values are the saved
  ones, bitwise equal to those of `jaxgen.train.Experiment.restore`.

  Args:
    workdir: a trained run's workdir.
    step: the checkpoint step; None takes the newest.
    use_ema: read the EMA of the parameters (True) or the live ones (False);
      None chooses as the run evaluates (`uses_ema`).

  Returns:
    The ``TrainState.params`` (or ``ema_params``) pytree: nested dicts of
    np.ndarray (a Flax variables dict for families that keep one).

  Without `step`, the newest step that matches its digest and reads is
  taken; newer ones that do not are named in one warning line on stderr.

  Raises:
    FileNotFoundError: no config.json, or no (such) checkpoint.
    CheckpointError: the step (or, without `step`, every step) is corrupt
      or unreadable.
    ValueError: `use_ema` is True but the run kept no EMA.
  """
  config = read_config_dict(workdir)
  if use_ema is None:
    use_ema = uses_ema(config)
  elif use_ema and not config['train']['ema_decay']:
    raise ValueError(f'use_ema=True but the run in {workdir} kept no EMA of '
                     'its parameters (config.train.ema_decay = 0).')
  name = 'ema_params' if use_ema else 'params'
  directory = os.path.join(workdir, CHECKPOINT_DIR)
  try:
    params, _ = ckpt_lib.read_state_subtree(directory, name, step=step)
  except FileNotFoundError as e:
    raise FileNotFoundError(f'{e} Train first with --workdir={workdir}.'
                            ) from e
  return params
