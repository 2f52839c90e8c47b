"""PixelCNN: masked convolutions, residual blocks, optional class conditioning.

van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks",
ICML 2016: §3.4-3.5 (masked convolutions, mask A for the first layer and
mask B after it), Fig. 2 (R -> G -> B channel groups), Fig. 5 (the residual
block) and Table 4 (architecture). The class-conditional variant adds a
learned per-class bias in every layer, as the conditional Gated PixelCNN of
van den Oord et al., NeurIPS 2016 (eq. 4 with h a one-hot label).

Model, in raster order with channels R -> G -> B inside a pixel:

    p(x) = prod_{i, j, c} p(x[i, j, c] | x[< (i, j)], x[i, j, < c])

Network (features h, colour groups C = image channels):

    7x7 conv, mask A, C -> h
    num_blocks x [ReLU, 1x1 h -> h/2, ReLU, k x k mask B h/2 -> h/2, ReLU,
                  1x1 h/2 -> h, + identity]
    for each f in output_features: ReLU, 1x1 -> f
    ReLU, 1x1 -> C * K

All 1x1 layers are mask-B convolutions (with C = 3 they keep the colour
groups apart); K = 1 Bernoulli logit for binary images, K = 256 softmax
logits for 8-bit images. The reference binary 28x28 model (h = 128, 12
blocks, output_features = (128,)) has 665,089 parameters.

Likelihood: log p(x) = sum over sub-pixels of log sigma(+-logit) (Bernoulli,
from logits) or log_softmax(logits)[x] (categorical, with the integer pixel
recovered as round(255 x) from the 'unit'-scaled input); exact, in nats.

Sampling (`sample`): ancestral, in raster order, either naive (a full pass
per position) or cached (Ramachandran et al., arXiv:1704.06001: per-layer
caches of past inputs, only the new pixel computed; `ar_sampling`), with
completion of partly observed images. `complete` keeps a known raster
prefix and samples the rest from the exact conditionals;
`conditional_log_likelihood` is the exact log p(rest | prefix).
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.errors import ConfigError
from jaxgen.models import ar_sampling as ars
from jaxgen.nn import initializers as inits
from jaxgen.nn import masked

LIKELIHOOD = 'exact'


class Net(nn.Module):
  """The PixelCNN; fields are ``config.model``.

  Attributes:
    image_shape: (H, W, C); C = 1 (grey/binary) or 3 (RGB, R -> G -> B).
    likelihood: 'bernoulli' (binary images) or 'categorical' (256 levels).
    features: h, the residual stream width (a multiple of 2 * C).
    num_blocks: residual blocks.
    input_kernel: size of the first (mask A) convolution.
    block_kernel: size of the mask-B convolution inside each block.
    output_features: widths of the hidden 1x1 output layers.
    num_classes: > 0 makes the model class-conditional (a learned bias per
      class in every layer); 0 is unconditional.
  """
  image_shape: Sequence[int] = (28, 28, 1)
  likelihood: str = 'bernoulli'
  features: int = 128
  num_blocks: int = 12
  input_kernel: int = 7
  block_kernel: int = 3
  output_features: Sequence[int] = (128,)
  num_classes: int = 0

  def setup(self):
    c = self.image_shape[-1]
    f, half = self.features, self.features // 2
    conv = functools.partial(masked.MaskedConv2D, color_channels=c)
    self.input_conv = conv(f, self.input_kernel, 'A')
    self.block_in = [conv(half, 1, 'B') for _ in range(self.num_blocks)]
    self.block_mid = [conv(half, self.block_kernel, 'B')
                      for _ in range(self.num_blocks)]
    self.block_out = [conv(f, 1, 'B') for _ in range(self.num_blocks)]
    widths = tuple(self.output_features) + (
        c * ars.num_outputs(self.likelihood),)
    self.output_convs = [conv(w, 1, 'B') for w in widths]
    if self.num_classes:
      layer_widths = (f,) + (half, half, f) * self.num_blocks + widths
      self.class_bias = [
          inits.Embed(self.num_classes, w, embedding_init=nn.initializers.zeros)
          for w in layer_widths]

  def _forward(self, ops, labels: jax.Array | None) -> jax.Array:
    """The network against `ops` (`ar_sampling` FullOps / PixelOps)."""
    if self.num_classes:
      biases = iter([b(labels)[:, None, None, :] for b in self.class_bias])
    else:
      biases = iter(lambda: 0.0, None)
    h = ops.image_conv(self.input_conv) + next(biases)
    for b in range(self.num_blocks):
      r = self.block_in[b](nn.relu(h)) + next(biases)
      r = ops.conv(self.block_mid[b], nn.relu(r)) + next(biases)
      r = self.block_out[b](nn.relu(r)) + next(biases)
      h = h + r
    for layer in self.output_convs:
      h = layer(nn.relu(h)) + next(biases)
    return ars.split_logits(self.likelihood, h, self.image_shape[-1])

  def __call__(self, x: jax.Array,
               labels: jax.Array | None = None) -> jax.Array:
    """x [B, H, W, C] -> logits [B, H, W, C] (Bernoulli) or [B, H, W, C, 256].

    The logits at (i, j, c) depend only on x[< (i, j)] and x[i, j, < c].
    """
    return self._forward(ars.FullOps(x), labels)

  def pixel_logits(self, caches, canvas: jax.Array, i, j,
                   labels: jax.Array | None = None):
    """Incremental pass at pixel (i, j): (caches', logits [B, C(, 256)]).

    `caches` are the per-layer input rows of the spatial mask-B convolutions
    (None: make zero caches; see `ar_sampling.PixelOps`); the first layer
    reads the canvas [B, H, W, C] directly.
    """
    ops = ars.PixelOps(canvas, i, j, caches)
    logits = self._forward(ops, labels)
    return ops.new_caches, logits[:, 0, 0]


def validate(config, dataset) -> None:
  """Checks ``config.model`` against itself and the loaded dataset."""
  m = config.model
  ars.check_likelihood(m.likelihood)
  channels = m.image_shape[-1]
  if channels not in (1, 3):
    raise ConfigError(f'config.model.image_shape={tuple(m.image_shape)}: '
                      'PixelCNN models 1 or 3 channels.')
  if m.features <= 0 or m.features % (2 * channels):
    raise ConfigError(f'config.model.features={m.features} must be a positive '
                      f'multiple of 2 * channels = {2 * channels} (the blocks '
                      'halve it; colour groups split it).')
  ars.check_output_features(m.output_features, channels)
  for name in ('input_kernel', 'block_kernel'):
    k = m[name]
    if k < 1 or k % 2 == 0:
      raise ConfigError(f'config.model.{name}={k} must be odd and positive.')
  if m.num_blocks < 0:
    raise ConfigError(f'config.model.num_blocks={m.num_blocks} must be >= 0.')
  ars.check_num_classes(m.num_classes, dataset)
  ars.check_data_config(m.likelihood, config.data, dataset.pixel_levels)


def _labels(net: Net, batch) -> jax.Array | None:
  return batch['label'] if net.num_classes else None


def init(key: jax.Array, batch, *, net: Net) -> Any:
  """Initial parameters for a (preprocessed) example batch."""
  return net.init(key, batch['image'], _labels(net, batch))['params']


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """Mean negative log-likelihood (nats per image) over unmasked rows.

  Args:
    params: the Net's parameters.
    batch: {'image': float [B, H, W, C] ({0, 1} or pixel / 255), 'label':
      int [B], optional 'mask': bool [B]}.
    key: unused (the model is deterministic); part of the contract.
    net: the Net.
    train: unused (no dropout).

  Returns:
    (scalar loss, {'nll': [B] nats, 'bits_per_dim': [B]}).
  """
  del key, train
  x = batch['image']
  logits = net.apply({'params': params}, x, _labels(net, batch))
  return ars.nll_loss(net.likelihood, logits, x, batch.get('mask'))


def log_likelihood(params, batch, key, *, net: Net) -> jax.Array:
  """Exact log p(x) [B] in nats, on the data the model sees."""
  del key
  x = batch['image']
  logits = net.apply({'params': params}, x, _labels(net, batch))
  return ars.log_prob(net.likelihood, logits, x)


def sample(params, key, num: int, *, net: Net, labels=None, observed=None,
           observed_mask=None, method: str = 'cached'):
  """`num` images by ancestral sampling: uint8 [num, H, W, C].

  Args:
    params: the Net's parameters.
    key: position p = (i W + j) C + c is drawn with fold_in(key, p).
    num: number of images.
    net: the Net.
    labels: int [num] for a class-conditional model (default 0, 1, ...
      cycling through the classes).
    observed: uint8 [num, H, W, C] images to complete (Bernoulli models read
      pixel >= 128 as 1); positions where `observed_mask` is True are kept
      exactly and the others are sampled in raster order conditioned on them
      (e.g. the bottom half given the top).
    observed_mask: bool [H, W] (or [H, W, C]).
    method: 'cached' (incremental, Ramachandran et al. 2017) or 'naive' (a
      full network pass per position). Same key, same samples.
  """
  ars.check_method(method)
  labels = ars.sample_labels(net.num_classes, num, labels)
  canvas, known = ars.start_canvas(net.likelihood, net.image_shape, num,
                                   observed, observed_mask)
  out = _sample(params, key, labels, canvas, known, net=net, method=method)
  return ars.decode_images(net.likelihood, out)


def complete(params, x, num_known: int, key, *, net: Net, labels=None,
             method: str = 'cached'):
  """Completes images whose first `num_known` pixels (raster order) are known.

  The known prefix is kept exactly and the rest is drawn in raster order
  from the model's exact conditionals p(x_i | x_<i): a sample of
  p(suffix | prefix). Pure: same key, same completions.

  Args:
    params: the Net's parameters.
    x: uint8 [B, H, W, C] images (Bernoulli models read pixel >= 128 as 1);
      only their first `num_known` pixels are read.
    num_known: pixels of the known prefix, in [0, H * W] ((H // 2) * W:
      the top half).
    key: the sampling key (as `sample`).
    net: the Net.
    labels: int [B] for a class-conditional model (default 0, 1, ...).
    method: 'cached' or 'naive' (as `sample`).

  Returns:
    uint8 [B, H, W, C]: the prefix of x (encoded and decoded: {0, 255} for
    a Bernoulli model) followed by the sampled suffix.
  """
  mask = ars.raster_prefix_mask(net.image_shape, num_known)
  return sample(params, key, jnp.shape(x)[0], net=net, labels=labels,
                observed=x, observed_mask=mask, method=method)


def conditional_log_likelihood(params, batch, num_known: int, *,
                               net: Net) -> jax.Array:
  """Exact log p(suffix | prefix) [B] in nats: the pixels after the first
  `num_known` (raster order) given those, from one network pass (batch as
  for `loss_fn`)."""
  weights = ~ars.raster_prefix_mask(net.image_shape, num_known)
  x = batch['image']
  logits = net.apply({'params': params}, x, _labels(net, batch))
  return ars.weighted_log_prob(net.likelihood, logits, x, weights)


def _cached_fns(params, labels, canvas, *, net: Net):
  """(pixel_fn, end_row_fn, initial caches) for `ar_sampling.sample_cached`."""
  variables = {'params': params}

  def pixel_fn(caches, canvas, i, j):
    return net.apply(variables, caches, canvas, i, j, labels,
                     method=Net.pixel_logits)

  def end_row_fn(caches, canvas, i):
    del canvas, i
    return ars.shift_rows(caches)

  shapes = jax.eval_shape(lambda: pixel_fn(None, canvas, 0, 0)[0])
  caches = [jnp.zeros(s.shape, s.dtype) for s in shapes]
  return pixel_fn, end_row_fn, caches


@functools.partial(jax.jit, static_argnames=('net', 'method'))
def _sample(params, key, labels, canvas, known, *, net: Net, method: str):
  draw = ars.draw_fn(net.likelihood)
  if method == 'naive':
    return ars.sample_naive(
        lambda x: net.apply({'params': params}, x, labels), draw, key, canvas,
        known)
  pixel_fn, end_row_fn, caches = _cached_fns(params, labels, canvas, net=net)
  return ars.sample_cached(pixel_fn, end_row_fn, caches, draw, key, canvas,
                           known)


@functools.partial(jax.jit, static_argnames=('net',))
def incremental_logits(params, x, labels=None, *, net: Net):
  """Logits of image x [B, H, W, C] computed by the cached sampler's passes.

  Runs the incremental (cached) computation over a given image instead of
  sampling: equal to ``net.apply(params, x)`` up to float rounding. Shows
  that the caches compute the same function as the full network.
  """
  pixel_fn, end_row_fn, caches = _cached_fns(params, labels, x, net=net)
  return ars.teacher_forced(pixel_fn, end_row_fn, caches, x)
