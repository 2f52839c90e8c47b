r"""PatchMatch: randomized nearest-neighbour fields between images.

C. Barnes, E. Shechtman, A. Finkelstein and D. B. Goldman, "PatchMatch: A
Randomized Correspondence Algorithm for Structural Image Editing", SIGGRAPH
2009. For every pixel of image A, the nearest-neighbour field (NNF) names
the pixel of image B whose ``patch`` x ``patch`` patch is closest in
squared difference (summed over the patch and the channels). Both images
are reflect-padded by ``patch // 2``, so every pixel is a patch centre.

The algorithm, as here:

1. initialisation: every pixel of A points at a uniformly random (allowed)
   pixel of B;
2. propagation: a pixel adopts its neighbour's match, shifted by the
   offset between them, when that is closer;
3. random search: a pixel tries f + R_i at radii w/2^i, i = 0, 1, ... while
   w/2^i >= 1 (w = max(H_B, W_B)), R_i uniform integers in
   [-w/2^i, w/2^i]^2, and keeps whichever is closer.

What is parallel here, and how it departs from the paper: the paper
propagates in scan order (from the left and upper neighbours, then the
right and lower ones on alternate iterations), so one sweep carries a good
match across the image. Here every pixel propagates at once (a JAX array
operation over the whole field), which alone would carry a match one pixel
per step; so propagation is a jump flood (Rong & Tan 2006): from the
neighbours at distance s = 2^(K-1), ..., 2, 1 (2^K >= max(H_A, W_A)), the
left and upper neighbours on even iterations and the right and lower ones
on odd iterations, as in the paper. A match thus travels across the whole
image within one iteration. Random search then follows for all pixels at
once, each radius in turn. A candidate that falls outside B, or on a pixel
of B that ``b_valid`` excludes, is not taken.

The random numbers come from the key alone (split in two: `initial_field`
draws from the first, `search_offsets` from the second), so a key gives the
same field every time, and the straightforward NumPy version of the same steps
(`experiments.bench_classics.patchmatch_numpy`) gives the same field. On
integer pixel values (uint8 images) the float32 distances are exact
integers, whatever the summation order.

`reconstruct` rebuilds A from B's patches (every pixel: the average of the
values the overlapping matched patches give it); `fill_hole` completes a
masked region from the rest of the image by alternating the two (as in
Wexler, Shechtman & Irani 2007, the completion the PatchMatch paper
accelerates), coarse to fine.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.errors import ConfigError
from jaxgen.errors import DataError


def _as_image(x, name: str) -> np.ndarray:
  x = np.asarray(x)
  if x.ndim not in (2, 3) or x.size == 0:
    raise DataError(f'{name}: expected an image [H, W] or [H, W, C], got '
                    f'shape {x.shape}.')
  if not (np.issubdtype(x.dtype, np.integer)
          or np.issubdtype(x.dtype, np.floating)):
    raise DataError(f'{name}: expected integer or float pixels, got '
                    f'{x.dtype}.')
  return x if x.ndim == 3 else x[..., None]


def _check_patch(patch, *shapes) -> None:
  smallest = min(min(s[:2]) for s in shapes)
  if not isinstance(patch, (int, np.integer)) or patch < 1 or patch % 2 == 0:
    raise ConfigError(f'patch: expected an odd positive integer, got '
                      f'{patch!r}.')
  if patch // 2 >= smallest:
    raise ConfigError(f'patch={patch}: half of it must be smaller than the '
                      f'images (smallest side {smallest}).')


def _check_iterations(iterations) -> None:
  if not isinstance(iterations, (int, np.integer)) or iterations < 0:
    raise ConfigError(f'iterations: expected an integer >= 0, got '
                      f'{iterations!r}.')


def patches(image: jax.Array, patch: int) -> jax.Array:
  """Every pixel's patch of a reflect-padded [H, W, C] image,
  [H, W, patch^2 C] float32 (row-major offsets, then channels)."""
  h, w, _ = image.shape
  r = patch // 2
  padded = jnp.pad(jnp.asarray(image, jnp.float32), ((r, r), (r, r), (0, 0)),
                   mode='reflect')
  return jnp.concatenate([padded[dy:dy + h, dx:dx + w]
                          for dy in range(patch) for dx in range(patch)],
                         axis=-1)


def jumps(a_hw) -> list[int]:
  """The propagation distances 2^(K-1), ..., 2, 1, 2^K >= max(H_A, W_A)."""
  k = max(1, math.ceil(math.log2(max(a_hw))))
  return [2 ** i for i in reversed(range(k))]


def radii(b_hw) -> list[int]:
  """The random-search radii w, w/2, ..., 1 (w = max(H_B, W_B), halved
  with integer division: w >> i)."""
  out, w = [], max(b_hw)
  while w >= 1:
    out.append(w)
    w //= 2
  return out


@functools.partial(jax.jit, static_argnames=('a_hw',))
def initial_field(key: jax.Array, a_hw: tuple[int, int],
                  b_valid: jax.Array) -> jax.Array:
  """int32 [H_A, W_A, 2]: uniform draws among the allowed pixels of B."""
  hb, wb = b_valid.shape
  flat = jnp.nonzero(b_valid.ravel(), size=hb * wb, fill_value=0)[0]
  n = jnp.sum(b_valid, dtype=jnp.int32)
  # Drawn as a vector (XLA:CPU compiles a flat draw much faster).
  idx = flat[jax.random.randint(key, (a_hw[0] * a_hw[1],), 0, n).reshape(
      a_hw)]
  return jnp.stack([idx // wb, idx % wb], axis=-1).astype(jnp.int32)


def search_offsets(key: jax.Array, iteration, a_hw, radius) -> jax.Array:
  """int32 [H_A, W_A, 2] uniform in [-radius, radius] for one iteration and
  radius (drawn from fold_in(fold_in(key, iteration), radius))."""
  k = jax.random.fold_in(jax.random.fold_in(key, iteration), radius)
  return jax.random.randint(k, (a_hw[0] * a_hw[1] * 2,), -radius, radius + 1,
                            jnp.int32).reshape(tuple(a_hw) + (2,))


def _distance(pa, pb, field, b_valid):
  """Patch SSD of every pixel of A to its candidate in B; inf where the
  candidate is outside B or not allowed."""
  hb, wb = b_valid.shape
  y, x = field[..., 0], field[..., 1]
  inside = (y >= 0) & (y < hb) & (x >= 0) & (x < wb)
  yc, xc = jnp.clip(y, 0, hb - 1), jnp.clip(x, 0, wb - 1)
  d = jnp.sum(jnp.square(pa - pb[yc, xc]), axis=-1)
  return jnp.where(inside & b_valid[yc, xc], d, jnp.inf)


def _shifted(field, dy: int, dx: int):
  """(field of the neighbour at (y - dy, x - dx), shifted by (dy, dx); a
  bool of where that neighbour exists)."""
  h, w, _ = field.shape
  src = jnp.roll(field, (dy, dx), axis=(0, 1)) + jnp.array([dy, dx],
                                                           jnp.int32)
  ys, xs = jnp.arange(h)[:, None] - dy, jnp.arange(w)[None, :] - dx
  return src, (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)


def _improve(pa, pb, b_valid, field, dist, candidate, exists=None):
  d = _distance(pa, pb, candidate, b_valid)
  if exists is not None:
    d = jnp.where(exists, d, jnp.inf)
  better = d < dist
  return jnp.where(better[..., None], candidate, field), jnp.where(
      better, d, dist)


@functools.partial(jax.jit, static_argnames=('patch',))
def _nnf(key, a, b, b_valid, init, iterations, *, patch):
  pa, pb = patches(a, patch), patches(b, patch)
  a_hw, b_hw = a.shape[:2], b.shape[:2]
  num_jumps, num_radii = len(jumps(a_hw)), len(radii(b_hw))

  def iteration(it, carry):
    sign = 1 - 2 * (it % 2)  # from the left/up, then from the right/down

    def propagate(i, carry):
      field, dist = carry
      s = sign * (2 ** (num_jumps - 1 - i))
      for dy, dx in ((0, s), (s, 0)):
        cand, exists = _shifted(field, dy, dx)
        field, dist = _improve(pa, pb, b_valid, field, dist, cand, exists)
      return field, dist

    def search(i, carry):
      field, dist = carry
      radius = jnp.right_shift(max(b_hw), i)
      cand = field + search_offsets(key, it, a_hw, radius)
      return _improve(pa, pb, b_valid, field, dist, cand)

    carry = jax.lax.fori_loop(0, num_jumps, propagate, carry)
    return jax.lax.fori_loop(0, num_radii, search, carry)

  field = init
  return jax.lax.fori_loop(0, iterations, iteration,
                           (field, _distance(pa, pb, field, b_valid)))


def nearest_neighbour_field(key: jax.Array, a, b, *, patch: int = 7,
                            iterations: int = 5, b_valid=None,
                            init=None) -> tuple[jax.Array, jax.Array]:
  """The PatchMatch nearest-neighbour field from A to B.

  Args:
    key: PRNG key of the initial field and the random search.
    a: image A, [H_A, W_A] or [H_A, W_A, C], integer or float pixels.
    b: image B, [H_B, W_B] or [H_B, W_B, C] (as many channels as A).
    patch: odd side of the square patches.
    iterations: propagation + random-search rounds (0: the initial field).
    b_valid: optional bool [H_B, W_B]: the pixels of B that may be matched
      (default: all); at least one must be True.
    init: optional int [H_A, W_A, 2] starting field (allowed pixels of B)
      in place of the random one.

  Returns:
    (nnf, dist): int32 [H_A, W_A, 2], the (row, column) in B matched to
    each pixel of A, and float32 [H_A, W_A], the squared difference of the
    two patches summed over the patch and the channels (pixel units, e.g.
    0..255 for uint8).

  Raises:
    DataError: an image, `b_valid` or `init` has the wrong shape.
    ConfigError: `patch` or `iterations` is out of range.
  """
  a_img, b_img = _as_image(a, 'a'), _as_image(b, 'b')
  if a_img.shape[2] != b_img.shape[2]:
    raise DataError(f'b: expected {a_img.shape[2]} channels like a, got '
                    f'shape {np.shape(b)}.')
  _check_patch(patch, a_img.shape, b_img.shape)
  _check_iterations(iterations)
  if b_valid is None:
    b_valid = np.ones(b_img.shape[:2], bool)
  b_valid = np.asarray(b_valid)
  if b_valid.shape != b_img.shape[:2] or b_valid.dtype != bool:
    raise DataError(f'b_valid: expected bool {b_img.shape[:2]}, got '
                    f'{b_valid.dtype} {b_valid.shape}.')
  if not b_valid.any():
    raise DataError('b_valid: no pixel of b is allowed.')
  a_hw = a_img.shape[:2]
  init_key, search_key = jax.random.split(key)
  if init is None:
    init = initial_field(init_key, tuple(a_hw), b_valid)
  elif np.shape(init) != a_hw + (2,):
    raise DataError(f'init: expected shape {a_hw + (2,)}, got '
                    f'{np.shape(init)}.')
  return _nnf(search_key, jnp.asarray(a_img, jnp.float32),
              jnp.asarray(b_img, jnp.float32), jnp.asarray(b_valid),
              jnp.asarray(init, jnp.int32), jnp.int32(iterations),
              patch=patch)


@functools.partial(jax.jit, static_argnames=('patch',))
def _vote(nnf, b, *, patch):
  h, w, _ = nnf.shape
  r = patch // 2
  b_pad = jnp.pad(b, ((r, r), (r, r), (0, 0)), mode='reflect')
  total = jnp.zeros((h, w, b.shape[-1]), jnp.float32)
  count = jnp.zeros((h, w, 1), jnp.float32)
  for dy in range(-r, r + 1):
    for dx in range(-r, r + 1):
      # The patch centred at (y - dy, x - dx) covers (y, x) at offset
      # (dy, dx); its match gives B's pixel at match + (dy, dx).
      src, exists = _shifted(nnf, dy, dx)
      value = b_pad[src[..., 0] + r, src[..., 1] + r]
      total += jnp.where(exists[..., None], value, 0.0)
      count += exists[..., None]
  return total / count


def reconstruct(nnf, b, *, patch: int = 7) -> jax.Array:
  """Image A rebuilt from B's patches: each pixel averages the values that
  the matched patches covering it give it (the "voting" of the papers).

  Args:
    nnf: int [H, W, 2], a field from `nearest_neighbour_field` into B.
    b: image B, [H_B, W_B] or [H_B, W_B, C].
    patch: the patch side the field was computed with (1: plain lookup).

  Returns:
    float32 [H, W, C] ([H, W] for a 2-D `b`).
  """
  b_img = _as_image(b, 'b')
  nnf = np.asarray(nnf)
  if nnf.ndim != 3 or nnf.shape[2] != 2:
    raise DataError(f'nnf: expected [H, W, 2], got shape {nnf.shape}.')
  _check_patch(patch, b_img.shape)
  if (nnf < 0).any() or (nnf[..., 0] >= b_img.shape[0]).any() or (
      nnf[..., 1] >= b_img.shape[1]).any():
    raise DataError(f'nnf: entries must be pixels of b ({b_img.shape[:2]}).')
  out = _vote(jnp.asarray(nnf, jnp.int32), jnp.asarray(b_img, jnp.float32),
              patch=patch)
  return out if np.ndim(b) == 3 else out[..., 0]


def _downsample(x: np.ndarray) -> np.ndarray:
  """2x2 mean of an [H, W, C] float image (odd sides: the last row/column
  repeated)."""
  h, w = x.shape[:2]
  x = np.pad(x, ((0, h % 2), (0, w % 2), (0, 0)), mode='edge')
  return x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2, -1).mean((1, 3))


def fill_hole(key: jax.Array, image, mask, *, patch: int = 7,
              iterations: int = 4, em_steps: int = 4,
              levels: int = 3) -> jax.Array:
  """Fills the masked pixels of an image from the rest of it.

  Coarse to fine over ``levels`` halvings (2x2 means; a coarse pixel is in
  the hole when any of its four pixels is). At the coarsest level the hole
  starts as the mean of the known pixels; at each finer level it starts as
  the coarser result enlarged. Then ``em_steps`` times: the field from the
  current image to the known patches (those whose whole patch, reflect
  padded, lies outside the hole) by `nearest_neighbour_field` (started
  from the previous field), `reconstruct`, and the known pixels put back.

  Args:
    key: PRNG key (one derived key per level and step).
    image: [H, W] or [H, W, C], integer or float pixels.
    mask: bool [H, W], True in the hole; some pixels must be known.
    patch: odd patch side.
    iterations: PatchMatch iterations per field.
    em_steps: field + reconstruction rounds per level.
    levels: pyramid levels (1: single scale).

  Returns:
    float32 image of `image`'s shape: the known pixels unchanged, the hole
    filled.

  Raises:
    DataError: `image` or `mask` has the wrong shape, or no pixel (at the
      coarsest level, no whole patch) is known.
    ConfigError: `patch`, `iterations`, `em_steps` or `levels` is out of
      range.
  """
  img = _as_image(image, 'image').astype(np.float32)
  mask = np.asarray(mask)
  if mask.shape != img.shape[:2] or mask.dtype != bool:
    raise DataError(f'mask: expected bool {img.shape[:2]} like the image, '
                    f'got {mask.dtype} {mask.shape}.')
  if mask.all():
    raise DataError('mask: every pixel is in the hole; some must be known.')
  for name, value in (('em_steps', em_steps), ('levels', levels)):
    if not isinstance(value, (int, np.integer)) or value < 1:
      raise ConfigError(f'{name}: expected an integer >= 1, got {value!r}.')
  _check_iterations(iterations)
  pyramid = [(img, mask)]
  for _ in range(levels - 1):
    im, m = pyramid[-1]
    pyramid.append((_downsample(im), _downsample(
        m[..., None].astype(np.float32))[..., 0] > 0))
  _check_patch(patch, pyramid[-1][0].shape)
  r = patch // 2
  current = None
  for level in reversed(range(levels)):
    im, m = pyramid[level]
    padded = np.pad(m, r, mode='reflect')
    hole_near = np.lib.stride_tricks.sliding_window_view(
        padded, (patch, patch)).any(axis=(2, 3))
    valid = ~hole_near
    if not valid.any():
      raise DataError(f'mask: at pyramid level {level} ({m.shape}) no '
                      f'{patch}x{patch} patch lies outside the hole; use a '
                      'smaller hole, patch or levels.')
    if current is None:
      start = np.broadcast_to(im[~m].mean(0), im.shape)
    else:
      up = np.repeat(np.repeat(current, 2, 0), 2, 1)[:im.shape[0],
                                                      :im.shape[1]]
      start = up
    x = jnp.asarray(np.where(m[..., None], start, im), jnp.float32)
    nnf = None
    for step in range(em_steps):
      k = jax.random.fold_in(jax.random.fold_in(key, level), step)
      nnf, _ = nearest_neighbour_field(k, x, im, patch=patch,
                                       iterations=iterations, b_valid=valid,
                                       init=nnf)
      x = jnp.where(jnp.asarray(m)[..., None],
                    _vote(nnf, jnp.asarray(im), patch=patch), im)
    current = np.asarray(x)
  out = jnp.asarray(current)
  return out if np.ndim(image) == 3 else out[..., 0]
