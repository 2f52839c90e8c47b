"""Evaluation: exact full-split likelihoods in nats and bits/dim, image grids.

`evaluate_split` runs a family's per-example metrics and any number of named
likelihood estimators (for a VAE: the ELBO and the IWAE bound with k
samples) over a whole split, exactly once per example: the last batch is
padded and masked, nothing is dropped, and the sums are accumulated in
float64 on the host. Per eval batch i the key is ``fold_in(eval_key, i)``.

`nll_report` is the one place where log-likelihoods become the papers'
units, per example:

    nll_nats     = -log p(x) + offset
    bits_per_dim = nll_nats / (D ln 2)

where D = H * W * C and ``offset`` is the dequantization bookkeeping of a
continuous density on 8-bit data (D ln 256 for data scaled to [0, 1);
zero for discrete likelihoods), so numbers compare with the papers'.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxgen import losses
from jaxgen import parallel
from jaxgen import workdir as workdir_lib


def nll_report(log_likelihood, num_dims: int,
               offset_nats: float = 0.0) -> dict[str, Any]:
  """Negative log-likelihood in nats and in bits per dimension, per example.

  Args:
    log_likelihood: [B] log p(x) (or a lower bound) in nats, as returned by
      a family's ``log_likelihood``; a float or an array.
    num_dims: D, the number of dimensions of one example (H * W * C).
    offset_nats: nats to add per example for a continuous density evaluated
      on dequantized data (`jaxgen.losses.dequantization_offset_nats`); 0 for
      discrete likelihoods.

  Returns:
    {'nll_nats': -log_likelihood + offset_nats,
     'bits_per_dim': nll_nats / (num_dims * ln 2)}, each shaped like
    `log_likelihood`. Evaluation applies it per example, on device, and
    averages on the host in float64; a uniform model over 256 levels comes
    out at exactly 8.0 bits/dim.
  """
  nll = -jnp.asarray(log_likelihood) + offset_nats
  return {'nll_nats': nll,
          'bits_per_dim': losses.nats_to_bits_per_dim(nll, num_dims)}


def make_eval_step(family, net, preprocess: Callable,
                   estimators: Mapping[str, Mapping[str, Any]], *,
                   num_dims: int, offset_nats: float = 0.0):
  """A jit-able ``(params, batch, key) -> {name: masked sum}`` function.

  Sums (not means) over unmasked rows of every per-example metric of
  ``family.loss_fn`` (with train=False) and, for every named estimator of
  ``family.log_likelihood``, of '<name>/log_likelihood', '<name>/nll_nats'
  and '<name>/bits_per_dim' (`nll_report`); plus 'count', the number of
  unmasked rows. Hyper-parameters are bound here, before `jax.jit`.
  """
  names = sorted(estimators)

  def eval_step(params, batch, key):
    pre_key, loss_key, ll_key = jax.random.split(key, 3)
    batch = preprocess(batch, pre_key)
    mask = batch['mask'].astype(jnp.float32)
    _, metrics = family.loss_fn(params, batch, loss_key, net=net, train=False)
    sums = {k: (v * mask).sum() for k, v in metrics.items()}
    for j, name in enumerate(names):
      ll = family.log_likelihood(params, batch, jax.random.fold_in(ll_key, j),
                                 net=net, **dict(estimators[name]))
      report = {'log_likelihood': ll,
                **nll_report(ll, num_dims, offset_nats)}
      for k, v in report.items():
        sums[f'{name}/{k}'] = (v * mask).sum()
    sums['count'] = mask.sum()
    return sums

  return eval_step


def evaluate_split(eval_step: Callable, params: Any,
                   batches: Callable[[], Any], key: jax.Array, mesh, *,
                   progress: Callable | None = None) -> dict[str, float]:
  """Runs a jitted `eval_step` over every batch of a split.

  Args:
    eval_step: a jitted function from `make_eval_step`.
    params: replicated parameters.
    batches: a callable returning a fresh iterator of per-process NumPy
      batches covering the split exactly once (`jaxgen.data.eval_batches`).
    key: the evaluation key; batch i uses fold_in(key, i).
    mesh: the device mesh.
    progress: optional wrapper around the batch iterator (e.g. tqdm).

  Returns:
    {name: mean over the split} for every sum of the step (accumulated in
    float64 on the host), and 'num_examples', the count.
  """
  totals: dict[str, float] = {}
  iterator = batches()
  if progress is not None:
    iterator = progress(iterator)
  for i, local in enumerate(iterator):
    batch = parallel.global_batch(local, mesh)
    sums = eval_step(params, batch, jax.random.fold_in(key, i))
    for k, v in jax.device_get(sums).items():
      totals[k] = totals.get(k, 0.0) + float(np.asarray(v, np.float64))
  count = totals.pop('count', 0.0)
  if not count:
    raise ValueError('evaluate_split saw no examples: the split is empty.')
  results = {k: v / count for k, v in totals.items()}
  results['num_examples'] = count
  return results


def write_eval_json(workdir: str, step: int, split: str,
                    results: Mapping[str, float]) -> str:
  """Writes ``<workdir>/eval/<split>_step<step>.json``; returns the path."""
  path = os.path.join(workdir, 'eval', f'{split}_step{step:07d}.json')
  return workdir_lib.write_json(
      path, {'step': int(step), 'split': split, **results})


def image_grid(images: np.ndarray, num_cols: int | None = None,
               padding: int = 1, pad_value: int = 128) -> np.ndarray:
  """Tiles uint8 images [N, H, W, C] into one uint8 image [H', W', C].

  Rows are filled left to right; padding and missing cells are `pad_value`
  (mid-grey by default, so borders read as neither ink nor paper).
  """
  images = np.asarray(images)
  if images.ndim != 4 or images.dtype != np.uint8:
    raise ValueError(f'image_grid expects uint8 [N, H, W, C], got '
                     f'{images.dtype} {images.shape}.')
  n, h, w, c = images.shape
  cols = num_cols or int(math.ceil(math.sqrt(n)))
  rows = int(math.ceil(n / cols))
  grid = np.full((rows * (h + padding) + padding,
                  cols * (w + padding) + padding, c), pad_value, np.uint8)
  for i in range(n):
    r, col = divmod(i, cols)
    y, x = padding + r * (h + padding), padding + col * (w + padding)
    grid[y:y + h, x:x + w] = images[i]
  return grid


def save_png(path: str, image: np.ndarray, scale: int = 1) -> str:
  """Writes a uint8 [H, W, C] image (C in {1, 3}) as PNG; returns the path.

  `scale` enlarges it with nearest-neighbour sampling (small digits).
  """
  image = np.asarray(image)
  if scale > 1:
    image = image.repeat(scale, axis=0).repeat(scale, axis=1)
  pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
  return workdir_lib.atomic_write(path, lambda f: pil.save(f, format='PNG'),
                                  binary=True)


def signal_images(signals: np.ndarray, height: int = 64) -> np.ndarray:
  """Draws 8-bit 1-D signals [N, 1, T, 1] as waveforms: uint8 [N, height, T, 1].

  Column t has ink (255) from the previous sample's row to this one's, so
  the trace is connected; value 255 is the top row.
  """
  signals = np.asarray(signals)
  if signals.ndim != 4 or signals.shape[1] != 1 or signals.shape[3] != 1:
    raise ValueError(f'signal_images expects [N, 1, T, 1], got {signals.shape}.')
  rows = (height - 1) - np.round(
      signals[:, 0, :, 0].astype(np.float64) * (height - 1) / 255.0).astype(int)
  prev = np.concatenate([rows[:, :1], rows[:, :-1]], axis=1)
  lo, hi = np.minimum(rows, prev), np.maximum(rows, prev)
  y = np.arange(height)[None, :, None]
  ink = (y >= lo[:, None, :]) & (y <= hi[:, None, :])
  return (ink * 255).astype(np.uint8)[..., None]


def comparison_grid(rows: Sequence[np.ndarray], padding: int = 1,
                    pad_value: int = 128) -> np.ndarray:
  """Stacks equal-length image rows (e.g. inputs over reconstructions)."""
  n = len(rows[0])
  return image_grid(np.concatenate([np.asarray(r) for r in rows]), n, padding,
                    pad_value)


def replicated_fn(fn: Callable, mesh, **static) -> Callable:
  """`jax.jit` of fn with `static` keyword arguments bound, output replicated."""
  return jax.jit(functools.partial(fn, **static),
                 out_shardings=parallel.replicated(mesh))


def scatter_image(points: np.ndarray, reference: np.ndarray | None = None, *,
                  size: int = 256, extent: float | None = None) -> np.ndarray:
  """Draws 2-D points over reference points: uint8 [size, size, 3].

  NumPy only (no plotting library): a white canvas, `reference` (e.g. data)
  as grey dots, `points` (e.g. samples) as blue dots on top, and the axes
  through the origin in light grey. The view is the square
  [-extent, extent]^2 (default: 1.1 x the largest absolute coordinate of
  both sets); points outside it are not drawn. Row 0 is the top (+y).

  Args:
    points: float [N, D] (the first two coordinates are drawn).
    reference: float [M, D] or None.
    size: the image's height and width in pixels.
    extent: half-width of the view.
  """
  points = np.asarray(points, np.float64)
  if points.ndim != 2 or points.shape[1] < 2:
    raise ValueError(f'scatter_image expects [N, D >= 2] points, got '
                     f'{points.shape}.')
  sets = [points] + ([] if reference is None else
                     [np.asarray(reference, np.float64)])
  if extent is None:
    finite = np.concatenate([s[:, :2][np.isfinite(s[:, :2]).all(1)]
                             for s in sets])
    extent = 1.1 * float(np.abs(finite).max()) if finite.size else 1.0
    extent = extent or 1.0
  image = np.full((size, size, 3), 255, np.uint8)
  mid = size // 2
  image[mid, :] = image[:, mid] = 225

  def draw(xy, color):
    xy = xy[np.isfinite(xy[:, :2]).all(1), :2]
    cols = np.floor((xy[:, 0] + extent) / (2 * extent) * size).astype(int)
    rows = np.floor((extent - xy[:, 1]) / (2 * extent) * size).astype(int)
    for dy in (0, 1):  # 2x2 dots
      for dx in (0, 1):
        r, c = rows + dy, cols + dx
        keep = (r >= 0) & (r < size) & (c >= 0) & (c < size)
        image[r[keep], c[keep]] = color

  if reference is not None:
    draw(sets[1], (150, 150, 150))
  draw(points, (31, 90, 200))
  return image
