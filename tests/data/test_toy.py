"""Toy 2-D samplers and their modes."""

import jax
import numpy as np
import pytest

from jaxgen import data
from jaxgen.errors import ConfigError

N = 2048  # One size everywhere: one compilation per toy name.


def test_toy_modes():
  centers, std = data.toy_modes('toy:ring8')
  assert centers.shape == (8, 2) and centers.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 2.0, rtol=1e-6)
  assert std == 0.02
  centers, std = data.toy_modes('grid25')
  assert centers.shape == (25, 2) and std == 0.05
  assert set(np.unique(centers)) == {-4.0, -2.0, 0.0, 2.0, 4.0}
  assert len({tuple(c) for c in centers}) == 25
  with pytest.raises(ConfigError, match='toy:moons'):
    data.toy_modes('toy:moons')


@pytest.mark.parametrize('name', ['toy:ring8', 'toy:grid25'])
def test_mixture_points_sit_on_their_labelled_mode(name):
  centers, std = data.toy_modes(name)
  ds = data.load_dataset(name, splits={'train': 'all'}, num_points=N)
  rows = ds.splits['train'].gather(np.arange(N))
  offsets = rows['point'] - centers[rows['label']]
  assert np.abs(offsets).max() < 6 * std
  np.testing.assert_allclose(offsets.std(), std, rtol=0.1)
  counts = np.bincount(rows['label'], minlength=len(centers))
  assert counts.min() > 0.5 * N / len(centers)


@pytest.mark.parametrize('name', data.TOY_NAMES)
def test_sample_toy_keyed(name):
  key = jax.random.key(0)
  a = data.sample_toy(name, key, N)
  assert a.shape == (N, 2) and a.dtype == np.float32
  np.testing.assert_array_equal(a, data.sample_toy(name, key, N))
  assert not np.array_equal(a, data.sample_toy(name, jax.random.key(1), N))
  assert np.isfinite(np.asarray(a)).all()


def test_sample_toy_inside_jit():
  key = jax.random.key(0)
  jitted = jax.jit(lambda k: data.sample_toy('toy:ring8', k, N))
  np.testing.assert_allclose(jitted(key), data.sample_toy('ring8', key, N),
                             atol=1e-6)


def test_sample_toy_shapes_of_known_distributions():
  ring = np.asarray(data.sample_toy('ring8', jax.random.key(0), N))
  np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 2.0, atol=0.1)
  board = np.asarray(data.sample_toy('checkerboard', jax.random.key(0), N))
  assert np.abs(board).max() <= 4.0
  # Occupied squares are the "black" ones: floor(x/2) + floor(y/2) is even
  # ... or odd; either way only one parity is ever occupied.
  parity = (np.floor(board[:, 0] / 2) + np.floor(board[:, 1] / 2)) % 2
  assert len(np.unique(parity)) == 1
  moons = np.asarray(data.sample_toy('moons', jax.random.key(0), N))
  assert -1.6 < moons[:, 0].min() and moons[:, 0].max() < 2.6


def test_unknown_toy_name():
  with pytest.raises(ConfigError, match='toy:spiral.*toy:moons'):
    data.sample_toy('toy:spiral', jax.random.key(0), 4)
