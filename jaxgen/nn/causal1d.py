"""Dilated causal 1-D convolutions and WaveNet's gated residual block.

van den Oord, Dieleman, Zen, Simonyan, Vinyals, Graves, Kalchbrenner,
Senior, Kavukcuoglu, "WaveNet: A Generative Model for Raw Audio",
arXiv:1609.03499, 2016 (section 2.1 dilated causal convolutions, 2.3 gated
activation units, 2.4 residual and skip connections, 2.5 global
conditioning); the cached incremental sampler follows Paine, Khorrami,
Chang, Zhang, Ramachandran, Hasegawa-Johnson, Huang, "Fast Wavenet
Generation Algorithm", arXiv:1611.09482, 2016 and Ramachandran et al.,
"Fast Generation for Convolutional Autoregressive Models", ICLR 2017
workshop.

A causal convolution with kernel size k and dilation d maps x [B, T, C] to

    y_t = b + sum_{i=0}^{k-1} W_i^T x_{t - (k-1-i) d}       (x_s = 0 for s < 0)

so y_t reads x_{t-(k-1)d}, ..., x_t and nothing later. It is computed here as
k matrix products of zero-padded shifted copies of x rather than with
``lax.conv``: XLA:CPU runs dense products faster than convolutions
(/work/shared/STACK.md), and the incremental sampler's step then performs
the same per-position products.

Incremental sampling keeps, per layer, a circular *queue* of its last
L = (k-1) d inputs: [B, L, C]. At time t the input x_{t - j d} (j = 1..k-1)
sits in slot (t - j d) mod L; the slot t mod L holds x_{t-L} and is read
before x_t overwrites it. An all-zero queue is the zero padding before
t = 0. For k = 2 the queue holds exactly `dilation` entries.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.nn import initializers as inits

Array = jax.Array


def shift_right(x: Array, steps: int) -> Array:
  """x [B, T, C] delayed by `steps`: out_t = x_{t - steps}, zeros before."""
  if steps == 0:
    return x
  if steps >= x.shape[1]:
    return jnp.zeros_like(x)
  pad = jnp.zeros(x.shape[:1] + (steps,) + x.shape[2:], x.dtype)
  return jnp.concatenate([pad, x[:, :x.shape[1] - steps]], axis=1)


def receptive_field(dilations: Sequence[int], kernel_size: int = 2) -> int:
  """Inputs one output of a stack of causal convolutions reads.

  A stack with the given dilations reads x_{t-R+1}, ..., x_t with
  R = 1 + (kernel_size - 1) * sum(dilations).
  """
  return 1 + (kernel_size - 1) * int(sum(dilations))


def queue_length(kernel_size: int, dilation: int) -> int:
  """L = (kernel_size - 1) * dilation past inputs a layer must remember."""
  return (kernel_size - 1) * dilation


def init_queue(batch: int, kernel_size: int, dilation: int, channels: int,
               dtype=jnp.float32) -> Array:
  """The all-zero queue [batch, L, channels] (the padding before t = 0)."""
  return jnp.zeros((batch, queue_length(kernel_size, dilation), channels),
                   dtype)


def queue_taps(queue: Array, t: Array, kernel_size: int,
               dilation: int) -> list[Array]:
  """Past inputs [x_{t-(k-1)d}, ..., x_{t-d}], each [B, C], from a queue."""
  length = queue.shape[1]
  taps = []
  for j in range(kernel_size - 1, 0, -1):
    taps.append(queue[:, (t - j * dilation) % length])
  return taps


def queue_push(queue: Array, t: Array, x_t: Array) -> Array:
  """Stores x_t [B, C] in slot t mod L (after the taps were read)."""
  return queue.at[:, t % queue.shape[1]].set(x_t)


class CausalConv1D(nn.Module):
  """Dilated causal convolution (see the module docstring).

  Called on a whole sequence, x [B, T, C] -> y [B, T, F]. Called with a
  ``queue`` and time ``t``, x is one step x_t [B, C] and the call returns
  (y_t [B, F], the updated queue): the same parameters, the same products.

  Attributes:
    features: output channels F.
    kernel_size: taps k >= 1 (k = 1 is a position-wise dense layer).
    dilation: spacing d >= 1 between taps.
    use_bias: add a learned bias b [F].
  """
  features: int
  kernel_size: int = 2
  dilation: int = 1
  use_bias: bool = True

  @nn.compact
  def __call__(self, x: Array, queue: Array | None = None,
               t: Array | None = None):
    kernel = self.param(
        'kernel', inits.lecun_normal(in_axis=(0, 1), out_axis=2),
        (self.kernel_size, x.shape[-1], self.features), jnp.float32)
    kernel = kernel.astype(x.dtype)
    k, d = self.kernel_size, self.dilation
    if queue is None:
      # Tap i reads x delayed by (k - 1 - i) d.
      taps = [shift_right(x, (k - 1 - i) * d) for i in range(k)]
      y = sum(tap @ kernel[i] for i, tap in enumerate(taps))
    else:
      taps = (queue_taps(queue, t, k, d) if k > 1 else []) + [x]
      y = sum(tap @ kernel[i] for i, tap in enumerate(taps))
      if k > 1:
        queue = queue_push(queue, t, x)
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (self.features,),
                         jnp.float32).astype(x.dtype)
    return y if queue is None else (y, queue)


class GatedResidualBlock(nn.Module):
  r"""WaveNet's residual block with a gated activation unit (sections 2.3-2.5).

  For the block input h [B, T, R] and optional conditioning c [B, K]:

  .. math::
    [z_f, z_g] = \mathrm{CausalConv}_{k,d}(h) + V c, \qquad
    u = \tanh(z_f) \odot \sigma(z_g),

    \mathrm{out} = h + W_r u \;[B, T, R], \qquad
    \mathrm{skip} = W_s u \;[B, T, S].

  Called with ``queue`` and ``t`` it takes one step h_t [B, R] and returns
  (out_t, skip_t, queue).

  Attributes:
    residual_channels: R.
    gate_channels: channels of each of z_f, z_g.
    skip_channels: S.
    kernel_size: taps of the dilated convolution.
    dilation: its dilation.
  """
  residual_channels: int
  gate_channels: int
  skip_channels: int
  kernel_size: int = 2
  dilation: int = 1

  @nn.compact
  def __call__(self, h: Array, cond: Array | None = None,
               queue: Array | None = None, t: Array | None = None):
    conv = CausalConv1D(2 * self.gate_channels, self.kernel_size,
                        self.dilation, name='dilated')
    if queue is None:
      z = conv(h)
    else:
      z, queue = conv(h, queue, t)
    if cond is not None:
      bias = inits.Dense(2 * self.gate_channels, use_bias=False,
                         name='condition')(cond)
      z = z + (bias[:, None] if queue is None else bias)
    z_f, z_g = jnp.split(z, 2, axis=-1)
    u = jnp.tanh(z_f) * jax.nn.sigmoid(z_g)
    out = h + inits.Dense(self.residual_channels, name='residual')(u)
    skip = inits.Dense(self.skip_channels, name='skip')(u)
    return (out, skip) if queue is None else (out, skip, queue)
