r"""Texture synthesis by non-parametric sampling (Efros & Leung, 1999).

A. A. Efros and T. K. Leung, "Texture Synthesis by Non-parametric
Sampling", ICCV 1999. The output grows pixel by pixel from a small seed
taken from the sample. For the next pixel p, its neighbourhood w(p) (the
``window`` x ``window`` square around it, of which only the already filled
pixels are known) is compared with every ``window`` x ``window`` window of
the sample by a Gaussian-weighted sum of squared differences over the known
pixels,

    d(w(p), w') = sum_j G_j m_j |w(p)_j - w'_j|^2,

(G a 2-D Gaussian of standard deviation ``sigma`` centred on p, m_j = 1 on
filled pixels), and p takes the centre pixel of a window drawn uniformly
from the candidates with d <= d_min (1 + error_threshold). The paper
divides d by the total weight; that factor is common to all candidates and
changes nothing here.

Order ("onion peeling"): the next pixel is the unfilled one with the most
filled pixels in its window; ties go to the first in raster order. The
seed is a ``seed_size`` x ``seed_size`` patch of the sample at a random
position, placed at the centre of the output.

What is vectorised, and why it is the paper's algorithm: pixels are filled
strictly one at a time, in the order above, each seeing every pixel filled
before it (a `lax.fori_loop` over the pixels). Within one pixel the
distances to all N candidate windows are one matrix-vector product over
the [N, window^2 C] array of the sample's windows (extracted once), then
a minimum, a threshold and a uniform pick among the candidates. Nothing is
approximated: the same order, candidate set and draw as a pixel-by-pixel
loop (`experiments.bench_classics.efros_leung_numpy` is that loop, and the
tests compare the two).

Two details make runs reproducible: the random numbers (the seed position
and one uniform number per pixel) come from the key alone
(`random_choices`), and the k-th candidate in raster order is taken with
k = floor(u n) computed in float32. Distances within a relative 1e-5 of
the threshold count as candidates (`RTOL`), so sums that are equal in exact
arithmetic but round differently (mirror-symmetric Gaussian weights) are
treated alike by any implementation.

The output pixels are copies of sample pixels, so the output has the
sample's dtype. Cost per pixel: O(N window^2 C); the sample's windows are
held in memory as float32 (N window^2 C values).
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.errors import ConfigError
from jaxgen.errors import DataError

RTOL = 1e-5  # distances within this relative margin of the threshold count


def gaussian_window(window: int, sigma: float) -> np.ndarray:
  """The float64 [window, window] Gaussian exp(-(dy^2 + dx^2) / 2 sigma^2)."""
  d = np.arange(window) - window // 2
  return np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2.0 * sigma ** 2))


def check_arguments(sample, out_shape, window, error_threshold, sigma,
                    seed_size) -> tuple[np.ndarray, tuple[int, int], float]:
  """Validates the arguments of `synthesize`; returns (sample as [h, w, C],
  out_shape, sigma). Raises `DataError` / `ConfigError` naming the argument."""
  sample = np.asarray(sample)
  if sample.ndim not in (2, 3) or sample.size == 0:
    raise DataError(f'sample: expected an image [h, w] or [h, w, C], got '
                    f'shape {sample.shape}.')
  if not (np.issubdtype(sample.dtype, np.integer)
          or np.issubdtype(sample.dtype, np.floating)):
    raise DataError(f'sample: expected integer or float pixels, got '
                    f'{sample.dtype}.')
  image = sample if sample.ndim == 3 else sample[..., None]
  h, w = image.shape[:2]
  if (not isinstance(window, (int, np.integer)) or window < 3
      or window % 2 == 0):
    raise ConfigError(f'window: expected an odd integer >= 3, got {window!r}.')
  if window > min(h, w):
    raise ConfigError(f'window={window} is larger than the sample '
                      f'({h} x {w}).')
  try:
    out = tuple(int(s) for s in out_shape)
  except TypeError:
    out = ()
  if len(out) != 2 or min(out) < 1 or any(
      o != s for o, s in zip(out, out_shape)):
    raise ConfigError(f'out_shape: expected (height, width) of positive '
                      f'integers, got {out_shape!r}.')
  if not error_threshold >= 0:
    raise ConfigError(f'error_threshold: expected >= 0, got '
                      f'{error_threshold!r}.')
  sigma = window / 6.4 if sigma is None else sigma
  if not sigma > 0:
    raise ConfigError(f'sigma: expected > 0, got {sigma!r}.')
  if (not isinstance(seed_size, (int, np.integer)) or seed_size < 1
      or seed_size > min(h, w, *out)):
    raise ConfigError(f'seed_size: expected an integer in '
                      f'[1, {min(h, w, *out)}] (at most the sample and the '
                      f'output), got {seed_size!r}.')
  return image, out, float(sigma)


def random_choices(key: jax.Array, sample_hw: Sequence[int],
                   out_shape: Sequence[int],
                   seed_size: int) -> tuple[np.ndarray, np.ndarray]:
  """The run's random numbers: (seed's top-left (y, x) in the sample,
  float32 [H W - seed_size^2] uniforms, one per pixel grown, in order)."""
  k_seed, k_pick = jax.random.split(key)
  h, w = sample_hw
  yx = jax.random.randint(k_seed, (2,), 0,
                          jnp.array([h - seed_size + 1, w - seed_size + 1]))
  num = out_shape[0] * out_shape[1] - seed_size ** 2
  u = jax.random.uniform(k_pick, (num,), jnp.float32)
  return np.asarray(yx), np.asarray(u)


def sample_windows(image: np.ndarray, window: int) -> np.ndarray:
  """All window x window windows of an [h, w, C] image, float32
  [(h - window + 1) (w - window + 1), window, window, C], raster order."""
  v = np.lib.stride_tricks.sliding_window_view(image, (window, window),
                                               axis=(0, 1))
  return np.ascontiguousarray(
      v.transpose(0, 1, 3, 4, 2).reshape(-1, window, window, image.shape[2]),
      dtype=np.float32)


def seed_layout(sample_hw, out_shape, seed_size, seed_yx) -> tuple[
    tuple[int, int], np.ndarray]:
  """(seed's top-left in the output, int [s, s] flat sample indices of the
  seed's pixels)."""
  s = seed_size
  oy, ox = (out_shape[0] - s) // 2, (out_shape[1] - s) // 2
  ys = seed_yx[0] + np.arange(s)
  xs = seed_yx[1] + np.arange(s)
  return (oy, ox), (ys[:, None] * sample_hw[1] + xs[None, :]).astype(np.int32)


@functools.partial(jax.jit, static_argnames=('out_shape', 'window', 'seed_at'))
def _grow(windows, centres, pixels, seed_src, u, gauss, error_threshold, *,
          out_shape, window, seed_at):
  """Flat sample index int32 [H, W] of every output pixel."""
  hgt, wid = out_shape
  r, k = window // 2, window
  c = pixels.shape[-1]
  src = jnp.full((hgt + 2 * r, wid + 2 * r), -1, jnp.int32)
  src = jax.lax.dynamic_update_slice(
      src, seed_src, (seed_at[0] + r, seed_at[1] + r))
  filled = src >= 0
  canvas = jnp.where(filled[..., None], pixels[jnp.maximum(src, 0)], 0.0)
  count = jax.lax.reduce_window(filled.astype(jnp.int32), 0, jax.lax.add,
                                (k, k), (1, 1), 'SAME')

  def body(t, carry):
    src, canvas, count = carry
    inner = count[r:r + hgt, r:r + wid]
    score = jnp.where(src[r:r + hgt, r:r + wid] >= 0, -1, inner)
    p = jnp.argmax(score.ravel())
    i, j = p // wid, p % wid
    target = jax.lax.dynamic_slice(canvas, (i, j, 0), (k, k, c))
    known = jax.lax.dynamic_slice(src, (i, j), (k, k)) >= 0
    weight = jnp.broadcast_to(jnp.where(known, gauss, 0.0)[..., None],
                              (k, k, c))
    # [N, D] times [D]: XLA:CPU runs this layout far faster than a sum over
    # the three trailing axes of [N, k, k, C].
    ssd = jnp.dot(jnp.square(windows - target.reshape(-1)), weight.reshape(-1))
    threshold = jnp.min(ssd) * (1 + error_threshold) * (1 + RTOL)
    candidate = ssd <= threshold
    n = jnp.sum(candidate, dtype=jnp.int32)
    pick = jnp.minimum(jnp.floor(u[t] * n.astype(jnp.float32)).astype(
        jnp.int32), n - 1)
    chosen = jnp.argmax(jnp.cumsum(candidate, dtype=jnp.int32) > pick)
    index = centres[chosen]
    src = src.at[i + r, j + r].set(index)
    canvas = canvas.at[i + r, j + r].set(pixels[index])
    count = jax.lax.dynamic_update_slice(
        count, jax.lax.dynamic_slice(count, (i, j), (k, k)) + 1, (i, j))
    return src, canvas, count

  src, _, _ = jax.lax.fori_loop(0, u.shape[0], body, (src, canvas, count))
  return src[r:r + hgt, r:r + wid]


def synthesize(key: jax.Array, sample, out_shape: Sequence[int], *,
               window: int = 11, error_threshold: float = 0.1,
               sigma: float | None = None, seed_size: int = 3) -> np.ndarray:
  """Synthesises a texture like `sample` (Efros & Leung 1999).

  Args:
    key: the PRNG key (seed position and the uniform picks); the same key
      gives the same texture.
    sample: the example texture, [h, w] (grey) or [h, w, C], integer or
      float pixels.
    out_shape: (H, W) of the output.
    window: odd side of the square neighbourhood, at most min(h, w).
    error_threshold: candidates are the sample windows with distance
      <= d_min (1 + error_threshold); 0: the best matches only.
    sigma: standard deviation (pixels) of the Gaussian weighting the
      neighbourhood; default window / 6.4.
    seed_size: side of the seed patch copied from the sample.

  Returns:
    [H, W] or [H, W, C] (as `sample`), the sample's dtype: every pixel is a
    copy of a sample pixel.

  Raises:
    DataError: `sample` is not a 2-D or 3-D array of numbers.
    ConfigError: another argument is out of range (named in the message).
  """
  image, out, sigma = check_arguments(sample, out_shape, window,
                                      error_threshold, sigma, seed_size)
  h, w, c = image.shape
  seed_yx, u = random_choices(key, (h, w), out, seed_size)
  seed_at, seed_src = seed_layout((h, w), out, seed_size, seed_yx)
  r = window // 2
  ny, nx = h - window + 1, w - window + 1
  centres = ((np.arange(ny)[:, None] + r) * w
             + np.arange(nx)[None, :] + r).reshape(-1).astype(np.int32)
  windows = sample_windows(image, window)
  src = _grow(jnp.asarray(windows.reshape(len(windows), -1)),
              jnp.asarray(centres),
              jnp.asarray(image.reshape(-1, c), jnp.float32),
              jnp.asarray(seed_src), jnp.asarray(u),
              jnp.asarray(gaussian_window(window, sigma), jnp.float32),
              jnp.float32(error_threshold), out_shape=out, window=window,
              seed_at=seed_at)
  result = image.reshape(-1, c)[np.asarray(src)]
  return result if np.asarray(sample).ndim == 3 else result[..., 0]
