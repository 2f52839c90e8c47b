r"""Multi-scale PixelCNN: a subsampled image, then the full image given it.

van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks",
ICML 2016, §3.3 (the multi-scale PixelRNN), with Gated PixelCNN stages (van
den Oord et al., NeurIPS 2016, `gated_pixelcnn`). Stage 2 is a conditional
super-resolution model in the manner of Dahl, Norouzi & Shlens, "Pixel
Recursive Super Resolution", ICCV 2017, with the low-resolution image a
sub-grid of the high-resolution one.

With factor f, the subsampled image is the sub-grid x_s = x[::f, ::f] (the
pixels whose row and column are multiples of f: 14x14 of a 28x28 image, 4x4
of an 8x8 one, for f = 2). The model is

    log p(x) = log p_1(x_s) + sum_{i not in the grid} log p_2(x_i | x_<i, x_s)

exactly: x_s is a function of x, so p(x) = p(x_s) p(x_rest | x_s), and
stage 2's conditionals of the pixels off the grid, in raster order, each
given x_s and the pixels before it, multiply to p(x_rest | x_s). Stage 2's
outputs at the grid pixels are not used (weight 0 in the loss): those
pixels are known.

- Stage 1: an unconditional Gated PixelCNN of x_s, (H / f, W / f, C).
- Stage 2: a Gated PixelCNN of x, (H, W, C), with a spatial conditioning map
  s = m(x_s) added in every gated layer (the location-dependent
  conditioning of eq. 5 of the Gated PixelCNN paper). m repeats x_s f times
  along both axes (nearest-neighbour upsampling), appends the one-hot
  position inside each f x f block (f * f channels: which pixel of its
  block a position is; the grid pixel is (0, 0)) and, with
  ``cond_features`` > 0, applies one 3x3 convolution and a ReLU. s depends
  on x_s alone, so stage 2 is causal in the pixels off the grid.

Sampling (`sample`): stage 1's sampler draws x_s, then stage 2's sampler
draws the other pixels in raster order with the grid pixels held fixed
(its observed positions), each one jitted loop of
`gated_pixelcnn.sample_canvas` (naive or cached). `super_resolve` is stage
2 alone: a sample of x given x_s.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import losses
from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.models import ar_sampling as ars
from jaxgen.models import gated_pixelcnn as gated
from jaxgen.nn import initializers as inits

LIKELIHOOD = 'exact'


def check_factor(image_shape: Sequence[int], factor: int,
                 field: str = 'config.model.factor') -> None:
  """Raises ConfigError unless `factor` >= 2 divides the image's H and W."""
  h, w = tuple(image_shape)[:2]
  if not isinstance(factor, int) or factor < 2:
    raise ConfigError(f'{field}={factor!r} must be an int >= 2.')
  if h % factor or w % factor:
    raise ConfigError(
        f'{field}={factor} must divide the image height and width '
        f'(config.model.image_shape={tuple(image_shape)}): the subsampled '
        'image is the sub-grid x[::factor, ::factor].')


def _low_net(image_shape, likelihood, factor, features, num_layers,
             input_kernel, kernel_size, output_features,
             use_skip) -> gated.Net:
  h, w, c = image_shape
  return gated.Net(image_shape=(h // factor, w // factor, c),
                   likelihood=likelihood, features=features,
                   num_layers=num_layers, input_kernel=input_kernel,
                   kernel_size=kernel_size,
                   output_features=tuple(output_features), use_skip=use_skip)


class Net(nn.Module):
  """The two stages; fields are ``config.model``.

  Attributes:
    image_shape: (H, W, C) of the full image; C = 1 or 3.
    likelihood: 'bernoulli' or 'categorical' (256 levels), both stages.
    factor: f; x_s = x[::f, ::f]. Must divide H and W.
    features, num_layers: stage 2's Gated PixelCNN (p, gated layers).
    low_features, low_layers: stage 1's.
    input_kernel, kernel_size, output_features, use_skip: both stages'
      (as `gated_pixelcnn.Net`).
    cond_features: > 0: the conditioning net's 3x3 convolution width; 0
      feeds the upsampled x_s and the block-position one-hot directly.
  """
  image_shape: Sequence[int] = (28, 28, 1)
  likelihood: str = 'bernoulli'
  factor: int = 2
  features: int = 64
  num_layers: int = 10
  low_features: int = 64
  low_layers: int = 10
  input_kernel: int = 7
  kernel_size: int = 3
  output_features: Sequence[int] = (128,)
  use_skip: bool = True
  cond_features: int = 32

  def setup(self):
    check_factor(self.image_shape, self.factor)
    self.low = low_net(self)
    self.high = high_net(self)
    if self.cond_features:
      self.cond_conv = inits.Conv(self.cond_features, (3, 3), padding='SAME')

  def cond_map(self, x_s: jax.Array) -> jax.Array:
    """s = m(x_s): [B, H/f, W/f, C] -> [B, H, W, cond_dim] (stage 2's
    conditioning; see the module docstring)."""
    f = self.factor
    up = jnp.repeat(jnp.repeat(x_s, f, axis=1), f, axis=2)
    pos = jax.nn.one_hot(block_positions(self.image_shape, f), f * f)
    pos = jnp.broadcast_to(pos, up.shape[:3] + pos.shape[-1:])
    s = jnp.concatenate([up, pos.astype(up.dtype)], axis=-1)
    return nn.relu(self.cond_conv(s)) if self.cond_features else s

  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """x [B, H, W, C] -> (stage 1's logits of x_s, stage 2's logits of x).

    Stage 2's logits at a pixel depend on x_s and on the pixels before it in
    raster order, nothing else (in particular on no later pixel off the
    grid).
    """
    x_s = subsample(x, net=self)
    return self.low(x_s), self.high(x, cond=self.cond_map(x_s))


def cond_dim(net: Net) -> int:
  """Channels of stage 2's conditioning map."""
  return net.cond_features or net.image_shape[-1] + net.factor ** 2


def low_net(net: Net) -> gated.Net:
  """Stage 1 as a standalone `gated_pixelcnn.Net` (its parameters are
  ``params['low']``)."""
  return _low_net(tuple(net.image_shape), net.likelihood, net.factor,
                  net.low_features, net.low_layers, net.input_kernel,
                  net.kernel_size, net.output_features, net.use_skip)


def high_net(net: Net) -> gated.Net:
  """Stage 2 as a standalone spatially conditional `gated_pixelcnn.Net`
  (its parameters are ``params['high']``)."""
  return gated.Net(image_shape=tuple(net.image_shape),
                   likelihood=net.likelihood, features=net.features,
                   num_layers=net.num_layers, input_kernel=net.input_kernel,
                   kernel_size=net.kernel_size,
                   output_features=tuple(net.output_features),
                   use_skip=net.use_skip, cond_dim=cond_dim(net),
                   cond_spatial=True)


def block_positions(image_shape, factor: int) -> jax.Array:
  """int [H, W]: (i % f) * f + (j % f), the position inside its f x f block
  (0: a grid pixel)."""
  h, w = tuple(image_shape)[:2]
  i = jnp.arange(h)[:, None] % factor
  j = jnp.arange(w)[None, :] % factor
  return i * factor + j


def grid_mask(image_shape, factor: int) -> jax.Array:
  """bool [H, W]: True at the sub-grid pixels x[::f, ::f]."""
  return block_positions(image_shape, factor) == 0


def subsample(x: jax.Array, *, net: Net) -> jax.Array:
  """x_s = x[:, ::f, ::f] of images [B, H, W, C] (any dtype)."""
  return x[:, ::net.factor, ::net.factor]


def validate(config, dataset) -> None:
  """Checks ``config.model`` against itself and the loaded dataset."""
  m = config.model
  ars.check_likelihood(m.likelihood)
  channels = m.image_shape[-1]
  if channels not in (1, 3):
    raise ConfigError(f'config.model.image_shape={tuple(m.image_shape)}: '
                      'the Gated PixelCNN stages model 1 or 3 channels.')
  check_factor(m.image_shape, m.factor)
  for name in ('features', 'low_features'):
    if m[name] <= 0 or m[name] % channels:
      raise ConfigError(f'config.model.{name}={m[name]} must be a positive '
                        f'multiple of {channels} (colour groups).')
  for name in ('num_layers', 'low_layers'):
    if m[name] < 1:
      raise ConfigError(f'config.model.{name}={m[name]} must be >= 1.')
  for name in ('input_kernel', 'kernel_size'):
    if m[name] < 1 or m[name] % 2 == 0:
      raise ConfigError(f'config.model.{name}={m[name]} must be odd and '
                        'positive.')
  ars.check_output_features(m.output_features, channels)
  if m.cond_features < 0:
    raise ConfigError(f'config.model.cond_features={m.cond_features} must be '
                      '>= 0.')
  ars.check_data_config(m.likelihood, config.data, dataset.pixel_levels)


def init(key: jax.Array, batch, *, net: Net) -> Any:
  """Initial parameters {'low', 'high'(, 'cond_conv')} for an example batch."""
  return net.init(key, batch['image'])['params']


def stage_log_probs(params, x: jax.Array, *,
                    net: Net) -> tuple[jax.Array, jax.Array]:
  """(log p_1(x_s), log p_2(x off the grid | x_s)) [B] each, in nats.

  Args:
    params: the Net's parameters.
    x: the model input [B, H, W, C] ({0, 1}, or pixel / 255).
    net: the Net.
  """
  low_logits, high_logits = net.apply({'params': params}, x)
  lp_low = ars.log_prob(net.likelihood, low_logits, subsample(x, net=net))
  off_grid = ~grid_mask(net.image_shape, net.factor)
  lp_high = ars.weighted_log_prob(net.likelihood, high_logits, x, off_grid)
  return lp_low, lp_high


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """Mean negative log-likelihood (nats per image) over unmasked rows.

  Args:
    params: the Net's parameters.
    batch: {'image': float [B, H, W, C] ({0, 1} or pixel / 255), optional
      'mask': bool [B]}.
    key: unused (deterministic model); part of the contract.
    net: the Net.
    train: unused (no dropout).

  Returns:
    (scalar loss, {'nll': [B] nats, 'bits_per_dim': [B] (over all H W C
    sub-pixels), 'nll_low': [B] nats of stage 1 (-log p_1(x_s)),
    'nll_high': [B] nats of stage 2 (-log p_2(x off the grid | x_s))}).
  """
  del key, train
  lp_low, lp_high = stage_log_probs(params, batch['image'], net=net)
  nll = -(lp_low + lp_high)
  metrics = {'nll': nll,
             'bits_per_dim': losses.nats_to_bits_per_dim(
                 nll, math.prod(net.image_shape)),
             'nll_low': -lp_low, 'nll_high': -lp_high}
  return steps.masked_mean(nll, batch.get('mask')), metrics


def log_likelihood(params, batch, key, *, net: Net) -> jax.Array:
  """Exact log p(x) [B] in nats (both stages; each is in `loss_fn`'s
  metrics)."""
  del key
  lp_low, lp_high = stage_log_probs(params, batch['image'], net=net)
  return lp_low + lp_high


@functools.partial(jax.jit, static_argnames=('net',))
def _cond_map(params, x_s, *, net: Net) -> jax.Array:
  return net.apply({'params': params}, x_s, method=Net.cond_map)


def _super_resolve(params, x_s: jax.Array, key, *, net: Net,
                   method: str) -> jax.Array:
  """Stage 2's sampler on encoded x_s [B, h, w, C]: the full canvas."""
  f = net.factor
  shape = (x_s.shape[0],) + tuple(net.image_shape)
  canvas = jnp.zeros(shape, jnp.float32).at[:, ::f, ::f].set(x_s)
  known = jnp.broadcast_to(grid_mask(net.image_shape, f)[..., None],
                           shape[1:])
  return gated.sample_canvas(params['high'], key, canvas, known,
                             net=high_net(net),
                             cond=_cond_map(params, x_s, net=net),
                             method=method)


def super_resolve(params, x_s, key, *, net: Net,
                  method: str = 'cached') -> jax.Array:
  """A sample of x given its sub-grid x_s (stage 2 alone).

  Args:
    params: the Net's parameters.
    x_s: uint8 [B, H / f, W / f, C] subsampled images (Bernoulli models
      read pixel >= 128 as 1), e.g. ``subsample(images, net=net)``.
    key: the sampling key (position p of stage 2 uses fold_in(key, p)).
    net: the Net.
    method: 'cached' or 'naive' (`gated_pixelcnn.sample`).

  Returns:
    uint8 [B, H, W, C] whose sub-grid is x_s (encoded and decoded: {0, 255}
    for a Bernoulli model) and whose other pixels are drawn in raster order
    from p_2(x_i | x_<i, x_s).
  """
  ars.check_method(method)
  x_s = jnp.asarray(x_s)
  h, w, c = net.image_shape
  want = (h // net.factor, w // net.factor, c)
  if x_s.dtype != jnp.uint8 or x_s.ndim != 4 or x_s.shape[1:] != want:
    raise ConfigError(f'x_s must be uint8 [B, {want[0]}, {want[1]}, '
                      f'{want[2]}] (the sub-grid of factor {net.factor}), '
                      f'got {x_s.dtype} {x_s.shape}.')
  x_s = ars.encode_images(net.likelihood, x_s)
  out = _super_resolve(params, x_s, key, net=net, method=method)
  return ars.decode_images(net.likelihood, out)


def sample(params, key, num: int, *, net: Net, method: str = 'cached'):
  """`num` images: x_s from stage 1, then x given x_s from stage 2.

  Returns uint8 [num, H, W, C]. `method` as for `gated_pixelcnn.sample`;
  stage 1 draws with ``split(key)[0]``, stage 2 with ``split(key)[1]``.
  """
  ars.check_method(method)
  k_low, k_high = jax.random.split(key)
  low = low_net(net)
  shape = (num,) + tuple(low.image_shape)
  x_s = gated.sample_canvas(params['low'], k_low,
                            jnp.zeros(shape, jnp.float32),
                            jnp.zeros(shape[1:], bool), net=low,
                            method=method)
  out = _super_resolve(params, x_s, k_high, net=net, method=method)
  return ars.decode_images(net.likelihood, out)
