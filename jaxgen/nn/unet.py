"""An epsilon-prediction U-Net for small images (DDPM).

Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020,
appendix B (a PixelCNN++-like U-Net with group normalisation, a sinusoidal
time embedding added in every residual block, and self-attention), scaled
down. With ``channels=(32, 64)``, one residual block per level, a 32-d
sinusoid and a 128-d time embedding, a 28x28x1 model has 583,713
parameters, the layer table of the project's PyTorch peer
(``../shared/bench/README.md``, model (e)):

    conv_in -> [ResBlock x num_res_blocks (skips saved), 3x3 stride-2 conv]
    per level -> ResBlock, Attention, ResBlock (lowest resolution) ->
    [nearest x2 + 3x3 conv, ResBlock(concat[h, skip]) x num_res_blocks]
    per level, reversed -> GroupNorm, SiLU, 3x3 conv.

The group norms are `jaxgen.nn.norm.GroupNorm`: the parameters of
``nn.GroupNorm``, computed in a form whose CPU gradient is faster. The
upsampling convolutions are `UpsampleConv`: the parameters of ``nn.Conv``,
computed on the low-resolution grid (`upsample_conv`, sub-pixel phases).
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from jaxgen.nn import initializers as inits
from jaxgen.nn import norm as norm_lib

GROUP_NORM_EPS = 1e-5


def timestep_embedding(t: jax.Array, dim: int,
                       max_period: float = 10_000.0) -> jax.Array:
  r"""Sinusoidal embedding [sin(t f) | cos(t f)] of timesteps, [B, dim].

  Frequencies f_k = max_period^(-k / (dim/2 - 1)), k = 0..dim/2 - 1
  (Vaswani et al. 2017, §3.5, as in the DDPM code).

  Args:
    t: [B] timesteps (int or float).
    dim: even embedding size >= 4.
  """
  half = dim // 2
  freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32)
                  / (half - 1))
  args = jnp.asarray(t, jnp.float32)[:, None] * freqs[None, :]
  return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)


def _norm(groups: int, name: str | None = None) -> norm_lib.GroupNorm:
  return norm_lib.GroupNorm(num_groups=groups, epsilon=GROUP_NORM_EPS,
                            name=name)


UPSAMPLE_METHODS = ('subpixel', 'resize')


def _phase_rows(k: int, phase: int) -> tuple[int, np.ndarray]:
  """(first offset, [offsets, k] 0/1 matrix) of output phase `phase` of a
  'SAME' k-tap convolution after nearest x2 upsampling: tap t reads the
  input at offset floor((phase + t - k // 2) / 2) from i."""
  offsets = [(phase + t - k // 2) // 2 for t in range(k)]
  lo = min(offsets)
  sums = np.zeros((max(offsets) - lo + 1, k), np.float32)
  for t, d in enumerate(offsets):
    sums[d - lo, t] = 1.0
  return lo, sums


def upsample_conv(x: jax.Array, kernel: jax.Array, method: str = 'subpixel',
                  precision=None) -> jax.Array:
  """A 'SAME' stride-1 convolution of the nearest x2 upsampled input.

  conv(resize(x, 2x, 'nearest'), kernel). 'resize' computes exactly that;
  'subpixel' computes it on the input's own grid: output pixel
  (2i + a, 2j + b) reads input pixels (i + d, j + e) only, so each of the
  four phases (a, b) is a small convolution of x (2x2 for a 3x3 kernel,
  zero-padded by the phase's offsets) whose kernel sums the taps that read
  the same input pixel, and the phases are interleaved (depth-to-space). A
  3x3 kernel then costs 16 taps on the input's grid instead of 9 on the 4x
  larger upsampled one, and its kernel gradient runs on the input's grid
  too.

  Args:
    x: [B, H, W, C].
    kernel: [k_h, k_w, C, F], odd sizes.
    method: one of `UPSAMPLE_METHODS`.
    precision: of the convolutions.

  Returns:
    [B, 2H, 2W, F]: the same values by both methods (up to float rounding).
  """
  if method not in UPSAMPLE_METHODS:
    raise ValueError(f'method must be one of {UPSAMPLE_METHODS}, got '
                     f'{method!r}.')
  kh, kw = kernel.shape[:2]
  if kh % 2 == 0 or kw % 2 == 0:
    raise ValueError(f'upsample_conv needs odd kernel sizes, got {kh}x{kw}.')
  b, h, w, _ = x.shape
  if method == 'resize':
    up = jax.image.resize(x, (b, 2 * h, 2 * w, x.shape[-1]), 'nearest')
    return lax.conv_general_dilated(
        up, kernel, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
        precision=precision)
  rows = []
  for a in range(2):
    lo_a, sum_a = _phase_rows(kh, a)
    cols = []
    for c in range(2):
      lo_c, sum_c = _phase_rows(kw, c)
      phase_kernel = jnp.einsum('rt,su,tuio->rsio',
                                jnp.asarray(sum_a, kernel.dtype),
                                jnp.asarray(sum_c, kernel.dtype), kernel,
                                precision=precision)
      pads = ((-lo_a, lo_a + sum_a.shape[0] - 1),
              (-lo_c, lo_c + sum_c.shape[0] - 1))
      cols.append(lax.conv_general_dilated(
          x, phase_kernel, (1, 1), pads,
          dimension_numbers=('NHWC', 'HWIO', 'NHWC'), precision=precision))
    rows.append(jnp.stack(cols, axis=3))  # [B, H, W, 2 (b), F]
  y = jnp.stack(rows, axis=2)  # [B, H, 2 (a), W, 2 (b), F]
  return y.reshape(b, 2 * h, 2 * w, kernel.shape[-1])


class UpsampleConv(nn.Module):
  """Nearest x2 upsampling, then a 'SAME' stride-1 convolution with bias.

  The parameters of ``nn.Conv(features, kernel_size)`` ('kernel'
  [k_h, k_w, C, features] drawn as `initializers.Conv`, 'bias' zeros), so
  parameter trees and checkpoints are those of the upsample-then-``nn.Conv``
  formulation; computed by `upsample_conv` with `method`.
  """
  features: int
  kernel_size: tuple[int, int] = (3, 3)
  method: str = 'subpixel'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x [B, H, W, C] -> [B, 2H, 2W, features]."""
    kernel = self.param('kernel', inits.lecun_normal(),
                        tuple(self.kernel_size) + (x.shape[-1],
                                                   self.features))
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,))
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias)
    return upsample_conv(x, kernel, self.method) + bias


class ResBlock(nn.Module):
  """GN -> SiLU -> conv3x3 -> + Dense(SiLU(temb)) -> GN -> SiLU -> conv3x3,
  plus x (through a 1x1 conv when the channel count changes)."""
  features: int
  groups: int = 8

  @nn.compact
  def __call__(self, x: jax.Array, temb: jax.Array) -> jax.Array:
    h = inits.Conv(self.features, (3, 3), name='conv1')(
        nn.silu(_norm(self.groups, 'norm1')(x)))
    h = h + inits.Dense(self.features, name='temb')(
        nn.silu(temb))[:, None, None, :]
    h = inits.Conv(self.features, (3, 3), name='conv2')(
        nn.silu(_norm(self.groups, 'norm2')(h)))
    if x.shape[-1] != self.features:
      x = inits.Conv(self.features, (1, 1), name='skip')(x)
    return x + h


class Attention(nn.Module):
  """Single-head self-attention over all positions, residual:
  x + proj(softmax(q k^T / sqrt(C)) v), q, k, v from a 1x1 conv of GN(x)."""
  groups: int = 8

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    qkv = inits.Conv(3 * c, (1, 1), name='qkv')(
        _norm(self.groups, 'norm')(x))
    q, k, v = jnp.split(qkv.reshape(b, h * w, 3 * c), 3, axis=-1)
    logits = jnp.einsum('bic,bjc->bij', q, k) / math.sqrt(c)
    out = jnp.einsum('bij,bjc->bic', jax.nn.softmax(logits, -1), v)
    return x + inits.Conv(c, (1, 1), name='proj')(
        out.reshape(b, h, w, c))


class UNet(nn.Module):
  """eps_theta(x_t, t [, label]) for images [B, H, W, C] -> [B, H, W, C].

  Attributes:
    channels: features per resolution level; the image is halved after
      each level, so H and W must be divisible by 2^len(channels).
    num_res_blocks: residual blocks per level on the way down (and as many
      on the way up).
    sinusoid_dim: size of the sinusoidal timestep embedding.
    time_embed_dim: size of the time embedding after its 2-layer MLP.
    num_groups: groups of every GroupNorm (divides every channel count;
      with one channel per group the norm after the time-embedding
      injection would remove the embedding).
    num_classes: > 0 adds a learned label embedding to the time embedding;
      label index num_classes is the 'null' label (classifier-free
      guidance).
    out_channels: output channels (0: the input's).
  """
  channels: Sequence[int] = (32, 64)
  num_res_blocks: int = 1
  sinusoid_dim: int = 32
  time_embed_dim: int = 128
  num_groups: int = 8
  num_classes: int = 0
  out_channels: int = 0

  @nn.compact
  def __call__(self, x: jax.Array, t: jax.Array,
               labels: jax.Array | None = None) -> jax.Array:
    temb = timestep_embedding(t, self.sinusoid_dim)
    temb = inits.Dense(self.time_embed_dim, name='t_mlp1')(temb)
    temb = inits.Dense(self.time_embed_dim, name='t_mlp2')(nn.silu(temb))
    if self.num_classes:
      if labels is None:
        labels = jnp.full(x.shape[:1], self.num_classes, jnp.int32)
      temb = temb + inits.Embed(self.num_classes + 1, self.time_embed_dim,
                                name='label_embed')(labels)
    g = self.num_groups
    h = inits.Conv(self.channels[0], (3, 3), name='conv_in')(x)
    skips = []
    for i, ch in enumerate(self.channels):
      for r in range(self.num_res_blocks):
        h = ResBlock(ch, g, name=f'down{i}_{r}')(h, temb)
        skips.append(h)
      h = inits.Conv(h.shape[-1], (3, 3), strides=(2, 2),
                     padding=((1, 1), (1, 1)), name=f'ds{i}')(h)
    ch = self.channels[-1]
    h = ResBlock(ch, g, name='mid1')(h, temb)
    h = Attention(g, name='mid_attn')(h)
    h = ResBlock(ch, g, name='mid2')(h, temb)
    for i in reversed(range(len(self.channels))):
      h = UpsampleConv(h.shape[-1], name=f'us{i}')(h)
      for r in range(self.num_res_blocks):
        h = ResBlock(self.channels[i], g, name=f'up{i}_{r}')(
            jnp.concatenate([h, skips.pop()], axis=-1), temb)
    h = nn.silu(_norm(g, 'norm_out')(h))
    return inits.Conv(self.out_channels or x.shape[-1], (3, 3),
                      name='conv_out')(h)
