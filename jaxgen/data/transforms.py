"""Pixel transforms: uint8 images -> model-ready float32 arrays.

Device-side transforms are pure JAX and jit-able; the stochastic ones take a
PRNG ``key`` first and give the same output for the same key. String arguments
(``value_range``, ``binarize``) are static: they are checked in Python, at
trace time, before anything is compiled.

``fixed_binarize`` is the one host-side (NumPy) transform: the sources use it
to binarize a dataset once, reproducibly, for ``binarize='fixed'``.

Value ranges:
  * ``'unit'``: ``x / 255`` in [0, 1];
  * ``'symmetric'``: ``x / 127.5 - 1`` in [-1, 1].

Dequantization and the offset to the discrete likelihood
--------------------------------------------------------
For 8-bit data ``x`` in {0..255}^D let ``v = x + u`` with ``u ~ U[0,1)^D``.
For any density ``p_V`` on [0, 256)^D, ``P(x) = int_{[0,1)^D} p_V(x+u) du`` is
a probability mass function on {0..255}^D, and by Jensen's inequality
``-log P(x) <= E_u[-log p_V(x + u)]`` (Theis et al. 2016; Ho et al. 2019).
The model sees ``y = a v + b`` instead, whose density is
``p_Y(y) = p_V(v) / a^D``, so

    -log P(x) <= E_u[-log p_Y(y)] - D log a.

With ``'unit'`` (``y = v / 256`` in [0, 1)), ``a = 1/256`` and the offset is
``D ln 256`` nats, i.e. exactly 8 bits per dimension; with ``'symmetric'``
(``y = 2 v / 256 - 1`` in [-1, 1)), ``a = 1/128`` and the offset is
``D ln 128``. A uniform density on [0, 1)^D has ``-log p_Y = 0`` and so gets
exactly 8 bits/dim on any 8-bit data.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.errors import ConfigError

VALUE_RANGES = ('unit', 'symmetric')
BINARIZE_MODES = ('none', 'dynamic', 'fixed')

Batch = Mapping[str, Any]


def _check_value_range(value_range: str, field: str = 'value_range') -> None:
  if value_range not in VALUE_RANGES:
    raise ConfigError(
        f'{field} must be one of {VALUE_RANGES}, got {value_range!r}.')


def check_binarize(binarize: str, field: str = 'data.binarize') -> None:
  """Raises ConfigError unless ``binarize`` is 'none', 'dynamic' or 'fixed'."""
  if not isinstance(binarize, str) or binarize not in BINARIZE_MODES:
    raise ConfigError(
        f'{field} must be one of {BINARIZE_MODES}, got {binarize!r}.')


def to_float(images: jax.Array, value_range: str) -> jax.Array:
  """Scales 8-bit pixels to float32.

  Args:
    images: uint8 (or any numeric dtype holding 0..255) [..., H, W, C].
    value_range: 'unit' -> pixel/255 in [0, 1]; 'symmetric' -> pixel/127.5 - 1
      in [-1, 1].

  Returns:
    float32 array of the same shape.
  """
  _check_value_range(value_range)
  x = jnp.asarray(images).astype(jnp.float32)
  if value_range == 'unit':
    return x / 255.0
  return x / 127.5 - 1.0


def dynamic_binarize(key: jax.Array, images: jax.Array) -> jax.Array:
  """Draws one Bernoulli(pixel/255) sample per pixel.

  Args:
    key: PRNG key; the same key gives the same output.
    images: uint8 [..., H, W, C], 0..255.

  Returns:
    float32 array of the same shape with values in {0, 1}. Pixels 0 and 255
    map to 0 and 1 deterministically.
  """
  p = jnp.asarray(images).astype(jnp.float32) / 255.0
  return jax.random.bernoulli(key, p).astype(jnp.float32)


def dequantize_offset_per_dim(value_range: str) -> float:
  """Nats per dimension to add to a continuous NLL: ln 256 or ln 128."""
  _check_value_range(value_range)
  return math.log(256.0) if value_range == 'unit' else math.log(128.0)


def dequantize(key: jax.Array, images: jax.Array,
               value_range: str) -> tuple[jax.Array, float]:
  """Uniform dequantization of 8-bit images (see the module docstring).

  Args:
    key: PRNG key for the uniform noise.
    images: uint8 [..., H, W, C], 0..255.
    value_range: 'unit' -> ``y = (x + u) / 256`` in [0, 1);
      'symmetric' -> ``y = 2 (x + u) / 256 - 1`` in [-1, 1).

  Returns:
    ``(y, offset_nats)``: ``y`` float32, same shape as ``images``;
    ``offset_nats`` a Python float, the nats per example (D = H*W*C from the
    last three axes) to ADD to ``-log p(y)`` of a continuous density to get an
    upper bound on the discrete NLL of ``x``: ``D ln 256`` ('unit') or
    ``D ln 128`` ('symmetric').
  """
  _check_value_range(value_range)
  x = jnp.asarray(images)
  if x.ndim < 3:
    raise ConfigError(
        f'dequantize expects images [..., H, W, C], got shape {x.shape}.')
  num_dims = math.prod(x.shape[-3:])
  u = jax.random.uniform(key, x.shape, jnp.float32)
  v = x.astype(jnp.float32) + u
  if value_range == 'unit':
    y = v / 256.0
  else:
    y = v / 128.0 - 1.0
  return y, num_dims * dequantize_offset_per_dim(value_range)


_dequantize = dequantize  # `make_preprocess` has an argument of that name.


def make_preprocess(
    *, binarize: str, dequantize: bool, value_range: str,
    field_prefix: str = ''
) -> tuple[Callable[[Batch, jax.Array], dict[str, Any]], float]:
  """Builds the device-side batch transform for a model.

  ``fn(batch, key)`` returns a new dict in which ``batch['image']`` (uint8
  [B, H, W, C]) is replaced by float32 [B, H, W, C] model inputs; the other
  entries (``label``, ``mask``) are passed through. Batches without an
  ``'image'`` entry (toy batches with ``'point'``) are returned unchanged.

  * ``binarize == 'dynamic'``: a fresh Bernoulli(pixel/255) draw per call
    (``dynamic_binarize`` with ``key``);
  * ``binarize == 'fixed'``: the source already made every pixel 0 or 255;
    the pixels are only rescaled;
  * binarized images are {0, 1} for ``value_range='unit'`` and {-1, 1} for
    ``'symmetric'`` (the binary pixel {0, 255} put through ``to_float``);
  * ``dequantize=True``: ``dequantize(key, image, value_range)``;
  * otherwise: ``to_float(image, value_range)`` (``key`` unused).

  Args:
    binarize: 'none' | 'dynamic' | 'fixed' (the data config's field).
    dequantize: whether to add uniform noise for a continuous density.
    value_range: 'unit' or 'symmetric'.

  Returns:
    ``(fn, offset_nats_per_dim)``: ``offset_nats_per_dim`` is ``ln 256``
    ('unit') or ``ln 128`` ('symmetric') when ``dequantize`` is True, else
    0.0; multiply by D = H*W*C and add to a continuous NLL in nats.

  ``field_prefix`` (e.g. ``'config.data.'``) is put before the field names in
  error messages.

  Raises:
    ConfigError: unknown ``binarize`` / ``value_range``, or ``dequantize``
      together with binarization (binary data have no 8-bit bins to fill).
  """
  p = field_prefix
  check_binarize(binarize, field=f'{p}binarize')
  _check_value_range(value_range, field=f'{p}value_range')
  if not isinstance(dequantize, (bool, np.bool_)):
    raise ConfigError(f'{p}dequantize must be a bool, got {dequantize!r}.')
  if dequantize and binarize != 'none':
    raise ConfigError(
        f'{p}dequantize=True cannot be combined with {p}binarize='
        f'{binarize!r}: dequantization fills the 256 bins of 8-bit data; '
        'binarized data need a discrete (Bernoulli) likelihood. Set '
        f"{p}binarize='none' or {p}dequantize=False.")
  offset = dequantize_offset_per_dim(value_range) if dequantize else 0.0

  def fn(batch: Batch, key: jax.Array) -> dict[str, Any]:
    out = dict(batch)
    if 'image' not in batch:
      return out
    image = batch['image']
    if binarize == 'dynamic':
      bits = dynamic_binarize(key, image)
      out['image'] = bits if value_range == 'unit' else 2.0 * bits - 1.0
    elif dequantize:
      out['image'] = _dequantize(key, image, value_range)[0]
    else:  # 'none' or 'fixed' (pixels already 0/255).
      out['image'] = to_float(image, value_range)
    return out

  return fn, offset


def fixed_binarize(images: np.ndarray, seed: int | Sequence[int],
                   indices: Sequence[int] | np.ndarray) -> np.ndarray:
  """Host-side, reproducible binarization: one Bernoulli draw per pixel.

  Row ``i`` is binarized with ``numpy.random.default_rng([*seed, indices[i]])``
  (a SeedSequence of the seed and the record's index), so a record's pixels
  never change: not across calls, splits, batch compositions or processes.
  A pixel becomes 255 with probability pixel/255, else 0.

  Args:
    images: uint8 [N, H, W, C] (any trailing shape), values 0..255.
    seed: non-negative int, or a sequence of them (e.g. ``(binarize_seed,
      split_code)``).
    indices: N non-negative ints, the records' stable indices.

  Returns:
    uint8 array of the same shape with values in {0, 255}.
  """
  images = np.asarray(images)
  if images.dtype != np.uint8:
    raise ConfigError(
        f'fixed_binarize expects uint8 images, got {images.dtype}.')
  indices = np.asarray(indices, dtype=np.int64).reshape(-1)
  if indices.shape[0] != images.shape[0]:
    raise ConfigError(
        f'fixed_binarize: {indices.shape[0]} indices for {images.shape[0]} '
        'images.')
  seed_entropy = [int(s) for s in np.atleast_1d(np.asarray(seed))]
  out = np.empty_like(images)
  for row, (image, index) in enumerate(zip(images, indices)):
    rng = np.random.default_rng(seed_entropy + [int(index)])
    u = rng.random(image.shape)
    out[row] = np.where(u < image / 255.0, 255, 0).astype(np.uint8)
  return out
