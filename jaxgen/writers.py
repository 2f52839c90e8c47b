"""Metric writers: a JSONL file and TensorBoard event files, without TensorFlow.

`clu.metric_writers` imports TensorFlow, so the project writes TensorBoard
events with tensorboardX and keeps a plain ``metrics.jsonl`` beside them (one
JSON object per line: ``{"step": int, "split": str, <name>: float, ...}``) that
notebooks and the results script read back with `read_metrics`. Only process
0 writes. `write_curves` draws that file as a PNG of training curves
(`metric_series` reads it into one series per split and metric).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Iterable, Mapping

import jax
import numpy as np

from jaxgen import images as images_lib
from jaxgen import workdir as workdir_lib

METRICS_FILE = 'metrics.jsonl'
TENSORBOARD_DIR = 'tensorboard'
CURVES_FILE = 'curves.png'  # `write_curves`, under <workdir>/images


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


def _metric_value(value: Any) -> float | None:
  """A logged value as a float ('nan', 'inf' strings too), else None."""
  if isinstance(value, bool):
    return None
  if isinstance(value, (int, float)):
    return float(value)
  if isinstance(value, str):
    try:
      return float(value)
    except ValueError:
      return None
  return None


def metric_series(lines: Iterable[str]
                  ) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
  """The series of metrics.jsonl lines: {split: {metric: (steps, values)}}.

  Steps are int64 [n], increasing; values float64 [n]. A step logged more
  than once for a split (a resumed run's records after those of the run
  before it) keeps its last value. Non-finite values, which the writer
  stores as the strings 'nan', 'inf' and '-inf', are those floats; lines
  that do not parse (cut short by a kill mid-write) and values that are
  not numbers are left out. Splits and metrics are in the order they first
  appear.
  """
  last: dict[str, dict[str, dict[int, float]]] = {}
  for line in lines:
    try:
      record = json.loads(line)
      step, split = record['step'], record['split']
    except (ValueError, KeyError, TypeError):
      continue
    if isinstance(step, bool) or not isinstance(step, int) or not isinstance(
        split, str):
      continue
    for name, value in record.items():
      number = _metric_value(value) if name not in ('step', 'split') else None
      if number is not None:
        last.setdefault(split, {}).setdefault(name, {})[step] = number
  return {split: {name: (np.array(sorted(by_step), np.int64),
                         np.array([by_step[s] for s in sorted(by_step)],
                                  np.float64))
                  for name, by_step in metrics.items()}
          for split, metrics in last.items()}


def write_curves(workdir: str, *, title: str = '',
                 path: str | None = None) -> str | None:
  """Draws ``<workdir>/metrics.jsonl`` as training curves in a PNG.

  One panel per metric against the step (`jaxgen.images.curves_figure`,
  from `metric_series`), written atomically. Reads the file as it is now:
  a run still training is drawn up to its last logged step.

  Args:
    workdir: the run's directory.
    title: the figure's title.
    path: the PNG (default ``<workdir>/images/curves.png``).

  Returns:
    The path written, or None (nothing written) when metrics.jsonl is
    missing or holds no metric.
  """
  source = os.path.join(workdir, METRICS_FILE)
  if not os.path.isfile(source):
    return None
  with open(source) as f:
    figure = images_lib.curves_figure(metric_series(f), title)
  if figure is None:
    return None
  path = path or os.path.join(workdir, 'images', CURVES_FILE)
  return workdir_lib.atomic_write(path, images_lib.png_bytes(figure))
