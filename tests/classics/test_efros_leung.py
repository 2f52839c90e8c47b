"""Efros & Leung texture synthesis: exact copies of sample neighbourhoods,
reproducibility, agreement with the pixel-by-pixel NumPy loop, bad input."""

import jax
import numpy as np
import pytest

from experiments.bench_classics import efros_leung_numpy
from jaxgen.classics import efros_leung
from jaxgen.errors import ConfigError
from jaxgen.errors import DataError


def _windows(image, k):
  v = np.lib.stride_tricks.sliding_window_view(image, (k, k), axis=(0, 1))
  return {w.tobytes() for w in v.reshape(-1, *v.shape[2:])}


def test_periodic_sample_every_neighbourhood_occurs_in_it():
  # A 4x4 tile of 16 distinct grey levels, repeated: every pixel names its
  # phase, so with error_threshold 0 the output must continue the tiling.
  tile = (np.random.default_rng(0).permutation(16) * 15).reshape(4, 4)
  sample = np.tile(tile, (4, 4)).astype(np.uint8)
  out = efros_leung.synthesize(jax.random.key(3), sample, (12, 13), window=5,
                               error_threshold=0.0)
  assert out.shape == (12, 13) and out.dtype == np.uint8
  assert _windows(out, 5) <= _windows(sample, 5)
  np.testing.assert_array_equal(out[4:], out[:-4])  # period 4 both ways
  np.testing.assert_array_equal(out[:, 4:], out[:, :-4])


@pytest.fixture(scope='module')
def random_sample():
  return (np.random.default_rng(1).integers(0, 5, (18, 18)) * 60).astype(
      np.uint8)


def test_same_key_same_texture_and_the_numpy_loop_agrees(random_sample):
  kwargs = dict(window=5, error_threshold=0.2)
  a = efros_leung.synthesize(jax.random.key(7), random_sample, (12, 12),
                             **kwargs)
  b = efros_leung.synthesize(jax.random.key(7), random_sample, (12, 12),
                             **kwargs)
  c = efros_leung.synthesize(jax.random.key(8), random_sample, (12, 12),
                             **kwargs)
  np.testing.assert_array_equal(a, b)
  assert (a != c).any()
  # The same random numbers through the plain loop (float64 distances).
  np.testing.assert_array_equal(
      a, efros_leung_numpy(jax.random.key(7), random_sample, (12, 12),
                           **kwargs))
  # Every output pixel is a sample value.
  assert set(np.unique(a)) <= set(np.unique(random_sample))


def test_colour_matches_the_numpy_loop():
  sample = (np.random.default_rng(2).integers(0, 4, (14, 15, 3)) * 80).astype(
      np.uint8)
  a = efros_leung.synthesize(jax.random.key(0), sample, (9, 10), window=3,
                             seed_size=2)
  assert a.shape == (9, 10, 3)
  np.testing.assert_array_equal(
      a, efros_leung_numpy(jax.random.key(0), sample, (9, 10), window=3,
                           seed_size=2))


@pytest.mark.parametrize('kwargs, error, field', [
    (dict(sample=np.zeros((4, 4, 1, 1))), DataError, 'sample'),
    (dict(window=4), ConfigError, 'window'),
    (dict(window=11), ConfigError, 'window'),
    (dict(out_shape=(8,)), ConfigError, 'out_shape'),
    (dict(out_shape=(8, 0)), ConfigError, 'out_shape'),
    (dict(error_threshold=-0.1), ConfigError, 'error_threshold'),
    (dict(seed_size=9), ConfigError, 'seed_size'),
    (dict(sigma=0.0), ConfigError, 'sigma'),
])
def test_bad_input_is_named(kwargs, error, field):
  args = dict(sample=np.zeros((8, 8), np.uint8), out_shape=(8, 8), window=5)
  args.update(kwargs)
  with pytest.raises(error, match=field):
    efros_leung.synthesize(jax.random.key(0), **args)
