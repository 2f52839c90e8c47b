"""Out-of-distribution image sets, built offline from what is bundled.

What a density model of digits should find unlikely: each set is uint8
[N, H, W, C] in the shape of the in-distribution images it is built for,
deterministic in ``seed``, and made from the reference images themselves,
from random numbers, or from images bundled with scikit-learn and
scikit-image (no download):

* ``'flip'``: the reference images mirrored left-right;
* ``'rot90'``: the reference images rotated by 90 degrees (needs H == W);
* ``'invert'``: 255 - x (white digits on black become black on white);
* ``'noise'``: independent uniform pixels in 0..255;
* ``'constant'``: one uniform grey level per image, drawn in 0..255;
* ``'digits'``: scikit-learn's 8x8 digits (levels 0..16 scaled by
  255 / 16), enlarged to H x W with Pillow's bicubic resampling: digits,
  but another dataset's;
* ``'photos'``: grey H x W crops of scikit-image's bundled photographs
  (`PHOTOS`, converted to luma by Pillow and shrunk by `PHOTO_SHRINK`
  first, so a crop shows a part of an object rather than a flat patch);
  listed only when scikit-image can be imported (`available_sets`).

The reference rows are the first N of the given reference images (the
sets line up with them: row i of 'flip' is reference row i mirrored);
random sets draw from ``numpy.random.default_rng([seed, set index])``.
Greyscale data (C = 1) is the case the sets are made for; for C = 3 the
grey sets are repeated over the channels.

`perturb` is the input perturbation of Ren et al., "Likelihood Ratios for
Out-of-Distribution Detection" (NeurIPS 2019, section 3): a fraction
`rate` of the values of each image replaced by uniform draws from the
256 levels. A background model trained on perturbed inputs learns the
population's low-level statistics but not its semantics; the likelihood
ratio log p(x) - log p_background(x) of a model of the clean data against
it cancels the low-level part (`jaxgen.uses.reports.ood_report`).
`perturbed_copies` stacks several perturbations of a training set.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Sequence

import numpy as np

from jaxgen.errors import ConfigError
from jaxgen.errors import DataError

SETS = ('flip', 'rot90', 'invert', 'noise', 'constant', 'digits', 'photos')
# scikit-image's bundled photographs used by 'photos' (greyscale or RGB).
PHOTOS = ('astronaut', 'brick', 'camera', 'chelsea', 'clock', 'coffee',
          'coins', 'grass', 'gravel', 'moon', 'page', 'rocket', 'text')
PHOTO_SHRINK = 4  # each photograph's sides are divided by this before crops


def have_scikit_image() -> bool:
  """Whether scikit-image (the 'photos' set) can be imported."""
  try:
    importlib.import_module('skimage.data')
  except ImportError:
    return False
  return True


def available_sets() -> tuple[str, ...]:
  """`SETS`, less 'photos' when scikit-image is missing."""
  return tuple(s for s in SETS if s != 'photos' or have_scikit_image())


def check_names(names: Sequence[str], field: str = 'sets') -> tuple[str, ...]:
  """`names` as a tuple, or ConfigError naming `field` and the known sets."""
  names = tuple(names)
  if not names:
    raise ConfigError(f'{field} is empty; choose from {", ".join(SETS)}.')
  unknown = [n for n in names if n not in SETS]
  if unknown:
    raise ConfigError(f'{field}: unknown out-of-distribution set(s) '
                      f'{unknown}; known: {", ".join(SETS)}.')
  if 'photos' in names and not have_scikit_image():
    raise ConfigError(f"{field}: 'photos' needs scikit-image, which cannot "
                      'be imported here; leave it out or install '
                      'scikit-image.')
  if len(set(names)) != len(names):
    raise ConfigError(f'{field} names a set twice: {list(names)}.')
  return names


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  return np.asarray(Image.fromarray(image).resize((width, height),
                                                  Image.BICUBIC))


@functools.lru_cache(maxsize=None)
def _photos() -> tuple[np.ndarray, ...]:
  """The photographs of `PHOTOS` as grey uint8 [h, w], shrunk."""
  import skimage.data  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  out = []
  for name in PHOTOS:
    pil = Image.fromarray(np.asarray(getattr(skimage.data, name)()))
    grey = pil.convert('L')
    w, h = grey.size
    grey = grey.resize((w // PHOTO_SHRINK, h // PHOTO_SHRINK), Image.LANCZOS)
    out.append(np.asarray(grey))
  return tuple(out)


def _sklearn_digits() -> np.ndarray:
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  images = datasets.load_digits().images
  return np.round(images * (255.0 / 16.0)).astype(np.uint8)


def _grey(name: str, num: int, height: int, width: int,
          rng: np.random.Generator) -> np.ndarray:
  """The generated sets, grey uint8 [num, height, width]."""
  if name == 'noise':
    return rng.integers(0, 256, (num, height, width), dtype=np.uint8)
  if name == 'constant':
    levels = rng.integers(0, 256, num, dtype=np.uint8)
    return np.broadcast_to(levels[:, None, None],
                           (num, height, width)).copy()
  if name == 'digits':
    digits = _sklearn_digits()
    rows = rng.choice(len(digits), size=num, replace=num > len(digits))
    return np.stack([_resize(digits[i], height, width) for i in rows])
  photos = _photos()
  out = np.empty((num, height, width), np.uint8)
  which = rng.integers(0, len(photos), num)
  for i, p in enumerate(which):
    photo = photos[p]
    if photo.shape[0] < height or photo.shape[1] < width:
      photo = _resize(photo, max(height, photo.shape[0]),
                      max(width, photo.shape[1]))
    top = rng.integers(0, photo.shape[0] - height + 1)
    left = rng.integers(0, photo.shape[1] - width + 1)
    out[i] = photo[top:top + height, left:left + width]
  return out


def make_set(name: str, reference: Any, num: int | None = None,
             seed: int = 0) -> np.ndarray:
  """One out-of-distribution set shaped like `reference`'s images.

  Args:
    name: one of `SETS`.
    reference: uint8 [N, H, W, C] in-distribution images (e.g. the test
      split), C in (1, 3).
    num: rows of the set (default N); 'flip', 'rot90' and 'invert' have at
      most N.
    seed: the random sets' seed (non-negative).

  Returns:
    uint8 [num, H, W, C].
  """
  check_names([name], 'name')
  reference = np.asarray(reference)
  if reference.dtype != np.uint8 or reference.ndim != 4 or (
      reference.shape[-1] not in (1, 3)) or not len(reference):
    raise DataError(f'reference images must be uint8 [N, H, W, C] with N > 0 '
                    f'and C in (1, 3), got {reference.dtype} '
                    f'{reference.shape}.')
  n, height, width, channels = reference.shape
  num = n if num is None else num
  if not isinstance(num, (int, np.integer)) or num < 1:
    raise ConfigError(f'num must be a positive integer, got {num!r}.')
  if not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ConfigError(f'seed must be a non-negative integer, got {seed!r}.')
  if name in ('flip', 'rot90', 'invert'):
    if num > n:
      raise ConfigError(f"num={num}: set {name!r} transforms the reference "
                        f'images, of which there are {n}.')
    x = reference[:num]
    if name == 'flip':
      return np.ascontiguousarray(x[:, :, ::-1])
    if name == 'invert':
      return 255 - x
    if height != width:
      raise DataError(f"set 'rot90' needs square images, got {height}x"
                      f'{width}.')
    return np.ascontiguousarray(np.rot90(x, k=1, axes=(1, 2)))
  rng = np.random.default_rng([int(seed), SETS.index(name)])
  grey = _grey(name, num, height, width, rng)
  return np.repeat(grey[..., None], channels, axis=-1)


def make_sets(reference: Any, names: Sequence[str] | None = None,
              num: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
  """{name: `make_set(name, reference, num, seed)`} for `names` (default:
  `available_sets`)."""
  names = available_sets() if names is None else check_names(names)
  return {name: make_set(name, reference, num, seed) for name in names}


def perturb(images: Any, rate: float, seed: int = 0,
            start: int = 0) -> np.ndarray:
  """Random value substitution (Ren et al. 2019, section 3).

  In each image, ``round(rate * D)`` of its D = H * W * C values, chosen
  uniformly without replacement, are replaced by independent uniform draws
  from 0..255 (a replaced value can draw its old level, so the expected
  fraction of changed values is ``rate * 255 / 256`` for uniform data).
  Row i draws from ``numpy.random.default_rng([seed, start + i])`` alone,
  so a row's perturbation does not depend on the other rows.

  Args:
    images: uint8 [N, ...] (e.g. [N, H, W, C]).
    rate: the fraction mu in [0, 1].
    seed: non-negative.
    start: the index of row 0 (e.g. copy c of N rows starts at c * N).

  Returns:
    uint8, the shape of `images`; `images` itself is not changed.
  """
  images = np.asarray(images)
  if images.dtype != np.uint8 or images.ndim < 2:
    raise DataError(f'images must be uint8 [N, ...], got {images.dtype} '
                    f'{images.shape}.')
  if (isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating))
      or not 0.0 <= rate <= 1.0):
    raise ConfigError(f'rate must be a number in [0, 1], got {rate!r}.')
  for field, value in (('seed', seed), ('start', start)):
    if not isinstance(value, (int, np.integer)) or value < 0:
      raise ConfigError(f'{field} must be a non-negative integer, got '
                        f'{value!r}.')
  flat = images.reshape(len(images), -1).copy()
  dims = flat.shape[1]
  count = int(round(rate * dims))
  if count:
    for i, row in enumerate(flat):
      rng = np.random.default_rng([int(seed), int(start) + i])
      where = rng.choice(dims, size=count, replace=False)
      row[where] = rng.integers(0, 256, count, dtype=np.uint8)
  return flat.reshape(images.shape)


def perturbed_copies(images: Any, rate: float, copies: int,
                     seed: int = 0) -> np.ndarray:
  """`copies` perturbations of `images` stacked: uint8 [copies * N, ...];
  copy c is ``perturb(images, rate, seed, start=c * N)``."""
  images = np.asarray(images)
  if not isinstance(copies, (int, np.integer)) or copies < 1:
    raise ConfigError(f'copies must be a positive integer, got {copies!r}.')
  n = len(images)
  return np.concatenate([perturb(images, rate, seed, start=c * n)
                         for c in range(copies)])
