r"""Invertible layers for normalizing flows, each with an exact log-determinant.

Every layer maps a batch one way or the other and returns the per-example
log-absolute-determinant of the Jacobian of the map it applied:

    layer(x)                -> (y, log|det dy/dx|  [B])
    layer(y, inverse=True)  -> (x, log|det dx/dy|  [B])  (= minus the forward's)

Flax modules take the ``inverse`` flag; the parameter-free maps are pure
functions with a forward and an inverse.

- `Coupling`, additive or affine (its ``affine`` field): NICE's
  additive coupling ``y_b = x_b + m(x_a)`` (Dinh, Krueger & Bengio, "NICE:
  Non-linear Independent Components Estimation", ICLR 2015 workshop, eq.
  4-6; unit Jacobian determinant) and RealNVP's affine coupling
  ``y_b = x_b * exp(s(x_a)) + t(x_a)`` (Dinh, Sohl-Dickstein & Bengio,
  "Density estimation using Real NVP", ICLR 2017, eq. 7-9; log-det
  ``sum s``). The scale is bounded, ``s = scale * tanh(s_raw)`` with a
  learned per-channel ``scale`` initialised to 1, and the coupling net's
  last layer is zero-initialised, so every coupling starts as the identity.
- Masks (RealNVP section 3.4): 'checkerboard' (on images, the pixels with
  ``(i + j) mod 2 == parity`` condition the others; on vectors, the entries
  with ``d mod 2 == parity``, NICE's odd/even partition) and 'channel' (the
  first half of the last axis conditions the second; swapped when
  ``parity == 1``).
- `Scaling`: NICE's diagonal scaling layer ``y = x * exp(s)`` (section 3.3),
  log-det ``sum s``.
- `squeeze` / `unsqueeze`: space-to-depth by 2x2 (RealNVP section 3.6),
  [B, H, W, C] -> [B, H/2, W/2, 4C] with output channel ``4 c + 2 di + dj``;
  a permutation, log-det 0.
- `split_half` / `merge_half`: the multi-scale factoring-out of half the
  channels (RealNVP section 3.6): the first half goes on, the second is
  factored out as latent variables.
- `logit_forward` / `logit_inverse`: the logit pre-processing
  ``y = logit(alpha + (1 - 2 alpha) x)`` of data in [0, 1] (RealNVP
  section 4.1), with its exact log-determinant
  ``sum_d [log(1 - 2 alpha) - log p_d - log(1 - p_d)]``,
  ``p = alpha + (1 - 2 alpha) x``, computed as
  ``log(1 - 2 alpha) + softplus(y) + softplus(-y)`` from the logit itself.
- Priors: `gaussian_log_prob`, `logistic_log_prob` (standard, factorised;
  summed over every axis but the first) and `sample_prior`.

Coupling nets: `ConvResNet` (3x3 conv to ``hidden`` channels, ``depth``
residual blocks of ReLU-conv-ReLU-conv, ReLU and a zero-initialised 3x3
conv out) for images and `CouplingMLP` (``depth`` ReLU layers of width
``hidden``, zero-initialised linear output) for vectors; a coupling picks
the conv net for [B, H, W, C] inputs and the MLP for [B, D] inputs.

Glow (Kingma & Dhariwal 2018), on images and vectors alike: `ActNorm`
(per-channel affine, data-dependent initialisation through the
`ACTNORM_INIT` collection and `actnorm_data_init`), `InvConv1x1` (the
invertible 1x1 convolution in LU form, constants from `rotation_lu`),
`GlowCoupling` (affine, scale ``sigmoid(h + 2)``, net `GlowNet`),
`FlowStep` (actnorm -> 1x1 conv -> coupling) and `ZeroConv` (the split
prior's zero-initialised conv).
"""

from __future__ import annotations

import math

import flax
import flax.linen as nn
import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.nn import conv as conv_lib
from jaxgen.nn import initializers as inits

MASKS = ('checkerboard', 'channel')
PRIORS = ('gaussian', 'logistic')
_LOG_2PI = math.log(2.0 * math.pi)


def _sum_per_example(x: jax.Array) -> jax.Array:
  return x.reshape(x.shape[0], -1).sum(-1)


# ------------------------------------------------------------------ priors
def gaussian_log_prob(z: jax.Array) -> jax.Array:
  """log N(z; 0, I) of z [B, ...], summed per example: [B] nats."""
  return _sum_per_example(-0.5 * (z * z + _LOG_2PI))


def logistic_log_prob(z: jax.Array) -> jax.Array:
  """Standard logistic log-density of z [B, ...] summed per example: [B].

  ``log p(z) = -softplus(z) - softplus(-z)`` (NICE section 3.4), stable for
  any z.
  """
  return _sum_per_example(-jax.nn.softplus(z) - jax.nn.softplus(-z))


def prior_log_prob(z: jax.Array, prior: str) -> jax.Array:
  """[B] log-density of z [B, ...] under the standard `prior` ('gaussian' or
  'logistic')."""
  if prior == 'gaussian':
    return gaussian_log_prob(z)
  if prior == 'logistic':
    return logistic_log_prob(z)
  raise ValueError(f'prior {prior!r} is not one of {PRIORS}.')


def sample_prior(key: jax.Array, shape, prior: str,
                 temperature: float = 1.0) -> jax.Array:
  """Draws z of `shape` from the standard `prior`, scaled by `temperature`.

  A temperature T < 1 draws from the prior with its scale multiplied by T
  (N(0, T^2 I), or a logistic of scale T): the usual reduced-temperature
  sampling of flows (Kingma & Dhariwal 2018, section 5).
  """
  if prior == 'gaussian':
    z = jax.random.normal(key, shape, jnp.float32)
  elif prior == 'logistic':
    z = jax.random.logistic(key, shape, jnp.float32)
  else:
    raise ValueError(f'prior {prior!r} is not one of {PRIORS}.')
  return temperature * z


# ------------------------------------------------------- parameter-free maps
def logit_forward(x: jax.Array, alpha: float) -> tuple[jax.Array, jax.Array]:
  """y = logit(alpha + (1 - 2 alpha) x) and its log-det (RealNVP 4.1).

  Args:
    x: [B, ...] data in [0, 1].
    alpha: in [0, 0.5); keeps the logit away from 0 and 1.

  Returns:
    (y [B, ...], log|det dy/dx| [B]): per dimension
    ``log(1 - 2 alpha) - log p - log(1 - p)`` with p = sigmoid(y), written
    as ``log(1 - 2 alpha) + softplus(y) + softplus(-y)``.
  """
  p = alpha + (1.0 - 2.0 * alpha) * x
  y = jnp.log(p) - jnp.log1p(-p)
  ld = math.log1p(-2.0 * alpha) + jax.nn.softplus(y) + jax.nn.softplus(-y)
  return y, _sum_per_example(ld)


def logit_inverse(y: jax.Array, alpha: float) -> tuple[jax.Array, jax.Array]:
  """x = (sigmoid(y) - alpha) / (1 - 2 alpha) and log|det dx/dy| [B]."""
  x = (jax.nn.sigmoid(y) - alpha) / (1.0 - 2.0 * alpha)
  ld = -(math.log1p(-2.0 * alpha) + jax.nn.softplus(y) + jax.nn.softplus(-y))
  return x, _sum_per_example(ld)


def squeeze(x: jax.Array) -> jax.Array:
  """Space-to-depth: [B, H, W, C] -> [B, H/2, W/2, 4C] (RealNVP 3.6).

  Output channel ``4 c + 2 di + dj`` holds input pixel (2i + di, 2j + dj)
  of channel c. A permutation: log-det 0.
  """
  b, h, w, c = x.shape
  x = x.reshape(b, h // 2, 2, w // 2, 2, c)
  x = x.transpose(0, 1, 3, 5, 2, 4)  # [B, H/2, W/2, C, di, dj]
  return x.reshape(b, h // 2, w // 2, 4 * c)


def unsqueeze(x: jax.Array) -> jax.Array:
  """Depth-to-space, `squeeze`'s inverse: [B, H, W, 4C] -> [B, 2H, 2W, C]."""
  b, h, w, c4 = x.shape
  c = c4 // 4
  x = x.reshape(b, h, w, c, 2, 2).transpose(0, 1, 4, 2, 5, 3)
  return x.reshape(b, 2 * h, 2 * w, c)


def split_half(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(kept, factored out): the first and second half of the last axis."""
  half = x.shape[-1] // 2
  return x[..., :half], x[..., half:]


def merge_half(kept: jax.Array, factored: jax.Array) -> jax.Array:
  """The inverse of `split_half`."""
  return jnp.concatenate([kept, factored], axis=-1)


def checkerboard(height: int, width: int, parity: int) -> np.ndarray:
  """float32 [H, W, 1]: 1 where (i + j) mod 2 == parity (the conditioning
  pixels), else 0."""
  i, j = np.meshgrid(np.arange(height), np.arange(width), indexing='ij')
  return ((i + j) % 2 == parity).astype(np.float32)[..., None]


def partition(size: int, mask: str,
              parity: int) -> tuple[np.ndarray, np.ndarray]:
  """(conditioning, transformed) indices of a last axis of `size` entries.

  'checkerboard': entries with d mod 2 == parity condition the others;
  'channel': the first half (parity 0) or the second half (parity 1) of the
  axis conditions the rest.
  """
  d = np.arange(size)
  if mask == 'checkerboard':
    cond = d % 2 == parity
  elif mask == 'channel':
    cond = (d < size // 2) if parity == 0 else (d >= size // 2)
  else:
    raise ValueError(f'mask {mask!r} is not one of {MASKS}.')
  return d[cond], d[~cond]


# ------------------------------------------------------------ coupling nets
class ConvResNet(nn.Module):
  """3x3 conv to `hidden`, `depth` residual blocks, ReLU, 3x3 conv out.

  Each block is ReLU -> 3x3 conv -> ReLU -> 3x3 conv, added to its input.
  The output conv is zero-initialised (weights and bias).
  """
  features: int
  hidden: int = 64
  depth: int = 2

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = conv_lib.Conv(self.hidden, (3, 3), name='conv_in')(x)
    for i in range(self.depth):
      r = conv_lib.Conv(self.hidden, (3, 3),
                        name=f'block{i}_conv0')(nn.relu(h))
      r = conv_lib.Conv(self.hidden, (3, 3),
                        name=f'block{i}_conv1')(nn.relu(r))
      h = h + r
    return conv_lib.Conv(self.features, (3, 3),
                         kernel_init=nn.initializers.zeros,
                         bias_init=nn.initializers.zeros,
                         name='conv_out')(nn.relu(h))


class CouplingMLP(nn.Module):
  """`depth` ReLU layers of width `hidden`, then a zero-initialised linear
  output of `features`."""
  features: int
  hidden: int = 64
  depth: int = 2

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i in range(self.depth):
      x = nn.relu(inits.Dense(self.hidden, name=f'dense_{i}')(x))
    return nn.Dense(self.features, kernel_init=nn.initializers.zeros,
                    bias_init=nn.initializers.zeros, name='dense_out')(x)


# ------------------------------------------------------------------ layers
class Coupling(nn.Module):
  """Additive (NICE) or affine (RealNVP) coupling layer.

  With x split by the mask into a conditioning part x_a (left unchanged)
  and a transformed part x_b:

    additive (NICE eq. 4-6):   y_b = x_b + t(x_a),            log-det 0;
    affine (RealNVP eq. 7-9):  y_b = x_b * exp(s(x_a)) + t(x_a),
                               s = scale * tanh(s_raw(x_a)),  log-det sum s.

  On images [B, H, W, C] the 'checkerboard' mask multiplies the input by
  the binary mask b (`checkerboard`) and the conv net sees ``x * b``, whose
  outputs are kept on the pixels where b is 0; the 'channel' mask (and any
  mask on vectors [B, D]) splits the last axis (`partition`) and the net
  sees x_a alone. ``scale`` has one entry per transformed channel (C for
  the checkerboard on images, len(x_b) otherwise), initialised to 1.

  Attributes:
    mask: 'checkerboard' or 'channel'.
    parity: 0 or 1, which half conditions.
    affine: True for RealNVP's affine coupling, False for NICE's additive.
    hidden: conv channels or MLP width of the coupling net.
    depth: residual blocks (conv) or hidden layers (MLP).
  """
  mask: str = 'checkerboard'
  parity: int = 0
  affine: bool = True
  hidden: int = 64
  depth: int = 2

  def _net(self, features: int, x: jax.Array) -> jax.Array:
    cls = ConvResNet if x.ndim == 4 else CouplingMLP
    return cls(features, self.hidden, self.depth, name='net')(x)

  def _shift_and_log_scale(self, cond: jax.Array, channels: int):
    out = self._net((2 if self.affine else 1) * channels, cond)
    if not self.affine:
      return out, None
    s_raw, t = jnp.split(out, 2, axis=-1)
    scale = self.param('scale', nn.initializers.ones, (channels,))
    return t, scale * jnp.tanh(s_raw)

  @nn.compact
  def __call__(self, x: jax.Array, inverse: bool = False):
    """x [B, H, W, C] or [B, D] -> (y, log-det [B]); see the class docstring."""
    if x.ndim == 4 and self.mask == 'checkerboard':
      b = jnp.asarray(checkerboard(x.shape[1], x.shape[2], self.parity))
      t, s = self._shift_and_log_scale(x * b, x.shape[-1])
      t = t * (1.0 - b)
      s = None if s is None else s * (1.0 - b)
      return _elementwise(x, t, s, inverse)
    cond_idx, moved_idx = partition(x.shape[-1], self.mask, self.parity)
    x_a, x_b = x[..., cond_idx], x[..., moved_idx]
    t, s = self._shift_and_log_scale(x_a, len(moved_idx))
    y_b, logdet = _elementwise(x_b, t, s, inverse)
    order = np.argsort(np.concatenate([cond_idx, moved_idx]))
    return jnp.concatenate([x_a, y_b], axis=-1)[..., order], logdet


def _elementwise(x, t, s, inverse):
  """y = x * exp(s) + t (or its inverse) and the log-det [B]; s None: 0."""
  if s is None:
    return (x - t if inverse else x + t), jnp.zeros(x.shape[:1], x.dtype)
  if inverse:
    return (x - t) * jnp.exp(-s), -_sum_per_example(s)
  return x * jnp.exp(s) + t, _sum_per_example(s)


class Scaling(nn.Module):
  """NICE's diagonal scaling y = x * exp(s) (section 3.3), s initialised 0.

  ``s`` has the shape of one example; log-det ``sum s``.
  """

  @nn.compact
  def __call__(self, x: jax.Array, inverse: bool = False):
    s = self.param('log_scale', nn.initializers.zeros, x.shape[1:])
    ld = jnp.broadcast_to(s.sum(), x.shape[:1])
    if inverse:
      return x * jnp.exp(-s), -ld
    return x * jnp.exp(s), ld


# --------------------------------------------------------------- Glow layers
# Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1
# Convolutions", NeurIPS 2018. Each layer works on images [B, H, W, C] and
# on vectors [B, D] (one "pixel" of D channels).
ACTNORM_INIT = 'actnorm_init'  # the collection data-dependent init sows into


def _pixels(x: jax.Array) -> int:
  """Spatial positions per example: H * W for [B, H, W, C], 1 for [B, D]."""
  return math.prod(x.shape[1:-1])


class ActNorm(nn.Module):
  """Activation normalisation (Glow section 3.1, Table 1 row 1).

  ``y = (x + bias) * exp(log_scale)`` per channel, log-det
  ``H * W * sum(log_scale)``. The scale is kept as its log (positive, no
  division on inverse). Parameters start at 0 (the identity) and are set
  from data once before training: called with ``init=True`` the layer
  computes ``bias = -mean``, ``log_scale = -log(std)`` per channel from its
  input batch (so its output there has zero mean and unit variance per
  channel), uses them, and sows them into the `ACTNORM_INIT` collection;
  `actnorm_data_init` writes them into the parameters.

  Attributes:
    eps: added to the variance in the data-dependent initialisation.
  """
  eps: float = 1e-6

  @nn.compact
  def __call__(self, x: jax.Array, inverse: bool = False, init: bool = False):
    c = x.shape[-1]
    bias = self.param('bias', nn.initializers.zeros, (c,))
    log_scale = self.param('log_scale', nn.initializers.zeros, (c,))
    if init:
      axes = tuple(range(x.ndim - 1))
      mean = x.mean(axes)
      var = jnp.square(x - mean).mean(axes)
      bias, log_scale = -mean, -0.5 * jnp.log(var + self.eps)
      self.sow(ACTNORM_INIT, 'bias', bias)
      self.sow(ACTNORM_INIT, 'log_scale', log_scale)
    ld = jnp.broadcast_to(_pixels(x) * log_scale.sum(), x.shape[:1])
    if inverse:
      return x * jnp.exp(-log_scale) - bias, -ld
    return (x + bias) * jnp.exp(log_scale), ld


def actnorm_data_init(params, sown):
  """`params` with every ActNorm's bias and log-scale replaced by the values
  it sowed (the `ACTNORM_INIT` collection of an ``init=True`` apply)."""
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params))
  for path, value in flax.traverse_util.flatten_dict(
      flax.core.unfreeze(sown)).items():
    assert path in flat, path
    flat[path] = value[0]  # sow keeps a tuple of the values sown
  return flax.traverse_util.unflatten_dict(flat)


def rotation_lu(channels: int, seed: int):
  """(P, L, U, sign(s), log|s|) of a random rotation W0 = P L (U + diag(s)),
  float32 NumPy: W0 is the QR rotation of a Gaussian matrix drawn with
  ``numpy.random.default_rng(seed)``; L has a unit diagonal, U a zero one."""
  from scipy import linalg  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  w0, _ = np.linalg.qr(rng.standard_normal((channels, channels)))
  p, lower, upper = linalg.lu(w0)
  s = np.diag(upper)
  return (p.astype(np.float32), np.tril(lower, -1).astype(np.float32),
          np.triu(upper, 1).astype(np.float32),
          np.sign(s).astype(np.float32), np.log(np.abs(s)).astype(np.float32))


class InvConv1x1(nn.Module):
  """Invertible 1x1 convolution in LU form (Glow section 3.2, eq. 9-10).

  ``W = P L (U + diag(sign(s) * exp(log|s|)))``, applied at every pixel:
  ``y[..., i] = sum_j W[i, j] x[..., j]``; log-det ``H * W * sum log|s|``
  (the paper's ``sum log|s|`` per pixel). P (a permutation) and sign(s)
  are constants of the layer, not parameters: they come with the initial
  rotation W0 from `rotation_lu` with the layer's `seed`, so no update can
  move them. The parameters are the strictly lower part of L, the strictly
  upper part of U and log|s| (``lower``, ``upper``, ``log_s``), initialised
  from W0's LU factors; only their triangles are used.

  Attributes:
    seed: NumPy seed of the initial rotation (one per layer, so layers
      start with different rotations).
  """
  seed: int = 0

  def weight(self, c: int) -> tuple[jax.Array, jax.Array]:
    """(W [C, C], log|s| [C]) assembled from the factors."""
    p, l0, u0, sign, logs0 = rotation_lu(c, self.seed)
    lower = self.param('lower', lambda _: jnp.asarray(l0))
    upper = self.param('upper', lambda _: jnp.asarray(u0))
    log_s = self.param('log_s', lambda _: jnp.asarray(logs0))
    l_mat = jnp.tril(lower, -1) + jnp.eye(c)
    u_mat = jnp.triu(upper, 1) + jnp.diag(sign * jnp.exp(log_s))
    return jnp.asarray(p) @ l_mat @ u_mat, log_s

  @nn.compact
  def __call__(self, x: jax.Array, inverse: bool = False):
    c = x.shape[-1]
    w, log_s = self.weight(c)
    ld = jnp.broadcast_to(_pixels(x) * log_s.sum(), x.shape[:1])
    if inverse:
      return x @ jnp.linalg.inv(w).T, -ld
    return x @ w.T, ld


class GlowNet(nn.Module):
  """Glow's coupling network NN() (section 3.3): 3x3 conv to `hidden`,
  ReLU, 1x1 conv to `hidden`, ReLU, zero-initialised 3x3 conv out (the
  reference's inner actnorms are left out)."""
  features: int
  hidden: int = 512

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = nn.relu(conv_lib.Conv(self.hidden, (3, 3), name='conv_in')(x))
    h = nn.relu(conv_lib.Conv(self.hidden, (1, 1), name='conv_mid')(h))
    return conv_lib.Conv(self.features, (3, 3),
                         kernel_init=nn.initializers.zeros,
                         bias_init=nn.initializers.zeros, name='conv_out')(h)


class GlowCoupling(nn.Module):
  """Glow's affine coupling (section 3.3, Table 1 row 3).

  ``x_a, x_b = split(x)`` (channels: the first C//2 condition),
  ``(t, r) = NN(x_a)`` (interleaved output channels), scale
  ``s = sigmoid(r + 2)`` and ``y_b = (x_b + t) * s``; log-det
  ``sum log s``, computed as ``log_sigmoid(r + 2)``. The paper writes
  ``s = exp(log s)``; the sigmoid with its +2 offset is the reference
  implementation's choice (openai/glow ``model.py``): bounded in (0, 1),
  so a coupling can only contract, and ~0.88 at the zero-initialised start.
  NN is `GlowNet` on images and `CouplingMLP` on vectors.

  Attributes:
    hidden: channels (conv) or width (MLP) of NN.
    depth: hidden layers of the MLP (vectors only).
  """
  hidden: int = 512
  depth: int = 2

  @nn.compact
  def __call__(self, x: jax.Array, inverse: bool = False):
    x_a, x_b = x[..., :x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    feats = 2 * x_b.shape[-1]
    if x.ndim == 4:
      h = GlowNet(feats, self.hidden, name='net')(x_a)
    else:
      h = CouplingMLP(feats, self.hidden, self.depth, name='net')(x_a)
    t, r = h[..., 0::2], h[..., 1::2]
    log_s = jax.nn.log_sigmoid(r + 2.0)
    ld = _sum_per_example(log_s)
    if inverse:
      return jnp.concatenate([x_a, x_b * jnp.exp(-log_s) - t], -1), -ld
    return jnp.concatenate([x_a, (x_b + t) * jnp.exp(log_s)], -1), ld


class FlowStep(nn.Module):
  """One step of flow (Glow section 3, Figure 2a): actnorm -> invertible
  1x1 conv -> affine coupling; the inverse runs them in reverse.

  Attributes:
    hidden: width of the coupling's NN.
    depth: MLP hidden layers of the coupling (vectors only).
    seed: seed of the 1x1 conv's initial rotation.
  """
  hidden: int = 512
  depth: int = 2
  seed: int = 0

  @nn.compact
  def __call__(self, x: jax.Array, inverse: bool = False, init: bool = False):
    actnorm = ActNorm(name='actnorm')
    conv = InvConv1x1(seed=self.seed, name='invconv')
    coupling = GlowCoupling(self.hidden, self.depth, name='coupling')
    if inverse:
      x, ld2 = coupling(x, inverse=True)
      x, ld1 = conv(x, inverse=True)
      x, ld0 = actnorm(x, inverse=True)
    else:
      x, ld0 = actnorm(x, init=init)
      x, ld1 = conv(x)
      x, ld2 = coupling(x)
    return x, ld0 + ld1 + ld2


class ZeroConv(nn.Module):
  """A zero-initialised 3x3 conv (Glow's Conv2DZeros, without its log-scale
  factor): the split prior's (mean, log-scale) start at (0, 0)."""
  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return conv_lib.Conv(self.features, (3, 3),
                         kernel_init=nn.initializers.zeros,
                         bias_init=nn.initializers.zeros, name='conv')(x)
