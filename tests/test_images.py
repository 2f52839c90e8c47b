"""Drawing: the figures the trainer writes, old pipeline against new."""

import io

import numpy as np
import pytest
from PIL import Image

from jaxgen import evaluate
from jaxgen import images


def _png(tmp_path, name, save_png, image, scale):
  return open(save_png(str(tmp_path / name), image, scale), 'rb').read()


def _old_figures(samples, recon, height, reference):
  """The drawing the trainer did before `jaxgen.images`, per data kind."""
  out = {}
  if height is None:
    out['samples'] = (evaluate.scatter_image(samples, reference), 1)
    return out
  scale = max(1, 64 // height)
  if height == 1:
    scale, as_image, cols = 1, evaluate.signal_images, 1
  else:
    as_image, cols = (lambda x: x), None
  out['samples'] = (evaluate.image_grid(as_image(samples), cols), scale)
  if recon is not None:
    n = len(recon) // 2
    recon = as_image(recon)
    grid = (evaluate.image_grid(recon, 2) if height == 1 else
            evaluate.comparison_grid([recon[:n], recon[n:]]))
    out['reconstructions'] = (grid, scale)
  return out


def _new_figures(samples, recon, reference):
  out = {'samples': (images.sample_figure(samples, reference),
                     images.display_scale(samples))}
  if recon is not None:
    n = len(recon) // 2
    out['reconstructions'] = (images.reconstruction_figure(recon[:n],
                                                           recon[n:]),
                              images.display_scale(recon))
  return out


@pytest.mark.parametrize('kind,shape', [
    ('images', (8, 8, 1)), ('images', (28, 28, 1)), ('images', (32, 32, 3)),
    ('images', (64, 64, 3)), ('images', (100, 7, 1)),
    ('signals', (1, 256, 1)), ('points', (2,)), ('points', (5,))])
@pytest.mark.parametrize('num', [1, 7, 64])
def test_new_figures_write_the_old_png_bytes(tmp_path, kind, shape, num):
  rng = np.random.default_rng(num)
  if kind == 'points':
    samples = rng.normal(size=(num,) + shape).astype(np.float32)
    reference = rng.normal(size=(50,) + shape).astype(np.float32) * 2.0
    recon, height = None, None
  else:
    samples = rng.integers(0, 256, (num,) + shape, dtype=np.uint8)
    recon = rng.integers(0, 256, (32,) + shape, dtype=np.uint8)
    reference, height = None, shape[0]
  old = _old_figures(samples, recon, height, reference)
  new = _new_figures(samples, recon, reference)
  assert sorted(old) == sorted(new)
  for name in old:
    a = _png(tmp_path, f'old_{name}.png', evaluate.save_png, *old[name])
    b = _png(tmp_path, f'new_{name}.png', images.save_png, *new[name])
    assert a == b, name
