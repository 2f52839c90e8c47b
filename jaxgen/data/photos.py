"""Colour crops of the photos bundled with scikit-image, split by photo.

``jaxgen.data.load_dataset`` builds them for ``data.name =
'skimage_photos:CROP'``, ``'skimage_photos:CROP:SIDE'`` or
``'skimage_photos:CROP:SIDE:STRIDE'``: uint8 RGB crops [N, CROP, CROP, 3].
The photos are read from the files scikit-image installs beside
``skimage.data`` (never downloaded; a missing file is a DataError). Each
photo (`PHOTOS`) is

1. downscaled so that its shorter side is SIDE pixels (default 4 * CROP;
   the longer side in proportion, rounded), with
   ``skimage.transform.resize(..., order=1, anti_aliasing=True)``, then
   rounded to uint8, so a crop holds a recognisable part of the scene;
2. cut into every CROP x CROP crop whose top-left corner lies on the grid
   of step STRIDE (default CROP // 4) starting at (0, 0);
3. put in a fixed pseudo-random order: a permutation of its crops drawn
   with ``np.random.default_rng(crc32(photo name))``, so any slice of a
   photo (``'chelsea[:64]'``) spreads over the whole photo.

Each photo is a base split of its own, named as in `PHOTOS`, and the split
specs use TFDS's split syntax over those names, e.g. ``train =
'astronaut+coffee'``, ``test = 'chelsea[:50%]'``. A photo may appear in one
split only: crops of one photo overlap, so a photo seen in training is
never evaluated on. A record's label is the photo's index in `PHOTOS`.

`PHOTOS` leaves out ``skimage.data.cat`` (the same picture as chelsea),
the right image of the motorcycle stereo pair (nearly the left one) and
the grey or synthetic images.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from typing import Any

import numpy as np

from jaxgen.errors import ConfigError
from jaxgen.errors import DataError

PREFIX = 'skimage_photos:'

# Photo name -> (file beside skimage.data, the skimage.data function that
# returns the same pixels).
PHOTOS = {
    'astronaut': ('astronaut.png', 'astronaut'),
    'coffee': ('coffee.png', 'coffee'),
    'chelsea': ('chelsea.png', 'chelsea'),
    'rocket': ('rocket.jpg', 'rocket'),
    'immunohistochemistry': ('ihc.png', 'immunohistochemistry'),
    'hubble_deep_field': ('hubble_deep_field.jpg', 'hubble_deep_field'),
    'retina': ('retina.jpg', 'retina'),
    'colorwheel': ('color.png', 'colorwheel'),
    'motorcycle': ('motorcycle_left.png', 'stereo_motorcycle'),
}
NAMES = tuple(PHOTOS)
MIN_CROP = 4


def parse_name(name: str) -> tuple[int, int, int]:
  """'skimage_photos:CROP[:SIDE[:STRIDE]]' -> (CROP, SIDE, STRIDE).

  Raises:
    ConfigError naming data.name when the name is malformed or the sizes
    do not fit together (MIN_CROP <= CROP <= SIDE, STRIDE >= 1).
  """
  usage = ("expected 'skimage_photos:CROP', 'skimage_photos:CROP:SIDE' or "
           "'skimage_photos:CROP:SIDE:STRIDE' with decimal integers: the "
           f'crop side CROP >= {MIN_CROP}, the shorter side SIDE >= CROP of '
           'each downscaled photo (default 4 * CROP) and the grid step '
           "STRIDE >= 1 (default CROP // 4), e.g. 'skimage_photos:32'")
  parts = name[len(PREFIX):].split(':') if name.startswith(PREFIX) else []
  if not 1 <= len(parts) <= 3:
    raise ConfigError(f'data.name={name!r} is not a photo-crop name: '
                      f'{usage}.')
  if not all(p.isdigit() for p in parts):
    raise ConfigError(f'data.name={name!r}: CROP, SIDE and STRIDE must be '
                      f'decimal integers; {usage}.')
  crop = int(parts[0])
  side = int(parts[1]) if len(parts) > 1 else 4 * crop
  stride = int(parts[2]) if len(parts) > 2 else max(1, crop // 4)
  if crop < MIN_CROP:
    raise ConfigError(f'data.name={name!r}: CROP={crop} is below '
                      f'{MIN_CROP}; {usage}.')
  if side < crop:
    raise ConfigError(f'data.name={name!r}: SIDE={side} is smaller than '
                      f'CROP={crop}; a crop must fit in the downscaled '
                      f'photo; {usage}.')
  if stride < 1:
    raise ConfigError(f'data.name={name!r}: STRIDE must be >= 1, got '
                      f'{stride}; {usage}.')
  return crop, side, stride


def photo_path(photo: str) -> str:
  """The file of `photo` in scikit-image's installed data folder."""
  import skimage.data  # pylint: disable=g-import-not-at-top
  return os.path.join(os.path.dirname(os.path.abspath(skimage.data.__file__)),
                      PHOTOS[photo][0])


def read_photo(photo: str, field: str = 'data.splits') -> np.ndarray:
  """uint8 [H, W, 3]: the photo as scikit-image bundles it.

  Raises:
    DataError: `photo` is not in `PHOTOS` (naming `field`), or its file is
      not installed (nothing is downloaded).
  """
  if photo not in PHOTOS:
    raise DataError(f'{field} names the photo {photo!r}, which is not one of '
                    f'the bundled colour photos {NAMES}.')
  path = photo_path(photo)
  if not os.path.isfile(path):
    raise DataError(
        f'{field}: the photo {photo!r} ({path}) is not installed with '
        'scikit-image; it is never downloaded. Install a scikit-image '
        'distribution that bundles its data files.')
  from skimage import io  # pylint: disable=g-import-not-at-top
  image = np.asarray(io.imread(path))
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
    raise DataError(f'{path}: expected uint8 RGB [H, W, 3], got '
                    f'{image.dtype} {image.shape}.')
  return image


def downscale(image: np.ndarray, side: int, photo: str = '') -> np.ndarray:
  """uint8 [H', W', 3] with min(H', W') == side, the aspect kept (rounded).

  Raises:
    DataError when `side` exceeds the photo's shorter side (no upscaling).
  """
  from skimage import transform  # pylint: disable=g-import-not-at-top
  h, w = image.shape[:2]
  short = min(h, w)
  if side > short:
    raise DataError(
        f'data.name: SIDE={side} is larger than the shorter side {short} of '
        f'the photo {photo!r} ({h}x{w}); photos are only downscaled.')
  if side == short:
    return image
  if h <= w:
    size = (side, round(w * side / h))
  else:
    size = (round(h * side / w), side)
  out = transform.resize(image, size, order=1, anti_aliasing=True)
  return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


def grid_crops(image: np.ndarray, crop: int, stride: int) -> np.ndarray:
  """uint8 [N, crop, crop, 3]: the crops at the grid's corners, row-major
  (corners (i * stride, j * stride) that keep the crop inside)."""
  h, w = image.shape[:2]
  tops = range(0, h - crop + 1, stride)
  lefts = range(0, w - crop + 1, stride)
  return np.stack([image[t:t + crop, l:l + crop] for t in tops
                   for l in lefts])


def crop_order(photo: str, num: int) -> np.ndarray:
  """The fixed permutation of a photo's `num` grid crops (seeded by the
  CRC-32 of its name)."""
  return np.random.default_rng(zlib.crc32(photo.encode())).permutation(num)


def photo_crops(photo: str, crop: int, side: int,
                stride: int) -> np.ndarray:
  """All crops of one photo in their fixed order: uint8 [N, crop, crop, 3]."""
  crops = grid_crops(downscale(read_photo(photo), side, photo), crop, stride)
  return crops[crop_order(photo, len(crops))]


def provenance(photos) -> dict[str, Any]:
  """{'skimage_version', 'sha256': {photo: digest of its file}}."""
  import skimage  # pylint: disable=g-import-not-at-top
  digests = {}
  for photo in photos:
    with open(photo_path(photo), 'rb') as f:
      digests[photo] = hashlib.sha256(f.read()).hexdigest()
  return {'skimage_version': skimage.__version__, 'sha256': digests}
