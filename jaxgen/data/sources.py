"""Random-access data sources and ``load_dataset``.

A *source* is anything with ``__len__`` and ``__getitem__(i) -> record``:
grain's ``RandomAccessDataSource`` protocol, so ``grain.MapDataset.source``
can wrap it. Records are dicts of NumPy values:

* images: ``{'image': uint8 [H, W, C], 'label': int32 []}`` (label -1 when
  the dataset has none);
* toy 2-D data: ``{'point': float32 [2], 'label': int32 []}``.

Our sources also offer ``gather(indices) -> dict of stacked arrays`` (used by
``eval_batches``) and ``_getitems(indices)`` (grain's batched-read hook).

``load_dataset`` builds the splits named in the data config:

* ``'digits'``: ``sklearn.datasets.load_digits`` (1797 8x8 images). Pixels
  0..16 are rescaled to uint8 by ``round(p * 255 / 16)`` (NumPy rounds half
  to even, so 8 -> 128): 0, 16, 32, 48, 64, 80, 96, 112, 128, 143, 159, 175,
  191, 207, 223, 239, 255.
* ``'npz:PATH'``: ``images`` uint8 [N, H, W] or [N, H, W, C] (C in {1, 3}),
  optional integer ``labels`` [N]; read with ``allow_pickle=False``. A
  relative path resolves against the current working directory, then
  against the checkout root (``PROJECT_ROOT``, the folder holding the
  ``jaxgen`` package), so ``npz:../shared/data/mnist/mnist8k.npz`` is found
  from any working directory of a checkout (`resolve_npz_path`).
* ``'mnist'``, ``'fashion_mnist'``, ``'cifar10'``, ``'binarized_mnist'``:
  prepared TFDS array_record data through ``tfds.data_source`` (no
  TensorFlow, never downloads).
* ``'toy:moons'``, ``'toy:ring8'``, ``'toy:grid25'``, ``'toy:checkerboard'``,
  ``'toy:swissroll'``: ``num_points`` points drawn once with ``split_seed``.
* ``'signal:KIND:T[:N]'`` (KIND ``sines`` or ``ar``): N synthetic 8-bit 1-D
  signals of length T as uint8 images (1, T, 1), drawn once with
  ``split_seed``; see ``jaxgen.data.signals``.
* ``'skimage_photos:CROP[:SIDE[:STRIDE]]'``: uint8 RGB crops [CROP, CROP, 3]
  of the colour photos bundled with scikit-image, each photo a base split
  of its own (``train='astronaut+coffee'``, ``test='chelsea'``), a photo in
  one split only; see ``jaxgen.data.photos``.

Split specs use TFDS's split syntax and TFDS's own parser (percentages round
to the closest row). Array sources (digits, npz, toy) have one pseudo-split
``'all'``: ``'all'``, ``'all[0:6500]'``, ``'all[:80%]'``, ``'all[90%:]'``,
``'all[:10%]+all[90%:]'``. For TFDS names the spec's base splits (``train``,
``test``, ...) are opened whole and sliced here by the same parser, so the
rows are known (for fixed binarization and overlap checks) and the slicing is
testable under ``tfds.testing.mock_data``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import types
import zipfile
import zlib
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

from absl import logging
import numpy as np

from jaxgen.data import photos as photos_lib
from jaxgen.data import signals as signals_lib
from jaxgen.data import toy as toy_lib
from jaxgen.data import transforms
from jaxgen.errors import ConfigError
from jaxgen.errors import DataError

Record = dict[str, Any]

# The checkout root when jaxgen is run from a checkout (or installed
# editable): relative npz paths that are not under the working directory
# resolve against it.
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

SPLIT_NAMES = ('train', 'validation', 'test')
ARRAY_SPLIT = 'all'


@runtime_checkable
class Source(Protocol):
  """grain's ``RandomAccessDataSource`` protocol, with our record format."""

  def __len__(self) -> int:
    ...

  def __getitem__(self, index: int) -> Record:
    ...


def _check_index(index: Any, length: int) -> int:
  if not isinstance(index, (int, np.integer)):
    raise TypeError(f'source index must be an int, got {type(index).__name__}')
  index = int(index)
  if index < 0:
    index += length
  if not 0 <= index < length:
    raise IndexError(f'index {index} out of range for a source of {length}')
  return index


def stack_records(records: Sequence[Record]) -> dict[str, np.ndarray]:
  """Stacks records (dicts of equal keys) into a dict of [N, ...] arrays."""
  return {k: np.stack([np.asarray(r[k]) for r in records])
          for k in records[0]}


class _ColumnSource:
  """Records are rows of equally long NumPy columns."""

  def __init__(self, columns: Mapping[str, np.ndarray]):
    lengths = {k: len(v) for k, v in columns.items()}
    if len(set(lengths.values())) != 1:
      raise DataError(f'columns have different lengths: {lengths}')
    self._columns = dict(columns)
    self._length = next(iter(lengths.values()))

  @property
  def columns(self) -> Mapping[str, np.ndarray]:
    """The underlying arrays (read-only views)."""
    return types.MappingProxyType(self._columns)

  def __len__(self) -> int:
    return self._length

  def __getitem__(self, index: int) -> Record:
    index = _check_index(index, self._length)
    return {k: v[index] for k, v in self._columns.items()}

  def gather(self,
             indices: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
    """Stacked records for ``indices``: dict of [len(indices), ...] arrays."""
    indices = np.asarray(indices, dtype=np.int64)
    return {k: v[indices] for k, v in self._columns.items()}

  def _getitems(self, indices: Sequence[int]) -> list[Record]:
    batch = self.gather(indices)
    return [{k: v[i] for k, v in batch.items()} for i in range(len(indices))]

  def take(self, indices: Sequence[int] | np.ndarray):
    """A new source of the rows ``indices`` (copies only those rows)."""
    new = object.__new__(type(self))
    _ColumnSource.__init__(new, self.gather(indices))
    return new

  def __repr__(self) -> str:
    shapes = {k: (v.dtype.name, v.shape) for k, v in self._columns.items()}
    return f'{type(self).__name__}({shapes})'


class ArraySource(_ColumnSource):
  """In-memory images: records ``{'image': uint8 [H,W,C], 'label': int32}``."""

  def __init__(self, images: np.ndarray, labels: np.ndarray | None = None):
    """Wraps arrays without copying them.

    Args:
      images: uint8 [N, H, W, C].
      labels: integer [N] (stored as int32), or None for all -1.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
      raise DataError(
          f'ArraySource: images must be uint8 [N, H, W, C], got '
          f'{images.dtype} {images.shape}')
    if labels is None:
      labels = np.full((images.shape[0],), -1, np.int32)
    labels = np.asarray(labels)
    if labels.shape != (images.shape[0],):
      raise DataError(
          f'ArraySource: labels must have shape ({images.shape[0]},), got '
          f'{labels.shape}')
    super().__init__({'image': images, 'label': labels.astype(np.int32)})

  @property
  def images(self) -> np.ndarray:
    """uint8 [N, H, W, C]."""
    return self._columns['image']

  @property
  def labels(self) -> np.ndarray:
    """int32 [N]."""
    return self._columns['label']


class PointSource(_ColumnSource):
  """In-memory points: records ``{'point': float32 [D], 'label': int32}``."""

  def __init__(self, points: np.ndarray, labels: np.ndarray | None = None):
    """Wraps arrays.

    Args:
      points: float [N, D] (stored as float32).
      labels: integer [N] (stored as int32), or None for all 0.
    """
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2:
      raise DataError(f'PointSource: points must be [N, D], got {points.shape}')
    if labels is None:
      labels = np.zeros((points.shape[0],), np.int32)
    labels = np.asarray(labels)
    if labels.shape != (points.shape[0],):
      raise DataError(
          f'PointSource: labels must have shape ({points.shape[0]},), got '
          f'{labels.shape}')
    super().__init__({'point': points, 'label': labels.astype(np.int32)})

  @property
  def points(self) -> np.ndarray:
    """float32 [N, D]."""
    return self._columns['point']

  @property
  def labels(self) -> np.ndarray:
    """int32 [N]."""
    return self._columns['label']


class TfdsSource:
  """Adapts TFDS array_record data sources to the project's record format.

  TFDS records are dicts ``{'image': uint8 [H,W,C], 'label': int64 []}``
  (cifar10 also has ``'id'``; binarized_mnist has no label and 0/1 pixels).
  This adapter reads rows ``rows[i]`` of one or more base splits and yields
  ``{'image': uint8 [H,W,C], 'label': int32 []}``: pixels multiplied by
  ``pixel_scale`` (255 for 0/1 data), label -1 when absent, optionally
  fixed-binarized with the seed ``(binarize_seed, crc32(base split name))``
  and the row index within the base split.
  """

  def __init__(self, bases: Sequence[Any], base_names: Sequence[str],
               segment: np.ndarray, rows: np.ndarray, *,
               image_shape: tuple[int, int, int], has_label: bool,
               pixel_scale: int, fixed_binarize_seed: int | None):
    self._bases = list(bases)
    self._base_names = list(base_names)
    self._segment = np.asarray(segment, np.int64)
    self._rows = np.asarray(rows, np.int64)
    self._image_shape = tuple(image_shape)
    self._has_label = has_label
    self._pixel_scale = pixel_scale
    self._seed = fixed_binarize_seed

  def __len__(self) -> int:
    return len(self._rows)

  def __getitem__(self, index: int) -> Record:
    index = _check_index(index, len(self._rows))
    seg = int(self._segment[index])
    row = int(self._rows[index])
    record = self._bases[seg][row]
    image = np.asarray(record['image'])
    if image.dtype != np.uint8 or image.shape != self._image_shape:
      raise DataError(
          f'TFDS record {self._base_names[seg]}[{row}]: expected image uint8 '
          f'{self._image_shape}, got {image.dtype} {image.shape}')
    if self._pixel_scale != 1:
      image = image * np.uint8(self._pixel_scale)
    if self._seed is not None:
      code = zlib.crc32(self._base_names[seg].encode())
      image = transforms.fixed_binarize(
          image[None], (self._seed, code), [row])[0]
    if self._has_label:
      label = np.int32(np.asarray(record['label']))
    else:
      label = np.int32(-1)
    return {'image': image, 'label': label}

  def gather(self,
             indices: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
    """Stacked records for ``indices``: dict of [len(indices), ...] arrays."""
    return stack_records([self[int(i)] for i in np.asarray(indices)])

  def __repr__(self) -> str:
    return (f'TfdsSource(splits={self._base_names}, rows={len(self)}, '
            f'image_shape={self._image_shape})')


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A loaded dataset.

  Attributes:
    name: the ``data.name`` it was loaded from.
    splits: the non-empty splits, e.g. ``{'train': src, 'test': src}``.
    image_shape: (H, W, C) of images; None for toy data.
    point_dim: 2 for toy data; None for images.
    num_classes: number of label classes; None when there are no labels
      (label -1) or the label is always 0.
    pixel_levels: levels of a pixel in the records: 256 for 8-bit data, 2 for
      binarized data (binarized_mnist, ``binarize='fixed'``); None for toy
      data. ``binarize='dynamic'`` leaves the records 8-bit (256).
    info: provenance, JSON-friendly: source/path/sha256, row counts, specs,
      seeds.
  """
  name: str
  splits: Mapping[str, Source]
  image_shape: tuple[int, int, int] | None
  point_dim: int | None
  num_classes: int | None
  pixel_levels: int | None
  info: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class _TfdsSpec:
  image_shape: tuple[int, int, int]
  num_classes: int | None
  splits: tuple[str, ...]
  has_label: bool
  pixel_scale: int  # 255 for 0/1 pixels.


_TFDS_DATASETS = {
    'mnist': _TfdsSpec((28, 28, 1), 10, ('train', 'test'), True, 1),
    'fashion_mnist': _TfdsSpec((28, 28, 1), 10, ('train', 'test'), True, 1),
    'cifar10': _TfdsSpec((32, 32, 3), 10, ('train', 'test'), True, 1),
    'binarized_mnist': _TfdsSpec(
        (28, 28, 1), None, ('train', 'validation', 'test'), False, 255),
}

KNOWN_NAMES = ('digits',) + tuple(_TFDS_DATASETS) + toy_lib.TOY_NAMES


def _known_names_message() -> str:
  return (f"one of {', '.join(repr(n) for n in KNOWN_NAMES)}, or "
          "'npz:PATH' (an .npz file with uint8 'images'), 'toy:NAME', "
          "'signal:KIND:T', or 'skimage_photos:CROP'")


# ---------------------------------------------------------------------------
# Split specs.

# TFDS reserves 'all' (the union of all splits, no slicing), so the array
# sources' pseudo-split is parsed under this name.
_PLACEHOLDER = '__jaxgen_all_rows__'


def _parse_spec(split: str, spec: str, *, array_source: bool):
  """Parses a TFDS split spec; returns a TFDS AbstractSplit."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  if not isinstance(spec, str):
    raise ConfigError(
        f'data.splits.{split} must be a split spec string (or empty/None), '
        f'got {type(spec).__name__} {spec!r}.')
  text = spec.strip()
  if array_source:
    text = re.sub(rf'\b{ARRAY_SPLIT}\b', _PLACEHOLDER, text)
  try:
    return tfds.core.ReadInstruction.from_spec(text)
  except (ValueError, NotImplementedError, AssertionError) as e:
    forms = ("'all', 'all[0:6500]', 'all[:80%]', 'all[90%:]'" if array_source
             else "'train', 'train[:90%]', 'test[1000:]', 'train+test'")
    raise ConfigError(
        f'data.splits.{split}={spec!r} is not a valid split spec; expected '
        f'TFDS split syntax such as {forms}. (TFDS: {e})') from e


def _check_split_names(specs: Mapping[str, str], parsed: Mapping[str, Any],
                       available: Sequence[str], name: str) -> list[str]:
  """ConfigError if a spec names a split the dataset lacks; returns bases."""
  probe = {s: _split_info(10**12) for s in available}
  bases = set()
  for split, spec in specs.items():
    try:
      bases.update(i.splitname for i in parsed[split].to_absolute(probe))
    except (ValueError, AssertionError) as e:
      shown = [ARRAY_SPLIT if s == _PLACEHOLDER else s for s in available]
      raise ConfigError(
          f'data.splits.{split}={spec!r} names a split that {name!r} does '
          f'not have; it has {", ".join(repr(s) for s in shown)}.') from e
  return sorted(bases)


def _split_info(num_examples: int):
  return types.SimpleNamespace(num_examples=num_examples,
                               shard_lengths=[num_examples])


def _absolute_rows(split: str, spec: str, parsed, lengths: Mapping[str, int],
                   *, array_source: bool) -> list[tuple[str, np.ndarray]]:
  """Row indices selected by a parsed spec, per base split, in order."""
  infos = {(_PLACEHOLDER if array_source and k == ARRAY_SPLIT else k):
           _split_info(n) for k, n in lengths.items()}
  try:
    instructions = parsed.to_absolute(infos)
  except (ValueError, AssertionError) as e:
    if array_source:
      expected = (f"the single pseudo-split 'all' with {lengths[ARRAY_SPLIT]} "
                  "rows")
    else:
      expected = 'splits ' + ', '.join(f'{k!r} ({n} rows)'
                                       for k, n in lengths.items())
    message = str(e).replace(repr(_PLACEHOLDER), repr(ARRAY_SPLIT))
    raise DataError(
        f'data.splits.{split}={spec!r} does not fit the data: expected '
        f'{expected}. (TFDS: {message})') from e
  out = []
  for instruction in instructions:
    name = instruction.splitname
    if array_source:
      name = ARRAY_SPLIT
    n = lengths[name]
    start = 0 if instruction.from_ is None else instruction.from_
    stop = n if instruction.to is None else instruction.to
    out.append((name, np.arange(start, max(start, stop), dtype=np.int64)))
  return out


def _normalize_splits(splits: Any) -> dict[str, str]:
  """Returns {split: spec} for the non-empty splits; ConfigError otherwise."""
  if splits is None or not hasattr(splits, 'items'):
    raise ConfigError(
        'data.splits must be a dict {split: spec} with keys among '
        f'{SPLIT_NAMES}, got {splits!r}.')
  out = {}
  for key, spec in splits.items():
    if key not in SPLIT_NAMES:
      raise ConfigError(
          f'data.splits has unknown split {key!r}; expected keys among '
          f'{SPLIT_NAMES}.')
    if spec is None or (isinstance(spec, str) and not spec.strip()):
      continue
    out[key] = spec
  if not out:
    raise ConfigError(
        f'data.splits names no split: every one of {SPLIT_NAMES} is empty.')
  return {k: out[k] for k in SPLIT_NAMES if k in out}


def _check_empty_and_overlap(rows: Mapping[str, list[tuple[str, np.ndarray]]],
                             specs: Mapping[str, str]) -> None:
  for split, segments in rows.items():
    if sum(len(r) for _, r in segments) == 0:
      raise DataError(
          f'data.splits.{split}={specs[split]!r} selects no rows; give a '
          'non-empty slice (or an empty string to drop the split).')
  if 'train' not in rows:
    return
  train = {}
  for base, r in rows['train']:
    train.setdefault(base, []).append(r)
  for other in ('validation', 'test'):
    if other not in rows:
      continue
    for base, r in rows[other]:
      if base not in train:
        continue
      common = np.intersect1d(np.concatenate(train[base]), r)
      if common.size:
        raise DataError(
            f'data.splits.train={specs["train"]!r} and data.splits.{other}='
            f'{specs[other]!r} share {common.size} rows (first: row '
            f'{int(common[0])} of {base!r}); training rows must not be '
            'evaluated on.')


# ---------------------------------------------------------------------------
# Array sources: digits, npz, toy.


def _load_digits() -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  digits = datasets.load_digits()
  images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
  return (images[..., None], digits.target.astype(np.int32),
          {'source': 'sklearn.datasets.load_digits',
           'pixel_rescaling': 'round(p * 255 / 16), p in 0..16'})


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      digest.update(chunk)
  return digest.hexdigest()


def npz_candidates(path: str) -> list[str]:
  """The absolute paths an ``npz:`` path is looked up at, in order.

  An absolute path (or ``~``) is itself; a relative one resolves against the
  current working directory, then against `PROJECT_ROOT`.
  """
  path = os.path.expanduser(path)
  if os.path.isabs(path):
    return [os.path.normpath(path)]
  out = [os.path.abspath(path)]
  rooted = os.path.normpath(os.path.join(PROJECT_ROOT, path))
  return out if rooted in out else out + [rooted]


def resolve_npz_path(path: str) -> str | None:
  """The first of `npz_candidates(path)` that is a file, else None."""
  return next((p for p in npz_candidates(path) if os.path.isfile(p)), None)


# How to obtain the files the presets name, for the not-found error.
_NPZ_HINTS = {
    'mnist8k.npz': (
        'mnist8k.npz holds 8,000 real MNIST digits (uint8 images [8000, 28, '
        "28] and labels [8000]) and lives outside the repository, in "
        "shared/data/mnist/ beside the checkout; README.md ('Data') says "
        'how to make an equivalent file.'),
}


def _load_npz(name: str) -> tuple[np.ndarray, np.ndarray | None, dict]:
  """Reads and validates an npz file; see the module docstring."""
  path_arg = name[len('npz:'):]
  if not path_arg.strip():
    raise ConfigError(
        f"data.name={name!r}: 'npz:' must be followed by a file path, e.g. "
        "'npz:../shared/data/mnist/mnist8k.npz'.")
  path = resolve_npz_path(path_arg)
  if path is None:
    tried = npz_candidates(path_arg)
    hint = _NPZ_HINTS.get(os.path.basename(path_arg), '')
    raise DataError(
        f'data.name={name!r}: npz file not found at '
        f'{" or ".join(tried)} (a relative path resolves against the '
        'working directory, then the checkout root). ' + hint)
  with open(path, 'rb') as f:
    magic = f.read(6)
  if not magic.startswith((b'PK\x03\x04', b'PK\x05\x06', b'\x93NUMPY')):
    raise DataError(
        f'data.name={name!r}: {path} is not an .npz archive (a zip file of '
        f'.npy arrays, as np.savez writes); its first bytes are {magic!r}.')
  try:
    archive = np.load(path, allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile):
      raise DataError(
          f'data.name={name!r}: {path} holds a single .npy array, not an .npz '
          "archive with an 'images' array.")
    with archive:
      keys = list(archive.files)
      if 'images' not in keys:
        raise DataError(
            f"data.name={name!r}: {path} has no 'images' array (it has "
            f'{keys}); expected uint8 images [N, H, W] or [N, H, W, C].')
      images = archive['images']
      labels = archive['labels'] if 'labels' in keys else None
  except DataError:
    raise
  except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
    raise DataError(
        f'data.name={name!r}: cannot read {path} as an .npz archive without '
        f'pickles: {e}') from e

  if images.dtype != np.uint8:
    raise DataError(
        f"data.name={name!r}: 'images' in {path} has dtype {images.dtype}; "
        'expected uint8 pixels 0..255. Convert it first, e.g. '
        'np.clip(np.round(x * 255), 0, 255).astype(np.uint8) for floats in '
        '[0, 1].')
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise DataError(
        f"data.name={name!r}: 'images' in {path} has shape {images.shape}; "
        'expected [N, H, W] or [N, H, W, C] with C in {1, 3}.')
  if images.shape[0] == 0:
    raise DataError(f"data.name={name!r}: 'images' in {path} has no rows.")
  if images.max() == 1:  # every pixel 0 or 1: binary data on the wrong scale
    raise DataError(
        f"data.name={name!r}: 'images' in {path} holds only the values 0 "
        'and 1; expected uint8 pixels 0..255 (read as-is, 1 would be almost '
        'black). Store binary images as 0/255 (images * 255); the binarize '
        'field (config.data.binarize) then keeps them binary.')
  if labels is not None:
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
      raise DataError(
          f"data.name={name!r}: 'labels' in {path} has shape {labels.shape}; "
          f"expected [{images.shape[0]}] (one per row of 'images').")
    if labels.dtype.kind not in 'iu':
      raise DataError(
          f"data.name={name!r}: 'labels' in {path} has dtype {labels.dtype}; "
          'expected integers.')
    if labels.size and (labels.min() < 0 or
                        labels.max() > np.iinfo(np.int32).max):
      raise DataError(
          f"data.name={name!r}: 'labels' in {path} must be in "
          f'[0, 2^31), got [{labels.min()}, {labels.max()}].')
    labels = labels.astype(np.int32)
  return images, labels, {'source': 'npz', 'path': path,
                          'sha256': _sha256(path)}


def _draw_toy(name: str, num_points: int,
              split_seed: int) -> tuple[np.ndarray, np.ndarray]:
  """The finite toy dataset: float32 [num_points, 2], int32 [num_points]."""
  if name == 'toy:moons':
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
    points, labels = datasets.make_moons(
        num_points, noise=toy_lib.MOONS_NOISE, random_state=split_seed)
    return points.astype(np.float32), labels.astype(np.int32)
  import jax  # pylint: disable=g-import-not-at-top
  with jax.default_device(jax.devices('cpu')[0]):
    points, labels = toy_lib.sample_toy_with_labels(
        name, jax.random.key(split_seed), num_points)
    return np.asarray(points), np.asarray(labels)


def _build_array_splits(
    columns: Mapping[str, np.ndarray], source_cls, specs: Mapping[str, str],
    parsed: Mapping[str, Any], *, shuffle_before_split: bool, split_seed: int,
    fixed_seed: int | None) -> tuple[dict[str, Source], dict[str, Any]]:
  num_rows = len(next(iter(columns.values())))
  lengths = {ARRAY_SPLIT: num_rows}
  rows = {s: _absolute_rows(s, specs[s], parsed[s], lengths, array_source=True)
          for s in specs}
  _check_empty_and_overlap(rows, specs)
  order = (np.random.default_rng(split_seed).permutation(num_rows)
           if shuffle_before_split else np.arange(num_rows))
  splits = {}
  for split, segments in rows.items():
    selected = order[np.concatenate([r for _, r in segments])]
    taken = {k: v[selected] for k, v in columns.items()}
    if fixed_seed is not None:
      taken['image'] = transforms.fixed_binarize(
          taken['image'], fixed_seed, selected)
    splits[split] = source_cls(*taken.values())
  info = {'num_rows': num_rows,
          'split_sizes': {s: len(src) for s, src in splits.items()}}
  return splits, info


def _build_photo_splits(
    name: str, specs: Mapping[str, str], parsed: Mapping[str, Any]
) -> tuple[dict[str, Source], dict[str, Any]]:
  """Crops of the photos the specs name; each photo in one split only."""
  crop, side, stride = photos_lib.parse_name(name)
  needed = _check_split_names(specs, parsed, photos_lib.NAMES, name)
  owner = {}
  for split in specs:
    for photo in _check_split_names({split: specs[split]},
                                    {split: parsed[split]},
                                    photos_lib.NAMES, name):
      if photo in owner:
        raise DataError(
            f'data.splits.{owner[photo]}={specs[owner[photo]]!r} and '
            f'data.splits.{split}={specs[split]!r} both take crops of the '
            f'photo {photo!r}; a photo belongs to one split only (its crops '
            'overlap).')
      owner[photo] = split
  crops = {photo: photos_lib.photo_crops(photo, crop, side, stride)
           for photo in needed}
  lengths = {photo: len(c) for photo, c in crops.items()}
  rows = {s: _absolute_rows(s, specs[s], parsed[s], lengths,
                            array_source=False) for s in specs}
  _check_empty_and_overlap(rows, specs)
  splits = {}
  for split, segments in rows.items():
    images = np.concatenate([crops[p][r] for p, r in segments])
    labels = np.concatenate([np.full(len(r), photos_lib.NAMES.index(p),
                                     np.int32) for p, r in segments])
    splits[split] = ArraySource(images, labels)
  info = {'source': 'skimage.data', 'crop': crop, 'side': side,
          'stride': stride, 'photo_crops': lengths,
          'photo_splits': owner,
          'split_sizes': {s: len(src) for s, src in splits.items()}}
  info.update(photos_lib.provenance(needed))
  return splits, info


# ---------------------------------------------------------------------------
# TFDS.


def _open_tfds(name: str, base: str, data_dir: str | None) -> Any:
  """``tfds.data_source(name, split=base)``; DataError if not prepared."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  resolved = data_dir or os.environ.get('TFDS_DATA_DIR') or (
      tfds.core.constants.DATA_DIR)
  # TFDS logs its own warnings on the way to these errors (e.g. a variant
  # folder without dataset_info.json); the DataError below says it once.
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.ERROR)
  try:
    return tfds.data_source(name, split=base, data_dir=data_dir,
                            download=False)
  except (ValueError, NotImplementedError, AssertionError, OSError,
          RuntimeError, KeyError) as e:
    raise DataError(
        f'data.name={name!r}: TFDS dataset {name!r} (split {base!r}) is not '
        f'prepared as array_record in data_dir {resolved!r} (data.data_dir='
        f'{data_dir!r}). Prepare it there (e.g. `tfds build {name} '
        '--file_format=array_record` on a machine with TensorFlow and '
        'network, then copy the folder), or set data.data_dir / '
        f'TFDS_DATA_DIR to where it is. (TFDS: {type(e).__name__}: '
        f'{" ".join(str(e).split())[:300]})') from e
  finally:
    logging.set_verbosity(verbosity)


def _build_tfds_splits(
    name: str, data_dir: str | None, specs: Mapping[str, str],
    parsed: Mapping[str, Any], fixed_seed: int | None
) -> tuple[dict[str, Source], dict[str, Any]]:
  spec = _TFDS_DATASETS[name]
  # Base splits the specs refer to, checked before touching the disk.
  needed = _check_split_names(specs, parsed, spec.splits, name)
  bases = {base: _open_tfds(name, base, data_dir) for base in needed}
  lengths = {base: len(src) for base, src in bases.items()}
  for base, src in bases.items():
    if lengths[base] == 0:
      continue
    record = src[0]
    image = np.asarray(record['image'])
    if image.dtype != np.uint8 or image.shape != spec.image_shape:
      raise DataError(
          f'data.name={name!r}: TFDS split {base!r} has images {image.dtype} '
          f'{image.shape}; expected uint8 {spec.image_shape}.')
  rows = {s: _absolute_rows(s, specs[s], parsed[s], lengths,
                            array_source=False) for s in specs}
  _check_empty_and_overlap(rows, specs)
  base_names = list(bases)
  splits = {}
  for split, segments in rows.items():
    segment = np.concatenate([np.full(len(r), base_names.index(b))
                              for b, r in segments])
    row = np.concatenate([r for _, r in segments])
    splits[split] = TfdsSource(
        [bases[b] for b in base_names], base_names, segment, row,
        image_shape=spec.image_shape, has_label=spec.has_label,
        pixel_scale=spec.pixel_scale, fixed_binarize_seed=fixed_seed)
  info = {'source': 'tfds', 'data_dir': data_dir,
          'base_split_sizes': lengths,
          'split_sizes': {s: len(src) for s, src in splits.items()}}
  return splits, info


# ---------------------------------------------------------------------------


def _check_int(field: str, value: Any, minimum: int) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise ConfigError(f'data.{field} must be an int, got {value!r}.')
  if value < minimum:
    raise ConfigError(f'data.{field} must be >= {minimum}, got {value}.')
  return int(value)


def load_dataset(name: str, *, data_dir: str | None = None,
                 splits: Mapping[str, str | None],
                 shuffle_before_split: bool = False, split_seed: int = 0,
                 binarize: str = 'none', binarize_seed: int = 0,
                 num_points: int = 50_000) -> Dataset:
  """Loads the splits of a dataset named by the data config.

  Every check happens here, before anything is compiled.

  Args:
    name: 'digits' | 'npz:PATH' | 'mnist' | 'binarized_mnist' |
      'fashion_mnist' | 'cifar10' | 'toy:moons' | 'toy:ring8' | 'toy:grid25' |
      'toy:checkerboard' | 'toy:swissroll' | 'signal:KIND:T[:N]' |
      'skimage_photos:CROP[:SIDE[:STRIDE]]'.
    data_dir: TFDS data_dir (None or '' -> ``TFDS_DATA_DIR`` or TFDS's
      default, ~/tensorflow_datasets).
    splits: ``{'train': SPEC, 'validation': SPEC, 'test': SPEC}`` in TFDS
      split syntax (array sources: pseudo-split ``'all'``; photo crops: the
      photo names); empty/None specs are left out of the result.
    shuffle_before_split: array and toy sources: permute the rows with
      ``split_seed`` before slicing (TFDS: must be False).
    split_seed: seed of that permutation, and of the toy draw.
    binarize: 'none' | 'dynamic' | 'fixed'. 'fixed' binarizes in the source
      (``transforms.fixed_binarize`` seeded by ``binarize_seed`` and the row
      index in the file / base split; pixels become 0 or 255, uint8);
      'dynamic' leaves the pixels for the device-side transform.
    binarize_seed: seed of the fixed binarization.
    num_points: toy sources: rows of the finite dataset.

  Returns:
    A ``Dataset``; its splits are deterministic functions of the arguments.

  Raises:
    ConfigError: unknown name, bad split spec or field value.
    DataError: missing or malformed file, empty or overlapping split, TFDS
      data not prepared.
  """
  if not isinstance(name, str) or not name:
    raise ConfigError(
        f'data.name must be a non-empty string, got {name!r}; expected '
        f'{_known_names_message()}.')
  transforms.check_binarize(binarize)
  split_seed = _check_int('split_seed', split_seed, 0)
  binarize_seed = _check_int('binarize_seed', binarize_seed, 0)
  if not isinstance(shuffle_before_split, (bool, np.bool_)):
    raise ConfigError(
        f'data.shuffle_before_split must be a bool, got '
        f'{shuffle_before_split!r}.')

  is_npz = name.startswith('npz:')
  is_toy = name.startswith('toy:')
  is_signal = name.startswith(signals_lib.PREFIX)
  is_photos = name.startswith(photos_lib.PREFIX)
  if is_signal:
    signals_lib.parse_name(name)  # ConfigError for a malformed name, early.
  if is_photos:
    photos_lib.parse_name(name)
  if not (is_npz or is_signal or is_photos or name in KNOWN_NAMES):
    raise ConfigError(
        f'data.name={name!r} is not a known dataset; expected '
        f'{_known_names_message()}.')
  array_source = is_npz or is_toy or is_signal or name == 'digits'
  if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
    raise ConfigError(
        f'data.data_dir must be a path or None, got {data_dir!r}.')
  data_dir = os.fspath(data_dir) if data_dir else None  # '' -> TFDS default.
  specs = _normalize_splits(splits)
  parsed = {s: _parse_spec(s, spec, array_source=array_source)
            for s, spec in specs.items()}
  if array_source:
    _check_split_names(specs, parsed, [_PLACEHOLDER], name)
  fixed_seed = binarize_seed if binarize == 'fixed' else None
  info: dict[str, Any] = {
      'name': name, 'split_specs': dict(specs),
      'shuffle_before_split': bool(shuffle_before_split),
      'split_seed': split_seed, 'binarize': binarize,
      'binarize_seed': binarize_seed if binarize == 'fixed' else None,
  }

  if is_photos:
    if shuffle_before_split:
      raise ConfigError(
          f'data.shuffle_before_split=True does not apply to {name!r}: the '
          'photo crops are split by photo, each photo a split of its own.')
    if binarize == 'fixed':
      raise ConfigError(
          f"data.binarize='fixed' does not apply to {name!r}: colour photo "
          "crops; use 'none' (or 'dynamic').")
    split_sources, more = _build_photo_splits(name, specs, parsed)
    info.update(more)
    crop = more['crop']
    return Dataset(name=name, splits=types.MappingProxyType(split_sources),
                   image_shape=(crop, crop, 3), point_dim=None,
                   num_classes=len(photos_lib.NAMES), pixel_levels=256,
                   info=info)

  if is_toy:
    if binarize != 'none':
      raise ConfigError(
          f"data.binarize={binarize!r} does not apply to {name!r}: toy data "
          "are continuous points; use 'none'.")
    num_points = _check_int('num_points', num_points, 1)
    points, labels = _draw_toy(name, num_points, split_seed)
    split_sources, more = _build_array_splits(
        {'point': points, 'label': labels}, PointSource, specs, parsed,
        shuffle_before_split=shuffle_before_split, split_seed=split_seed,
        fixed_seed=None)
    info.update(more, source='toy', num_points=num_points)
    return Dataset(name=name, splits=types.MappingProxyType(split_sources),
                   image_shape=None, point_dim=2,
                   num_classes=toy_lib.TOY_NUM_CLASSES[name],
                   pixel_levels=None, info=info)

  if array_source:
    if is_npz:
      images, labels, more = _load_npz(name)
    elif is_signal:
      images, labels, more = signals_lib.load_signals(name, split_seed)
    else:
      images, labels, more = _load_digits()
    info.update(more)
    num_classes = None if labels is None else int(labels.max()) + 1
    if labels is None:
      labels = np.full((images.shape[0],), -1, np.int32)
    split_sources, more = _build_array_splits(
        {'image': images, 'label': labels}, ArraySource, specs, parsed,
        shuffle_before_split=shuffle_before_split, split_seed=split_seed,
        fixed_seed=fixed_seed)
    info.update(more)
    image_shape = tuple(int(d) for d in images.shape[1:])
    pixel_levels = 2 if binarize == 'fixed' else 256
  else:
    if shuffle_before_split:
      raise ConfigError(
          f'data.shuffle_before_split=True is only for array sources (digits,'
          f' npz, toy); TFDS dataset {name!r} is split by its own splits.')
    tfds_spec = _TFDS_DATASETS[name]
    split_sources, more = _build_tfds_splits(
        name, data_dir, specs, parsed, fixed_seed)
    info.update(more)
    image_shape = tfds_spec.image_shape
    num_classes = tfds_spec.num_classes
    pixel_levels = 2 if (binarize == 'fixed' or tfds_spec.pixel_scale != 1) \
        else 256
  return Dataset(name=name, splits=types.MappingProxyType(split_sources),
                 image_shape=image_shape, point_dim=None,
                 num_classes=num_classes, pixel_levels=pixel_levels,
                 info=info)


def num_dims(dataset: Dataset) -> int:
  """D = H*W*C for images, ``point_dim`` for toy data."""
  if dataset.image_shape is not None:
    return math.prod(dataset.image_shape)
  return int(dataset.point_dim)
