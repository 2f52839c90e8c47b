"""Convolutional autoencoders, plain and denoising.

The lecture autoencoder: an encoder of four strided convolutions and a dense
bottleneck, a decoder of a dense projection and four transposed
convolutions (`jaxgen.nn.ConvEncoder` / `ConvDecoder`). The denoising variant
(Vincent et al., ICML 2008; JMLR 2010) corrupts the input with keyed noise
and reconstructs the clean image.

An autoencoder defines no density: `LIKELIHOOD` is None, `log_likelihood`
and `sample` are None, and evaluation reports reconstruction error.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import losses
from jaxgen import nn as jnn
from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.nn import initializers as inits

LIKELIHOOD = None  # no density: evaluated by reconstruction error
log_likelihood = None
sample = None

NOISES = ('none', 'gaussian', 'masking')
RECONSTRUCTIONS = ('bernoulli', 'mse')


class Net(nn.Module):
  """Encoder to a `latent_dim` code and decoder back; fields are config.model.

  Attributes:
    image_shape: (H, W, C) of the data; values in [0, 1].
    conv_channels, conv_strides, kernel_size, activation: the convolution
      stacks (the decoder mirrors the encoder).
    latent_dim: size of the code.
    reconstruction: 'bernoulli' (cross-entropy from logits against pixel
      intensities in [0, 1]) or 'mse' (squared error of a linear output).
    noise: corruption for the denoising variant: 'none', 'gaussian'
      (additive N(0, noise_level^2), clipped to [0, 1]) or 'masking' (each
      pixel set to 0 with probability noise_level).
    noise_level: the corruption's strength.
  """
  image_shape: Sequence[int] = (28, 28, 1)
  conv_channels: Sequence[int] = (32, 32, 64, 64)
  conv_strides: Sequence[int] = (2, 2, 1, 1)
  kernel_size: int = 4
  activation: str = 'relu'
  latent_dim: int = 16
  reconstruction: str = 'bernoulli'
  noise: str = 'none'
  noise_level: float = 0.0

  def setup(self):
    self.encoder = jnn.ConvEncoder(self.conv_channels, self.conv_strides,
                                   self.kernel_size, self.activation)
    self.bottleneck = inits.Dense(self.latent_dim, name='bottleneck')
    self.decoder = jnn.ConvDecoder(self.image_shape, self.image_shape[-1],
                                   self.conv_channels, self.conv_strides,
                                   self.kernel_size, self.activation)

  def encode(self, x: jax.Array) -> jax.Array:
    """x [B, H, W, C] -> code [B, latent_dim]."""
    return self.bottleneck(self.encoder(x))

  def decode(self, code: jax.Array) -> jax.Array:
    """code [B, latent_dim] -> raw outputs [B, H, W, C] (logits or values)."""
    return self.decoder(code)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.decode(self.encode(x))


def validate(config, dataset) -> None:
  m = config.model
  if m.noise not in NOISES:
    raise ConfigError(f'config.model.noise={m.noise!r} is not one of {NOISES}.')
  if m.reconstruction not in RECONSTRUCTIONS:
    raise ConfigError(f'config.model.reconstruction={m.reconstruction!r} is '
                      f'not one of {RECONSTRUCTIONS}.')
  if m.noise == 'masking' and not 0.0 <= m.noise_level < 1.0:
    raise ConfigError(f'config.model.noise_level={m.noise_level} must lie in '
                      "[0, 1) for 'masking' noise.")
  if m.noise_level < 0:
    raise ConfigError(f'config.model.noise_level={m.noise_level} must be >= 0.')
  if len(m.conv_channels) != len(m.conv_strides):
    raise ConfigError(
        'config.model.conv_channels and config.model.conv_strides must have '
        'the same length.')
  if config.data.value_range != 'unit' or config.data.dequantize:
    raise ConfigError(
        "the autoencoder reconstructs pixel intensities in [0, 1]: set "
        "config.data.value_range='unit' and config.data.dequantize=False.")
  del dataset


def corrupt(key: jax.Array, x: jax.Array, noise: str, level: float):
  """The denoising corruption of x in [0, 1] (identity for 'none')."""
  if noise == 'gaussian':
    return jnp.clip(x + level * jax.random.normal(key, x.shape, x.dtype),
                    0.0, 1.0)
  if noise == 'masking':
    keep = jax.random.bernoulli(key, 1.0 - level, x.shape)
    return jnp.where(keep, x, 0.0)
  return x


def init(key: jax.Array, batch, *, net: Net) -> Any:
  return net.init(key, batch['image'])['params']


def _per_example_error(net: Net, out: jax.Array, x: jax.Array):
  """(loss term, mean squared error on [0, 1]) per example."""
  flat = lambda a: a.reshape(a.shape[0], -1)
  if net.reconstruction == 'bernoulli':
    loss = -flat(losses.bernoulli_log_prob(out, x)).sum(-1)
    mean = jax.nn.sigmoid(out)
  else:
    loss = flat(jnp.square(out - x)).sum(-1)
    mean = out
  return loss, flat(jnp.square(mean - x)).mean(-1)


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """Reconstruction loss of the clean image from a (corrupted) input.

  Returns (scalar mean over unmasked examples, {'recon_loss', 'recon_error'}
  each [B]); recon_error is the per-pixel mean squared error on [0, 1].
  The corruption is applied in training and in evaluation alike, so the
  evaluation measures the denoising task the model was trained for.
  """
  del train
  x = batch['image']
  noisy = corrupt(key, x, net.noise, net.noise_level)
  out = net.apply({'params': params}, noisy)
  loss, mse = _per_example_error(net, out, x)
  metrics = {'recon_loss': loss, 'recon_error': mse}
  return steps.masked_mean(loss, batch.get('mask')), metrics


def _to_uint8(net: Net, out: jax.Array) -> jax.Array:
  mean = jax.nn.sigmoid(out) if net.reconstruction == 'bernoulli' else out
  return jnp.round(jnp.clip(mean, 0.0, 1.0) * 255.0).astype(jnp.uint8)


def reconstruct(params, batch, key, *, net: Net):
  """Reconstructions of the (corrupted, for denoising) inputs: uint8."""
  noisy = corrupt(key, batch['image'], net.noise, net.noise_level)
  return _to_uint8(net, net.apply({'params': params}, noisy))


def decode(params, code: jax.Array, *, net: Net):
  """Images from codes [N, latent_dim]: uint8 [N, H, W, C]."""
  return _to_uint8(net, net.apply({'params': params}, code, method=Net.decode))
