"""Metric writers: a JSONL file and TensorBoard event files, without TensorFlow.

`clu.metric_writers` imports TensorFlow, so the project writes TensorBoard
events with tensorboardX and keeps a plain ``metrics.jsonl`` beside them (one
JSON object per line: ``{"step": int, "split": str, <name>: float, ...}``) that
notebooks and the results script read back with `read_metrics`. Only process
0 writes.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping

import jax
import numpy as np

from jaxgen import workdir as workdir_lib

METRICS_FILE = 'metrics.jsonl'
TENSORBOARD_DIR = 'tensorboard'


def _to_float(value: Any) -> float:
  return float(np.asarray(value))


def _drop_records_after(path: str, step: int) -> None:
  """Rewrites metrics.jsonl without the records of steps > ``step``."""
  if not os.path.exists(path):
    return
  with open(path) as f:
    lines = f.readlines()
  kept = []
  for line in lines:
    try:
      record_step = json.loads(line)['step']
    except (ValueError, KeyError, TypeError):
      continue  # a line cut short by a kill mid-write
    if record_step <= step:
      kept.append(line if line.endswith('\n') else line + '\n')
  if len(kept) == len(lines):
    return
  workdir_lib.atomic_write(path, ''.join(kept))


class MetricWriter:
  """Writes scalars to ``<workdir>/metrics.jsonl`` and TensorBoard.

  Args:
    workdir: the experiment's working directory.
    enabled: write anything at all (defaults to process 0 only).
    tensorboard: also write TensorBoard event files under
      ``<workdir>/tensorboard``.
    resume_step: the checkpoint step a resumed run continues from. Records
      of later steps, logged by a run that died before its next checkpoint,
      are dropped (metrics.jsonl is rewritten atomically; TensorBoard purges
      them with ``purge_step``), so the resumed run's records replace them
      and every step appears once.
  """

  def __init__(self, workdir: str, *, enabled: bool | None = None,
               tensorboard: bool = True, resume_step: int | None = None):
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    self._jsonl = None
    self._tb = None
    if not self.enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, METRICS_FILE)
    if resume_step is not None:
      _drop_records_after(path, resume_step)
    self._jsonl = open(path, 'a')
    if tensorboard:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tb = SummaryWriter(
          os.path.join(workdir, TENSORBOARD_DIR),
          purge_step=None if resume_step is None else resume_step + 1)

  def write_scalars(self, step: int, scalars: Mapping[str, Any], *,
                    split: str = 'train') -> None:
    """Writes one JSONL record and one TensorBoard scalar per entry."""
    if not self.enabled:
      return
    values = {k: _to_float(v) for k, v in scalars.items()}
    record = {'step': int(step), 'split': split}
    # JSON has no NaN/inf; write them as strings so the file stays valid.
    record.update({k: (v if math.isfinite(v) else str(v))
                   for k, v in values.items()})
    self._jsonl.write(json.dumps(record) + '\n')
    self._jsonl.flush()
    if self._tb is not None:
      for k, v in values.items():
        self._tb.add_scalar(f'{split}/{k}', v, int(step))

  def write_image(self, step: int, name: str, image: np.ndarray) -> None:
    """Writes a uint8 [H, W, C] image to TensorBoard."""
    if self._tb is not None:
      self._tb.add_image(name, np.asarray(image), int(step), dataformats='HWC')

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    if self._tb is not None:
      flat = {k: (v if isinstance(v, (int, float, str, bool)) else str(v))
              for k, v in hparams.items()}
      self._tb.add_text('config', '\n'.join(
          f'    {k}: {v}' for k, v in sorted(flat.items())))

  def flush(self) -> None:
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    if self._jsonl is not None:
      self._jsonl.close()
      self._jsonl = None
    if self._tb is not None:
      self._tb.close()
      self._tb = None


def read_metrics(workdir: str, split: str | None = None) -> list[dict[str, Any]]:
  """Reads ``metrics.jsonl`` back as a list of records (optionally one split)."""
  path = os.path.join(workdir, METRICS_FILE)
  records = []
  with open(path) as f:
    for line in f:
      line = line.strip()
      if line:
        record = json.loads(line)
        if split is None or record.get('split') == split:
          records.append(record)
  return records
