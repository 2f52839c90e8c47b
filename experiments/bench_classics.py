r"""Timing of the classics in JAX against straightforward NumPy, one process.

  python -m experiments.bench_classics
  python -m experiments.bench_classics --rounds=3 --patchmatch_size=128

- Efros & Leung: seconds to synthesise a 64x64 grey texture from a crop of
  scikit-image's brick texture (`jaxgen.classics.efros_leung.synthesize`
  against `efros_leung_numpy`, a Python loop over the pixels with each
  pixel's distances to all sample windows in NumPy: the same algorithm,
  the same random numbers, the same output);
- PatchMatch: seconds to compute the nearest-neighbour field between two
  256x256 colour images (the astronaut and the coffee photograph, resized
  crops) with 7x7 patches and 5 iterations
  (`jaxgen.classics.patchmatch.nearest_neighbour_field` against
  `patchmatch_numpy`, the same parallel propagation and random search with
  NumPy arrays and the same random numbers).

Each round runs both implementations once, in turn (the starting one
rotates); the medians over the rounds are compared (NumPy / JAX: above 1,
JAX is faster), with the ratio of the least times beside them. JAX's
compilation happens before the timed rounds. Absolute seconds drift with
the machine's load; the ratio is the result.

The two NumPy functions are also the tests' references
(tests/classics/).
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np

from experiments import bench_common
from experiments import entry
from jaxgen.classics import efros_leung
from jaxgen.classics import patchmatch


def efros_leung_numpy(key: jax.Array, sample, out_shape, *, window: int = 11,
                      error_threshold: float = 0.1,
                      sigma: float | None = None,
                      seed_size: int = 3) -> np.ndarray:
  """`efros_leung.synthesize` written as a plain loop over the pixels.

  The same arguments, random numbers (`efros_leung.random_choices`), order
  and candidate rule; distances in float64.
  """
  image, out, sigma = efros_leung.check_arguments(
      sample, out_shape, window, error_threshold, sigma, seed_size)
  h, w, c = image.shape
  hgt, wid = out
  r, k = window // 2, window
  seed_yx, u = efros_leung.random_choices(key, (h, w), out, seed_size)
  (oy, ox), seed_src = efros_leung.seed_layout((h, w), out, seed_size,
                                               seed_yx)
  windows = efros_leung.sample_windows(image, window).astype(np.float64)
  pixels = image.reshape(-1, c).astype(np.float64)
  gauss = efros_leung.gaussian_window(window, sigma)
  ny, nx = h - k + 1, w - k + 1
  centres = ((np.arange(ny)[:, None] + r) * w
             + np.arange(nx)[None, :] + r).reshape(-1)
  src = np.full((hgt + 2 * r, wid + 2 * r), -1, np.int64)
  src[oy + r:oy + r + seed_size, ox + r:ox + r + seed_size] = seed_src
  count = np.zeros(src.shape, np.int64)  # filled pixels in each window
  for y, x in zip(*np.nonzero(src >= 0)):
    count[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1] += 1
  for t in range(len(u)):
    # The unfilled pixel with most filled neighbours (first in raster order).
    score = np.where(src[r:r + hgt, r:r + wid] >= 0, -1,
                     count[r:r + hgt, r:r + wid])
    i, j = divmod(int(np.argmax(score)), wid)
    known = src[i:i + k, j:j + k] >= 0
    canvas_known = np.where(known[..., None],
                            pixels[np.maximum(src[i:i + k, j:j + k], 0)], 0.)
    weight = (gauss * known)[..., None]
    ssd = ((windows - canvas_known) ** 2 * weight).sum(axis=(1, 2, 3))
    threshold = np.float32(ssd.min()) * np.float32(
        1 + error_threshold) * np.float32(1 + efros_leung.RTOL)
    candidates = np.flatnonzero(ssd <= threshold)
    pick = min(int(np.floor(u[t] * np.float32(len(candidates)))),
               len(candidates) - 1)
    src[i + r, j + r] = centres[candidates[pick]]
    count[i:i + k, j:j + k] += 1
  result = image.reshape(-1, c)[src[r:r + hgt, r:r + wid]]
  return result if np.asarray(sample).ndim == 3 else result[..., 0]


def patchmatch_numpy(key: jax.Array, a, b, *, patch: int = 7,
                     iterations: int = 5) -> tuple[np.ndarray, np.ndarray]:
  """`patchmatch.nearest_neighbour_field` (all of B allowed) in NumPy.

  The same initial field and search offsets (drawn by JAX from the same
  keys), jumps, radii and order of candidates; float64 distances.
  """
  a = np.asarray(a, np.float64).reshape(np.shape(a)[:2] + (-1,))
  b = np.asarray(b, np.float64).reshape(np.shape(b)[:2] + (-1,))
  (ha, wa), (hb, wb) = a.shape[:2], b.shape[:2]
  r = patch // 2

  def all_patches(x):
    h, w, _ = x.shape
    p = np.pad(x, ((r, r), (r, r), (0, 0)), mode='reflect')
    return np.concatenate([p[dy:dy + h, dx:dx + w] for dy in range(patch)
                           for dx in range(patch)], axis=-1)

  pa, pb = all_patches(a), all_patches(b)

  def distance(field):
    y, x = field[..., 0], field[..., 1]
    inside = (y >= 0) & (y < hb) & (x >= 0) & (x < wb)
    d = ((pa - pb[np.clip(y, 0, hb - 1), np.clip(x, 0, wb - 1)]) ** 2).sum(-1)
    return np.where(inside, d, np.inf)

  def improve(field, dist, candidate, exists):
    d = np.where(exists, distance(candidate), np.inf)
    better = d < dist
    return np.where(better[..., None], candidate, field), np.where(
        better, d, dist)

  init_key, search_key = jax.random.split(key)
  field = np.asarray(patchmatch.initial_field(init_key, (ha, wa),
                                              np.ones((hb, wb), bool)))
  dist = distance(field)
  ys, xs = np.arange(ha)[:, None], np.arange(wa)[None, :]
  for it in range(iterations):
    sign = 1 if it % 2 == 0 else -1
    for s in patchmatch.jumps((ha, wa)):
      for dy, dx in ((0, sign * s), (sign * s, 0)):
        # Every pixel's neighbour at (y - dy, x - dx), its match shifted.
        ny, nx = ys - dy, xs - dx
        exists = (ny >= 0) & (ny < ha) & (nx >= 0) & (nx < wa)
        cand = field[np.clip(ny, 0, ha - 1), np.clip(nx, 0, wa - 1)] + (
            np.array([dy, dx]))
        field, dist = improve(field, dist, cand, exists)
    for radius in patchmatch.radii((hb, wb)):
      offsets = np.asarray(patchmatch.search_offsets(search_key, it, (ha, wa),
                                                     radius))
      field, dist = improve(field, dist, field + offsets, True)
  return field.astype(np.int32), dist


def interleave(fns: dict[str, Callable[[], Any]],
               rounds: int) -> dict[str, tuple[float, float]]:
  """(median, least) seconds of each callable over `rounds` rounds, run in
  turn within each round (the starting one rotating)."""
  names = list(fns)
  times = {n: [] for n in names}
  for r in range(rounds):
    for n in names[r % len(names):] + names[:r % len(names)]:
      start = time.perf_counter()
      fns[n]()
      times[n].append(time.perf_counter() - start)
  return {n: (float(np.median(t)), float(np.min(t)))
          for n, t in times.items()}


def report(title: str, fns: dict[str, Callable[[], Any]], rounds: int) -> None:
  """Times 'jax' and 'numpy' interleaved and prints medians and ratios."""
  load = os.getloadavg()[0]
  t = interleave(fns, rounds)
  print(f'\n{title}, {rounds} rounds (load average {load:.2f} -> '
        f'{os.getloadavg()[0]:.2f}):')
  print(f"{'':6s} {'median s':>9s} {'best s':>8s}")
  for name in fns:
    print(f'{name:6s} {t[name][0]:9.2f} {t[name][1]:8.2f}')
  print(f"numpy/jax: {t['numpy'][0] / t['jax'][0]:.2f} (medians), "
        f"{t['numpy'][1] / t['jax'][1]:.2f} (bests)", flush=True)


def bench_efros_leung(rounds: int, sample_size: int, size: int) -> None:
  """Synthesis of a size x size texture from a brick crop, both ways."""
  from experiments import classics  # pylint: disable=g-import-not-at-top
  sample = classics.bundled('brick', sample_size, scale=0.5)[..., 0]
  key = jax.random.key(0)
  kwargs = dict(window=11, error_threshold=0.1)
  out = efros_leung.synthesize(key, sample, (size, size), **kwargs)  # compile
  ref = efros_leung_numpy(key, sample, (size, size), **kwargs)
  print(f'\nefros_leung: sample {sample.shape}, output {size}x{size}, '
        f'window 11; JAX and NumPy outputs equal: '
        f'{bool(np.array_equal(out, ref))}')
  report(f'efros_leung {size}x{size}', {
      'jax': lambda: efros_leung.synthesize(key, sample, (size, size),
                                            **kwargs),
      'numpy': lambda: efros_leung_numpy(key, sample, (size, size),
                                         **kwargs)}, rounds)


def bench_patchmatch(rounds: int, size: int, iterations: int) -> None:
  """The field between two size x size colour images, both ways."""
  from experiments import classics  # pylint: disable=g-import-not-at-top
  a = classics.bundled('astronaut', size, scale=size / 512 * 1.5)
  b = classics.bundled('coffee', size, scale=size / 400 * 1.2)
  key = jax.random.key(0)

  def run_jax():
    return jax.block_until_ready(patchmatch.nearest_neighbour_field(
        key, a, b, patch=7, iterations=iterations))

  nnf, dist = run_jax()  # compile
  ref_nnf, ref_dist = patchmatch_numpy(key, a, b, patch=7,
                                       iterations=iterations)
  print(f'\npatchmatch: {size}x{size}x3 images, 7x7 patches, {iterations} '
        f'iterations; JAX and NumPy fields equal: '
        f'{bool(np.array_equal(nnf, ref_nnf))}, mean patch SSD '
        f'{float(np.mean(dist)):.0f} (NumPy {float(np.mean(ref_dist)):.0f})')
  report(f'patchmatch {size}x{size}', {
      'jax': run_jax,
      'numpy': lambda: patchmatch_numpy(key, a, b, patch=7,
                                        iterations=iterations)}, rounds)


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      rounds=flags.DEFINE_integer('rounds', 3, 'Interleaved rounds.'),
      texture_size=flags.DEFINE_integer('texture_size', 64, 'Side of the '
                                        'synthesised texture.'),
      sample_size=flags.DEFINE_integer('sample_size', 64, 'Side of the '
                                       'texture sample.'),
      patchmatch_size=flags.DEFINE_integer('patchmatch_size', 256, 'Side of '
                                           'the PatchMatch images.'),
      iterations=flags.DEFINE_integer('iterations', 5, 'PatchMatch '
                                      'iterations.'),
      **bench_common.define_matmul_flags())


def main(argv, flag_values: dict[str, Any]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in flag_values.items()}
  bench_common.header(f['matmul_size'], f['matmul_repeats'])
  bench_efros_leung(f['rounds'], f['sample_size'], f['texture_size'])
  bench_patchmatch(f['rounds'], f['patchmatch_size'], f['iterations'])
  print(f'\nload average after: {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
  _FLAGS = define_flags()
  entry.run(lambda argv: main(argv, _FLAGS))
