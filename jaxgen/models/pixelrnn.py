"""PixelRNN: Row LSTM and Diagonal BiLSTM autoregressive image models.

van den Oord, Kalchbrenner, Kavukcuoglu, "Pixel Recurrent Neural Networks",
ICML 2016, sections 3.1-3.4, Figs. 2-4, Table 1.

Model. Sub-pixels are visited in raster order, colour channels in order
(R, G, B) inside a pixel:

    log p(x) = sum_{i, j} sum_c log p(x_{i,j,c} | x_{<(i,j)}, x_{i,j,<c}).

Network (Table 1): a 7 x 7 mask-A convolution to 2h features, then
``num_layers`` residual blocks, each a recurrent layer with h hidden units
(`jaxgen.nn.recurrent.RowLSTM` or `DiagonalBiLSTM`; mask-B input-to-state)
followed by a 1 x 1 mask-B convolution back to 2h features that is added
to the block's input (section 3.3); then ReLU, a 1 x 1 mask-B convolution,
ReLU, and a 1 x 1 mask-B convolution to the output:

- ``likelihood='bernoulli'``: one logit per sub-pixel, for binary data
  (binarized MNIST, the paper's Table 4 setting);
- ``likelihood='categorical'``: 256 logits per sub-pixel (the paper's
  softmax), for 8-bit data scaled to [0, 1]; the integer level is recovered
  exactly as round(255 x).

Receptive fields (checked by Jacobian in the tests): the Row LSTM's is a
triangle above the pixel; the Diagonal BiLSTM's covers every earlier
sub-pixel except the last channel of the last pixel of the row above, for
outputs more than 3 columns to its left (see `jaxgen.nn.recurrent`).

Colour groups follow `jaxgen.nn.masked` (contiguous, R | G | B), so every
feature count must be a multiple of the number of channels.

The family contract (see `jaxgen.models`): `Net`, `init`, `loss_fn`,
`LIKELIHOOD`, `log_likelihood`, `sample`, `validate`.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import losses
from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.models import pixels
from jaxgen.nn import masked
from jaxgen.nn import recurrent

LIKELIHOOD = 'exact'
VARIANTS = ('row_lstm', 'diagonal_bilstm')
LIKELIHOODS = ('bernoulli', 'categorical')
NUM_LEVELS = 256


class Net(nn.Module):
  """The PixelRNN network; fields are ``config.model``.

  Maps images x [B, H, W, C] (binary {0, 1}, or 8-bit scaled to [0, 1]) to
  logits [B, H, W, C] ('bernoulli') or [B, H, W, C, 256] ('categorical');
  the logits of sub-pixel (i, j, c) depend only on the pixels before (i, j)
  and on the channels before c of pixel (i, j).

  Attributes:
    image_shape: (H, W, C).
    variant: 'row_lstm' or 'diagonal_bilstm'.
    num_layers: recurrent residual blocks (the paper's MNIST model: 7).
    hidden: h, LSTM units per layer; the residual stream has 2h features
      (the paper's MNIST model: 16).
    output_features: features of the two 1 x 1 output layers.
    row_kernel_size: k of the Row LSTM's 1 x k convolutions (3).
    first_kernel_size: the mask-A input convolution's size (7).
    likelihood: 'bernoulli' or 'categorical' (256-way softmax).
  """
  image_shape: Sequence[int] = (28, 28, 1)
  variant: str = 'diagonal_bilstm'
  num_layers: int = 2
  hidden: int = 16
  output_features: int = 32
  row_kernel_size: int = 3
  first_kernel_size: int = 7
  likelihood: str = 'bernoulli'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = self.image_shape[-1]
    h = self.hidden
    y = masked.MaskedConv2D(2 * h, self.first_kernel_size, 'A', c,
                            name='input')(x)
    for layer in range(self.num_layers):
      if self.variant == 'row_lstm':
        rnn = recurrent.RowLSTM(h, self.row_kernel_size, c,
                                name=f'row_lstm_{layer}')
      else:
        rnn = recurrent.DiagonalBiLSTM(h, c, name=f'diagonal_bilstm_{layer}')
      y = y + masked.MaskedConv2D(2 * h, 1, 'B', c,
                                  name=f'residual_{layer}')(rnn(y))
    y = masked.MaskedConv2D(self.output_features, 1, 'B', c,
                            name='output_0')(jax.nn.relu(y))
    per_channel = 1 if self.likelihood == 'bernoulli' else NUM_LEVELS
    y = masked.MaskedConv2D(c * per_channel, 1, 'B', c,
                            name='output_1')(jax.nn.relu(y))
    if self.likelihood == 'bernoulli':
      return y
    return y.reshape(y.shape[:-1] + (c, NUM_LEVELS))


def levels(x: jax.Array) -> jax.Array:
  """8-bit levels int32 from data scaled to [0, 1]: round(255 x), exact."""
  return jnp.round(x * 255.0).astype(jnp.int32)


def sub_pixel_log_prob(logits: jax.Array, x: jax.Array,
                       likelihood: str) -> jax.Array:
  """log p(x_{i,j,c} | context) for every sub-pixel: [..., H, W, C] nats.

  Args:
    logits: the Net's output.
    x: the images the Net saw, [..., H, W, C].
    likelihood: 'bernoulli' (x in {0, 1}) or 'categorical' (x = level/255).
  """
  if likelihood == 'bernoulli':
    return losses.bernoulli_log_prob(logits, x)
  return losses.categorical_log_prob(logits, levels(x))


def validate(config, dataset) -> None:
  """Checks ``config.model`` against itself and the loaded dataset."""
  m = config.model
  if m.variant not in VARIANTS:
    raise ConfigError(
        f'config.model.variant={m.variant!r} is not one of {VARIANTS}.')
  if m.likelihood not in LIKELIHOODS:
    raise ConfigError(f'config.model.likelihood={m.likelihood!r} is not one '
                      f'of {LIKELIHOODS}.')
  c = m.image_shape[-1]
  for field in ('num_layers', 'hidden', 'output_features'):
    value = m[field]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ConfigError(f'config.model.{field}={value!r} must be an integer '
                        '>= 1.')
  for field in ('hidden', 'output_features'):
    if m[field] % c:
      raise ConfigError(
          f'config.model.{field}={m[field]} must be a multiple of the '
          f'{c} colour channels (features are split into colour groups).')
  for field in ('row_kernel_size', 'first_kernel_size'):
    if m[field] < 1 or m[field] % 2 == 0:
      raise ConfigError(
          f'config.model.{field}={m[field]} must be odd and positive.')
  if m.likelihood == 'bernoulli':
    pixels.check_data_config('bernoulli', config.data, dataset.pixel_levels)
    return
  d = config.data
  if d.binarize != 'none' or dataset.pixel_levels != NUM_LEVELS:
    raise ConfigError(
        "config.model.likelihood='categorical' is a 256-way softmax over "
        "8-bit pixels: set config.data.binarize='none' (and use 8-bit data).")
  if d.dequantize:
    raise ConfigError("config.data.dequantize must be False for "
                      "config.model.likelihood='categorical'.")
  if d.value_range != 'unit':
    raise ConfigError(
        "config.model.likelihood='categorical' reads levels as round(255 x): "
        f"set config.data.value_range='unit', got {d.value_range!r}.")


def init(key: jax.Array, batch, *, net: Net) -> Any:
  """Initial parameters for a (preprocessed) example batch."""
  return net.init(key, batch['image'])['params']


def log_likelihood(params, batch, key, *, net: Net) -> jax.Array:
  """Exact log p(x) in nats per example, [B] (`key` unused)."""
  del key
  x = batch['image']
  logits = net.apply({'params': params}, x)
  return sub_pixel_log_prob(logits, x, net.likelihood).sum(axis=(1, 2, 3))


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """Negative log-likelihood in nats per example.

  Args:
    params: the Net's parameters.
    batch: {'image': float [B, H, W, C] ({0, 1} for 'bernoulli', level/255
      for 'categorical'), optional 'mask': bool [B]}.
    key: unused (the model has no noise); part of the contract.
    net: the Net.
    train: unused (no dropout); part of the contract.

  Returns:
    (mean NLL over unmasked examples, {'nll': [B] nats}).
  """
  del train
  nll = -log_likelihood(params, batch, key, net=net)
  return steps.masked_mean(nll, batch.get('mask')), {'nll': nll}


def sample(params, key, num: int, *, net: Net) -> jax.Array:
  """`num` images by ancestral sampling: uint8 [num, H, W, C].

  One network pass per sub-pixel, in raster order and R, G, B inside a
  pixel (a `lax.fori_loop` over H*W*C steps), each draw keyed by
  ``fold_in(key, step)``. Bernoulli draws are shown as {0, 255}.
  """
  h, w, c = net.image_shape

  def step(t, x):
    pixel, channel = t // c, t % c
    i, j = pixel // w, pixel % w
    logits = net.apply({'params': params}, x)
    logits = jax.lax.dynamic_index_in_dim(logits, i, 1, keepdims=False)
    logits = jax.lax.dynamic_index_in_dim(logits, j, 1, keepdims=False)
    logits = jax.lax.dynamic_index_in_dim(logits, channel, 1, keepdims=False)
    step_key = jax.random.fold_in(key, t)
    if net.likelihood == 'bernoulli':
      value = jax.random.bernoulli(step_key, jax.nn.sigmoid(logits))
    else:
      value = jax.random.categorical(step_key, logits, axis=-1) / 255.0
    value = value.astype(x.dtype).reshape(num, 1, 1, 1)
    return jax.lax.dynamic_update_slice(x, value, (0, i, j, channel))

  x = jax.lax.fori_loop(0, h * w * c, step,
                        jnp.zeros((num, h, w, c), jnp.float32))
  return jnp.round(x * 255.0).astype(jnp.uint8)
