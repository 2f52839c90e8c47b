r"""Glow: a multi-scale flow of actnorm, 1x1 convolutions and couplings.

Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1
Convolutions", NeurIPS 2018. Layers are `jaxgen.nn.flows` (`FlowStep`:
`ActNorm` -> `InvConv1x1` in LU form -> `GlowCoupling` with the scale
``sigmoid(r + 2)``); the data checks, the dequantized-density bookkeeping
and the sampler's pixel rounding are shared with `jaxgen.models.realnvp`.

**What density is returned.** As for RealNVP: y = (x + u) / 256 in
[0, 1)^D (``config.data.dequantize=True``, ``value_range='unit'``); the flow
sees ``y - 0.5`` (the reference's centring, log-det 0) and
`log_likelihood` returns the exact log p(y); the evaluator adds D ln 256.
On toy 2-D points the flow models the points themselves.

**Architecture** (section 3, Figure 2b). ``levels`` levels; each: 2x2
squeeze, ``steps_per_level`` flow steps, then (all but the last level) a
split: half the channels ``z_i`` are factored out with the learned prior
of the paper's "split" (the reference's ``split2d``):
``z_i ~ N(mean, exp(log_scale)^2)`` with ``(mean, log_scale)`` from a
zero-initialised 3x3 conv of the kept half. The top latent's prior is a
standard Gaussian, or with ``num_classes > 0`` a Gaussian whose mean and
log-scale per latent entry are a learned, zero-initialised embedding of
the label (the class-conditional prior of section 5). On points [D]
(``levels=1``, no squeeze) the steps use MLP couplings.

**Latents.** Each Gaussian prior is folded into the map as the
standardisation ``eps = (z - mean) * exp(-log_scale)`` (its log-det
``-sum log_scale`` added to the flow's), so `forward` maps x to eps
[B, D] with ``log p(x) = log N(eps; 0, I) + logdet``: the factored-out
eps of each level flattened in order, then the top one's.
`sample` draws ``eps ~ N(0, T^2 I)`` at temperature T (section 5: the
reference's reduced-temperature sampling, every prior's standard deviation
times T) and inverts.

**Data-dependent initialisation** (section 3.1): `data_init` sets every
actnorm's bias and log-scale so that its output on the first training
batch has zero mean and unit variance per channel; the trainer calls it
once on a fresh run, and the values are checkpointed as parameters.

The family contract (`jaxgen.models`): `Net`, `init`, `data_init`,
`loss_fn`, `LIKELIHOOD`, `log_likelihood`, `sample` (``temperature``,
``labels``), `validate`, `DATA`. Extra: `forward(params, x, *, net,
labels=None) -> (eps, logdet)`, `inverse(params, eps, *, net,
labels=None) -> (x, logdet)`, `log_det`.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.models import base
from jaxgen.models import realnvp
from jaxgen.nn import flows

LIKELIHOOD = 'exact'  # density of the dequantized input (+ D ln 256 by eval)
DATA = ('images', 'points')
_LOG_256 = math.log(256.0)


class Net(nn.Module):
  """The multi-scale Glow flow; fields are ``config.model``.

  ``Net(...)(x, labels)`` maps x [B, H, W, C] in [0, 1] (or points [B, D])
  to ``(eps [B, D], log|det deps/dx| [B])``; ``(eps, labels,
  inverse=True)`` maps back. ``init=True`` runs the actnorms'
  data-dependent initialisation (forward only).

  Attributes:
    image_shape: (H, W, C) of images, or (D,) of points.
    levels: L, the levels of the multi-scale architecture (one 2x2 squeeze
      each on images; 1 for points). H and W must divide by 2^L.
    steps_per_level: K, flow steps per level.
    hidden: channels (conv) or width (MLP) of the coupling nets.
    depth: hidden layers of the coupling MLPs (points only).
    num_classes: 0 for a standard Gaussian top prior, else the number of
      labels of the class-conditional top prior.
  """
  image_shape: Sequence[int] = (28, 28, 1)
  levels: int = 2
  steps_per_level: int = 8
  hidden: int = 256
  depth: int = 2
  num_classes: int = 0

  def setup(self):
    self.steps = [flows.FlowStep(self.hidden, self.depth, seed=i)
                  for i in range(self.levels * self.steps_per_level)]
    shapes = self.latent_shapes()
    self.split_priors = [flows.ZeroConv(2 * s[-1]) for s in shapes[:-1]]
    if self.num_classes:
      self.class_prior = nn.Embed(self.num_classes, 2 * math.prod(shapes[-1]),
                                  embedding_init=nn.initializers.zeros)

  def latent_shapes(self) -> tuple[tuple[int, ...], ...]:
    """Shapes of one example's factored-out latents, then the top one's."""
    shape, out = tuple(self.image_shape), []
    if len(shape) == 1:
      return (shape,)
    for level in range(self.levels):
      h, w, c = shape
      shape = (h // 2, w // 2, 4 * c)
      if level < self.levels - 1:
        shape = (h // 2, w // 2, 2 * c)
        out.append(shape)  # the factored-out half
    return tuple(out) + (shape,)

  def _top_prior(self, labels, b: int):
    """(mean, log_scale) of the top latent, [B, ...] or scalars 0."""
    if not self.num_classes:
      return 0.0, 0.0
    if labels is None:
      raise ValueError('a class-conditional Glow (num_classes > 0) needs '
                       'labels.')
    shape = (b,) + self.latent_shapes()[-1]
    mean, log_scale = jnp.split(self.class_prior(labels), 2, axis=-1)
    return mean.reshape(shape), log_scale.reshape(shape)

  def _level_steps(self, level: int):
    k = self.steps_per_level
    return self.steps[level * k:(level + 1) * k]

  def __call__(self, x: jax.Array, labels=None, inverse: bool = False,
               init: bool = False):
    if inverse:
      return self._inverse(x, labels)
    b = x.shape[0]
    points = len(self.image_shape) == 1
    logdet = jnp.zeros((b,), jnp.float32)
    h, eps = (x if points else x - 0.5), []
    for level in range(self.levels):
      if not points:
        h = flows.squeeze(h)
      for step in self._level_steps(level):
        h, ld = step(h, init=init)
        logdet += ld
      if level < self.levels - 1:
        h, z = flows.split_half(h)
        mean, log_scale = jnp.split(self.split_priors[level](h), 2, axis=-1)
        eps.append(((z - mean) * jnp.exp(-log_scale)).reshape(b, -1))
        logdet -= log_scale.reshape(b, -1).sum(-1)
    mean, log_scale = self._top_prior(labels, b)
    top = (h - mean) * jnp.exp(-jnp.asarray(log_scale))
    logdet -= jnp.broadcast_to(log_scale, h.shape).reshape(b, -1).sum(-1)
    eps.append(top.reshape(b, -1))
    return jnp.concatenate(eps, axis=-1), logdet

  def _inverse(self, eps: jax.Array, labels):
    b = eps.shape[0]
    points = len(self.image_shape) == 1
    shapes = self.latent_shapes()
    sizes = [math.prod(s) for s in shapes]
    parts = jnp.split(eps, list(itertools.accumulate(sizes[:-1])), axis=-1)
    mean, log_scale = self._top_prior(labels, b)
    log_scale = jnp.broadcast_to(log_scale, (b,) + shapes[-1])
    h = mean + jnp.exp(log_scale) * parts[-1].reshape((b,) + shapes[-1])
    logdet = log_scale.reshape(b, -1).sum(-1)
    for level in reversed(range(self.levels)):
      if level < self.levels - 1:
        mean, log_scale = jnp.split(self.split_priors[level](h), 2, axis=-1)
        z = mean + jnp.exp(log_scale) * parts[level].reshape(
            (b,) + shapes[level])
        logdet += log_scale.reshape(b, -1).sum(-1)
        h = flows.merge_half(h, z)
      for step in reversed(self._level_steps(level)):
        h, ld = step(h, inverse=True)
        logdet += ld
      if not points:
        h = flows.unsqueeze(h)
    return (h if points else h + 0.5), logdet


def _labels(batch, net: nn.Module):
  return batch['label'] if net.num_classes else None


def init(key: jax.Array, batch, *, net: nn.Module):
  """Initial parameters (actnorms at the identity, couplings' and priors'
  last convs at zero, 1x1 convs at random rotations)."""
  x = realnvp.inputs(batch)
  labels = jnp.zeros(x.shape[:1], jnp.int32) if net.num_classes else None
  return net.init(key, x, labels)['params']


def data_init(params, batch, key, *, net: nn.Module):
  """`params` with every actnorm set from the preprocessed `batch`
  (section 3.1): each actnorm's output on it has zero mean and unit
  variance per channel, the actnorms initialised in order, each seeing the
  output of the layers before it already initialised. `key` is unused."""
  del key
  _, sown = net.apply({'params': params}, realnvp.inputs(batch),
                      _labels(batch, net), init=True,
                      mutable=[flows.ACTNORM_INIT])
  return flows.actnorm_data_init(params, sown[flows.ACTNORM_INIT])


def forward(params, x: jax.Array, *, net: nn.Module, labels=None):
  """x [B, ...] -> (eps [B, D], log|det deps/dx| [B])."""
  return net.apply({'params': params}, x, labels)


def inverse(params, eps: jax.Array, *, net: nn.Module, labels=None):
  """eps [B, D] -> (x [B, ...], log|det dx/deps| [B])."""
  return net.apply({'params': params}, eps, labels, inverse=True)


def log_det(params, x: jax.Array, *, net: nn.Module, labels=None):
  """log|det deps/dx| [B] of the forward map at x [B, ...]."""
  return forward(params, x, net=net, labels=labels)[1]


def log_likelihood(params, batch, key, *, net: nn.Module) -> jax.Array:
  """Exact log p(y) [B] nats of the preprocessed batch: ``log N(eps; 0, I)
  + logdet`` (conditioned on ``batch['label']`` when class-conditional).
  `key` is unused."""
  del key
  eps, logdet = forward(params, realnvp.inputs(batch), net=net,
                        labels=_labels(batch, net))
  return flows.gaussian_log_prob(eps) + logdet


def loss_fn(params, batch, key, *, net: nn.Module, train: bool = True):
  """Maximum likelihood: the mean of -log p(y) over unmasked rows.

  Returns:
    (scalar nats per example, {'nll' [B], 'logdet' [B], and for images
    'bits_per_dim': (nll + D ln 256) / (D ln 2) [B]}).
  """
  del key, train
  x = realnvp.inputs(batch)
  eps, logdet = forward(params, x, net=net, labels=_labels(batch, net))
  nll = -(flows.gaussian_log_prob(eps) + logdet)
  metrics = {'nll': nll, 'logdet': logdet}
  if not realnvp.is_points(net):
    d = math.prod(x.shape[1:])
    metrics['bits_per_dim'] = (nll + d * _LOG_256) / (d * math.log(2.0))
  return steps.masked_mean(nll, batch.get('mask')), metrics


def sample(params, key: jax.Array, num: int, *, net: nn.Module,
           temperature: float = 1.0, labels=None):
  """eps ~ N(0, T^2 I) at temperature T, x = inverse(eps).

  Args:
    labels: int [num] classes in [0, num_classes) of a class-conditional
      model; None cycles through 0, 1, ..., num_classes - 1
      (`base.default_labels`). Ignored by an unconditional model.

  Returns uint8 [num, H, W, C] (``floor(256 x)``, clipped), or float32
  [num, D] points.

  Raises:
    ConfigError: labels of another shape, or (when known before tracing)
      not integers in [0, num_classes) (`base.default_labels`).
  """
  labels = base.default_labels(net.num_classes, num, labels)
  d = math.prod(net.image_shape)
  eps = flows.sample_prior(key, (num, d), 'gaussian', temperature)
  x, _ = inverse(params, eps, net=net, labels=labels)
  return x if realnvp.is_points(net) else realnvp.to_uint8(x)


def validate(config, dataset) -> None:
  """Raises `ConfigError` naming the field that does not fit Glow."""
  m = config.model
  realnvp.validate_flow_data(config, dataset)
  realnvp._check_int(m.levels, 'config.model.levels', 1)  # pylint: disable=protected-access
  realnvp._check_int(m.steps_per_level, 'config.model.steps_per_level', 1)  # pylint: disable=protected-access
  realnvp._check_int(m.get('num_classes', 0), 'config.model.num_classes', 0)  # pylint: disable=protected-access
  base.check_num_classes(m.get('num_classes', 0), dataset)
  if dataset.image_shape is None:
    if m.levels != 1:
      raise ConfigError(
          f'config.model.levels={m.levels}: points have no pixels to '
          'squeeze; set it to 1.')
    return
  h, w, _ = dataset.image_shape
  factor = 2 ** m.levels
  if h % factor or w % factor:
    raise ConfigError(
        f'config.model.levels={m.levels}: {m.levels} 2x2 squeezes need H and '
        f'W divisible by {factor}; the images are {h}x{w}.')
