"""PixelCNN++: a discretized logistic mixture over whole pixels.

Salimans, Karpathy, Chen, Kingma, "PixelCNN++: Improving the PixelCNN with
Discretized Logistic Mixture Likelihood and Other Modifications", ICLR 2017;
the network follows their reference code (openai/pixel-cnn,
``pixel_cnn_pp/model.py``).

Model. Pixels are visited in raster order and each pixel x_p (all C channels
at once) is conditioned on the pixels before it:

    log p(x) = sum_p log p(x_p | x_{<p}).

Given the context, p(x_p | x_{<p}) is a mixture of K components that share
one indicator across the channels; within component k the channels are
discretized logistics (`jaxgen.losses.discretized_logistic_log_prob`, with
the exact edge cases at levels 0 and 255) whose means depend linearly on the
earlier channels of the same pixel (the paper's eq. 3, for C = 3):

    mu_R = m_R,   mu_G = m_G + c_0 x_R,   mu_B = m_B + c_1 x_R + c_2 x_G,

with c = tanh(raw coefficients). For general C: mu_c = m_c + sum_{c' < c}
c_{c,c'} x_{c'}. Because only the *observed* earlier channels enter, this is
a normalised distribution over the 256^C values of a pixel.

Network (Fig. 2 of the paper). Two streams without blind spot: u (down-
shifted convolutions: sees the rows above) and ul (down-right-shifted:
sees the rows above and the pixels to the left), built from gated resnet
blocks with concat-ELU (`jaxgen.nn.shifted.GatedResnet`). An up pass of
``num_scales`` resolutions (down-sampling by strided shifted convolutions)
is followed by a down pass (up-sampling by shifted transposed
convolutions) that takes a shortcut from every block of the up pass, as a
U-Net. Dropout (keyed, train only) sits inside every block; an optional
class label enters every block through a learned projection. A final 1x1
layer maps ELU(ul) to the mixture parameters.

Data: 8-bit images scaled to [-1, 1] (``config.data.value_range=
'symmetric'``, no binarization or dequantization); pixel value v maps to
x = v / 127.5 - 1 and back exactly by v = round((x + 1) * 127.5). The
likelihood is exact and discrete; bits/dim is its unit.

Not in this implementation: weight normalization with data-dependent
initialisation (plain convolutions with a small init for the residual
branch are used instead); EMA of the parameters is the trainer's
(``config.train.ema_decay``, ``config.eval.use_ema``).

The family contract (see `jaxgen.models`): `Net`, `init`, `loss_fn`,
`LIKELIHOOD`, `log_likelihood`, `sample`, `validate`. Extra tools:
`mixture_params`, `adjusted_means`, `pixel_log_prob`, `sample_pixel`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import losses
from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.models import ar_sampling as ars
from jaxgen.models import base
from jaxgen.nn import initializers as inits
from jaxgen.nn import shifted

LIKELIHOOD = 'exact'
NUM_BINS = 256
LOG_SCALE_MIN = -7.0


def num_outputs(num_channels: int, num_mixtures: int) -> int:
  """Network outputs per pixel: K logits, C*K means, C*K log-scales and
  C(C-1)/2 * K channel coefficients (10 K for RGB, as in the paper)."""
  c, k = num_channels, num_mixtures
  return k * (1 + 2 * c + c * (c - 1) // 2)


class Net(nn.Module):
  """The PixelCNN++ network; fields are ``config.model``.

  Maps images x [B, H, W, C] in [-1, 1] (and labels [B] when conditional)
  to mixture parameters [B, H, W, `num_outputs`(C, K)], where the output at
  pixel (i, j) depends only on the pixels before (i, j) in raster order.

  Attributes:
    image_shape: (H, W, C); H and W divisible by 2^(num_scales - 1).
    num_filters: features of both streams (160 in the paper's CIFAR-10
      model).
    num_resnet: gated resnet blocks per resolution in the up pass (the
      down pass has one more at each lower resolution); 5 in the paper.
    num_scales: resolutions (3 in the paper: H, H/2, H/4).
    num_mixtures: logistic mixture components K (10 in the paper).
    dropout_rate: dropout inside every block when training (0.5 in the
      paper for CIFAR-10).
    num_classes: > 0 conditions every block on a one-hot label.
  """
  image_shape: Sequence[int] = (28, 28, 1)
  num_filters: int = 64
  num_resnet: int = 2
  num_scales: int = 3
  num_mixtures: int = 5
  dropout_rate: float = 0.5
  num_classes: int = 0

  @nn.compact
  def __call__(self, x: jax.Array, labels: jax.Array | None = None, *,
               train: bool = False) -> jax.Array:
    f = self.num_filters
    h = None
    if self.num_classes:
      h = jax.nn.one_hot(labels, self.num_classes, dtype=x.dtype)

    def block(shift, name):
      return shifted.GatedResnet(shift, self.dropout_rate, name=name)

    # A channel of ones tells the image from the zero padding of the shifts.
    x_pad = jnp.concatenate([x, jnp.ones_like(x[..., :1])], axis=-1)
    u = shifted.down_shift(
        shifted.DownShiftedConv2D(f, (2, 3), name='u_in')(x_pad))
    ul = (shifted.down_shift(
        shifted.DownShiftedConv2D(f, (1, 3), name='ul_in_above')(x_pad))
          + shifted.right_shift(
              shifted.DownRightShiftedConv2D(f, (2, 1),
                                             name='ul_in_left')(x_pad)))
    us, uls = [u], [ul]
    # Up pass.
    for s in range(self.num_scales):
      if s:
        u = shifted.DownShiftedConv2D(f, (2, 3), (2, 2), name=f'down_u_{s}')(u)
        ul = shifted.DownRightShiftedConv2D(f, (2, 2), (2, 2),
                                            name=f'down_ul_{s}')(ul)
        us.append(u)
        uls.append(ul)
      for r in range(self.num_resnet):
        u = block('down', f'up_u_{s}_{r}')(u, None, h, train=train)
        ul = block('down_right', f'up_ul_{s}_{r}')(ul, u, h, train=train)
        us.append(u)
        uls.append(ul)
    # Down pass, with a shortcut from every up-pass output.
    u, ul = us.pop(), uls.pop()
    for s in reversed(range(self.num_scales)):
      if s < self.num_scales - 1:
        u = shifted.DownShiftedConvTranspose2D(f, name=f'upsample_u_{s}')(u)
        ul = shifted.DownRightShiftedConvTranspose2D(
            f, name=f'upsample_ul_{s}')(ul)
      depth = self.num_resnet + (s < self.num_scales - 1)
      for r in range(depth):
        u = block('down', f'dn_u_{s}_{r}')(u, us.pop(), h, train=train)
        ul = block('down_right', f'dn_ul_{s}_{r}')(
            ul, jnp.concatenate([u, uls.pop()], axis=-1), h, train=train)
    assert not us and not uls
    out = num_outputs(self.image_shape[-1], self.num_mixtures)
    return inits.Dense(out, name='out')(jax.nn.elu(ul))


def mixture_params(out: jax.Array, num_channels: int, num_mixtures: int):
  """Splits the network output into the mixture's parameters.

  Args:
    out: [..., num_outputs(C, K)], laid out as [logits K | means C*K |
      log-scales C*K | raw coefficients C(C-1)/2 * K].
    num_channels: C.
    num_mixtures: K.

  Returns:
    (logits [..., K], means [..., C, K], log_scales [..., C, K] (unclamped;
    the likelihood clamps at -7), coeffs [..., C(C-1)/2, K] = tanh(raw)),
    the coefficient pairs ordered (1, 0), (2, 0), (2, 1), ...: for RGB
    c_0 (G <- R), c_1 (B <- R), c_2 (B <- G).
  """
  c, k = num_channels, num_mixtures
  batch = out.shape[:-1]
  logits = out[..., :k]
  means = out[..., k:k + c * k].reshape(batch + (c, k))
  log_scales = out[..., k + c * k:k + 2 * c * k].reshape(batch + (c, k))
  num_pairs = c * (c - 1) // 2
  coeffs = jnp.tanh(out[..., k + 2 * c * k:].reshape(batch + (num_pairs, k)))
  return logits, means, log_scales, coeffs


def adjusted_means(means: jax.Array, coeffs: jax.Array,
                   x: jax.Array) -> jax.Array:
  r"""Means after the linear dependence on earlier channels of the pixel.

  .. math:: \mu_{c,k} = m_{c,k} + \sum_{c' < c} a_{(c, c'), k}\, x_{c'}

  Args:
    means: [..., C, K]; coeffs: [..., C(C-1)/2, K]; x: [..., C].

  Returns:
    [..., C, K] (batch dimensions broadcast).
  """
  num_channels = means.shape[-2]
  event = means.shape[-2:]
  shape = jnp.broadcast_shapes(means.shape, coeffs.shape[:-2] + event,
                               x.shape[:-1] + event)
  rows, pair = [], 0
  for c in range(num_channels):
    m = means[..., c, :]
    for earlier in range(c):
      m = m + coeffs[..., pair, :] * x[..., earlier, None]
      pair += 1
    rows.append(jnp.broadcast_to(m, shape[:-2] + shape[-1:]))
  return jnp.stack(rows, axis=-2)


def pixel_log_prob(out: jax.Array, x: jax.Array, num_mixtures: int):
  """log p(x_p | context) per pixel, in nats.

  Args:
    out: network output [..., num_outputs(C, K)].
    x: pixels [..., C] on the 256 bin centres of [-1, 1].
    num_mixtures: K.

  Returns:
    [...] log-probabilities (each a log-mass over the 256^C pixel values).
  """
  logits, means, log_scales, coeffs = mixture_params(out, x.shape[-1],
                                                     num_mixtures)
  means = adjusted_means(means, coeffs, x)
  return losses.discretized_logistic_mixture_log_prob(
      x, logits, means, log_scales, num_bins=NUM_BINS,
      log_scale_min=LOG_SCALE_MIN)


def sample_pixel(key: jax.Array, out: jax.Array, num_channels: int,
                 num_mixtures: int) -> jax.Array:
  """An exact draw of whole pixels from the mixture: [..., C] bin centres.

  The component k ~ softmax(logits); then channel by channel, with the
  coefficients applied to the channels already drawn, y = mu + s * L with L
  a standard logistic draw, discretized to the level whose bin contains y
  (the end levels take the tails). This is the discretized distribution of
  `pixel_log_prob` exactly (the reference code feeds the unrounded y to the
  coefficients instead).

  Args:
    key: PRNG key.
    out: network output at the pixels [..., num_outputs(C, K)].
    num_channels: C.
    num_mixtures: K.
  """
  logits, means, log_scales, coeffs = mixture_params(out, num_channels,
                                                     num_mixtures)
  mix_key, logistic_key = jax.random.split(key)
  component = jax.random.categorical(mix_key, logits, axis=-1)  # [...]
  pick = lambda a: jnp.take_along_axis(a, component[..., None, None],
                                       axis=-1)[..., 0]
  means, log_scales, coeffs = pick(means), pick(log_scales), pick(coeffs)
  scales = jnp.exp(jnp.maximum(log_scales, LOG_SCALE_MIN))
  noise = jax.random.logistic(logistic_key, means.shape, means.dtype)
  half = (NUM_BINS - 1) / 2.0
  channels, pair = [], 0
  for c in range(num_channels):
    mu = means[..., c]
    for earlier in range(c):
      mu = mu + coeffs[..., pair] * channels[earlier]
      pair += 1
    y = mu + scales[..., c] * noise[..., c]
    level = jnp.round(jnp.clip((y + 1.0) * half, 0.0, NUM_BINS - 1.0))
    channels.append(level / half - 1.0)
  return jnp.stack(channels, axis=-1)


def validate(config, dataset) -> None:
  """Checks ``config.model`` against itself and the loaded dataset."""
  m = config.model
  for field in ('num_filters', 'num_resnet', 'num_scales', 'num_mixtures'):
    value = m[field]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ConfigError(f'config.model.{field}={value!r} must be an integer '
                        '>= 1.')
  if not 0.0 <= m.dropout_rate < 1.0:
    raise ConfigError(
        f'config.model.dropout_rate={m.dropout_rate} must lie in [0, 1).')
  h, w, _ = m.image_shape
  factor = 2 ** (m.num_scales - 1)
  if h % factor or w % factor:
    raise ConfigError(
        f'config.model.num_scales={m.num_scales} halves the image '
        f'{m.num_scales - 1} times: config.model.image_shape='
        f'{tuple(m.image_shape)} needs H and W divisible by {factor}.')
  base.check_num_classes(m.num_classes, dataset)
  d = config.data
  base.check_discrete_8bit(config, dataset, 'PixelCNN++',
                           'a discretized logistic mixture')
  if d.value_range != 'symmetric':
    raise ConfigError(
        "config.data.value_range must be 'symmetric' (pixel / 127.5 - 1, the "
        f'bin centres of [-1, 1]), got {d.value_range!r}.')


def _labels(net: Net, batch) -> jax.Array | None:
  return batch['label'] if net.num_classes else None


def init(key: jax.Array, batch, *, net: Net) -> Any:
  """Initial parameters for a (preprocessed) example batch."""
  return net.init({'params': key}, batch['image'], _labels(net, batch),
                  train=False)['params']


def _log_prob(params, batch, key, net: Net, train: bool) -> jax.Array:
  x = batch['image']
  rngs = {'dropout': key} if train else {}
  out = net.apply({'params': params}, x, _labels(net, batch), train=train,
                  rngs=rngs)
  return pixel_log_prob(out, x, net.num_mixtures).sum(axis=(1, 2))


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """Negative log-likelihood in nats per example (dropout when training).

  Args:
    params: the Net's parameters.
    batch: {'image': float [B, H, W, C] on the bin centres of [-1, 1],
      'label': int [B], optional 'mask': bool [B]}.
    key: PRNG key for dropout (used only when `train`).
    net: the Net.
    train: dropout on (keyed by `key`) or off.

  Returns:
    (mean NLL over unmasked examples, {'nll': [B] nats,
     'bits_per_dim': [B]}).
  """
  nll = -_log_prob(params, batch, key, net, train)
  num_dims = math.prod(net.image_shape)
  metrics = {'nll': nll,
             'bits_per_dim': losses.nats_to_bits_per_dim(nll, num_dims)}
  return steps.masked_mean(nll, batch.get('mask')), metrics


def log_likelihood(params, batch, key, *, net: Net) -> jax.Array:
  """Exact log p(x) in nats per example, [B] (no dropout; `key` unused)."""
  return _log_prob(params, batch, key, net, train=False)


def sample(params, key, num: int, *, net: Net, labels=None, observed=None,
           observed_mask=None) -> jax.Array:
  """`num` images by ancestral sampling, pixel by pixel: uint8 [num, H, W, C].

  Re-runs the network on the partial image for each of the H*W positions in
  raster order (a `lax.fori_loop`) and draws the whole pixel at that
  position with `sample_pixel`, keyed by ``fold_in(key, position)``. A
  conditional model takes `labels` int [num] (default 0, 1, ... cycling
  through the classes).

  Completion: `observed` uint8 [num, H, W, C] images and `observed_mask`
  bool [H, W]; the pixels where the mask is True are kept (the model draws
  whole pixels, so the mask is per pixel), the others drawn given them and
  everything before them in raster order.
  """
  h, w, c = net.image_shape
  labels = base.default_labels(net.num_classes, num, labels)
  width = num_outputs(c, net.num_mixtures)
  if observed_mask is not None and jnp.shape(observed_mask) != (h, w):
    raise ConfigError('PixelCNN++ draws whole pixels: observed_mask must '
                      f'have shape {(h, w)}, got {jnp.shape(observed_mask)}.')
  canvas, known = ars.start_canvas('categorical', net.image_shape, num,
                                   observed, observed_mask)
  known = known[..., 0]  # [H, W]
  # start_canvas encodes pixel / 255: the bin centres here are 2 v - 1.
  start = jnp.where(known[..., None], 2.0 * canvas - 1.0, 0.0)

  def step(t, x):
    i, j = t // w, t % w
    out = net.apply({'params': params}, x, labels, train=False)
    out = jax.lax.dynamic_slice(out, (0, i, j, 0), (num, 1, 1, width))
    pixel = sample_pixel(jax.random.fold_in(key, t), out, c,
                         net.num_mixtures)
    kept = jax.lax.dynamic_slice(x, (0, i, j, 0), (num, 1, 1, c))
    pixel = jnp.where(known[i, j], kept, pixel)
    return jax.lax.dynamic_update_slice(x, pixel, (0, i, j, 0))

  x = jax.lax.fori_loop(0, h * w, step, start)
  half = (NUM_BINS - 1) / 2.0
  return jnp.round((x + 1.0) * half).astype(jnp.uint8)


def complete(params, x, num_known: int, key, *, net: Net,
             labels=None) -> jax.Array:
  """Completes images whose first `num_known` pixels (raster order) are known.

  `sample` with the raster prefix observed: the prefix of x uint8
  [B, H, W, C] is kept exactly and each later pixel is drawn whole from the
  model's exact conditional given everything before it. `num_known` in
  [0, H * W]; `labels` as for `sample`. Returns uint8 [B, H, W, C].
  """
  mask = ars.raster_prefix_mask(net.image_shape, num_known)
  return sample(params, key, jnp.shape(x)[0], net=net, labels=labels,
                observed=x, observed_mask=mask)


def conditional_log_likelihood(params, batch, num_known: int, *,
                               net: Net) -> jax.Array:
  """Exact log p(suffix | prefix) [B] in nats: the pixels after the first
  `num_known` (raster order) given those (no dropout; batch as for
  `loss_fn`)."""
  weights = ~ars.raster_prefix_mask(net.image_shape, num_known)
  x = batch['image']
  out = net.apply({'params': params}, x, _labels(net, batch), train=False)
  lp = pixel_log_prob(out, x, net.num_mixtures)
  return (lp * weights.astype(lp.dtype)).sum(axis=(1, 2))
