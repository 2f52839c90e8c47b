"""Variational autoencoders: MLP and convolutional, optionally class-conditional.

Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014; Rezende et
al., ICML 2014; the conditional VAE of Sohn et al., NeurIPS 2015; the
importance-weighted bound of Burda et al., ICLR 2016; beta-VAE of Higgins et
al., ICLR 2017.

Model: p(z) = N(0, I), p(x | z) one of the pixel likelihoods of
`jaxgen.models.pixels` (Bernoulli from logits, Gaussian, discretized
logistic), q(z | x) = N(mu(x), diag(exp(log_var(x)))). Training maximises

    ELBO(x) = E_q[log p(x | z)] - beta * KL(q(z | x) || p(z))

with one reparameterised sample and the analytic KL. `log_likelihood` gives
the ELBO (``bound='elbo'``) or the IWAE bound with k importance samples
(``bound='iwae'``): ELBO <= IWAE_k <= IWAE_{k+1} <= log p(x).

The family contract (see `jaxgen.models`): `Net`, `init`, `loss_fn`,
`log_likelihood`, `sample`, `reconstruct`, `validate`. Extra tools:
`interpolate`, `traverse`, `manifold`.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import estimators
from jaxgen import losses
from jaxgen import nn as jnn
from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.models import base
from jaxgen.models import pixels
from jaxgen.nn import initializers as inits
from jaxgen.nn.latent import slerp

LIKELIHOOD = 'bound'  # log_likelihood returns a lower bound on log p(x)
ARCHITECTURES = ('mlp', 'conv')
SAMPLE_MODES = ('mean', 'draw')
BOUNDS = ('iwae', 'elbo')  # log_likelihood(bound=...)
# Checked by the trainer for config.eval.estimators before training.
ESTIMATOR_CHOICES = {'bound': BOUNDS}


class Net(nn.Module):
  """Encoder q(z | x) and decoder p(x | z); fields are ``config.model``.

  Attributes:
    image_shape: (H, W, C) of the data.
    architecture: 'mlp' (dense layers on the flattened image) or 'conv'
      (`jaxgen.nn.ConvEncoder` / `ConvDecoder`).
    hidden_dims: widths of the MLP's hidden layers (encoder order; the decoder
      uses them reversed). 784-512-512 with a 32-d latent and a Bernoulli
      decoder has 1,379,152 parameters.
    conv_channels, conv_strides, kernel_size: the convolutional stacks.
    latent_dim: dimension of z.
    activation: hidden nonlinearity.
    likelihood: 'bernoulli', 'gaussian' or 'logistic' (`pixels.LIKELIHOODS`).
    num_classes: > 0 makes the VAE conditional on one-hot labels (encoder and
      decoder both see the label); 0 is unconditional.
    beta: weight of the KL term in the training loss (1 = the ELBO).
    sample_mode: 'mean' shows the decoder mean of p(x | z) for sampled z;
      'draw' samples x from p(x | z) as well.
  """
  image_shape: Sequence[int] = (28, 28, 1)
  architecture: str = 'mlp'
  hidden_dims: Sequence[int] = (512, 512)
  conv_channels: Sequence[int] = (32, 32, 64, 64)
  conv_strides: Sequence[int] = (2, 2, 1, 1)
  kernel_size: int = 4
  latent_dim: int = 32
  activation: str = 'relu'
  likelihood: str = 'bernoulli'
  num_classes: int = 0
  beta: float = 1.0
  sample_mode: str = 'mean'

  def setup(self):
    num_out = math.prod(self.image_shape) * pixels.num_params(self.likelihood)
    if self.architecture == 'mlp':
      self.encoder = jnn.MLP(tuple(self.hidden_dims), self.activation)
      self.decoder = jnn.MLP(
          tuple(reversed(self.hidden_dims)) + (num_out,), self.activation)
    else:
      self.encoder = jnn.ConvEncoder(self.conv_channels, self.conv_strides,
                                     self.kernel_size, self.activation)
      self.decoder = jnn.ConvDecoder(
          self.image_shape,
          self.image_shape[-1] * pixels.num_params(self.likelihood),
          self.conv_channels, self.conv_strides, self.kernel_size,
          self.activation)
    self.posterior = inits.Dense(2 * self.latent_dim, name='posterior')

  def _condition(self, h: jax.Array, labels: jax.Array | None) -> jax.Array:
    if not self.num_classes:
      return h
    onehot = jax.nn.one_hot(labels, self.num_classes, dtype=h.dtype)
    onehot = jnp.broadcast_to(onehot, h.shape[:-1] + (self.num_classes,))
    return jnp.concatenate([h, onehot], axis=-1)

  def encode(self, x: jax.Array, labels: jax.Array | None = None):
    """x [B, H, W, C] -> (mean [B, L], log_var [B, L])."""
    if self.architecture == 'mlp':
      h = self.encoder(x.reshape(x.shape[0], -1))
      if self.hidden_dims:  # hidden_dims=() is a linear encoder
        h = jnn.activation(self.activation)(h)
    else:
      h = self.encoder(x)
    stats = self.posterior(self._condition(h, labels))
    mean, log_var = jnp.split(stats, 2, axis=-1)
    return mean, log_var

  def decode(self, z: jax.Array, labels: jax.Array | None = None):
    """z [..., L] -> likelihood parameters, each [..., H, W, C]."""
    batch_shape = z.shape[:-1]
    h = self._condition(z, labels).reshape(-1, z.shape[-1] + self.num_classes)
    out = self.decoder(h)
    out = out.reshape(batch_shape + tuple(self.image_shape[:2]) + (-1,))
    return pixels.split_params(self.likelihood, out)

  def __call__(self, x: jax.Array, z: jax.Array,
               labels: jax.Array | None = None):
    self.encode(x, labels)
    return self.decode(z, labels)


def validate(config, dataset) -> None:
  """Checks ``config.model`` against itself and the loaded dataset."""
  m = config.model
  if m.architecture not in ARCHITECTURES:
    raise ConfigError(f'config.model.architecture={m.architecture!r} is not '
                      f'one of {ARCHITECTURES}.')
  if m.sample_mode not in SAMPLE_MODES:
    raise ConfigError(f'config.model.sample_mode={m.sample_mode!r} is not one '
                      f'of {SAMPLE_MODES}.')
  if m.latent_dim <= 0:
    raise ConfigError(f'config.model.latent_dim={m.latent_dim} must be > 0.')
  if m.architecture == 'conv' and len(m.conv_channels) != len(m.conv_strides):
    raise ConfigError(
        'config.model.conv_channels and config.model.conv_strides must have '
        f'the same length, got {tuple(m.conv_channels)} and '
        f'{tuple(m.conv_strides)}.')
  base.check_num_classes(m.num_classes, dataset)
  pixels.check_data_config(m.likelihood, config.data, dataset.pixel_levels)


def _labels(net: Net, batch) -> jax.Array | None:
  return batch['label'] if net.num_classes else None


def init(key: jax.Array, batch, *, net: Net) -> Any:
  """Initial parameters for a (preprocessed) example batch."""
  x = batch['image']
  z = jnp.zeros((x.shape[0], net.latent_dim), x.dtype)
  return net.init(key, x, z, _labels(net, batch))['params']


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """Negative beta-ELBO with one reparameterised sample and analytic KL.

  Args:
    params: the Net's parameters.
    batch: {'image': float [B, H, W, C] in the likelihood's range,
      'label': int [B], optional 'mask': bool [B]}.
    key: PRNG key for the reparameterised sample.
    net: the Net.
    train: unused (no dropout); part of the family contract.

  Returns:
    (scalar loss: mean over unmasked examples of -log p(x|z) + beta * KL,
     dict of [B] metrics: 'elbo', 'kl', 'log_px_z', 'recon_error').
  """
  del train
  x, labels = batch['image'], _labels(net, batch)
  variables = {'params': params}
  mean, log_var = net.apply(variables, x, labels, method=Net.encode)
  z = losses.gaussian_reparameterize(key, mean, log_var)
  dec = net.apply(variables, z, labels, method=Net.decode)
  log_px_z = pixels.log_prob(net.likelihood, dec, x)
  kl = losses.gaussian_kl(mean, log_var).sum(-1)
  per_example = -log_px_z + net.beta * kl
  metrics = {
      'elbo': losses.elbo(log_px_z, kl),
      'kl': kl,
      'log_px_z': log_px_z,
      'recon_error': pixels.recon_error(net.likelihood, dec, x),
  }
  return steps.masked_mean(per_example, batch.get('mask')), metrics


def _log_weights(params, x, labels, mean, log_var, key, num, *, net):
  """log p(x, z_i) - log q(z_i | x) for `num` samples: [num, B]."""
  z = losses.gaussian_reparameterize(key, mean, log_var, num_samples=num)
  dec = net.apply({'params': params}, z, labels, method=Net.decode)
  log_px_z = pixels.log_prob(net.likelihood, dec, x)
  log_pz = losses.gaussian_log_prob(z, 0.0, 0.0).sum(-1)
  log_qz = losses.gaussian_log_prob(z, mean, 0.5 * log_var).sum(-1)
  return log_px_z + log_pz - log_qz


def log_likelihood(params, batch, key, *, net: Net, bound: str = 'iwae',
                   num_samples: int = 1, chunk_size: int | None = None):
  """A lower bound on log p(x) per example, in nats: [B].

  Args:
    params, batch, key, net: as for `loss_fn`.
    bound: 'iwae' for the importance-weighted bound with `num_samples`
      samples (Burda et al. 2016, eq. 8; k=1 is a one-sample ELBO estimate),
      or 'elbo' for E_q[log p(x|z)] (averaged over `num_samples` samples)
      minus the analytic KL.
    num_samples: importance (or Monte Carlo) samples k.
    chunk_size: samples decoded at once; bounds memory for large k. The
      samples are processed in k / chunk_size sequential chunks (k must be a
      multiple of it) with a running log-sum-exp; the value does not depend
      on `chunk_size` beyond float rounding and the key split.

  Returns:
    [B] lower bound on log p(x) (a density for the Gaussian likelihood: add
    the dequantization offset when reporting discrete NLL).
  """
  if bound not in BOUNDS:
    raise ConfigError(f'bound={bound!r} (config.eval.estimators.<name>.bound) '
                      f'is not one of {BOUNDS}.')
  x, labels = batch['image'], _labels(net, batch)
  mean, log_var = net.apply({'params': params}, x, labels, method=Net.encode)
  chunk = min(chunk_size or num_samples, num_samples)
  if bound == 'iwae':
    weights = functools.partial(_log_weights, params, x, labels, mean, log_var,
                                net=net)
    return estimators.chunked_log_mean_exp(weights, key, num_samples=num_samples,
                                chunk_size=chunk)

  def recon(k, n):
    z = losses.gaussian_reparameterize(k, mean, log_var, num_samples=n)
    dec = net.apply({'params': params}, z, labels, method=Net.decode)
    return pixels.log_prob(net.likelihood, dec, x)

  expected = estimators.chunked_mean(recon, key, num_samples=num_samples, chunk_size=chunk)
  return expected - losses.gaussian_kl(mean, log_var).sum(-1)


def _decode_to_uint8(params, z, labels, key, *, net: Net):
  dec = net.apply({'params': params}, z, labels, method=Net.decode)
  draw_key = key if net.sample_mode == 'draw' else None
  return pixels.to_uint8(net.likelihood, dec, draw_key)


def sample(params, key, num: int, *, net: Net, labels=None):
  """`num` images from z ~ N(0, I): uint8 [num, H, W, C].

  With ``net.sample_mode == 'mean'`` the decoder mean is shown; with 'draw'
  x is sampled from p(x | z) too. A conditional VAE takes `labels` int [num]
  (default: 0, 1, ..., cycling through the classes).
  """
  z_key, x_key = jax.random.split(key)
  z = jax.random.normal(z_key, (num, net.latent_dim))
  labels = base.default_labels(net.num_classes, num, labels)
  return _decode_to_uint8(params, z, labels, x_key, net=net)


def encode(params, batch, *, net: Net):
  """Posterior parameters of a preprocessed batch: (mean, log_var), [B, L]."""
  return net.apply({'params': params}, batch['image'], _labels(net, batch),
                   method=Net.encode)


def reconstruct(params, batch, key, *, net: Net):
  """Decoder mean at the posterior mean: uint8 [B, H, W, C]."""
  del key
  mean, _ = encode(params, batch, net=net)
  dec = net.apply({'params': params}, mean, _labels(net, batch),
                  method=Net.decode)
  return pixels.to_uint8(net.likelihood, dec, None)


def interpolate(params, x_a, x_b, *, net: Net, num_steps: int = 8,
                spherical: bool = False, labels=None):
  """Decodes a path between the posterior means of two images.

  Args:
    x_a, x_b: preprocessed images [H, W, C].
    num_steps: points on the path, ends included.
    spherical: slerp instead of a straight line.
    labels: for a conditional VAE, an int label used along the whole path.

  Returns:
    uint8 [num_steps, H, W, C].
  """
  lab = None if not net.num_classes else jnp.full((2,), labels or 0)
  mean, _ = net.apply({'params': params}, jnp.stack([x_a, x_b]), lab,
                      method=Net.encode)
  t = jnp.linspace(0.0, 1.0, num_steps)
  z = slerp(mean[0], mean[1], t) if spherical else (
      (1 - t[:, None]) * mean[0] + t[:, None] * mean[1])
  lab = None if not net.num_classes else jnp.full((num_steps,), labels or 0)
  return _decode_to_uint8(params, z, lab, None, net=net)


def traverse(params, x, *, net: Net, dims: Sequence[int],
             values: Sequence[float], labels=None):
  """Per-dimension latent traversal around the posterior mean of `x`.

  Row i sets latent dimension dims[i] to each of `values` in turn, others
  fixed at the posterior mean. Returns uint8 [len(dims), len(values), H, W, C].
  """
  lab = None if not net.num_classes else jnp.full((1,), labels or 0)
  mean, _ = net.apply({'params': params}, x[None], lab, method=Net.encode)
  dims = jnp.asarray(dims)
  values = jnp.asarray(values, jnp.float32)
  z = jnp.broadcast_to(mean[0], (dims.shape[0], values.shape[0],
                                 net.latent_dim))
  z = z.at[jnp.arange(dims.shape[0])[:, None], jnp.arange(values.shape[0]),
           dims[:, None]].set(values[None, :])
  flat = z.reshape(-1, net.latent_dim)
  lab = None if not net.num_classes else jnp.full((flat.shape[0],), labels or 0)
  images = _decode_to_uint8(params, flat, lab, None, net=net)
  return images.reshape((dims.shape[0], values.shape[0]) + images.shape[1:])


def manifold(params, *, net: Net, grid_size: int = 15, labels=None):
  """Decoder means over a grid of Gaussian quantiles of a 2-D latent space.

  Kingma & Welling 2014, Fig. 4: z on the inverse CDF of N(0, 1) at evenly
  spaced probabilities. Requires latent_dim == 2. Returns uint8
  [grid_size, grid_size, H, W, C].
  """
  if net.latent_dim != 2:
    raise ConfigError(f'manifold needs config.model.latent_dim=2, got '
                      f'{net.latent_dim}.')
  p = jnp.linspace(0.05, 0.95, grid_size)
  q = jax.scipy.special.ndtri(p)
  zz = jnp.stack(jnp.meshgrid(q, q[::-1], indexing='xy'), -1).reshape(-1, 2)
  lab = None if not net.num_classes else jnp.full((zz.shape[0],), labels or 0)
  images = _decode_to_uint8(params, zz, lab, None, net=net)
  return images.reshape((grid_size, grid_size) + images.shape[1:])
