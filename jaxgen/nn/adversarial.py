"""Generator and discriminator networks of the adversarial families.

- `DCGANGenerator` / `DCGANDiscriminator`: the architecture guidelines of
  Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep
  Convolutional Generative Adversarial Networks", ICLR 2016: strided
  (transposed) convolutions instead of pooling, batch norm in both nets
  (not on the generator's output nor the discriminator's input layer), no
  hidden dense layers, ReLU + Tanh in the generator, LeakyReLU(0.2) in the
  discriminator.
- `MLPGenerator` / `MLPDiscriminator`: dense nets for 2-D toy data (and
  small images), as in the toy experiments of Metz et al., "Unrolled
  Generative Adversarial Networks", ICLR 2017.
- `BEGANDecoder` / `BEGANEncoder`: the nets of Berthelot, Schumm & Metz,
  "BEGAN: Boundary Equilibrium Generative Adversarial Networks", 2017
  (Fig. 1): 3x3 convolutions with ELUs, nearest-neighbour upsampling in the
  decoder, strided subsampling in the encoder, no batch norm.

Conditioning (Mirza & Osindero, "Conditional Generative Adversarial Nets",
2014): ``cond`` is a one-hot [B, K] concatenated to the generator's input
and to the discriminator's input (as K constant feature maps for images).

Initialization: DCGAN's weights are N(0, 0.02^2) (Radford et al. 2016,
Sec. 4), BEGAN's Flax's default LeCun normal, both from
`jaxgen.nn.initializers` (the values of `jax.nn.initializers`, drawn flat:
much faster to compile on XLA:CPU).

Each module is a plain Flax linen module; the ones with batch norm keep its
running statistics in the 'batch_stats' collection and take ``train``:
batch statistics (and, with ``mutable=['batch_stats']``, updated running
averages) when True, the running averages when False.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.errors import ConfigError
from jaxgen.nn import conv_transpose
from jaxgen.nn import initializers as inits
from jaxgen.nn import unet

NORMS = ('batch', 'layer', 'none')
OUTPUTS = ('tanh', 'linear')
# PyTorch's BatchNorm2d defaults (momentum 0.1 of the new value, eps 1e-5).
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def normalization(kind: str, train: bool, name: str,
                  image: bool = True):
  """A normalization layer (or the identity) by name.

  Args:
    kind: 'batch' (`nn.BatchNorm`, statistics over batch and space), 'layer'
      (`nn.LayerNorm` over all of an example's features, so examples stay
      independent: what a gradient-penalty critic needs) or 'none'.
    train: batch statistics (True) or running averages (False).
    name: the layer's name.
    image: the input is [B, H, W, C] (layer norm over H, W, C) rather than
      [B, F].
  """
  if kind == 'batch':
    return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                        epsilon=BN_EPSILON, name=name)
  if kind == 'layer':
    axes = (-3, -2, -1) if image else (-1,)
    return nn.LayerNorm(epsilon=BN_EPSILON, reduction_axes=axes,
                        feature_axes=-1, name=name)
  if kind == 'none':
    return lambda x: x
  raise ConfigError(f'normalization {kind!r} is not one of {NORMS}.')


def _output(kind: str, x: jax.Array) -> jax.Array:
  if kind == 'tanh':
    return jnp.tanh(x)
  if kind == 'linear':
    return x
  raise ConfigError(f'generator output {kind!r} is not one of {OUTPUTS}.')


def _with_label_maps(x: jax.Array, cond: jax.Array | None) -> jax.Array:
  """x [B, H, W, C] and one-hot [B, K] -> [B, H, W, C + K]."""
  if cond is None:
    return x
  maps = jnp.broadcast_to(cond[:, None, None, :].astype(x.dtype),
                          x.shape[:3] + (cond.shape[-1],))
  return jnp.concatenate([x, maps], axis=-1)


def _with_label(h: jax.Array, cond: jax.Array | None) -> jax.Array:
  return h if cond is None else jnp.concatenate(
      [h, cond.astype(h.dtype)], axis=-1)


def dcgan_start_shape(image_shape: Sequence[int],
                      num_upsamplings: int) -> tuple[int, int]:
  """(H, W) / 2^n: the generator's first feature map; ConfigError if uneven."""
  f = 2 ** num_upsamplings
  h, w = image_shape[0], image_shape[1]
  if h % f or w % f:
    raise ConfigError(
        f'config.model.image_shape={tuple(image_shape)}: H and W must be '
        f'divisible by 2^{num_upsamplings} = {f} for {num_upsamplings} '
        'stride-2 layers (one per entry of config.model.g_channels).')
  return h // f, w // f


class DCGANGenerator(nn.Module):
  """z [B, L] (+ one-hot [B, K]) -> images [B, H, W, C].

  Layer 0 is a transposed convolution of the 1x1 input with an
  (H / 2^n) x (W / 2^n) kernel, 'VALID' (the paper's "project and reshape",
  a matrix multiply); then n = len(channels) transposed convolutions with
  stride 2 and 'SAME' padding double the size: channels[1:], then C. Batch
  norm and ReLU after every layer but the last, which has `output`
  (Tanh for data in [-1, 1]).

  For 32x32x1, z = 100, channels (256, 128, 64), 4x4 kernels and no biases
  this is the reference generator: 100 -> 4x4x256 -> 8x8x128 -> 16x16x64 ->
  32x32x1, 1,066,880 parameters (batch-norm scale and offset included).

  Attributes:
    image_shape: (H, W, C).
    channels: features of layer 0 and of the stride-2 layers before the last.
    kernel_size: of the stride-2 layers.
    norm: 'batch' or 'none'.
    use_bias: biases in the (transposed) convolutions.
    output: 'tanh' or 'linear'.
    init_stddev: the weights' N(0, init_stddev^2) initialization.
  """
  image_shape: Sequence[int]
  channels: Sequence[int] = (256, 128, 64)
  kernel_size: int = 4
  norm: str = 'batch'
  use_bias: bool = False
  output: str = 'tanh'
  init_stddev: float = 0.02

  @nn.compact
  def __call__(self, z: jax.Array, cond: jax.Array | None = None, *,
               train: bool = False) -> jax.Array:
    h0, w0 = dcgan_start_shape(self.image_shape, len(self.channels))
    x = _with_label(z, cond)[:, None, None, :]
    init = inits.normal(self.init_stddev)
    x = conv_transpose.ConvTranspose(self.channels[0], (h0, w0),
                                     padding='VALID', use_bias=self.use_bias,
                                     kernel_init=init, name='deconv_0')(x)
    x = nn.relu(normalization(self.norm, train, 'norm_0')(x))
    k = (self.kernel_size, self.kernel_size)
    outs = tuple(self.channels[1:]) + (self.image_shape[-1],)
    for i, c in enumerate(outs, start=1):
      x = conv_transpose.ConvTranspose(c, k, strides=(2, 2), padding='SAME',
                                       use_bias=self.use_bias,
                                       kernel_init=init,
                                       name=f'deconv_{i}')(x)
      if i < len(outs):
        x = nn.relu(normalization(self.norm, train, f'norm_{i}')(x))
    return _output(self.output, x)


class DCGANDiscriminator(nn.Module):
  """images [B, H, W, C] (+ one-hot [B, K]) -> logits [B].

  len(channels) convolutions with stride 2 and 'SAME' padding (no norm on
  the first), each followed by LeakyReLU, then one 'VALID' convolution whose
  kernel covers the remaining feature map, to a single logit.

  For 32x32x1, channels (64, 128, 256), 4x4 kernels, batch norm and no
  biases this is the reference discriminator: 32 -> 16 -> 8 -> 4 -> 1,
  661,248 parameters.

  Attributes:
    channels: features of the stride-2 convolutions.
    kernel_size: their kernel size.
    norm: 'batch', 'layer' or 'none' (not on the first layer).
    leaky_slope: negative slope of the LeakyReLU.
    use_bias: biases in the convolutions.
    init_stddev: the weights' N(0, init_stddev^2) initialization.
    dropout: rate of the dropout after each LeakyReLU (0: none); in training
      mode it draws from the 'dropout' PRNG stream of ``apply(rngs=...)``.
  """
  channels: Sequence[int] = (64, 128, 256)
  kernel_size: int = 4
  norm: str = 'batch'
  leaky_slope: float = 0.2
  use_bias: bool = False
  init_stddev: float = 0.02
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array | None = None, *,
               train: bool = False) -> jax.Array:
    x = _with_label_maps(x, cond)
    k = (self.kernel_size, self.kernel_size)
    init = inits.normal(self.init_stddev)
    for i, c in enumerate(self.channels):
      x = inits.Conv(c, k, strides=(2, 2), padding='SAME',
                     use_bias=self.use_bias, kernel_init=init,
                     name=f'conv_{i}')(x)
      if i > 0:
        x = normalization(self.norm, train, f'norm_{i}')(x)
      x = _dropout(nn.leaky_relu(x, self.leaky_slope), self.dropout, train)
    x = inits.Conv(1, x.shape[1:3], padding='VALID', use_bias=self.use_bias,
                   kernel_init=init, name=f'conv_{len(self.channels)}')(x)
    return x.reshape(x.shape[0])


class MLPGenerator(nn.Module):
  """z [B, L] (+ one-hot) -> [B, *out_shape] through dense ReLU layers.

  Attributes:
    out_shape: the shape of one example ((D,) for points, (H, W, C)).
    hidden: widths of the hidden layers.
    norm: 'batch' or 'none', after each hidden layer.
    use_bias: biases in the dense layers.
    output: 'tanh' (images in [-1, 1]) or 'linear' (points).
  """
  out_shape: Sequence[int]
  hidden: Sequence[int] = (128, 128, 128)
  norm: str = 'none'
  use_bias: bool = True
  output: str = 'linear'

  @nn.compact
  def __call__(self, z: jax.Array, cond: jax.Array | None = None, *,
               train: bool = False) -> jax.Array:
    x = _with_label(z, cond)
    for i, width in enumerate(self.hidden):
      x = inits.Dense(width, use_bias=self.use_bias, name=f'dense_{i}')(x)
      x = nn.relu(normalization(self.norm, train, f'norm_{i}', False)(x))
    x = inits.Dense(math.prod(self.out_shape), use_bias=self.use_bias,
                    name=f'dense_{len(self.hidden)}')(x)
    return _output(self.output, x).reshape((z.shape[0],)
                                           + tuple(self.out_shape))


class MLPDiscriminator(nn.Module):
  """[B, ...] (+ one-hot) -> logits [B] through dense LeakyReLU layers.

  Attributes:
    hidden: widths of the hidden layers.
    norm: 'batch', 'layer' or 'none', after each hidden layer but the first.
    leaky_slope: negative slope of the LeakyReLU.
    use_bias: biases in the dense layers.
    dropout: rate of the dropout after each LeakyReLU (0: none), as in
      `DCGANDiscriminator`.
  """
  hidden: Sequence[int] = (128, 128, 128)
  norm: str = 'none'
  leaky_slope: float = 0.2
  use_bias: bool = True
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array | None = None, *,
               train: bool = False) -> jax.Array:
    x = _with_label(x.reshape(x.shape[0], -1), cond)
    for i, width in enumerate(self.hidden):
      x = inits.Dense(width, use_bias=self.use_bias, name=f'dense_{i}')(x)
      if i > 0:
        x = normalization(self.norm, train, f'norm_{i}', False)(x)
      x = _dropout(nn.leaky_relu(x, self.leaky_slope), self.dropout, train)
    x = inits.Dense(1, use_bias=self.use_bias,
                    name=f'dense_{len(self.hidden)}')(x)
    return x.reshape(x.shape[0])


def _dropout(x: jax.Array, rate: float, train: bool) -> jax.Array:
  """Dropout in training mode only; rate 0 adds nothing (no PRNG use)."""
  if not rate:
    return x
  return nn.Dropout(rate, deterministic=not train)(x)


class BEGANDecoder(nn.Module):
  """h [B, N_h] -> images [B, H, W, C]: BEGAN's generator and decoder.

  A dense map to an (H / 2^s) x (W / 2^s) x n feature map, then s + 1
  blocks of `repeat` 3x3 convolutions with ELU, a nearest-neighbour 2x
  upsampling between blocks, and a 3x3 convolution to C channels with a
  linear output. Each upsampling and the convolution after it run as one
  `unet.UpsampleConv` (the same parameters and values, computed on the
  coarse grid).

  Attributes:
    image_shape: (H, W, C).
    channels: n, the width of every block.
    num_scales: s, the number of 2x upsamplings.
    repeat: convolutions per block, at least 1.
  """
  image_shape: Sequence[int]
  channels: int = 64
  num_scales: int = 2
  repeat: int = 2

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    if self.repeat < 1:
      raise ConfigError(f'BEGANDecoder.repeat={self.repeat} must be >= 1.')
    h0, w0 = dcgan_start_shape(self.image_shape, self.num_scales)
    init = inits.lecun_normal()
    x = inits.Dense(h0 * w0 * self.channels, name='project')(h)
    x = x.reshape(h.shape[0], h0, w0, self.channels)
    for s in range(self.num_scales + 1):
      for r in range(self.repeat):
        if s and not r:  # upsampling, then this conv: on the coarse grid
          conv = unet.UpsampleConv(self.channels, (3, 3), name=f'conv_{s}_{r}')
        else:
          conv = inits.Conv(self.channels, (3, 3), padding='SAME',
                            kernel_init=init, name=f'conv_{s}_{r}')
        x = nn.elu(conv(x))
    return inits.Conv(self.image_shape[-1], (3, 3), padding='SAME',
                      kernel_init=init, name='to_image')(x)


class BEGANEncoder(nn.Module):
  """images [B, H, W, C] -> embeddings [B, N_h]: BEGAN's encoder.

  A 3x3 convolution to n channels, then s + 1 blocks of `repeat` 3x3
  convolutions with ELU; between blocks a stride-2 3x3 convolution
  subsamples and widens to (b + 1) n channels at block b (the paper's
  linearly growing widths); a dense layer to N_h with no activation.

  Attributes:
    channels: n.
    num_scales: s, the number of subsamplings.
    repeat: convolutions per block.
    embedding_dim: N_h.
  """
  channels: int = 64
  num_scales: int = 2
  repeat: int = 2
  embedding_dim: int = 64

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    init = inits.lecun_normal()
    x = nn.elu(inits.Conv(self.channels, (3, 3), padding='SAME',
                          kernel_init=init, name='from_image')(x))
    for s in range(self.num_scales + 1):
      width = (s + 1) * self.channels
      for r in range(self.repeat):
        x = nn.elu(inits.Conv(width, (3, 3), padding='SAME',
                              kernel_init=init, name=f'conv_{s}_{r}')(x))
      if s < self.num_scales:
        x = nn.elu(inits.Conv((s + 2) * self.channels, (3, 3), strides=(2, 2),
                              padding='SAME', kernel_init=init,
                              name=f'down_{s}')(x))
    return inits.Dense(self.embedding_dim, name='embed')(
        x.reshape(x.shape[0], -1))


class BEGANAutoencoder(nn.Module):
  """BEGAN's discriminator: x [B, H, W, C] -> AE(x) [B, H, W, C].

  `BEGANEncoder` to an N_h embedding, then a `BEGANDecoder` with the same
  architecture as the generator (its own weights).
  """
  image_shape: Sequence[int]
  channels: int = 64
  num_scales: int = 2
  repeat: int = 2
  embedding_dim: int = 64

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = BEGANEncoder(self.channels, self.num_scales, self.repeat,
                     self.embedding_dim, name='encoder')(x)
    return BEGANDecoder(self.image_shape, self.channels, self.num_scales,
                        self.repeat, name='decoder')(h)
