"""Device-side pixel transforms and host-side fixed binarization."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import data
from jaxgen.data import transforms
from jaxgen.errors import ConfigError

ALL_LEVELS = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
# One batch shape everywhere: random ops compile once per shape.
BATCH = jnp.asarray(np.tile(ALL_LEVELS, (8, 1, 1, 1)))


def test_to_float_ranges():
  unit = jax.jit(data.to_float, static_argnums=1)(ALL_LEVELS, 'unit')
  assert unit.dtype == jnp.float32
  assert float(unit.min()) == 0.0 and float(unit.max()) == 1.0
  np.testing.assert_allclose(unit, ALL_LEVELS / 255.0, rtol=1e-6)
  sym = data.to_float(ALL_LEVELS, 'symmetric')
  assert float(sym.min()) == -1.0 and float(sym.max()) == 1.0
  np.testing.assert_allclose(sym, ALL_LEVELS / 127.5 - 1.0, atol=1e-6)
  with pytest.raises(ConfigError, match='value_range'):
    data.to_float(ALL_LEVELS, '0-1')


def test_dynamic_binarize_mean_and_keying():
  key = jax.random.key(0)
  fn = jax.jit(data.dynamic_binarize)
  bits = fn(key, BATCH)
  assert bits.dtype == jnp.float32
  assert set(np.unique(np.asarray(bits))) == {0.0, 1.0}
  np.testing.assert_array_equal(bits, fn(key, BATCH))
  assert not np.array_equal(bits, fn(jax.random.key(1), BATCH))
  draws = [fn(jax.random.key(i), BATCH) for i in range(250)]  # No recompile.
  mean = np.concatenate(draws).mean(axis=0)
  # 2000 draws per pixel: the std of the mean is <= 0.5 / sqrt(2000) ~ 0.011.
  np.testing.assert_allclose(mean, ALL_LEVELS[0] / 255.0, atol=0.05)
  assert mean.reshape(-1)[0] == 0.0 and mean.reshape(-1)[-1] == 1.0


def test_fixed_binarize_stable():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (20, 5, 5, 1), dtype=np.uint8)
  indices = np.arange(100, 120)
  a = data.fixed_binarize(images, 3, indices)
  assert a.dtype == np.uint8 and set(np.unique(a)) <= {0, 255}
  np.testing.assert_array_equal(a, data.fixed_binarize(images, 3, indices))
  # Per record: the same row gives the same pixels in any batch.
  np.testing.assert_array_equal(
      a[5:7], data.fixed_binarize(images[5:7], 3, indices[5:7]))
  assert not np.array_equal(a, data.fixed_binarize(images, 4, indices))
  levels = data.fixed_binarize(np.tile(ALL_LEVELS, (400, 1, 1, 1)), 0,
                               np.arange(400))
  np.testing.assert_allclose(levels.mean(axis=0) / 255.0,
                             ALL_LEVELS[0] / 255.0, atol=0.1)
  assert (levels[..., 0, 0, 0] == 0).all() and (levels[:, -1, -1] == 255).all()


@pytest.mark.parametrize('value_range,low,high,per_dim', [
    ('unit', 0.0, 1.0, math.log(256)), ('symmetric', -1.0, 1.0, math.log(128))])
def test_dequantize(value_range, low, high, per_dim):
  images = BATCH
  key = jax.random.key(0)
  y, offset = data.dequantize(key, images, value_range)
  if value_range == 'unit':  # One compilation shows it is jit-able.
    jitted = jax.jit(data.dequantize, static_argnums=2)
    np.testing.assert_allclose(jitted(key, images, value_range)[0], y,
                               atol=1e-6)
  assert y.dtype == jnp.float32 and y.shape == images.shape
  assert float(y.min()) >= low and float(y.max()) < high
  assert offset == pytest.approx(256 * per_dim)
  y2, _ = data.dequantize(key, images, value_range)
  np.testing.assert_array_equal(y, y2)
  # Each value stays in its own bin: floor recovers the pixel.
  scale = 256.0 if value_range == 'unit' else 128.0
  recovered = np.floor((np.asarray(y) - low) * scale)
  np.testing.assert_array_equal(recovered, np.asarray(images, np.float64))


def test_uniform_density_gives_exactly_8_bits_per_dim():
  """Uniform 8-bit data under the uniform density on the dequantized range."""
  images = BATCH
  dims = 256
  for value_range, log_volume in (('unit', 0.0), ('symmetric', math.log(2))):
    y, offset = data.dequantize(jax.random.key(1), images, value_range)
    # Uniform density on [0,1)^D or [-1,1)^D: -log p(y) = D * log(volume).
    nll_continuous = dims * log_volume
    bits_per_dim = (nll_continuous + offset) / (dims * math.log(2))
    assert bits_per_dim == pytest.approx(8.0, abs=1e-12)
    assert y.shape == images.shape


def test_make_preprocess_modes():
  batch = {'image': BATCH, 'label': jnp.arange(8, dtype=jnp.int32),
           'mask': jnp.ones(8, bool)}
  key = jax.random.key(0)

  fn, offset = data.make_preprocess(binarize='none', dequantize=False,
                                    value_range='symmetric')
  out = jax.jit(fn)(batch, key)
  assert offset == 0.0
  np.testing.assert_allclose(out['image'],
                             data.to_float(batch['image'], 'symmetric'),
                             atol=1e-6)  # jit may fold /127.5 differently.
  np.testing.assert_array_equal(out['label'], batch['label'])
  np.testing.assert_array_equal(out['mask'], batch['mask'])

  # Random ops compile slowly on CPU: compare eager calls (which share
  # compiled kernels) and jit once.
  fn, offset = data.make_preprocess(binarize='dynamic', dequantize=False,
                                    value_range='unit')
  out = fn(batch, key)
  np.testing.assert_array_equal(out['image'],
                                data.dynamic_binarize(key, batch['image']))
  np.testing.assert_array_equal(out['image'], jax.jit(fn)(batch, key)['image'])
  assert not np.array_equal(out['image'],
                            fn(batch, jax.random.key(5))['image'])
  fn, _ = data.make_preprocess(binarize='dynamic', dequantize=False,
                               value_range='symmetric')
  assert set(np.unique(np.asarray(fn(batch, key)['image']))) == {-1.0, 1.0}

  fixed = dict(batch, image=jnp.asarray(
      data.fixed_binarize(np.asarray(batch['image']), 0, np.arange(8))))
  fn, _ = data.make_preprocess(binarize='fixed', dequantize=False,
                               value_range='unit')
  out = fn(fixed, key)
  np.testing.assert_array_equal(out['image'], fixed['image'] / 255)
  np.testing.assert_array_equal(out['image'], fn(fixed, jax.random.key(9))[
      'image'])  # No randomness for fixed binarization.

  fn, offset = data.make_preprocess(binarize='none', dequantize=True,
                                    value_range='unit')
  assert offset == pytest.approx(math.log(256))
  out = fn(batch, key)
  np.testing.assert_array_equal(
      out['image'], data.dequantize(key, batch['image'], 'unit')[0])
  _, offset = data.make_preprocess(binarize='none', dequantize=True,
                                   value_range='symmetric')
  assert offset == pytest.approx(math.log(128))


def test_make_preprocess_passes_toy_batches_through():
  fn, _ = data.make_preprocess(binarize='none', dequantize=True,
                               value_range='unit')
  batch = {'point': jnp.ones((4, 2)), 'label': jnp.zeros(4, jnp.int32),
           'mask': jnp.ones(4, bool)}
  out = jax.jit(fn)(batch, jax.random.key(0))
  for k in batch:
    np.testing.assert_array_equal(out[k], batch[k])


def test_make_preprocess_errors():
  with pytest.raises(ConfigError, match=r"dequantize=True.*binarize='dynamic'"):
    data.make_preprocess(binarize='dynamic', dequantize=True,
                         value_range='unit')
  with pytest.raises(ConfigError, match=r"dequantize=True.*binarize='fixed'"):
    data.make_preprocess(binarize='fixed', dequantize=True, value_range='unit')
  with pytest.raises(ConfigError, match='binarize.*stochastic'):
    data.make_preprocess(binarize='stochastic', dequantize=False,
                         value_range='unit')
  with pytest.raises(ConfigError, match='value_range'):
    data.make_preprocess(binarize='none', dequantize=False, value_range='pm1')
  # The trainer passes the config path, so the message names the field.
  with pytest.raises(ConfigError, match=(
      r"config.data.dequantize=True cannot be combined with "
      r"config.data.binarize='dynamic'")):
    data.make_preprocess(binarize='dynamic', dequantize=True,
                         value_range='unit', field_prefix='config.data.')
  with pytest.raises(ConfigError, match=r'config.data.value_range must be'):
    data.make_preprocess(binarize='none', dequantize=False, value_range='pm1',
                         field_prefix='config.data.')
  assert transforms.BINARIZE_MODES == ('none', 'dynamic', 'fixed')
