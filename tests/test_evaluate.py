"""Evaluation: exact full-split means, the units, image grids."""

import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxgen import data
from jaxgen import evaluate
from jaxgen import parallel


def _family(log_likelihood):
  return types.SimpleNamespace(
      loss_fn=lambda params, batch, key, *, net, train: (
          0.0, {'label_value': batch['label'].astype(jnp.float32)}),
      log_likelihood=log_likelihood)


@pytest.fixture(scope='module')
def split():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, size=(37, 4, 3, 1), dtype=np.uint8)
  labels = rng.integers(0, 10, size=37)
  return data.ArraySource(images, labels), labels


def _run(family, source, preprocess, offset, batch_size=16):
  mesh = parallel.make_mesh()
  step = jax.jit(evaluate.make_eval_step(family, None, preprocess,
                                         {'model': {}}, num_dims=12,
                                         offset_nats=offset))
  batches = lambda: data.eval_batches(source, batch_size=batch_size)
  return evaluate.evaluate_split(step, {}, batches, jax.random.key(0), mesh)


def test_uniform_over_256_levels_is_exactly_8_bits(split):
  source, labels = split
  preprocess, offset = data.make_preprocess(
      binarize='none', dequantize=False, value_range='unit')
  uniform = lambda params, batch, key, *, net: jnp.full(
      batch['image'].shape[:1], -12 * math.log(256.0))
  out = _run(_family(uniform), source, preprocess, 12 * offset)
  assert out['num_examples'] == 37  # 3 batches of 16, the last padded
  assert out['model/bits_per_dim'] == 8.0
  assert out['model/nll_nats'] == pytest.approx(12 * math.log(256.0), 1e-6)
  # Padding rows (copies of row 0, masked) do not count.
  assert out['label_value'] == pytest.approx(labels.mean(), 1e-12)


def test_dequantized_uniform_density_is_exactly_8_bits(split):
  source, _ = split
  preprocess, offset_per_dim = data.make_preprocess(
      binarize='none', dequantize=True, value_range='unit')
  # The uniform density on [0, 1)^D has log-density 0 everywhere.
  unit = lambda params, batch, key, *, net: jnp.zeros(
      batch['image'].shape[:1])
  out = _run(_family(unit), source, preprocess, 12 * offset_per_dim,
             batch_size=5)
  assert out['model/bits_per_dim'] == 8.0


def test_nll_report_units():
  report = evaluate.nll_report(jnp.array([-100.0, -50.0]), 784)
  np.testing.assert_allclose(report['nll_nats'], [100.0, 50.0])
  np.testing.assert_allclose(report['bits_per_dim'],
                             np.array([100, 50]) / (784 * math.log(2)),
                             rtol=1e-6)
  shifted = evaluate.nll_report(0.0, 10, offset_nats=10 * math.log(256))
  assert float(shifted['bits_per_dim']) == 8.0


def test_image_grid_layout_and_png(tmp_path):
  images = np.stack([np.full((2, 3, 1), i, np.uint8) for i in range(5)])
  grid = evaluate.image_grid(images, num_cols=3, padding=1, pad_value=255)
  assert grid.shape == (2 * 3 + 1, 3 * 4 + 1, 1)
  assert grid[1, 1, 0] == 0 and grid[1, 5, 0] == 1 and grid[4, 1, 0] == 3
  assert grid[4, 9, 0] == 255  # the empty sixth cell
  path = evaluate.save_png(str(tmp_path / 'g.png'), grid, scale=2)
  loaded = np.asarray(Image.open(path))
  assert loaded.shape == (14, 26)
  np.testing.assert_array_equal(loaded[::2, ::2], grid[..., 0])
  with pytest.raises(ValueError, match='uint8'):
    evaluate.image_grid(images.astype(np.float32))


def test_signal_images_draw_connected_waveforms():
  signals = np.array([0, 255, 255, 128], np.uint8).reshape(1, 1, 4, 1)
  img = evaluate.signal_images(signals, height=5)
  assert img.shape == (1, 5, 4, 1) and img.dtype == np.uint8
  col = img[0, :, :, 0] > 0
  np.testing.assert_array_equal(col[:, 0], [0, 0, 0, 0, 1])  # value 0: bottom
  np.testing.assert_array_equal(col[:, 1], [1, 1, 1, 1, 1])  # the jump drawn
  np.testing.assert_array_equal(col[:, 2], [1, 0, 0, 0, 0])  # value 255: top
  np.testing.assert_array_equal(col[:, 3], [1, 1, 1, 0, 0])  # 255 -> 128
  with pytest.raises(ValueError, match=r'\[N, 1, T, 1\]'):
    evaluate.signal_images(np.zeros((2, 3, 4, 1), np.uint8))
