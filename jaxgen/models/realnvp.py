r"""RealNVP: a multi-scale flow of affine couplings, exact log-likelihood.

Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR
2017. The layers are `jaxgen.nn.flows`.

**What density is returned.** Images are 8-bit; the data config dequantizes
them uniformly, ``y = (x + u) / 256`` in [0, 1)^D with u ~ U[0, 1)^D
(``config.data.dequantize=True``, ``value_range='unit'``, checked by
`validate`). The flow maps y to z (through the logit pre-processing
``logit(alpha + (1 - 2 alpha) y)`` of section 4.1 when ``logit_alpha > 0``,
whose log-determinant is part of the flow's), and

    log p(y) = log N(z; 0, I) + log |det dz/dy|

is what `log_likelihood` returns: the exact density of the dequantized
input y on [0, 1)^D. The evaluator adds the dequantization offset
``D ln 256`` nats (`jaxgen.data.dequantize`), so the reported
``nll = -log p(y) + D ln 256`` and bits/dim ``nll / (D ln 2)`` bound the
discrete NLL of the 8-bit images and compare with the papers' figures. On
toy 2-D points the flow models the points themselves (no dequantization, no
logit) and `log_likelihood` is log p(x).

**Architecture** (section 3.6; images [H, W, C]). For each of the
``num_scales - 1`` first scales: ``couplings_per_scale`` checkerboard
affine couplings, a 2x2 squeeze, ``couplings_per_scale`` channel couplings,
then half the channels are factored out as latent variables; at the last
scale ``final_couplings`` checkerboard couplings. Masks alternate parity
0, 1, 0, ... Each coupling net is a conv ResNet (3x3 conv to ``hidden``
channels, ``depth`` residual blocks of two 3x3 convs, a zero-initialised
3x3 conv out); scales are ``s = scale * tanh(s_raw)``. With
``num_scales=2``, ``couplings_per_scale=3``, ``final_couplings=2``,
``hidden=64``, ``depth=2`` on 28x28x1 this is the 8-coupling reference
layout of 1,204,711 parameters. Batch normalisation and weight
normalisation of the paper are left out (every coupling starts at the
identity instead). On points [D] (``num_scales=1``) the flow is
``final_couplings`` couplings alternating which coordinates condition,
each net an MLP of ``depth`` ReLU layers of width ``hidden``.

The family contract (`jaxgen.models`): `Net`, `init`, `loss_fn`,
`LIKELIHOOD`, `log_likelihood`, `sample` (optional ``temperature``),
`validate`, `DATA`. Extra, usable outside the trainer: `forward(params, x,
*, net) -> (z [B, D], logdet [B])`, `inverse(params, z, *, net) -> (x,
logdet)`, `log_det(params, x, *, net) -> [B]`. The helpers below
(`inputs`, `init`, `forward`, ..., `validate_flow_data`) are shared with
`jaxgen.models.nice`: both Nets map x to a flat z [B, D] and name their
prior in ``net.prior``.
"""

from __future__ import annotations

import itertools
import math
from typing import ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import steps
from jaxgen.models import base
from jaxgen.errors import ConfigError
from jaxgen.nn import flows

LIKELIHOOD = 'exact'  # density of the dequantized input (+ D ln 256 by eval)
DATA = ('images', 'points')
_LOG_256 = math.log(256.0)


class Net(nn.Module):
  """The multi-scale RealNVP flow; fields are ``config.model``.

  ``Net(...)(x)`` maps x [B, H, W, C] in [0, 1] (or points [B, D]) to
  ``(z [B, D], log|det dz/dx| [B])``; ``(z, inverse=True)`` maps back,
  returning ``(x, log|det dx/dz|)``. z is the factored-out latents of each
  scale, flattened and concatenated in order, then the last scale's.

  Attributes:
    image_shape: (H, W, C) of images, or (D,) of points.
    num_scales: scales of the multi-scale architecture (1: no squeeze; the
      only choice for points). H and W must divide by 2^(num_scales - 1).
    couplings_per_scale: checkerboard couplings before, and channel
      couplings after, each scale's squeeze.
    final_couplings: checkerboard couplings at the last scale.
    hidden: channels (conv) or width (MLP) of the coupling nets.
    depth: residual blocks (conv) or hidden layers (MLP) per coupling net.
    logit_alpha: alpha of the logit pre-processing of [0, 1] data; 0 for
      none (points).
  """
  image_shape: Sequence[int] = (28, 28, 1)
  num_scales: int = 2
  couplings_per_scale: int = 3
  final_couplings: int = 2
  hidden: int = 64
  depth: int = 2
  logit_alpha: float = 0.05
  prior: ClassVar[str] = 'gaussian'  # RealNVP's standard Gaussian prior

  def setup(self):
    def coupling(mask, parity):
      return flows.Coupling(mask=mask, parity=parity, affine=True,
                            hidden=self.hidden, depth=self.depth)
    k = self.couplings_per_scale
    self.checker = [coupling('checkerboard', i % 2)
                    for _ in range(self.num_scales - 1) for i in range(k)]
    self.channel = [coupling('channel', i % 2)
                    for _ in range(self.num_scales - 1) for i in range(k)]
    self.final = [coupling('checkerboard', i % 2)
                  for i in range(self.final_couplings)]

  def latent_shapes(self) -> tuple[tuple[int, ...], ...]:
    """Shapes of one example's factored-out latents, then the last scale's."""
    shape = tuple(self.image_shape)
    out = []
    for _ in range(self.num_scales - 1):
      h, w, c = shape
      shape = (h // 2, w // 2, 2 * c)
      out.append(shape)  # the factored-out half of the squeezed 4c channels
    return tuple(out) + (shape,)

  def __call__(self, x: jax.Array, inverse: bool = False):
    if inverse:
      return self._inverse(x)
    logdet = jnp.zeros(x.shape[:1], jnp.float32)
    h = x
    if self.logit_alpha:
      h, ld = flows.logit_forward(h, self.logit_alpha)
      logdet += ld
    k, zs = self.couplings_per_scale, []
    for s in range(self.num_scales - 1):
      for layer in self.checker[s * k:(s + 1) * k]:
        h, ld = layer(h)
        logdet += ld
      h = flows.squeeze(h)
      for layer in self.channel[s * k:(s + 1) * k]:
        h, ld = layer(h)
        logdet += ld
      h, z = flows.split_half(h)
      zs.append(z.reshape(z.shape[0], -1))
    for layer in self.final:
      h, ld = layer(h)
      logdet += ld
    zs.append(h.reshape(h.shape[0], -1))
    return jnp.concatenate(zs, axis=-1), logdet

  def _inverse(self, z: jax.Array):
    b = z.shape[0]
    shapes = self.latent_shapes()
    sizes = [math.prod(s) for s in shapes]
    parts = jnp.split(z, list(itertools.accumulate(sizes[:-1])), axis=-1)
    logdet = jnp.zeros((b,), jnp.float32)
    h = parts[-1].reshape((b,) + shapes[-1])
    for layer in reversed(self.final):
      h, ld = layer(h, inverse=True)
      logdet += ld
    k = self.couplings_per_scale
    for s in reversed(range(self.num_scales - 1)):
      h = flows.merge_half(h, parts[s].reshape((b,) + shapes[s]))
      for layer in reversed(self.channel[s * k:(s + 1) * k]):
        h, ld = layer(h, inverse=True)
        logdet += ld
      h = flows.unsqueeze(h)
      for layer in reversed(self.checker[s * k:(s + 1) * k]):
        h, ld = layer(h, inverse=True)
        logdet += ld
    if self.logit_alpha:
      h, ld = flows.logit_inverse(h, self.logit_alpha)
      logdet += ld
    return h, logdet


# ----------------------------------------------- the flow families' helpers
def is_points(net: nn.Module) -> bool:
  """Whether the flow models points [B, D] (else images [B, H, W, C])."""
  return len(net.image_shape) == 1


def inputs(batch) -> jax.Array:
  """The examples of a preprocessed batch: 'point' [B, D] or 'image'."""
  return batch['point'] if 'point' in batch else batch['image']


def init(key: jax.Array, batch, *, net: nn.Module):
  """Initial parameters for a preprocessed batch (every coupling at the
  identity)."""
  return net.init(key, inputs(batch))['params']


def forward(params, x: jax.Array, *, net: nn.Module):
  """x [B, ...] -> (z [B, D], log|det dz/dx| [B]), the flow's forward map."""
  return net.apply({'params': params}, x)


def inverse(params, z: jax.Array, *, net: nn.Module):
  """z [B, D] -> (x [B, ...], log|det dx/dz| [B]), the inverse map."""
  return net.apply({'params': params}, z, inverse=True)


def log_det(params, x: jax.Array, *, net: nn.Module) -> jax.Array:
  """log|det dz/dx| [B] of the forward map at x [B, ...]."""
  return forward(params, x, net=net)[1]


def log_likelihood(params, batch, key, *, net: nn.Module) -> jax.Array:
  """Exact log p(y) [B] nats of the preprocessed (dequantized) batch.

  ``log p_prior(forward(y)) + log|det dz/dy|``; for images the evaluator
  adds D ln 256 to the NLL (the module docstring). `key` is unused.
  """
  del key
  z, logdet = forward(params, inputs(batch), net=net)
  return flows.prior_log_prob(z, net.prior) + logdet


def loss_fn(params, batch, key, *, net: nn.Module, train: bool = True):
  """Maximum likelihood: the mean of -log p(y) over unmasked rows.

  Returns:
    (scalar nats per example, {'nll': -log p(y) [B] nats of the input as
    the model sees it, 'logdet': log|det dz/dy| [B], and for images
    'bits_per_dim': (nll + D ln 256) / (D ln 2) [B], the 8-bit figure}).
  """
  del key, train
  x = inputs(batch)
  z, logdet = forward(params, x, net=net)
  nll = -(flows.prior_log_prob(z, net.prior) + logdet)
  metrics = {'nll': nll, 'logdet': logdet}
  if not is_points(net):
    d = math.prod(x.shape[1:])
    metrics['bits_per_dim'] = (nll + d * _LOG_256) / (d * math.log(2.0))
  return steps.masked_mean(nll, batch.get('mask')), metrics


def to_uint8(y: jax.Array) -> jax.Array:
  """Dequantized-scale values y in [0, 1) -> 8-bit pixels floor(256 y)."""
  return jnp.clip(jnp.floor(y * 256.0), 0, 255).astype(jnp.uint8)


def sample(params, key: jax.Array, num: int, *, net: nn.Module,
           temperature: float = 1.0):
  """z ~ prior (scale `temperature`), x = inverse(z).

  Returns uint8 [num, H, W, C] (``floor(256 x)``, clipped), or float32
  [num, D] points.
  """
  d = math.prod(net.image_shape)
  z = flows.sample_prior(key, (num, d), net.prior, temperature)
  x, _ = inverse(params, z, net=net)
  return x if is_points(net) else to_uint8(x)


# ------------------------------------------------------------- validation
def _check_int(value, field: str, minimum: int) -> None:
  if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
    raise ConfigError(f'{field}={value!r} must be an integer >= {minimum}.')


def validate_flow_data(config, dataset) -> None:
  """Checks the data and the fields both flow families share.

  Images: a density of uniformly dequantized 8-bit pixels in [0, 1)
  (``config.data``: binarize 'none', dequantize True, value_range 'unit'),
  ``logit_alpha`` in [0, 0.5). Points: no logit pre-processing (points are
  not bounded), at least 2 coordinates to couple.
  """
  m = config.model
  _check_int(m.get('hidden', 1), 'config.model.hidden', 1)
  _check_int(m.get('depth', 0), 'config.model.depth', 0)
  alpha = m.get('logit_alpha', 0.0)
  if not 0.0 <= alpha < 0.5:
    raise ConfigError(
        f'config.model.logit_alpha={alpha} must lie in [0, 0.5).')
  if dataset.image_shape is None:  # points
    if alpha:
      raise ConfigError(
          f'config.model.logit_alpha={alpha}: points are not bounded to '
          '[0, 1]; set it to 0 (no logit pre-processing).')
    if dataset.point_dim < 2:
      raise ConfigError(
          f'config.model.image_shape={tuple(m.image_shape)}: a coupling '
          'needs at least 2 coordinates.')
    return
  base.check_dequantized_8bit(config, dataset)


def validate(config, dataset) -> None:
  """Raises `ConfigError` naming the field that does not fit RealNVP."""
  m = config.model
  validate_flow_data(config, dataset)
  _check_int(m.num_scales, 'config.model.num_scales', 1)
  _check_int(m.couplings_per_scale, 'config.model.couplings_per_scale', 1)
  _check_int(m.final_couplings, 'config.model.final_couplings', 1)
  if dataset.image_shape is None:
    if m.num_scales != 1:
      raise ConfigError(
          f'config.model.num_scales={m.num_scales}: points have no pixels to '
          'squeeze; set it to 1.')
    return
  h, w, _ = dataset.image_shape
  factor = 2 ** (m.num_scales - 1)
  if h % factor or w % factor:
    raise ConfigError(
        f'config.model.num_scales={m.num_scales}: {m.num_scales - 1} 2x2 '
        f'squeezes need H and W divisible by {factor}; the images are '
        f'{h}x{w}.')
