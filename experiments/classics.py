r"""Figures of the classics: texture synthesis, PatchMatch, Deep Image Prior.

  python -m experiments.classics --out=runs/classics
  python -m experiments.classics --out=/tmp/c --texture_size=48 \
      --dip_steps=200                                     # a quicker run

Writes into --out (images from scikit-image's bundled `skimage.data`):

- ``textures.png``: rows brick, grass, gravel; each the sample (a
  ``--sample_size`` crop of the texture at half resolution) beside a
  ``--texture_size`` square synthesised from it by
  `jaxgen.classics.efros_leung.synthesize` (window 11, error threshold
  0.1);
- ``patchmatch.png``: image A (the astronaut), image B (the coffee cup),
  A rebuilt from B's 7x7 patches through the nearest-neighbour field
  (`patchmatch.nearest_neighbour_field` + `patchmatch.reconstruct`), and
  the field itself (red: B's column, green: B's row);
- ``hole_filling.png``: rows brick and the cameraman, each the image, the
  image with a square hole (mid-grey) and the hole filled by
  `patchmatch.fill_hole` (3 levels);
- ``dip.png``: the clean image (the cat, ``--dip_size`` square), the
  image with Gaussian noise (sigma ``--dip_noise``), Deep Image Prior's
  output after ``--dip_steps`` steps; then the image with half its pixels
  missing and DIP's inpainting (`deep_image_prior.fit`);
- ``dip_psnr.png`` and ``dip_psnr.json``: PSNR of the denoising output
  against the clean image (and of its fit to the noisy image), and of the
  inpainting output against the clean image, along the steps, with the
  noisy input's PSNR as a horizontal line: the early-stopping curve.

Every run with the same flags writes the same images (one --seed).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np
from PIL import Image
from PIL import ImageDraw

from experiments import entry
from jaxgen import images
from jaxgen import workdir as workdir_lib
from jaxgen.classics import deep_image_prior
from jaxgen.classics import efros_leung
from jaxgen.classics import patchmatch

TEXTURES = ('brick', 'grass', 'gravel')


def bundled(name: str, size: int, *, scale: float = 1.0,
            at: tuple[float, float] = (0.5, 0.5)) -> np.ndarray:
  """A ``size`` x ``size`` uint8 crop [size, size, C] of `skimage.data`'s
  image `name` after resizing it by `scale` (box filter); `at`: the crop's
  centre as fractions of the height and width."""
  from skimage import data  # pylint: disable=g-import-not-at-top
  image = np.asarray(getattr(data, name)())
  pil = Image.fromarray(image)
  if scale != 1.0:
    pil = pil.resize((round(pil.width * scale), round(pil.height * scale)),
                     Image.Resampling.BOX)
  image = np.asarray(pil)
  image = image if image.ndim == 3 else image[..., None]
  h, w = image.shape[:2]
  if size > min(h, w):
    raise ValueError(f'{name}: a {size} crop does not fit {h} x {w}.')
  y = min(max(round(at[0] * h) - size // 2, 0), h - size)
  x = min(max(round(at[1] * w) - size // 2, 0), w - size)
  return image[y:y + size, x:x + size]


def to_uint8(x) -> np.ndarray:
  """Float pixels in 0..255 to uint8 (rounded, clipped)."""
  return np.clip(np.round(np.asarray(x, np.float64)), 0, 255).astype(np.uint8)


def rgb(x: np.ndarray) -> np.ndarray:
  """[H, W, 1] or [H, W, 3] uint8 as [H, W, 3]."""
  return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


def field_image(nnf: np.ndarray, b_hw) -> np.ndarray:
  """A nearest-neighbour field as colour: red = column, green = row in B."""
  nnf = np.asarray(nnf, np.float64)
  r = nnf[..., 1] / max(b_hw[1] - 1, 1) * 255
  g = nnf[..., 0] / max(b_hw[0] - 1, 1) * 255
  return to_uint8(np.stack([r, g, np.full_like(r, 128)], -1))


def textures(key, sample_size: int, texture_size: int) -> np.ndarray:
  """The textures figure: rows (sample, synthesis), the sample padded to
  the synthesis size."""
  rows = []
  for i, name in enumerate(TEXTURES):
    sample = bundled(name, sample_size, scale=0.5)
    start = time.perf_counter()
    out = efros_leung.synthesize(jax.random.fold_in(key, i), sample,
                                 (texture_size, texture_size), window=11,
                                 error_threshold=0.1)
    logging.info('efros_leung %s: %.1f s', name,
                 time.perf_counter() - start)
    print(f'texture {name}: {sample.shape[:2]} -> {out.shape[:2]} in '
          f'{time.perf_counter() - start:.1f} s', flush=True)
    pad = max(texture_size - sample_size, 0)
    padded = np.pad(sample, ((0, pad), (0, pad), (0, 0)), constant_values=128)
    padded = padded[:texture_size, :texture_size] if pad == 0 else padded
    rows.append(np.stack([rgb(padded), rgb(out)]))
  return images.label_rows(
      images.image_grid(np.concatenate(rows), 2, padding=2), TEXTURES,
      scale=2, padding=2)


def patchmatch_figure(key, size: int) -> np.ndarray:
  """The PatchMatch figure: A, B, A from B's patches, the field."""
  a = bundled('astronaut', size, scale=size / 256, at=(0.35, 0.45))
  b = bundled('coffee', size, scale=size / 256 * 1.2)
  nnf, _ = patchmatch.nearest_neighbour_field(key, a, b, patch=7,
                                              iterations=5)
  rebuilt = to_uint8(patchmatch.reconstruct(nnf, b, patch=7))
  cells = np.stack([a, b, rebuilt, field_image(nnf, b.shape[:2])])
  return images.image_grid(cells, 4, padding=2).repeat(2, 0).repeat(2, 1)


def hole_figure(key, size: int) -> np.ndarray:
  """The hole-filling figure: image, image with hole, filled."""
  rows = []
  for i, (name, at) in enumerate((('brick', (0.5, 0.5)),
                                  ('camera', (0.45, 0.5)))):
    image = rgb(bundled(name, size, scale=size / 256, at=at))
    mask = np.zeros((size, size), bool)
    side = size // 4  # a centred square hole
    mask[(size - side) // 2:(size + side) // 2,
         (size - side) // 2:(size + side) // 2] = True
    holed = image.copy()
    holed[mask] = 128
    filled = to_uint8(patchmatch.fill_hole(jax.random.fold_in(key, i), image,
                                           mask, patch=7, iterations=4,
                                           em_steps=4, levels=3))
    rows.append(np.stack([image, holed, filled]))
  return images.label_rows(
      images.image_grid(np.concatenate(rows), 3, padding=2),
      ('brick', 'camera'), scale=2, padding=2)


def curve_image(steps, series: dict[str, tuple[np.ndarray, tuple]],
                hline: tuple[float, tuple] | None = None, *,
                width: int = 480, height: int = 300) -> np.ndarray:
  """Draws PSNR curves (Pillow): uint8 [height, width, 3]."""
  margin = 44
  values = np.concatenate([v for v, _ in series.values()]
                          + ([np.array([hline[0]])] if hline else []))
  lo, hi = np.floor(values.min() - 1), np.ceil(values.max() + 1)
  canvas = Image.new('RGB', (width, height), (255, 255, 255))
  draw = ImageDraw.Draw(canvas)
  x0, x1, y0, y1 = margin, width - 10, height - 30, 10

  def xy(s, v):
    return (x0 + (x1 - x0) * s / max(steps[-1], 1),
            y0 - (y0 - y1) * (v - lo) / (hi - lo))

  draw.line([(x0, y0), (x1, y0)], fill=(0, 0, 0))
  draw.line([(x0, y0), (x0, y1)], fill=(0, 0, 0))
  for v in np.linspace(lo, hi, 5):
    draw.text((4, xy(0, v)[1] - 6), f'{v:.1f}', fill=(0, 0, 0))
  for s in np.linspace(0, steps[-1], 5):
    draw.text((xy(s, lo)[0] - 10, y0 + 6), f'{int(s)}', fill=(0, 0, 0))
  draw.text(((x0 + x1) // 2 - 40, height - 14), 'step  (PSNR dB)',
            fill=(0, 0, 0))
  legend_y = y0 - 14 * (len(series) + (hline is not None)) - 4  # bottom right
  if hline is not None:
    draw.line([xy(0, hline[0]), xy(steps[-1], hline[0])], fill=hline[1])
  for label, (v, colour) in series.items():
    draw.line([xy(s, p) for s, p in zip(steps, v)], fill=colour, width=2)
    draw.text((x1 - 170, legend_y), label, fill=colour)
    legend_y += 14
  if hline is not None:
    draw.text((x1 - 170, legend_y), 'noisy input', fill=hline[1])
  return np.asarray(canvas)


def dip_figures(key, size: int, steps: int, noise: float, log_every: int
                ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
  """(images figure, PSNR curve figure, the curve's JSON) of DIP."""
  clean = bundled('chelsea', size, scale=size / 200, at=(0.4, 0.45))
  clean = clean.astype(np.float32) / 255
  k_noise, k_mask, k_dn, k_in = jax.random.split(key, 4)
  noisy = np.clip(clean + noise * np.asarray(
      jax.random.normal(k_noise, clean.shape)), 0, 1).astype(np.float32)
  start = time.perf_counter()
  denoised, curve = deep_image_prior.fit(k_dn, noisy, clean=clean,
                                         num_steps=steps, lr=0.01,
                                         log_every=log_every)
  print(f'dip denoising: {steps} steps in {time.perf_counter() - start:.1f} '
        f's', flush=True)
  mask = np.asarray(jax.random.bernoulli(k_mask, 0.5, (size, size)))
  holed = np.where(mask[..., None], 0.5, clean).astype(np.float32)
  start = time.perf_counter()
  inpainted, in_curve = deep_image_prior.fit(
      k_in, holed, mask=mask, clean=clean, num_steps=steps, lr=0.01,
      log_every=log_every, input_noise=0.0)
  print(f'dip inpainting: {steps} steps in '
        f'{time.perf_counter() - start:.1f} s', flush=True)
  cells = [to_uint8(x * 255) for x in (clean, noisy, denoised, holed,
                                       inpainted)]
  cells.append(np.full_like(cells[0], 255))
  figure = images.label_rows(
      images.image_grid(np.stack(cells), 3, padding=2),
      ('denoising', 'inpainting'), scale=2, padding=2)
  noisy_psnr = deep_image_prior.psnr(noisy, clean)
  plot = curve_image(
      curve['step'],
      {'denoising vs clean': (curve['psnr'], (200, 30, 30)),
       'fit to the noisy image': (curve['fit_psnr'], (31, 90, 200)),
       'inpainting vs clean': (in_curve['psnr'], (30, 150, 60))},
      (noisy_psnr, (120, 120, 120)))
  record = {
      'image': f'skimage.data.chelsea, {size}x{size}',
      'noise_sigma': noise, 'lr': 0.01, 'noisy_psnr': noisy_psnr,
      'step': curve['step'].tolist(),
      'denoising_psnr': curve['psnr'].tolist(),
      'denoising_fit_psnr': curve['fit_psnr'].tolist(),
      'inpainting_psnr': in_curve['psnr'].tolist(),
      'inpainting_fit_psnr': in_curve['fit_psnr'].tolist(),
      'missing_share': float(mask.mean()),
  }
  return figure, plot, record


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      out=flags.DEFINE_string('out', None, 'Directory for the figures.',
                              required=True),
      seed=flags.DEFINE_integer('seed', 0, 'Seed of every random choice.'),
      sample_size=flags.DEFINE_integer('sample_size', 64, 'Side of the '
                                       'texture samples.'),
      texture_size=flags.DEFINE_integer('texture_size', 96, 'Side of the '
                                        'synthesised textures.'),
      patchmatch_size=flags.DEFINE_integer('patchmatch_size', 128, 'Side of '
                                           'the PatchMatch and hole-filling '
                                           'images.'),
      dip_size=flags.DEFINE_integer('dip_size', 48, 'Side of the DIP image.'),
      dip_steps=flags.DEFINE_integer('dip_steps', 300, 'DIP Adam steps.'),
      dip_log_every=flags.DEFINE_integer('dip_log_every', 20, 'Steps between '
                                         'points of the PSNR curve.'),
      dip_noise=flags.DEFINE_float('dip_noise', 0.1, 'Standard deviation of '
                                   'the noise (pixels in [0, 1]).'))


def main(argv, flag_values: dict[str, Any]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in flag_values.items()}
  os.makedirs(f['out'], exist_ok=True)
  key = jax.random.key(f['seed'])
  k_tex, k_pm, k_hole, k_dip = jax.random.split(key, 4)

  def save(name, image):
    path = images.save_png(os.path.join(f['out'], name), image)
    print(f'wrote {path}', flush=True)

  start = time.perf_counter()
  save('textures.png', textures(k_tex, f['sample_size'], f['texture_size']))
  save('patchmatch.png', patchmatch_figure(k_pm, f['patchmatch_size']))
  save('hole_filling.png', hole_figure(k_hole, f['patchmatch_size']))
  figure, plot, record = dip_figures(k_dip, f['dip_size'], f['dip_steps'],
                                     f['dip_noise'], f['dip_log_every'])
  save('dip.png', figure)
  save('dip_psnr.png', plot)
  path = os.path.join(f['out'], 'dip_psnr.json')
  workdir_lib.atomic_write(path, json.dumps(record, indent=1) + '\n')
  print(f'wrote {path}\ntotal {time.perf_counter() - start:.0f} s')


if __name__ == '__main__':
  _FLAGS = define_flags()
  entry.run(lambda argv: main(argv, _FLAGS))
