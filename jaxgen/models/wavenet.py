"""WaveNet: dilated causal convolutions over a 1-D sequence, exact likelihood.

van den Oord, Dieleman, Zen, Simonyan, Vinyals, Graves, Kalchbrenner,
Senior, Kavukcuoglu, "WaveNet: A Generative Model for Raw Audio",
arXiv:1609.03499, 2016. Cached incremental sampling: Paine et al., "Fast
Wavenet Generation Algorithm", arXiv:1611.09482, 2016; Ramachandran et al.,
"Fast Generation for Convolutional Autoregressive Models", ICLR 2017
workshop.

The model factorises a sequence x_0, ..., x_{T-1} autoregressively,

    log p(x | c) = sum_t log p(x_t | x_{t-R}, ..., x_{t-1}, c),

with R = `Net.receptive_field` past samples seen by each prediction. Images
[H, W, C] are read as sequences of T = H * W * C values in raster order with
the channels of a pixel consecutive (``x.reshape(B, -1)`` of the NHWC array),
so "causal" means: before it in rows, then columns, then channels. The
synthetic signals of `jaxgen.data.signals` are images (1, T, 1).

Network (sections 2.1-2.5 of the paper): each previous value x_{t-1} is
embedded (a one-hot times a learned table, [levels, R_c]) and the embedding
sequence is shifted right by one (zero at t = 0), so that output t sees only
x_{<t}; a causal convolution of kernel k; `num_stacks` stacks of
`layers_per_stack` gated residual blocks with dilations 1, 2, 4, ...,
2^(layers_per_stack - 1); the sum of the skip outputs through
ReLU-Dense-ReLU-Dense to per-position logits. Receptive field:

    R = 1 + (k - 1) * (1 + num_stacks * (2^layers_per_stack - 1)).

Outputs (``likelihood``):

- 'categorical': a 256-way softmax over 8-bit values. Data arrive scaled to
  [0, 1] (``config.data.value_range='unit'``, no binarization or
  dequantization), and the integer value is recovered exactly as
  round(255 x) (x = v / 255 in float32 is within 1e-5 of v / 255).
- 'bernoulli': one logit per position on binarized {0, 1} data.

Optional global conditioning on the label (section 2.5): a one-hot of the
label adds a learned bias to every gate. `sample` runs the cached
incremental sampler (per-layer circular queues of length (k - 1) * dilation
carried through a `lax.scan`, O(T) work per sequence); ``method='naive'``
reruns the full network at every step (O(T^2)) and, with the same key, gives
the same samples.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import losses
from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.models import base
from jaxgen.models import pixels
from jaxgen.nn import causal1d
from jaxgen.nn import initializers as inits

LIKELIHOOD = 'exact'  # log_likelihood is the exact log p(x) in nats
LIKELIHOODS = ('categorical', 'bernoulli')
SAMPLE_METHODS = ('cached', 'naive')
NUM_LEVELS = 256  # values of an 8-bit sample


class Net(nn.Module):
  """The WaveNet; fields are ``config.model``.

  Attributes:
    image_shape: (H, W, C) of the data; the sequence length is H * W * C.
    likelihood: 'categorical' (256-way softmax on 8-bit data) or 'bernoulli'
      (binarized data).
    residual_channels: width R_c of the residual stream and the embedding.
    gate_channels: channels of each half (filter, gate) of a gated unit.
    skip_channels: width of the skip outputs and of the output head.
    kernel_size: taps k of every causal convolution.
    layers_per_stack: blocks per stack, dilations 1, 2, ..., 2^(n-1).
    num_stacks: repetitions of that dilation cycle.
    num_classes: > 0 conditions every gate on the one-hot label (global
      conditioning); 0 is unconditional.
  """
  image_shape: Sequence[int] = (8, 8, 1)
  likelihood: str = 'bernoulli'
  residual_channels: int = 32
  gate_channels: int = 32
  skip_channels: int = 64
  kernel_size: int = 2
  layers_per_stack: int = 6
  num_stacks: int = 1
  num_classes: int = 0

  @property
  def length(self) -> int:
    """T = H * W * C."""
    h, w, c = self.image_shape
    return h * w * c

  @property
  def dilations(self) -> tuple[int, ...]:
    """Dilations of the gated blocks, in order."""
    return tuple(2 ** i for i in range(self.layers_per_stack)) * (
        self.num_stacks)

  @property
  def receptive_field(self) -> int:
    """R: output t reads exactly x_{t-R}, ..., x_{t-1} (those >= 0)."""
    return causal1d.receptive_field((1,) + self.dilations, self.kernel_size)

  @property
  def num_inputs(self) -> int:
    return NUM_LEVELS if self.likelihood == 'categorical' else 2

  @property
  def num_outputs(self) -> int:
    return NUM_LEVELS if self.likelihood == 'categorical' else 1

  def setup(self):
    self.embedding = self.param('embedding', inits.normal(1.0),
                                (self.num_inputs, self.residual_channels))
    self.front = causal1d.CausalConv1D(self.residual_channels,
                                       self.kernel_size, 1, name='front')
    self.blocks = [
        causal1d.GatedResidualBlock(
            self.residual_channels, self.gate_channels, self.skip_channels,
            self.kernel_size, d, name=f'block_{i}')
        for i, d in enumerate(self.dilations)]
    self.head_hidden = inits.Dense(self.skip_channels, name='head_hidden')
    self.head_out = inits.Dense(self.num_outputs, name='head_out')

  def _embed(self, inputs: jax.Array) -> jax.Array:
    """int values [...] or float one-hots [..., levels] -> [..., R_c]."""
    if jnp.issubdtype(inputs.dtype, jnp.integer):
      return jnp.take(self.embedding, inputs, axis=0)
    return inputs @ self.embedding.astype(inputs.dtype)

  def _condition(self, labels: jax.Array | None, dtype) -> jax.Array | None:
    if not self.num_classes:
      return None
    return jax.nn.one_hot(labels, self.num_classes, dtype=dtype)

  def _head(self, skip: jax.Array) -> jax.Array:
    return self.head_out(nn.relu(self.head_hidden(nn.relu(skip))))

  def __call__(self, inputs: jax.Array,
               labels: jax.Array | None = None) -> jax.Array:
    """Logits of x_t given x_{<t} for every t.

    Args:
      inputs: int32 values [B, T] in [0, levels), or their one-hot encodings
        float [B, T, levels] (differentiable, for Jacobian checks).
      labels: int [B] when ``num_classes > 0``.

    Returns:
      [B, T, 256] logits ('categorical') or [B, T, 1] ('bernoulli').
    """
    e = causal1d.shift_right(self._embed(inputs), 1)  # e_t = emb(x_{t-1})
    cond = self._condition(labels, e.dtype)
    h = self.front(e)
    skip = 0.0
    for block in self.blocks:
      h, s = block(h, cond)
      skip = skip + s
    return self._head(skip)

  def step(self, prev: jax.Array, t: jax.Array, cache,
           labels: jax.Array | None = None):
    """One incremental step: logits of x_t from x_{t-1} and the queues.

    Args:
      prev: int32 [B], x_{t-1} (ignored at t = 0, where the input is zero).
      t: int32 scalar, the position.
      cache: `init_cache`'s pytree of queues, holding the layers' inputs at
        times < t.
      labels: int [B] when ``num_classes > 0``.

    Returns:
      (logits [B, num_outputs], the updated cache).
    """
    front_queue, block_queues = cache
    e = self._embed(prev) * (t > 0).astype(self.embedding.dtype)
    cond = self._condition(labels, e.dtype)
    h, front_queue = self.front(e, front_queue, t)
    skip = 0.0
    new_queues = []
    for block, queue in zip(self.blocks, block_queues):
      h, s, queue = block(h, cond, queue, t)
      skip = skip + s
      new_queues.append(queue)
    return self._head(skip), (front_queue, tuple(new_queues))


def init_cache(net: Net, batch: int, dtype=jnp.float32):
  """Zero queues for `Net.step`: (front [B, k-1, R_c], per block [B, L_i, R_c])."""
  front = causal1d.init_queue(batch, net.kernel_size, 1,
                              net.residual_channels, dtype)
  blocks = tuple(causal1d.init_queue(batch, net.kernel_size, d,
                                     net.residual_channels, dtype)
                 for d in net.dilations)
  return front, blocks


def validate(config, dataset) -> None:
  """Checks ``config.model`` against itself and the loaded dataset."""
  m = config.model
  if m.likelihood not in LIKELIHOODS:
    raise ConfigError(f'config.model.likelihood={m.likelihood!r} is not one '
                      f'of {LIKELIHOODS}.')
  for field in ('residual_channels', 'gate_channels', 'skip_channels',
                'kernel_size', 'layers_per_stack', 'num_stacks'):
    if m[field] < 1:
      raise ConfigError(f'config.model.{field}={m[field]} must be >= 1.')
  if m.num_classes < 0:
    raise ConfigError(f'config.model.num_classes={m.num_classes} must be >= 0.')
  base.check_num_classes(m.num_classes, dataset)
  d = config.data
  if m.likelihood == 'bernoulli':
    pixels.check_data_config('bernoulli', d, dataset.pixel_levels)
    return
  if (d.binarize != 'none' or dataset.pixel_levels != NUM_LEVELS or
      d.dequantize or d.value_range != 'unit'):
    raise ConfigError(
        "config.model.likelihood='categorical' is a 256-way softmax on 8-bit "
        "values: set config.data.binarize='none', config.data.dequantize="
        "False and config.data.value_range='unit' (the model reads round(255 "
        f'x)); got binarize={d.binarize!r}, dequantize={d.dequantize}, '
        f'value_range={d.value_range!r} on {dataset.pixel_levels}-level data.')


def to_values(net: Net, images: jax.Array) -> jax.Array:
  """Preprocessed images [B, H, W, C] -> int32 sequences [B, T].

  'categorical': round(255 x) for x = v / 255 (exact for 8-bit v);
  'bernoulli': x in {0, 1}.
  """
  scale = 255.0 if net.likelihood == 'categorical' else 1.0
  values = jnp.round(images * scale).astype(jnp.int32)
  return values.reshape(values.shape[0], -1)


def _labels(net: Net, batch) -> jax.Array | None:
  return batch['label'] if net.num_classes else None


def init(key: jax.Array, batch, *, net: Net) -> Any:
  """Initial parameters for a (preprocessed) example batch."""
  return net.init(key, to_values(net, batch['image']),
                  _labels(net, batch))['params']


def sequence_log_prob(net: Net, logits: jax.Array,
                      values: jax.Array) -> jax.Array:
  """Per-position log p(x_t | x_{<t}): logits [B, T, O], values [B, T]."""
  if net.likelihood == 'categorical':
    return losses.categorical_log_prob(logits, values)
  return losses.bernoulli_log_prob(logits[..., 0], values)


def log_likelihood(params, batch, key, *, net: Net) -> jax.Array:
  """Exact log p(x) in nats: [B]. `key` is unused (no randomness)."""
  del key
  values = to_values(net, batch['image'])
  logits = net.apply({'params': params}, values, _labels(net, batch))
  return sequence_log_prob(net, logits, values).sum(-1)


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """Negative log-likelihood, the mean over unmasked examples.

  Returns (scalar, {'nll': [B] nats per example}).
  """
  del train
  nll = -log_likelihood(params, batch, key, net=net)
  return steps.masked_mean(nll, batch.get('mask')), {'nll': nll}


def _draw(net: Net, key: jax.Array, logits: jax.Array) -> jax.Array:
  """x_t [B] int32 from logits [B, O]."""
  if net.likelihood == 'categorical':
    return jax.random.categorical(key, logits).astype(jnp.int32)
  return jax.random.bernoulli(key, jax.nn.sigmoid(logits[:, 0])).astype(
      jnp.int32)


def sample_sequences(params, key, num: int, *, net: Net, labels=None,
                     method: str = 'cached'):
  """Ancestral samples and the logits they were drawn from.

  Step t draws x_t with ``jax.random.split(key, T)[t]`` in both methods, so
  'cached' and 'naive' give the same samples from the same key (up to a
  draw that float rounding of the logits could flip, see the tests).

  Returns:
    (values int32 [num, T], logits [num, T, num_outputs]).
  """
  if method not in SAMPLE_METHODS:
    raise ConfigError(f'method={method!r} is not one of {SAMPLE_METHODS}.')
  labels = base.default_labels(net.num_classes, num, labels)
  length = net.length
  keys = jax.random.split(key, length)
  variables = {'params': params}
  if method == 'cached':

    def body(carry, inputs):
      prev, cache = carry
      t, step_key = inputs
      logits, cache = net.apply(variables, prev, t, cache, labels,
                                method=Net.step)
      x = _draw(net, step_key, logits)
      return (x, cache), (x, logits)

    carry = (jnp.zeros((num,), jnp.int32), init_cache(net, num))
    _, (xs, logits) = jax.lax.scan(body, carry, (jnp.arange(length), keys))
    return xs.T, jnp.swapaxes(logits, 0, 1)

  def naive_body(t, carry):
    canvas, all_logits = carry
    logits = net.apply(variables, canvas, labels)[:, t]
    x = _draw(net, keys[t], logits)
    return canvas.at[:, t].set(x), all_logits.at[:, t].set(logits)

  carry = (jnp.zeros((num, length), jnp.int32),
           jnp.zeros((num, length, net.num_outputs), jnp.float32))
  return jax.lax.fori_loop(0, length, naive_body, carry)


def sample(params, key, num: int, *, net: Net, labels=None,
           method: str = 'cached'):
  """`num` sequences as uint8 images [num, H, W, C].

  'categorical' values are the 8-bit values; 'bernoulli' values are {0, 255}.
  A conditional WaveNet takes `labels` int [num] (default 0, 1, ...,
  cycling through the classes).
  """
  values, _ = sample_sequences(params, key, num, net=net, labels=labels,
                               method=method)
  if net.likelihood == 'bernoulli':
    values = values * 255
  return values.astype(jnp.uint8).reshape((num,) + tuple(net.image_shape))
