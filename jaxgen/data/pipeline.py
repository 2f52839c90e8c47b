"""Per-process batch streams: an infinite shuffled train stream, exact eval.

Batches are dicts of NumPy arrays with a leading batch axis:
``{'image': uint8 [B,H,W,C], 'label': int32 [B], 'mask': bool [B]}`` (toy:
``'point'`` float32 [B,2] instead of ``'image'``). ``B`` is the per-process
batch size; the trainer assembles the global array from all processes.

Training (``train_iterator``), built from grain's ``MapDataset`` over row
indices:

    range(N) -> .seed(seed).shuffle() -> [:usable] -> .batch(B)
             -> [process_index::count] -> gather rows -> .repeat(None)
             -> .to_iter_dataset() -> iter

grain passes a running index through ``repeat``; ``shuffle`` draws a new
permutation for every epoch, so each epoch is a fresh global permutation cut
to ``usable = (N // G) * G`` rows, G = B * count the global batch. Global
batch s holds rows [s*G, (s+1)*G) of the permutation and process p reads its
p-th contiguous block of B rows: the global batch, and so a training run,
does not depend on how many processes share it. Every process must pass the
same ``seed``.

The iterator is grain's ``DatasetIterator``: ``it.get_state()`` is a small
JSON-able dict (``{'next_index': k}``: the number of batches consumed);
``it.set_state(state)`` on an iterator built with the same arguments resumes
with the identical next batch, across epoch boundaries too. Reading happens
in-process (optional prefetch threads, no worker processes); the stream does
not depend on ``num_threads`` or ``prefetch_buffer_size``.

Evaluation (``eval_batches``) is plain Python: process ``p`` takes the
contiguous share ``np.array_split(range(N), count)[p]`` in order; every
process yields ``num_eval_batches`` full batches; rows past its share are
padding — copies of the split's row 0 with ``mask=False``.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Iterator, Sized

import grain
import numpy as np

from jaxgen.data.sources import Source
from jaxgen.data.sources import stack_records
from jaxgen.errors import ConfigError

Batch = dict[str, np.ndarray]


def _check_processes(process_index: Any, process_count: Any) -> None:
  for field, value in (('process_index', process_index),
                       ('process_count', process_count)):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
      raise ConfigError(f'{field} must be an int, got {value!r}.')
  if process_count < 1:
    raise ConfigError(f'process_count must be >= 1, got {process_count}.')
  if not 0 <= process_index < process_count:
    raise ConfigError(
        f'process_index must be in [0, {process_count}), got {process_index}.')


def _check_batch_size(batch_size: Any) -> int:
  if (isinstance(batch_size, bool)
      or not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
    raise ConfigError(f'batch_size must be a positive int, got {batch_size!r}.')
  return int(batch_size)


def _gather(source: Source, indices: np.ndarray) -> Batch:
  """Stacked records of ``source`` at ``indices``."""
  if hasattr(source, 'gather'):
    return dict(source.gather(indices))
  return stack_records([source[int(i)] for i in indices])


def _read_batch(source: Source, indices: np.ndarray) -> Batch:
  batch = _gather(source, np.asarray(indices, np.int64))
  batch['mask'] = np.ones((len(indices),), np.bool_)
  return batch


def train_iterator(source: Source, *, batch_size: int, seed: int,
                   process_index: int = 0, process_count: int = 1,
                   num_threads: int = 2,
                   prefetch_buffer_size: int = 4) -> grain.DatasetIterator:
  """An infinite, per-epoch reshuffled stream of this process's batches.

  Args:
    source: a random-access source (``len`` and ``[i] -> record``).
    batch_size: examples per batch on this process (the per-process batch).
    seed: shuffle seed (non-negative int), the same on every process.
    process_index: this process, in [0, process_count).
    process_count: number of processes sharing the stream.
    num_threads: grain read threads in this process (0: read synchronously).
      Does not change the stream.
    prefetch_buffer_size: batches read ahead (0: none). Does not change the
      stream.

  Returns:
    A ``grain.DatasetIterator`` yielding dicts of arrays with leading axis
    ``batch_size`` and ``mask`` all True; supports ``get_state`` /
    ``set_state``.

  Raises:
    ConfigError: a global batch (``batch_size * process_count``) larger than
      the split, or a bad argument.
  """
  _check_processes(process_index, process_count)
  batch_size = _check_batch_size(batch_size)
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or (
      seed < 0):
    raise ConfigError(f'seed must be a non-negative int, got {seed!r}.')
  num_rows = len(source)
  global_batch = batch_size * process_count
  if global_batch > num_rows:
    raise ConfigError(
        f'batch_size={batch_size} per process x {process_count} process(es) '
        f'= {global_batch} exceeds the {num_rows} rows of the training split; '
        'lower the batch size or use a larger train split.')
  # grain shuffles, batches and repeats row *indices*; each batch of indices
  # is then read with one `gather` (vectorised for in-memory sources, ~50x
  # faster than grain stacking per-record dicts). An epoch is cut to whole
  # global batches; global batch s is rows [s*G, (s+1)*G) of the epoch's
  # permutation and process p reads its p-th contiguous block of
  # `batch_size` rows, so the global batch does not depend on how many
  # processes share it (a 2-process run sees the batches of a 1-process run).
  ds = grain.MapDataset.range(num_rows).seed(int(seed)).shuffle()
  ds = ds[:(num_rows // global_batch) * global_batch]
  ds = ds.batch(batch_size, drop_remainder=True)
  ds = ds[process_index::process_count]
  ds = ds.map(functools.partial(_read_batch, source)).repeat(None)
  read_options = grain.ReadOptions(num_threads=num_threads,
                                   prefetch_buffer_size=prefetch_buffer_size)
  return iter(ds.to_iter_dataset(read_options=read_options))


def _num_rows(source_or_size: Sized | int) -> int:
  if isinstance(source_or_size, (int, np.integer)):
    return int(source_or_size)
  return len(source_or_size)


def num_eval_batches(source: Sized | int, *, batch_size: int,
                     process_index: int = 0, process_count: int = 1) -> int:
  """Batches every process yields from ``eval_batches``.

  Args:
    source: the split (or its number of rows).
    batch_size: per-process batch size.
    process_index: this process (checked; the count is the same for all).
    process_count: number of processes.

  Returns:
    ``ceil(ceil(N / process_count) / batch_size)`` (0 for an empty split).
  """
  _check_processes(process_index, process_count)
  batch_size = _check_batch_size(batch_size)
  largest_share = math.ceil(_num_rows(source) / process_count)
  return math.ceil(largest_share / batch_size)


def eval_batches(source: Source, *, batch_size: int, process_index: int = 0,
                 process_count: int = 1) -> Iterator[Batch]:
  """Covers the split exactly once, in order, padded to full batches.

  Process ``p`` reads the contiguous rows ``np.array_split(range(N),
  process_count)[p]``. Every process yields the same number of batches
  (``num_eval_batches``), each of exactly ``batch_size`` rows; rows past the
  share are copies of the split's row 0 with ``mask=False``. Over all
  processes the rows with ``mask=True`` are exactly the split, each once.

  Args:
    source: a random-access source.
    batch_size: per-process batch size.
    process_index: this process, in [0, process_count).
    process_count: number of processes.

  Returns:
    An iterator of batches (arguments are checked on the call, not lazily).
  """
  _check_processes(process_index, process_count)
  batch_size = _check_batch_size(batch_size)
  num_rows = len(source)
  share = np.array_split(np.arange(num_rows), process_count)[process_index]
  count = num_eval_batches(num_rows, batch_size=batch_size,
                           process_count=process_count)

  def generate() -> Iterator[Batch]:
    for b in range(count):
      real = share[b * batch_size:(b + 1) * batch_size]
      indices = np.zeros((batch_size,), np.int64)
      indices[:len(real)] = real
      batch = _gather(source, indices)
      batch['mask'] = np.arange(batch_size) < len(real)
      yield batch

  return generate()
