r"""Deep Image Prior: an untrained network fitted to one corrupted image.

D. Ulyanov, A. Vedaldi and V. Lempitsky, "Deep Image Prior", CVPR 2018.
A convolutional encoder-decoder f_theta maps a fixed random input z (the
image's size, ``input_channels`` channels, uniform in [0, 0.1]) to an
image; theta is fitted by Adam to the corrupted image x0 alone,

    min_theta  sum_p m_p (f_theta(z)_p - x0_p)^2 / sum_p m_p,

with m = 1 on every pixel for denoising and m = 0 on the missing pixels for
inpainting. The network's structure fits natural images much sooner than
noise, so along the way the output first approaches the clean image and
later reproduces the noise: the point of the method is to stop early, and
`fit` records the PSNR against the clean image (when given) along the
iterations to show it. As in the paper's denoising runs, z is perturbed
by fresh Gaussian noise of standard deviation ``input_noise`` at every
step (0 turns this off); the returned image is f_theta(z) without it.

The network (`SkipNet`) is the paper's "skip" hourglass, scaled down: per
level a 3x3 stride-2 convolution and a 3x3 convolution, a 1x1 convolution
to ``skip_channels`` channels taken before the level, and on the way up a
bilinear enlargement to the skip's size, concatenation with it, a 3x3 and
a 1x1 convolution; every convolution is followed by normalisation of each
channel over the image (the paper's batch normalisation, for a batch of
one image) and LeakyReLU 0.2; a 1x1 convolution and a sigmoid give the
image. Without the normalisation, Adam at the paper's learning rate 0.01
drives the sigmoid into saturation within a few dozen steps.

Pixels are floats in [0, 1] (uint8 images are divided by 255). `fit` runs
one jitted chunk of ``log_every`` Adam steps (a `lax.scan`) per point of
the curve.
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgen.errors import ConfigError
from jaxgen.errors import DataError
from jaxgen.nn import initializers as inits
from jaxgen.nn import norm as norm_lib


class SkipNet(nn.Module):
  """The encoder-decoder with skip connections; [B, H, W, C_in] -> [B, H, W,
  out_channels] in (0, 1)."""
  out_channels: int
  channels: Sequence[int] = (16, 32, 64)
  skip_channels: int = 4

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    def act(x, name):
      # Each channel normalised over the image (batch normalisation of one
      # image, as in the paper), then LeakyReLU.
      x = norm_lib.GroupNorm(num_groups=None, group_size=1, name=name)(x)
      return nn.leaky_relu(x, negative_slope=0.2)

    x, skips = z, []
    for i, c in enumerate(self.channels):
      skips.append(act(inits.Conv(self.skip_channels, (1, 1),
                                  name=f'skip_{i}')(x), f'skip_{i}_norm'))
      x = act(inits.Conv(c, (3, 3), strides=2, name=f'down_{i}a')(x),
              f'down_{i}a_norm')
      x = act(inits.Conv(c, (3, 3), name=f'down_{i}b')(x), f'down_{i}b_norm')
    for i in reversed(range(len(self.channels))):
      s = skips[i]
      x = jax.image.resize(x, x.shape[:1] + s.shape[1:3] + x.shape[3:],
                           'bilinear')
      x = jnp.concatenate([x, s], axis=-1)
      x = act(inits.Conv(self.channels[i], (3, 3), name=f'up_{i}a')(x),
              f'up_{i}a_norm')
      x = act(inits.Conv(self.channels[i], (1, 1), name=f'up_{i}b')(x),
              f'up_{i}b_norm')
    return nn.sigmoid(inits.Conv(self.out_channels, (1, 1), name='out')(x))


def psnr(x, y, mask=None) -> float:
  """Peak signal-to-noise ratio (dB) of images in [0, 1]: 10 log10(1 / MSE),
  over the pixels where ``mask`` is False when it is given."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  err = np.square(x - y).reshape(x.shape[0], x.shape[1], -1).mean(-1)
  mse = err.mean() if mask is None else err[~np.asarray(mask)].mean()
  return float(10 * np.log10(1.0 / mse))


def _as_unit_image(x, name: str) -> np.ndarray:
  x = np.asarray(x)
  if x.ndim not in (2, 3) or x.size == 0:
    raise DataError(f'{name}: expected an image [H, W] or [H, W, C], got '
                    f'shape {x.shape}.')
  if x.dtype == np.uint8:
    x = x.astype(np.float32) / 255
  elif not np.issubdtype(x.dtype, np.floating):
    raise DataError(f'{name}: expected uint8 or float pixels, got {x.dtype}.')
  if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
    raise DataError(f'{name}: float pixels must lie in [0, 1], got '
                    f'[{x.min()}, {x.max()}].')
  x = x.astype(np.float32)
  return x if x.ndim == 3 else x[..., None]


@functools.partial(jax.jit, static_argnames=('net',))
def _init(key, z, *, net):
  return net.init(key, z)


@functools.partial(jax.jit, static_argnames=('net', 'lr', 'num_steps',
                                             'input_noise'))
def _chunk(params, opt_state, start, z, target, weight, clean, noise_key, *,
           net, lr, num_steps, input_noise):
  """``num_steps`` Adam steps from step ``start``; returns the new state, the
  output image and its squared errors (to the target on the known pixels,
  to the clean image)."""

  def loss_fn(p, key):
    zn = z + input_noise * jax.random.normal(key, z.shape) if input_noise else z
    out = net.apply(p, zn)[0]
    return jnp.sum(weight * jnp.square(out - target)) / (
        jnp.sum(weight) * target.shape[-1])

  tx = optax.adam(lr)

  def step(carry, i):
    p, o = carry
    loss, grads = jax.value_and_grad(loss_fn)(
        p, jax.random.fold_in(noise_key, start + i))
    updates, o = tx.update(grads, o, p)
    return (optax.apply_updates(p, updates), o), loss

  (params, opt_state), _ = jax.lax.scan(step, (params, opt_state),
                                        jnp.arange(num_steps))
  out = net.apply(params, z)[0]
  fit_mse = jnp.sum(weight * jnp.square(out - target)) / (
      jnp.sum(weight) * target.shape[-1])
  return params, opt_state, out, fit_mse, jnp.mean(jnp.square(out - clean))


def fit(key: jax.Array, corrupted, *, mask=None, num_steps: int = 1000,
        lr: float = 0.01, clean=None, log_every: int = 50,
        channels: Sequence[int] = (16, 32, 64), skip_channels: int = 4,
        input_channels: int = 32, input_noise: float = 1 / 30
        ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  """Fits a `SkipNet` to one corrupted image (denoising or inpainting).

  Args:
    key: PRNG key of the parameters, the input z and its perturbations.
    corrupted: the image x0, [H, W] or [H, W, C]; uint8 or float in [0, 1].
    mask: optional bool [H, W], True on the missing pixels (inpainting: the
      loss ignores them); None: every pixel counts (denoising).
    num_steps: Adam steps, a multiple of ``log_every``.
    lr: Adam's learning rate.
    clean: optional clean image of `corrupted`'s shape, for the PSNR curve.
    log_every: steps between points of the curve (one compiled chunk).
    channels: the network's channels per level (each level halves the size).
    skip_channels: channels of each skip connection.
    input_channels: channels of z.
    input_noise: standard deviation of the noise added to z at each step.

  Returns:
    (image, curve): the output f(z) after `num_steps` steps, float32 in
    [0, 1] of `corrupted`'s shape; and a dict of NumPy arrays, one entry per
    chunk: 'step' (steps taken), 'fit_psnr' (dB against `corrupted` on the
    known pixels) and, when `clean` is given, 'psnr' (dB against `clean`,
    all pixels).

  Raises:
    DataError: an image or the mask has the wrong shape or values.
    ConfigError: a numeric argument is out of range (named).
  """
  target = _as_unit_image(corrupted, 'corrupted')
  h, w, c = target.shape
  if mask is None:
    mask = np.zeros((h, w), bool)
  mask = np.asarray(mask)
  if mask.shape != (h, w) or mask.dtype != bool:
    raise DataError(f'mask: expected bool {(h, w)} like corrupted, got '
                    f'{mask.dtype} {mask.shape}.')
  if mask.all():
    raise DataError('mask: every pixel is missing; some must be known.')
  if clean is not None:
    clean = _as_unit_image(clean, 'clean')
    if clean.shape != target.shape:
      raise DataError(f'clean: expected the shape of corrupted '
                      f'{np.shape(corrupted)}, got {np.shape(clean)}.')
  for name, value in (('num_steps', num_steps), ('log_every', log_every),
                      ('skip_channels', skip_channels),
                      ('input_channels', input_channels)):
    if not isinstance(value, (int, np.integer)) or value < 1:
      raise ConfigError(f'{name}: expected a positive integer, got '
                        f'{value!r}.')
  if num_steps % log_every:
    raise ConfigError(f'num_steps={num_steps} is not a multiple of '
                      f'log_every={log_every}.')
  if not lr > 0:
    raise ConfigError(f'lr: expected > 0, got {lr!r}.')
  if not input_noise >= 0:
    raise ConfigError(f'input_noise: expected >= 0, got {input_noise!r}.')
  if not channels or any(int(ch) < 1 for ch in channels):
    raise ConfigError(f'channels: expected positive integers, got '
                      f'{channels!r}.')

  init_key, z_key, noise_key = jax.random.split(key, 3)
  net = SkipNet(out_channels=c, channels=tuple(int(ch) for ch in channels),
                skip_channels=skip_channels)
  z = jax.random.uniform(z_key, (1, h, w, input_channels)) * 0.1
  params = _init(init_key, z, net=net)
  opt_state = optax.adam(lr).init(params)
  weight = jnp.asarray(~mask, jnp.float32)[..., None]
  clean_arr = jnp.asarray(target if clean is None else clean)
  steps, fit_psnr, clean_psnr = [], [], []
  out = None
  for i in range(num_steps // log_every):
    params, opt_state, out, fit_mse, clean_mse = _chunk(
        params, opt_state, jnp.int32(i * log_every), z, jnp.asarray(target),
        weight, clean_arr, noise_key, net=net, lr=float(lr),
        num_steps=log_every, input_noise=float(input_noise))
    steps.append((i + 1) * log_every)
    fit_psnr.append(-10 * np.log10(float(fit_mse)))
    clean_psnr.append(-10 * np.log10(float(clean_mse)))
  curve = {'step': np.array(steps), 'fit_psnr': np.array(fit_psnr)}
  if clean is not None:
    curve['psnr'] = np.array(clean_psnr)
  image = np.asarray(out)
  return (image if np.ndim(corrupted) == 3 else image[..., 0]), curve
