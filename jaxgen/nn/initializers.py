"""Parameter initializers drawn as one flat vector, and layers that use them.

Every initializer here returns exactly the values of its namesake in
`jax.nn.initializers` (bitwise, under JAX's default partitionable threefry,
where a draw of shape S equals the draw of shape (prod(S),) reshaped to S;
tested in tests/nn/test_initializers.py) but asks the random-number
generator for a vector instead of a tensor of the kernel's rank. On XLA:CPU
the threefry counters of a rank-4 draw take seconds to compile where a
vector takes a fraction of one, and the cost grows faster than linearly with
the number of draws in one program. A model's `init` makes one draw per
kernel, so this is most of its compile time.

Under ``jax_threefry_partitionable=False`` the flat and shaped draws differ
in which number lands where; the distribution is the same.

`Dense`, `Conv` and `Embed` are the Flax layers with these initializers as
defaults: same class, same parameter names and shapes, so they are drop-in
replacements (``Dense(...)`` builds an ``nn.Dense``). `Conv` is
`jaxgen.nn.conv.Conv`: an ``nn.Conv`` that computes through
`conv.conv_general_dilated` (method 'auto'), so every family's plain
convolution follows `conv.choose_method`; where that picks 'xla', the
values are ``nn.Conv``'s bitwise.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Axes = int | Sequence[int]

# The standard deviation of N(0, 1) truncated to [-2, 2] (as in JAX).
_TRUNCATED_STDDEV = .87962566103423978
MODES = ('fan_in', 'fan_out', 'fan_avg', 'fan_geo_avg')
DISTRIBUTIONS = ('truncated_normal', 'normal', 'uniform')


def _size(shape: Sequence[int], axes: Axes) -> int:
  if isinstance(axes, int):
    return shape[axes]
  return math.prod(shape[i] for i in axes)


def compute_fans(shape: Sequence[int], in_axis: Axes = -2,
                 out_axis: Axes = -1,
                 batch_axis: Axes = ()) -> tuple[float, float]:
  """(fan_in, fan_out) as `jax.nn.initializers.variance_scaling` computes them.

  Axes outside in/out/batch are the receptive field (kernel spatial axes).
  """
  if isinstance(in_axis, int) and in_axis == -2 and len(shape) <= 1:
    raise ValueError(f'a {len(shape)}-dimensional weight has no input axis: '
                     'pass in_axis explicitly.')
  in_size = _size(shape, in_axis)
  out_size = _size(shape, out_axis)
  batch_size = _size(shape, batch_axis)
  receptive = math.prod(shape) / in_size / out_size / batch_size
  return in_size * receptive, out_size * receptive


def _flat(shape: Sequence[int]) -> tuple[int]:
  return (math.prod(shape),)


def variance_scaling(scale: float, mode: str, distribution: str,
                     in_axis: Axes = -2, out_axis: Axes = -1,
                     batch_axis: Axes = ()):
  """`jax.nn.initializers.variance_scaling`, drawn flat (real dtypes only).

  Standard deviation sqrt(scale / n), n = fan_in, fan_out, their mean or
  their geometric mean; truncated normal (at 2 standard deviations, then
  rescaled to that standard deviation), normal, or uniform.
  """
  if mode not in MODES:
    raise ValueError(f'mode={mode!r} is not one of {MODES}.')
  if distribution not in DISTRIBUTIONS:
    raise ValueError(f'distribution={distribution!r} is not one of '
                     f'{DISTRIBUTIONS}.')

  def init(key, shape, dtype=jnp.float32):
    shape = tuple(shape)
    fan_in, fan_out = compute_fans(shape, in_axis, out_axis, batch_axis)
    denominator = {'fan_in': fan_in, 'fan_out': fan_out,
                   'fan_avg': (fan_in + fan_out) / 2,
                   'fan_geo_avg': (fan_in * fan_out) ** 0.5}[mode]
    variance = jnp.array(scale / denominator, dtype=dtype)
    if distribution == 'truncated_normal':
      stddev = jnp.sqrt(variance) / jnp.array(_TRUNCATED_STDDEV, dtype)
      draw = jax.random.truncated_normal(key, -2, 2, _flat(shape), dtype)
      value = draw * stddev
    elif distribution == 'normal':
      value = jax.random.normal(key, _flat(shape), dtype) * jnp.sqrt(variance)
    else:
      value = (jax.random.uniform(key, _flat(shape), dtype, -1)
               * jnp.sqrt(3 * variance))
    return value.reshape(shape)

  return init


def lecun_normal(in_axis: Axes = -2, out_axis: Axes = -1,
                 batch_axis: Axes = ()):
  """Truncated normal with variance 1 / fan_in (Flax's default kernel init)."""
  return variance_scaling(1.0, 'fan_in', 'truncated_normal', in_axis,
                          out_axis, batch_axis)


def normal(stddev: float = 1e-2):
  """I.i.d. N(0, stddev^2), as `jax.nn.initializers.normal`."""

  def init(key, shape, dtype=jnp.float32):
    shape = tuple(shape)
    draw = jax.random.normal(key, _flat(shape), dtype)
    return (draw * jnp.array(stddev, dtype)).reshape(shape)

  return init


# Flax's default embedding initializer: N(0, 1 / fan_in) over axis 1.
default_embed_init = functools.partial(variance_scaling, 1.0, 'fan_in',
                                       'normal', out_axis=0)

Dense = functools.partial(nn.Dense, kernel_init=lecun_normal())


def Conv(  # pylint: disable=invalid-name
    features: int, kernel_size: int | Sequence[int], **kwargs) -> nn.Conv:
  """``nn.Conv(features, kernel_size, **kwargs)`` built by
  `jaxgen.nn.conv.Conv` (kernel drawn by `lecun_normal` unless
  ``kernel_init`` is given; ``method`` defaults to 'auto')."""
  # Imported here: jaxgen.nn.conv imports this module.
  from jaxgen.nn import conv  # pylint: disable=import-outside-toplevel
  return conv.Conv(features, kernel_size, **kwargs)


Embed = functools.partial(nn.Embed, embedding_init=default_embed_init())
