"""Pixel likelihoods shared by image families: parameters, log-probs, uint8 out.

A family's decoder emits raw per-pixel parameters; these helpers turn them
into per-example log-likelihoods and back into uint8 images, for the three
observation models the project uses:

- ``'bernoulli'``: binary pixels in {0, 1}; one logit per sub-pixel.
- ``'gaussian'``: a continuous density on dequantized data in [0, 1)
  (``y = (x + u) / 256``); a mean and a log-scale per sub-pixel. Its NLL is a
  density and needs the dequantization offset to be read in bits/dim.
- ``'logistic'``: the discretized logistic of PixelCNN++ on the 256 bin
  centres of [-1, 1]; a mean and a log-scale per sub-pixel.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgen import losses
from jaxgen.errors import ConfigError

LIKELIHOODS = ('bernoulli', 'gaussian', 'logistic')
# Soft lower bound on a Gaussian decoder's log-scale: keeps the density of a
# dequantized pixel bounded without cutting the gradient (exp(-7) ~ 1e-3,
# a quarter of one 8-bit level on [0, 1)).
GAUSSIAN_LOG_SCALE_MIN = -7.0


def num_params(likelihood: str) -> int:
  """Decoder outputs per sub-pixel for a likelihood."""
  check_likelihood(likelihood)
  return 1 if likelihood == 'bernoulli' else 2


def check_likelihood(likelihood: str,
                     field: str = 'config.model.likelihood') -> None:
  if likelihood not in LIKELIHOODS:
    raise ConfigError(f'{field}={likelihood!r} is not one of {LIKELIHOODS}.')


def value_range(likelihood: str) -> str:
  """The data value range ('unit' or 'symmetric') a likelihood expects."""
  return 'symmetric' if likelihood == 'logistic' else 'unit'


def check_data_config(likelihood: str, data_config, pixel_levels: int) -> None:
  """Raises `ConfigError` when the data preprocessing does not fit `likelihood`.

  Args:
    likelihood: one of `LIKELIHOODS`.
    data_config: the ``config.data`` ConfigDict (fields binarize, dequantize,
      value_range).
    pixel_levels: distinct pixel values of the loaded source (2 or 256).
  """
  check_likelihood(likelihood)
  binary = data_config.binarize != 'none' or pixel_levels == 2
  wanted_range = value_range(likelihood)
  if data_config.value_range != wanted_range:
    raise ConfigError(
        f'config.model.likelihood={likelihood!r} needs '
        f'config.data.value_range={wanted_range!r}, got '
        f'{data_config.value_range!r}.')
  if likelihood == 'bernoulli' and not binary:
    raise ConfigError(
        "config.model.likelihood='bernoulli' models binary pixels: set "
        "config.data.binarize to 'dynamic' or 'fixed' (8-bit data would make "
        'the reported nats meaningless).')
  if likelihood == 'bernoulli' and data_config.dequantize:
    raise ConfigError("config.data.dequantize must be False for 'bernoulli'.")
  if likelihood == 'gaussian' and (binary or not data_config.dequantize):
    raise ConfigError(
        "config.model.likelihood='gaussian' is a continuous density: it needs "
        "8-bit data (config.data.binarize='none') with "
        'config.data.dequantize=True so its nats bound the discrete NLL.')
  if likelihood == 'logistic' and (binary or data_config.dequantize):
    raise ConfigError(
        "config.model.likelihood='logistic' is discrete over 256 levels: set "
        "config.data.binarize='none' and config.data.dequantize=False.")


def split_params(likelihood: str, out: jax.Array):
  """Splits a decoder output [..., C * num_params] into named parameters."""
  if likelihood == 'bernoulli':
    return {'logits': out}
  mean, raw_scale = jnp.split(out, 2, axis=-1)
  if likelihood == 'gaussian':
    log_scale = GAUSSIAN_LOG_SCALE_MIN + jax.nn.softplus(
        raw_scale - GAUSSIAN_LOG_SCALE_MIN)
  else:
    log_scale = raw_scale  # the discretized logistic clamps it itself
  return {'mean': mean, 'log_scale': log_scale}


def log_prob(likelihood: str, params, x: jax.Array) -> jax.Array:
  """Per-example log-likelihood: sums over every axis but the first.

  Args:
    likelihood: one of `LIKELIHOODS`.
    params: the output of `split_params`, each leaf [..., H, W, C].
    x: images in the likelihood's value range, [..., H, W, C].

  Returns:
    [...] log p(x | params) in nats (a density for 'gaussian').
  """
  if likelihood == 'bernoulli':
    lp = losses.bernoulli_log_prob(params['logits'], x)
  elif likelihood == 'gaussian':
    lp = losses.gaussian_log_prob(x, params['mean'], params['log_scale'])
  else:
    lp = losses.discretized_logistic_log_prob(x, params['mean'],
                                              params['log_scale'])
  return lp.reshape(lp.shape[:-3] + (-1,)).sum(-1)


def to_uint8(likelihood: str, params, key: jax.Array | None) -> jax.Array:
  """Images from decoder parameters: a draw if `key` is given, else the mean.

  Returns uint8 [..., H, W, C]. Bernoulli draws are {0, 255}; its mean is the
  probability scaled to [0, 255]. Gaussian values live on dequantized [0, 1)
  and map to floor(256 y); logistic values on [-1, 1] bin centres map to
  round(127.5 (y + 1)).
  """
  if likelihood == 'bernoulli':
    p = jax.nn.sigmoid(params['logits'])
    if key is not None:
      p = jax.random.bernoulli(key, p).astype(jnp.float32)
    return jnp.round(p * 255.0).astype(jnp.uint8)
  mean, log_scale = params['mean'], params['log_scale']
  if likelihood == 'gaussian':
    y = mean
    if key is not None:
      y = y + jnp.exp(log_scale) * jax.random.normal(key, mean.shape)
    return jnp.floor(jnp.clip(y * 256.0, 0.0, 255.0)).astype(jnp.uint8)
  y = mean
  if key is not None:
    u = jax.random.uniform(key, mean.shape, minval=1e-5, maxval=1.0 - 1e-5)
    y = y + jnp.exp(jnp.maximum(log_scale, -7.0)) * (jnp.log(u) - jnp.log1p(-u))
  return jnp.round(jnp.clip((y + 1.0) * 127.5, 0.0, 255.0)).astype(jnp.uint8)


def recon_error(likelihood: str, params, x: jax.Array) -> jax.Array:
  """Per-example mean squared error of the decoder mean on the [0, 1] scale."""
  if likelihood == 'bernoulli':
    mean = jax.nn.sigmoid(params['logits'])
  elif likelihood == 'gaussian':
    mean = params['mean']
  else:
    mean, x = (params['mean'] + 1.0) / 2.0, (x + 1.0) / 2.0
  err = jnp.square(mean - x)
  return err.reshape(err.shape[:-3] + (-1,)).mean(-1)
