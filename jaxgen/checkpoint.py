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
- an existing step is never overwritten (`save` skips a step that exists);
- restoring into a state whose shapes differ (the model config changed)
  raises a `ConfigError` that names the leaf, before anything is loaded.
"""

from __future__ import annotations

import os
from typing import Any

from absl import logging
import grain
import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxgen.errors import ConfigError

STATE, DATA = 'state', 'data'  # the two items of a step directory


def _leaf_name(path) -> str:
  return jax.tree_util.keystr(path, simple=True, separator='/')


class Checkpointer:
  """An orbax `CheckpointManager` for (train state, data iterator) pairs.

  Args:
    directory: where step directories live (created if absent).
    max_to_keep: newest checkpoints kept; older ones are deleted.
    save_every: orbax's save interval; the trainer decides when to save and
      passes `force=True`.
    async_save: write in a background thread while training continues.
  """

  def __init__(self, directory: str, *, max_to_keep: int = 3,
               save_every: int = 1000, async_save: bool = True):
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep,
        save_interval_steps=save_every,
        enable_async_checkpointing=async_save,
        create=True)
    self._manager = ocp.CheckpointManager(
        self.directory, options=options,
        item_handlers={STATE: ocp.StandardCheckpointHandler(),
                       DATA: grain.checkpoint.CheckpointHandler()})

  def latest_step(self) -> int | None:
    """The newest complete step, or None (partial saves are not listed)."""
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any, data_iterator: Any = None, *,
           force: bool = False) -> bool:
    """Saves `state` (and the iterator position) at `step`.

    Returns True when a save was started. A step that already exists is left
    untouched, so a good checkpoint is never replaced.
    """
    if step in self._manager.all_steps():
      return False
    items = {STATE: ocp.args.StandardSave(state)}
    if data_iterator is not None:
      items[DATA] = grain.checkpoint.CheckpointSave(data_iterator)
    saved = self._manager.save(step, args=ocp.args.Composite(**items),
                               force=force)
    if saved:
      logging.info('Saving checkpoint for step %d to %s', step, self.directory)
    return saved

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

  def restore(self, step: int, abstract_state: Any,
              data_iterator: Any = None) -> Any:
    """Restores the state at `step` onto `abstract_state`'s types/shardings.

    When `data_iterator` is given its position is restored in place.
    """
    self.check_compatible(step, abstract_state)
    items = {STATE: ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None:
      items[DATA] = grain.checkpoint.CheckpointRestore(data_iterator)
    restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    logging.info('Restored checkpoint for step %d from %s', step,
                 self.directory)
    return restored[STATE]

  def wait_until_finished(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def read_state_subtree(directory: str, name: str, *,
                       step: int | None = None) -> tuple[Any, int]:
  """One subtree of a saved state, as NumPy arrays, without a target state.

  Only the leaves under ``state[name]`` (e.g. 'params' or 'ema_params' of
  the `TrainState`) are read: orbax's partial restore, with the structure
  taken from the checkpoint's own metadata, so nothing needs to be built
  (no model, optimizer, mesh or data) and the optimizer state is never
  loaded. The values are the saved ones, bit for bit.

  Args:
    directory: the step directories' folder (``<workdir>/checkpoints``).
    name: the key of the subtree in the saved state.
    step: the step to read; None reads the newest complete one.

  Returns:
    (nested dicts of np.ndarray, the step read).

  Raises:
    FileNotFoundError: no (such) complete checkpoint in `directory`.
    KeyError: the saved state has no subtree `name`, or it is empty.
  """
  directory = os.path.abspath(directory)
  if not os.path.isdir(directory):
    raise FileNotFoundError(f'No checkpoint in {directory}: the folder does '
                            'not exist.')
  options = ocp.CheckpointManagerOptions(
      read_only=True, create=False, save_interval_steps=0, max_to_keep=None)
  manager = ocp.CheckpointManager(
      directory, options=options,
      item_handlers={STATE: ocp.PyTreeCheckpointHandler(),
                     DATA: grain.checkpoint.CheckpointHandler()})
  try:
    steps = list(manager.all_steps())
    if step is None:
      step = manager.latest_step()
      if step is None:
        raise FileNotFoundError(f'No checkpoint in {directory}.')
    elif step not in steps:
      raise FileNotFoundError(f'No checkpoint of step {step} in {directory}; '
                              f'its steps are {sorted(steps)}.')
    metadata = manager.item_metadata(step)[STATE]
    tree = getattr(metadata, 'tree', metadata)
    subtree = tree.get(name) if isinstance(tree, dict) else None
    if not jax.tree.leaves(subtree):
      raise KeyError(f'The state saved at step {step} in {directory} has no '
                     f'{name!r}; it holds {sorted(tree)}.')
    restore_args = jax.tree.map(
        lambda _: ocp.RestoreArgs(restore_type=np.ndarray), subtree)
    restored = manager.restore(step, args=ocp.args.Composite(**{
        STATE: ocp.args.PyTreeRestore(item={name: subtree},
                                      restore_args={name: restore_args},
                                      partial_restore=True)}))
  finally:
    manager.close()
  return restored[STATE][name], step
