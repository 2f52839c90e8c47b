"""Toy 2-D distributions: keyed JAX samplers and their known modes.

Five standard 2-D benchmarks for density models and GANs:

=================  =========================================================
``toy:moons``      two interleaving half circles (as
                   ``sklearn.datasets.make_moons``), Gaussian noise std 0.1;
                   label = which moon (0 outer, 1 inner).
``toy:ring8``      mixture of 8 Gaussians with centres evenly spaced on a
                   circle of radius 2, std 0.02 (the mode-collapse benchmark
                   of Metz et al. 2017, "Unrolled GANs"); label = mode index.
``toy:grid25``     mixture of 25 Gaussians centred on the grid
                   {-4,-2,0,2,4}^2, std 0.05; label = mode index.
``toy:checkerboard``  uniform on the black squares of a 4x4 checkerboard on
                   [-4,4]^2 (as in FFJORD, Grathwohl et al. 2019); label 0.
``toy:swissroll``  the (x, z) coordinates of ``make_swiss_roll`` with noise
                   std 1, divided by 5 (as in FFJORD); label 0.
=================  =========================================================

``sample_toy(name, key, n)`` is pure JAX and jit-able (``name`` and ``n`` are
static), for infinite streams drawn on device. The finite datasets built by
``jaxgen.data.load_dataset('toy:...')`` are drawn once on the host CPU with
``split_seed`` (moons through scikit-learn itself, the others through the same
JAX samplers as here), see ``sources.py``.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.errors import ConfigError

TOY_NAMES = ('toy:moons', 'toy:ring8', 'toy:grid25', 'toy:checkerboard',
             'toy:swissroll')

MOONS_NOISE = 0.1
RING8_RADIUS = 2.0
RING8_STD = 0.02
GRID25_STD = 0.05

# Number of label classes per toy dataset (None: the label is always 0).
TOY_NUM_CLASSES = {
    'toy:moons': 2,
    'toy:ring8': 8,
    'toy:grid25': 25,
    'toy:checkerboard': None,
    'toy:swissroll': None,
}


def canonical_toy_name(name: str) -> str:
  """Returns 'toy:NAME' for 'toy:NAME' or 'NAME'; ConfigError if unknown."""
  if not isinstance(name, str):
    raise ConfigError(
        f'toy dataset name must be a string, got {type(name).__name__}')
  full = name if name.startswith('toy:') else f'toy:{name}'
  if full not in TOY_NAMES:
    raise ConfigError(
        f'data.name: unknown toy dataset {name!r}; expected one of '
        f'{", ".join(TOY_NAMES)}.')
  return full


def _ring8_centers() -> np.ndarray:
  angles = 2.0 * np.pi * np.arange(8) / 8
  centers = RING8_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
  return centers.astype(np.float32)


def _grid25_centers() -> np.ndarray:
  values = np.arange(-4.0, 5.0, 2.0)
  xs, ys = np.meshgrid(values, values, indexing='ij')
  return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)


def toy_modes(name: str) -> tuple[np.ndarray, float]:
  """Centres and standard deviation of a toy Gaussian mixture.

  Args:
    name: 'toy:ring8' or 'toy:grid25' (the 'toy:' prefix may be left out).

  Returns:
    ``(centers, std)``: ``centers`` float32 [K, 2] (K = 8 or 25, in the order
    of the mode index used as label), ``std`` the per-coordinate standard
    deviation of every component.

  Raises:
    ConfigError: for an unknown name or a toy dataset without discrete modes.
  """
  full = canonical_toy_name(name)
  if full == 'toy:ring8':
    return _ring8_centers(), RING8_STD
  if full == 'toy:grid25':
    return _grid25_centers(), GRID25_STD
  raise ConfigError(
      f'toy_modes: {full!r} has no discrete Gaussian modes; only '
      "'toy:ring8' and 'toy:grid25' do.")


def _mixture(centers: np.ndarray, std: float, key: jax.Array,
             n: int) -> tuple[jax.Array, jax.Array]:
  k_mode, k_noise = jax.random.split(key)
  labels = jax.random.randint(k_mode, (n,), 0, centers.shape[0])
  noise = jax.random.normal(k_noise, (n, 2), jnp.float32)
  return jnp.asarray(centers)[labels] + std * noise, labels


def _ring8(key, n):
  return _mixture(_ring8_centers(), RING8_STD, key, n)


def _grid25(key, n):
  return _mixture(_grid25_centers(), GRID25_STD, key, n)


def _moons(key, n):
  k_label, k_angle, k_noise = jax.random.split(key, 3)
  labels = jax.random.randint(k_label, (n,), 0, 2)
  t = jax.random.uniform(k_angle, (n,), jnp.float32, 0.0, math.pi)
  outer = jnp.stack([jnp.cos(t), jnp.sin(t)], axis=1)
  inner = jnp.stack([1.0 - jnp.cos(t), 0.5 - jnp.sin(t)], axis=1)
  points = jnp.where(labels[:, None] == 0, outer, inner)
  points += MOONS_NOISE * jax.random.normal(k_noise, (n, 2), jnp.float32)
  return points, labels


def _checkerboard(key, n):
  k1, k2, k3 = jax.random.split(key, 3)
  x1 = jax.random.uniform(k1, (n,), jnp.float32) * 4.0 - 2.0
  x2 = (jax.random.uniform(k2, (n,), jnp.float32)
        - 2.0 * jax.random.randint(k3, (n,), 0, 2).astype(jnp.float32))
  x2 = x2 + jnp.mod(jnp.floor(x1), 2.0)
  return 2.0 * jnp.stack([x1, x2], axis=1), jnp.zeros((n,), jnp.int32)


def _swissroll(key, n):
  k_t, k_noise = jax.random.split(key)
  t = 1.5 * math.pi * (1.0 + 2.0 * jax.random.uniform(k_t, (n,), jnp.float32))
  points = jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], axis=1)
  points += jax.random.normal(k_noise, (n, 2), jnp.float32)
  return points / 5.0, jnp.zeros((n,), jnp.int32)


_SAMPLERS: dict[str, Callable[[jax.Array, int], tuple[jax.Array, jax.Array]]]
_SAMPLERS = {
    'toy:moons': _moons,
    'toy:ring8': _ring8,
    'toy:grid25': _grid25,
    'toy:checkerboard': _checkerboard,
    'toy:swissroll': _swissroll,
}


@functools.partial(jax.jit, static_argnames=('name', 'n'))
def _sample(name: str, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
  points, labels = _SAMPLERS[name](key, n)
  return points.astype(jnp.float32), labels.astype(jnp.int32)


def sample_toy_with_labels(name: str, key: jax.Array,
                           n: int) -> tuple[jax.Array, jax.Array]:
  """Like ``sample_toy`` but also returns int32 [n] labels (mode index)."""
  full = canonical_toy_name(name)
  if not isinstance(n, (int, np.integer)) or n < 0:
    raise ConfigError(f'sample_toy: n must be a non-negative int, got {n!r}')
  return _sample(full, key, int(n))


def sample_toy(name: str, key: jax.Array, n: int) -> jax.Array:
  """Draws ``n`` i.i.d. points from a toy 2-D distribution.

  Pure JAX; compiled once per (name, n). Same key -> same points.

  Args:
    name: one of ``TOY_NAMES`` (the 'toy:' prefix may be left out).
    key: a JAX PRNG key.
    n: number of points (static).

  Returns:
    float32 [n, 2].
  """
  return sample_toy_with_labels(name, key, n)[0]
