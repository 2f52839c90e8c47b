"""Monte Carlo estimators over many samples with bounded memory.

Importance-weighted bounds with k = 5000 samples do not fit in memory at
once: these helpers draw the samples in chunks inside a `lax.scan` and keep a
running log-sum-exp (or sum), so memory is that of one chunk and the whole
evaluation stays one compiled program.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxgen.errors import ConfigError


def num_chunks(num_samples: int, chunk_size: int, field: str = '') -> int:
  """k / chunk_size; a ConfigError unless both are positive ints and the
  chunk divides k. `field` (e.g. ``config.eval.estimators.iwae``) prefixes
  the names in the message."""
  p = f'{field}.' if field else ''
  for name, v in (('num_samples', num_samples), ('chunk_size', chunk_size)):
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
      raise ConfigError(f'{p}{name}={v!r} must be a positive int.')
  if num_samples % chunk_size:
    raise ConfigError(f'{p}num_samples={num_samples} must be a multiple of '
                      f'{p}chunk_size={chunk_size}.')
  return num_samples // chunk_size


def chunked_log_mean_exp(fn, key, *, num_samples: int, chunk_size: int):
  """log (1/k) sum_i exp(fn_i), evaluated `chunk_size` samples at a time.

  Args:
    fn: fn(key, n) -> [n, B] log weights for n fresh samples.
    key: PRNG key; chunk j uses fold_in(key, j).
    num_samples: k, a multiple of chunk_size.
    chunk_size: samples per chunk.

  Returns:
    [B] the log-mean-exp over all k samples (a running log-sum-exp over
    chunks in a `lax.scan`, so memory is that of one chunk).
  """
  n = num_chunks(num_samples, chunk_size)

  def body(carry, j):
    lw = fn(jax.random.fold_in(key, j), chunk_size)
    return jnp.logaddexp(carry, jax.nn.logsumexp(lw, axis=0)), None

  first = jax.nn.logsumexp(fn(jax.random.fold_in(key, 0), chunk_size), axis=0)
  total, _ = jax.lax.scan(body, first, jnp.arange(1, n))
  return total - math.log(num_samples)


def chunked_mean(fn, key, *, num_samples: int, chunk_size: int):
  """(1/k) sum_i fn_i over k samples drawn `chunk_size` at a time: [B]."""
  n = num_chunks(num_samples, chunk_size)

  def body(carry, j):
    return carry + fn(jax.random.fold_in(key, j), chunk_size).sum(0), None

  total, _ = jax.lax.scan(body, fn(jax.random.fold_in(key, 0),
                                   chunk_size).sum(0), jnp.arange(1, n))
  return total / num_samples
