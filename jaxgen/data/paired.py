r"""Paired and unpaired image-to-image tasks built from plain image batches.

The image-to-image families (pix2pix, CycleGAN) need no data source of
their own: each task is made, deterministically (or from an explicit key),
from the images of any dataset, on the device, inside the jitted step. All
functions take float images ``[B, H, W, C]`` in [-1, 1] (the 'symmetric'
value range) and are pure and jit-able.

Paired tasks (input x, target y = the image itself), by name (`TASKS`):

- 'edges': x = the Sobel gradient magnitude of the image on the [0, 1]
  scale, ``|g| = sqrt(g_h^2 + g_v^2)`` with the 3x3 Sobel kernels and zero
  padding, divided by 4 (the largest one-axis response to a unit step) and
  clipped to [0, 1], then mapped to [-1, 1]. Not thresholded: the soft edge
  map keeps the stroke's two borders and their strength.
- 'inpaint': x = the image with one ``hole x hole`` square set to 0 (mid
  grey) at a position drawn uniformly per example from `key`, plus a mask
  channel (1 inside the square, 0 elsewhere): C + 1 channels.
- 'superres': x = the image average-pooled by ``factor`` x ``factor`` and
  upsampled back by repetition (nearest neighbour): the same size, ``factor``
  times coarser.
- 'colorize': x = the luminance of an RGB image, one channel,
  ``Y = 0.299 R + 0.587 G + 0.114 B`` (the ITU-R BT.601 weights, `BT601`);
  the weights sum to 1, so Y of images in [-1, 1] is in [-1, 1] and equals
  the luminance on the [0, 1] scale mapped to [-1, 1]. Targets must have 3
  channels.

Unpaired domains (CycleGAN): domain A is the images as they are, domain B
the images thickened by a 3x3 morphological dilation (`dilate`: the
maximum over each pixel's 3x3 neighbourhood, a stride-1 max-pool). A batch
of 2m images gives m of each (`unpaired_halves`): the first half as A, the
dilation of the second half as B, so no image is seen in both domains.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgen.errors import ConfigError

TASKS = ('edges', 'inpaint', 'superres', 'colorize')

SOBEL_H = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
# The largest |response| of one Sobel kernel on an image in [0, 1].
SOBEL_SCALE = 4.0
# ITU-R BT.601 luma weights of (R, G, B).
BT601 = (0.299, 0.587, 0.114)


def input_channels(task: str, channels: int) -> int:
  """The number of channels of a task's input for images of `channels`."""
  check_task(task)
  if task == 'colorize':
    return 1
  return channels + 1 if task == 'inpaint' else channels


def check_task(task: str, field: str = 'config.model.task') -> None:
  """Raises ConfigError unless `task` is one of `TASKS`."""
  if task not in TASKS:
    raise ConfigError(f'{field}={task!r} is not one of {TASKS}.')


def _per_channel_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """A 3x3 correlation of each channel of x [B, H, W, C], zero padding."""
  c = x.shape[-1]
  k = jnp.tile(kernel[:, :, None, None], (1, 1, 1, c))
  return jax.lax.conv_general_dilated(
      x, k, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
      feature_group_count=c, precision=jax.lax.Precision.HIGHEST)


def sobel_magnitude(images: jax.Array) -> jax.Array:
  """|Sobel gradient| of images in [-1, 1], measured on the [0, 1] scale.

  Args:
    images: float [B, H, W, C] in [-1, 1].

  Returns:
    float [B, H, W, C] >= 0: ``sqrt(g_h^2 + g_v^2)`` per pixel and channel,
    with g_h, g_v the correlations of (images + 1) / 2 with the horizontal
    and vertical Sobel kernels (zero padding outside the image).
  """
  x = (images + 1.0) / 2.0
  kh = jnp.asarray(SOBEL_H, x.dtype)
  gh = _per_channel_conv(x, kh)
  gv = _per_channel_conv(x, kh.T)
  return jnp.sqrt(gh ** 2 + gv ** 2)


def edges(images: jax.Array) -> jax.Array:
  """The 'edges' input: clip(|Sobel| / 4, 0, 1) mapped to [-1, 1]."""
  return 2.0 * jnp.clip(sobel_magnitude(images) / SOBEL_SCALE, 0.0,
                        1.0) - 1.0


def square_masks(key: jax.Array, num: int, height: int, width: int,
                 hole: int) -> jax.Array:
  """float [num, H, W, 1]: 1 on one hole x hole square per row, else 0.

  The square's top-left corner is uniform over the positions that keep it
  inside the image, drawn from `key` (rows, then columns).
  """
  r_key, c_key = jax.random.split(key)
  top = jax.random.randint(r_key, (num,), 0, height - hole + 1)
  left = jax.random.randint(c_key, (num,), 0, width - hole + 1)
  rows = jnp.arange(height)[None, :]
  cols = jnp.arange(width)[None, :]
  in_rows = (rows >= top[:, None]) & (rows < top[:, None] + hole)
  in_cols = (cols >= left[:, None]) & (cols < left[:, None] + hole)
  mask = in_rows[:, :, None] & in_cols[:, None, :]
  return mask[..., None].astype(jnp.float32)


def inpaint(images: jax.Array, key: jax.Array, hole: int) -> jax.Array:
  """The 'inpaint' input [B, H, W, C + 1]: masked image, then the mask."""
  b, h, w, _ = images.shape
  mask = square_masks(key, b, h, w, hole).astype(images.dtype)
  return jnp.concatenate([images * (1.0 - mask), mask], axis=-1)


def superres(images: jax.Array, factor: int) -> jax.Array:
  """The 'superres' input: factor x factor average pooling, then repeats."""
  b, h, w, c = images.shape
  pooled = images.reshape(b, h // factor, factor, w // factor, factor,
                          c).mean((2, 4))
  return pooled.repeat(factor, axis=1).repeat(factor, axis=2)


def luminance(images: jax.Array) -> jax.Array:
  """The 'colorize' input: BT.601 luminance [B, H, W, 1] of RGB images.

  Args:
    images: float [B, H, W, 3] in [-1, 1].

  Returns:
    float [B, H, W, 1]: ``0.299 R + 0.587 G + 0.114 B``, in [-1, 1].
  """
  weights = jnp.asarray(BT601, images.dtype)
  return jnp.einsum('bhwc,c->bhw', images, weights,
                    precision=jax.lax.Precision.HIGHEST)[..., None]


def task_input(task: str, images: jax.Array, key: jax.Array, *,
               hole: int = 4, factor: int = 2) -> jax.Array:
  """The input x of a paired task whose target is `images`.

  Args:
    task: one of `TASKS`.
    images: float [B, H, W, C] in [-1, 1], the targets.
    key: draws the squares of 'inpaint' (unused by the other tasks).
    hole: the side of the 'inpaint' square.
    factor: the 'superres' pooling factor.

  Returns:
    float [B, H, W, `input_channels(task, C)`].
  """
  check_task(task)
  if task == 'edges':
    return edges(images)
  if task == 'inpaint':
    return inpaint(images, key, hole)
  if task == 'colorize':
    return luminance(images)
  return superres(images, factor)


def check_task_fields(task: str, image_shape, hole: int, factor: int,
                      prefix: str = 'config.model.') -> None:
  """ConfigError naming the field when a task does not fit the images."""
  check_task(task, f'{prefix}task')
  h, w = image_shape[0], image_shape[1]
  if task == 'colorize' and image_shape[-1] != 3:
    raise ConfigError(f'{prefix}task={task!r} needs RGB targets: '
                      f'{prefix}image_shape={tuple(image_shape)} must have 3 '
                      'channels (e.g. the skimage_photos crops).')
  if task == 'inpaint' and not (
      isinstance(hole, int) and 0 < hole <= min(h, w)):
    raise ConfigError(f'{prefix}hole={hole!r} must be an integer in '
                      f'[1, {min(h, w)}] for {h}x{w} images.')
  if task == 'superres' and not (
      isinstance(factor, int) and factor > 1 and h % factor == 0
      and w % factor == 0):
    raise ConfigError(f'{prefix}factor={factor!r} must be an integer > 1 '
                      f'that divides the image size {h}x{w}.')


def dilate(images: jax.Array) -> jax.Array:
  """3x3 morphological dilation: each pixel becomes its neighbourhood's max.

  Args:
    images: float [B, H, W, C].

  Returns:
    The same shape; borders see only the pixels inside the image.
  """
  return jax.lax.reduce_window(images, -jnp.inf, jax.lax.max, (1, 3, 3, 1),
                               (1, 1, 1, 1), 'SAME')


def unpaired_halves(images: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(A, B) of a batch of 2m images: the first m as they are, the dilation
  of the last m. Raises ConfigError for an odd batch."""
  n = images.shape[0]
  if n % 2:
    raise ConfigError(f'an unpaired batch needs an even number of images, '
                      f'got {n}.')
  return images[:n // 2], dilate(images[n // 2:])
