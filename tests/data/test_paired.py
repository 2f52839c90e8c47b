"""jaxgen.data.paired: the image-to-image tasks against NumPy/SciPy."""

import jax
import numpy as np
import pytest
from scipy import ndimage

from jaxgen.data import paired
from jaxgen.errors import ConfigError


@pytest.fixture(scope='module')
def images():
  rng = np.random.default_rng(0)
  return rng.uniform(-1, 1, (4, 8, 8, 2)).astype(np.float32)


def test_edges_are_the_sobel_magnitude(images):
  x = (images.astype(np.float64) + 1) / 2
  kh = np.array(paired.SOBEL_H)
  out = np.empty_like(x)
  for b in range(x.shape[0]):
    for c in range(x.shape[-1]):
      gh = ndimage.correlate(x[b, :, :, c], kh, mode='constant')
      gv = ndimage.correlate(x[b, :, :, c], kh.T, mode='constant')
      out[b, :, :, c] = np.hypot(gh, gv)
  np.testing.assert_allclose(jax.jit(paired.sobel_magnitude)(images), out,
                             atol=1e-5)
  np.testing.assert_allclose(paired.edges(images),
                             2 * np.clip(out / 4, 0, 1) - 1, atol=1e-5)
  # A flat image has no edges inside (its border meets the zero padding).
  flat = paired.sobel_magnitude(np.full((1, 5, 5, 1), 0.3, np.float32))
  assert np.all(np.asarray(flat)[0, 1:-1, 1:-1] == 0)


def test_superres_averages_blocks_and_repeats(images):
  out = np.asarray(jax.jit(paired.superres, static_argnums=1)(images, 4))
  for i in range(2):
    for j in range(2):
      block = images[:, 4 * i:4 * i + 4, 4 * j:4 * j + 4]
      mean = block.astype(np.float64).mean((1, 2), keepdims=True)
      np.testing.assert_allclose(out[:, 4 * i:4 * i + 4, 4 * j:4 * j + 4],
                                 np.broadcast_to(mean, block.shape),
                                 atol=1e-6)


def test_inpaint_masks_one_keyed_square(images):
  key = jax.random.key(3)
  out = np.asarray(jax.jit(paired.inpaint, static_argnums=2)(images, key, 3))
  assert out.shape == (4, 8, 8, 3)
  mask = out[..., -1]
  tops = []
  for b in range(4):
    rows, cols = np.nonzero(mask[b])
    assert len(rows) == 9 and np.ptp(rows) == 2 and np.ptp(cols) == 2
    expected = images[b] * (1 - mask[b][..., None])
    np.testing.assert_array_equal(out[b, ..., :2], expected)
    tops.append((rows.min(), cols.min()))
  assert len(set(tops)) > 1  # positions are drawn per example
  again = paired.inpaint(images, key, 3)
  np.testing.assert_array_equal(out, again)
  # Every valid corner is reachable, and only those (uniform over 6 x 6).
  masks = np.asarray(paired.square_masks(jax.random.key(0), 2000, 8, 8, 3))
  corners = [tuple(np.argwhere(m[..., 0])[0]) for m in masks]
  assert set(corners) == {(r, c) for r in range(6) for c in range(6)}
  assert paired.input_channels('inpaint', 2) == 3
  assert paired.input_channels('edges', 2) == 2


def test_colorize_input_is_the_bt601_luminance():
  rng = np.random.default_rng(1)
  rgb = rng.uniform(-1, 1, (3, 5, 4, 3)).astype(np.float32)
  x = rgb.astype(np.float64)
  expected = (0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2])
  out = np.asarray(jax.jit(paired.task_input, static_argnums=0)(
      'colorize', rgb, jax.random.key(0)))
  assert out.shape == (3, 5, 4, 1)
  np.testing.assert_allclose(out[..., 0], expected, atol=1e-6)
  # On the [0, 1] scale it is the same luminance, mapped to [-1, 1].
  unit = (x + 1) / 2
  np.testing.assert_allclose(
      (out[..., 0] + 1) / 2, unit @ np.array([0.299, 0.587, 0.114]),
      atol=1e-6)
  # A grey pixel keeps its value; white and black stay 1 and -1.
  grey = np.broadcast_to(np.array([-1, 0.25, 1], np.float32)[:, None, None,
                                                             None],
                         (3, 2, 2, 3))
  np.testing.assert_allclose(paired.luminance(grey)[..., 0],
                             grey[..., 0], atol=1e-6)
  assert paired.input_channels('colorize', 3) == 1


def test_dilation_is_a_3x3_max_and_halves_are_unpaired(images):
  expected = np.stack([
      np.stack([ndimage.maximum_filter(images[b, :, :, c], size=3,
                                       mode='constant', cval=-np.inf)
                for c in range(2)], -1) for b in range(4)])
  np.testing.assert_array_equal(jax.jit(paired.dilate)(images), expected)
  a, b = paired.unpaired_halves(images)
  np.testing.assert_array_equal(a, images[:2])
  np.testing.assert_array_equal(b, expected[2:])
  with pytest.raises(ConfigError, match='even number'):
    paired.unpaired_halves(images[:3])


@pytest.mark.parametrize('task,hole,factor,match', [
    ('blur', 4, 2, r"config.model.task='blur'"),
    ('inpaint', 9, 2, r'config.model.hole=9 must be an integer in \[1, 8\]'),
    ('superres', 4, 3, r'config.model.factor=3 must be an integer > 1'),
    ('colorize', 4, 2, r"config.model.task='colorize' needs RGB targets: "
     r'config.model.image_shape=\(8, 8, 1\) must have 3 channels'),
])
def test_bad_task_fields_name_the_field(task, hole, factor, match):
  with pytest.raises(ConfigError, match=match):
    paired.check_task_fields(task, (8, 8, 1), hole, factor)
