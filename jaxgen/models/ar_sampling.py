"""Ancestral sampling for convolutional autoregressive image models.

Two samplers over the raster order (rows, then columns, then the colour
channels R -> G -> B inside a pixel), both written with `lax` control flow
so they compile once:

- `sample_naive`: at each of the H*W*C positions, run the whole network on
  the current canvas and draw that position. O(H*W*C) full passes.
- `sample_cached`: the incremental scheme of Ramachandran et al., "Fast
  Generation for Convolutional Autoregressive Models", ICLR 2017 workshop
  (arXiv:1704.06001). Every convolution wider than 1x1 keeps a cache of its
  recent inputs (the last k_h // 2 + 1 rows of a masked k_h x k_w
  convolution's input, zero-padded at the sides); at pixel (i, j) only the
  activations of pixel (i, j) are computed, each from a window of its layer's
  cache. Models with a vertical stack (Gated PixelCNN) also compute one row
  of that stack after each image row, from row caches. Total work is about
  one forward pass of the image instead of H*W*C of them.

Both draw position p = (i * W + j) * C + c with the key ``fold_in(key, p)``
and the same `draw` function, so with equal logits they give equal samples.

A model plugs in through the layer operations of this module: it writes its
forward pass once against an ``ops`` object (`FullOps`, `PixelOps` or
`RowOps`) that applies its spatial convolutions either to whole images or
incrementally, from caches. 1x1 layers are applied directly (they need no
context).

Layer windows. An incremental layer exposes ``window()``: (rows, left, right):
the output at (i, j) reads input rows i - rows + 1 .. i and columns
j - left .. j + right (zeros outside the image), through
``layer.at(window [..., rows, left + 1 + right, F])`` (one position) and,
for row caches, ``layer.row(buffer [B, rows, W + left + right, F])`` (one
output row [B, 1, W, F']): see `jaxgen.nn.masked` (`MaskedConv2D`,
`VerticalStackConv`, `HorizontalStackConv`).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxgen import losses
from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.models import base

METHODS = ('cached', 'naive')


def window_of(layer) -> tuple[int, int, int]:
  """(rows, left, right) of an incremental layer (see the module docstring)."""
  return layer.window()


def _pad_canvas(canvas: jax.Array, rows: int, left: int,
                right: int) -> jax.Array:
  return jnp.pad(canvas, ((0, 0), (rows - 1, 0), (left, right), (0, 0)))


class FullOps:
  """Whole-image pass: layers applied to [B, H, W, F] feature maps."""

  def __init__(self, image: jax.Array):
    self.image = image

  def image_conv(self, layer) -> jax.Array:
    return layer(self.image)

  def conv(self, layer, x: jax.Array) -> jax.Array:
    return layer(x)


class PixelOps:
  """One pixel (i, j) of the incremental pass: features are [B, 1, 1, F].

  ``caches`` is a list of per-layer buffers [B, rows, W + left + right, F],
  consumed in call order (the first call of `conv` uses ``caches[0]``...);
  row `rows - 1` of each holds the current image row. With ``caches=None``
  zero buffers are made on the fly (to learn the caches' shapes). After the
  pass, ``self.caches`` holds the buffers with pixel (i, j) written.
  """

  def __init__(self, canvas: jax.Array, i, j, caches: list | None):
    self.canvas, self.i, self.j = canvas, i, j
    self.caches = None if caches is None else list(caches)
    self.new_caches: list[jax.Array] = []

  def image_conv(self, layer) -> jax.Array:
    rows, left, right = window_of(layer)
    padded = _pad_canvas(self.canvas, rows, left, right)
    b, _, _, c = self.canvas.shape
    window = jax.lax.dynamic_slice(padded, (0, self.i, self.j, 0),
                                   (b, rows, left + 1 + right, c))
    return layer.at(window)[:, None, None, :]

  def conv(self, layer, x: jax.Array) -> jax.Array:
    rows, left, right = window_of(layer)
    b, width, f = x.shape[0], self.canvas.shape[2], x.shape[-1]
    n = len(self.new_caches)
    if self.caches is None:
      buf = jnp.zeros((b, rows, width + left + right, f), x.dtype)
    else:
      buf = self.caches[n]
    buf = jax.lax.dynamic_update_slice(
        buf, x.reshape(b, 1, 1, f).astype(buf.dtype),
        (0, rows - 1, self.j + left, 0))
    self.new_caches.append(buf)
    window = jax.lax.dynamic_slice(buf, (0, 0, self.j, 0),
                                   (b, rows, left + 1 + right, f))
    return layer.at(window)[:, None, None, :]


def shift_rows(caches: list) -> list:
  """Starts a new image row in `PixelOps` caches: rows move up by one, the
  current row is zeroed."""
  return [jnp.concatenate([c[:, 1:], jnp.zeros_like(c[:, :1])], axis=1)
          for c in caches]


class RowOps:
  """One image row i of a pass over a vertical stack: features [B, 1, W, F].

  Like `PixelOps`, but each call of `conv` shifts its cache up by one row and
  writes the new input row, then computes the whole output row with
  ``layer.row``.
  """

  def __init__(self, canvas: jax.Array, i, caches: list | None):
    self.canvas, self.i = canvas, i
    self.caches = None if caches is None else list(caches)
    self.new_caches: list[jax.Array] = []

  def image_conv(self, layer) -> jax.Array:
    rows, left, right = window_of(layer)
    padded = _pad_canvas(self.canvas, rows, left, right)
    b, _, w, c = self.canvas.shape
    buf = jax.lax.dynamic_slice(padded, (0, self.i, 0, 0),
                                (b, rows, w + left + right, c))
    return layer.row(buf)

  def conv(self, layer, x: jax.Array) -> jax.Array:
    rows, left, right = window_of(layer)
    b, _, width, f = x.shape
    n = len(self.new_caches)
    if self.caches is None:
      buf = jnp.zeros((b, rows, width + left + right, f), x.dtype)
    else:
      buf = self.caches[n]
    new_row = jnp.pad(x.astype(buf.dtype), ((0, 0), (0, 0), (left, right),
                                            (0, 0)))
    buf = jnp.concatenate([buf[:, 1:], new_row], axis=1)
    self.new_caches.append(buf)
    return layer.row(buf)


def check_method(method: str) -> None:
  if method not in METHODS:
    raise ConfigError(f'method={method!r} is not one of {METHODS}.')


def position_key(key: jax.Array, i, j, c, width: int,
                 channels: int) -> jax.Array:
  """The key of raster position (i, j, c): fold_in(key, (i*W + j)*C + c)."""
  return jax.random.fold_in(key, (i * width + j) * channels + c)


def known_positions(observed_mask, image_shape) -> jax.Array:
  """bool [H, W, C] from an observed mask [H, W] or [H, W, C] (or None)."""
  shape = tuple(image_shape)
  if observed_mask is None:
    return jnp.zeros(shape, bool)
  m = jnp.asarray(observed_mask, bool)
  if m.shape == shape[:2]:
    m = m[..., None]
  if m.shape not in (shape[:2] + (1,), shape):
    raise ConfigError(f'observed_mask must have shape {shape[:2]} or {shape}, '
                      f'got {m.shape}.')
  return jnp.broadcast_to(m, shape)


Draw = Callable[[jax.Array, jax.Array], jax.Array]


def sample_naive(logits_fn: Callable[[jax.Array], jax.Array], draw: Draw,
                 key: jax.Array, canvas: jax.Array,
                 known: jax.Array) -> jax.Array:
  """Ancestral sampling with one full forward pass per position.

  Args:
    logits_fn: canvas [B, H, W, C] -> logits [B, H, W, C, ...] (causal).
    draw: (key, logits [B, ...]) -> values [B] in the canvas's encoding.
    key: sampling key; position p uses `position_key`.
    canvas: float [B, H, W, C], the starting canvas (observed values where
      `known`, anything elsewhere).
    known: bool [H, W, C]: positions kept from `canvas` (not drawn, and the
      network is not run for them).

  Returns:
    The filled canvas [B, H, W, C].
  """
  _, h, w, c = canvas.shape

  def body(p, canvas):
    i, rem = jnp.divmod(p, w * c)
    j, ch = jnp.divmod(rem, c)

    def draw_here(canvas):
      logits = logits_fn(canvas)
      here = jax.lax.dynamic_index_in_dim(logits, i, 1, keepdims=False)
      here = jax.lax.dynamic_index_in_dim(here, j, 1, keepdims=False)
      here = jax.lax.dynamic_index_in_dim(here, ch, 1, keepdims=False)
      value = draw(position_key(key, i, j, ch, w, c), here)
      return canvas.at[:, i, j, ch].set(value.astype(canvas.dtype))

    return jax.lax.cond(known[i, j, ch], lambda x: x, draw_here, canvas)

  return jax.lax.fori_loop(0, h * w * c, body, canvas)


def sample_cached(pixel_fn: Callable[..., tuple[Any, jax.Array]],
                  end_row_fn: Callable[..., Any], state: Any, draw: Draw,
                  key: jax.Array, canvas: jax.Array,
                  known: jax.Array) -> jax.Array:
  """Ancestral sampling with incremental (cached) passes.

  Args:
    pixel_fn: (state, canvas, i, j) -> (state', logits [B, C, ...]): the
      model's outputs at pixel (i, j) from its caches (`PixelOps`). Called
      once per colour channel; the state of the last call is kept.
    end_row_fn: (state, canvas, i) -> state': after row i is complete (shift
      the pixel caches, compute a vertical stack's row...).
    state: the initial state (zero caches).
    draw, key, canvas, known: as for `sample_naive`.

  Returns:
    The filled canvas [B, H, W, C].
  """
  _, h, w, c = canvas.shape

  def row(i, carry):
    canvas, state = carry

    def col(carry, j):
      canvas, state = carry
      new_state = state
      for ch in range(c):
        new_state, logits = pixel_fn(state, canvas, i, j)
        value = draw(position_key(key, i, j, ch, w, c), logits[:, ch])
        value = jnp.where(known[i, j, ch], canvas[:, i, j, ch],
                          value.astype(canvas.dtype))
        canvas = canvas.at[:, i, j, ch].set(value)
      return (canvas, new_state), None

    (canvas, state), _ = jax.lax.scan(col, (canvas, state), jnp.arange(w))
    return canvas, end_row_fn(state, canvas, i)

  return jax.lax.fori_loop(0, h, row, (canvas, state))[0]


def teacher_forced(pixel_fn: Callable[..., tuple[Any, jax.Array]],
                   end_row_fn: Callable[..., Any], state: Any,
                   x: jax.Array) -> jax.Array:
  """The logits the cached passes give for a fixed image x [B, H, W, C].

  The passes of `sample_cached` with the canvas held at x (one pass per
  pixel: by causality its logits for every channel are those the sampler
  would use). Returns [B, H, W, C, ...], to compare with the full network.
  """
  w = x.shape[2]

  def row(state, i):
    state, logits = jax.lax.scan(lambda s, j: pixel_fn(s, x, i, j), state,
                                 jnp.arange(w))
    return end_row_fn(state, x, i), logits

  _, logits = jax.lax.scan(row, state, jnp.arange(x.shape[1]))
  return jnp.moveaxis(logits, 2, 0)  # [H, W, B, ...] -> [B, H, W, ...]


def draw_bernoulli(key: jax.Array, logits: jax.Array) -> jax.Array:
  """{0., 1.} [B] with P(1) = sigmoid(logits) [B]."""
  u = jax.random.uniform(key, logits.shape, logits.dtype)
  return (u < jax.nn.sigmoid(logits)).astype(logits.dtype)


def draw_categorical(key: jax.Array, logits: jax.Array) -> jax.Array:
  """Level k / 255 [B] ('unit' scale), P(k) = softmax(logits [B, 256])_k."""
  level = jax.random.categorical(key, logits, axis=-1)
  return level.astype(logits.dtype) / 255.0


# ----------------------------------------------------------- pixel models
# The two discrete observation models of the PixelCNN family, shared by the
# models that use this module.
#
# - 'bernoulli': binary images, model input x in {0, 1} (config.data:
#   binarize 'dynamic' or 'fixed', value_range 'unit'); one logit per
#   sub-pixel.
# - 'categorical': 8-bit images, model input x = pixel / 255 (config.data:
#   binarize 'none', dequantize False, value_range 'unit'); 256 logits per
#   sub-pixel. The integer pixel is recovered exactly as round(255 x): x is
#   k / 255 in float32, whose error (< 2^-24 relative) is far below 1/510.

AR_LIKELIHOODS = ('bernoulli', 'categorical')
NUM_LEVELS = 256


def num_outputs(likelihood: str) -> int:
  """Outputs per sub-pixel: 1 logit (Bernoulli) or 256 (categorical)."""
  check_likelihood(likelihood)
  return 1 if likelihood == 'bernoulli' else NUM_LEVELS


def check_likelihood(likelihood: str) -> None:
  if likelihood not in AR_LIKELIHOODS:
    raise ConfigError(f'config.model.likelihood={likelihood!r} is not one of '
                      f'{AR_LIKELIHOODS}.')


def check_data_config(likelihood: str, data_config, pixel_levels: int) -> None:
  """Raises `ConfigError` naming the field when the data do not fit."""
  check_likelihood(likelihood)
  if data_config.value_range != 'unit':
    raise ConfigError(
        f'config.model.likelihood={likelihood!r} needs '
        f"config.data.value_range='unit', got {data_config.value_range!r}.")
  if data_config.dequantize:
    raise ConfigError(
        'config.data.dequantize must be False: an autoregressive model with '
        f'likelihood={likelihood!r} is discrete.')
  binary = data_config.binarize != 'none' or pixel_levels == 2
  if likelihood == 'bernoulli' and not binary:
    raise ConfigError(
        "config.model.likelihood='bernoulli' models binary pixels: set "
        "config.data.binarize to 'dynamic' or 'fixed'.")
  if likelihood == 'categorical' and binary:
    raise ConfigError(
        "config.model.likelihood='categorical' models 256 levels: set "
        "config.data.binarize='none' (or use likelihood='bernoulli').")


# Shared with every conditional family; kept here for the PixelCNN modules.
check_num_classes = base.check_num_classes


def check_output_features(widths, channels: int) -> None:
  for w in widths:
    if w <= 0 or w % channels:
      raise ConfigError(
          f'config.model.output_features={tuple(widths)}: each width must be '
          f'a positive multiple of {channels} (colour groups).')


def split_logits(likelihood: str, out: jax.Array, channels: int) -> jax.Array:
  """[..., C * K] grouped outputs -> [..., C] (Bernoulli) or [..., C, 256]."""
  if likelihood == 'bernoulli':
    return out
  return out.reshape(out.shape[:-1] + (channels, NUM_LEVELS))


def log_prob(likelihood: str, logits: jax.Array, x: jax.Array) -> jax.Array:
  """log p(x) [B] in nats, summed over pixels and channels.

  Args:
    likelihood: 'bernoulli' or 'categorical'.
    logits: [B, H, W, C] or [B, H, W, C, 256].
    x: the model input [B, H, W, C] ({0, 1}, or pixel / 255).
  """
  if likelihood == 'bernoulli':
    lp = losses.bernoulli_log_prob(logits, x)
  else:
    lp = losses.categorical_log_prob(logits, pixel_levels(x))
  return lp.reshape(lp.shape[0], -1).sum(-1)


def nll_loss(likelihood: str, logits: jax.Array, x: jax.Array,
             mask: jax.Array | None) -> tuple[jax.Array, dict[str, Any]]:
  """The loss of an exact autoregressive model and its per-example metrics.

  Returns:
    (mean NLL over the unmasked rows, {'nll': [B] nats, 'bits_per_dim':
    [B]}), the NLL being ``-log_prob(likelihood, logits, x)``.
  """
  nll = -log_prob(likelihood, logits, x)
  metrics = {'nll': nll,
             'bits_per_dim': losses.nats_to_bits_per_dim(nll, x[0].size)}
  return steps.masked_mean(nll, mask), metrics


def pixel_levels(x: jax.Array) -> jax.Array:
  """The integer pixel int32 [...] of a 'unit'-scaled input x = pixel / 255."""
  return jnp.round(x * 255.0).astype(jnp.int32)


def draw_fn(likelihood: str) -> Draw:
  return draw_bernoulli if likelihood == 'bernoulli' else draw_categorical


def encode_images(likelihood: str, images) -> jax.Array:
  """uint8 images [..., H, W, C] -> model input (Bernoulli: pixel >= 128)."""
  images = jnp.asarray(images)
  if likelihood == 'bernoulli':
    return (images >= 128).astype(jnp.float32)
  return images.astype(jnp.float32) / 255.0


def decode_images(likelihood: str, x: jax.Array) -> jax.Array:
  """Model input [..., H, W, C] -> uint8 (Bernoulli {0, 255})."""
  del likelihood  # both encodings are pixel / 255
  return jnp.round(x * 255.0).astype(jnp.uint8)


def sample_labels(num_classes: int, num: int, labels) -> jax.Array | None:
  """Labels for `num` conditional samples; default 0, 1, ... cycling."""
  if not num_classes:
    if labels is not None:
      raise ConfigError('labels given to an unconditional model '
                        '(config.model.num_classes=0).')
    return None
  if labels is None:
    return jnp.arange(num) % num_classes
  labels = jnp.asarray(labels, jnp.int32)
  if labels.shape != (num,):
    raise ConfigError(f'labels must have shape ({num},), got {labels.shape}.')
  return labels


def start_canvas(likelihood: str, image_shape, num: int, observed,
                 observed_mask) -> tuple[jax.Array, jax.Array]:
  """(canvas float [num, H, W, C], known bool [H, W, C]) for a sampler."""
  shape = (num,) + tuple(image_shape)
  known = known_positions(observed_mask, image_shape)
  if observed is None:
    if observed_mask is not None:
      raise ConfigError('observed_mask needs observed images.')
    return jnp.zeros(shape, jnp.float32), known
  if observed_mask is None:
    raise ConfigError('observed images need an observed_mask.')
  observed = jnp.asarray(observed)
  if observed.dtype != jnp.uint8:
    raise ConfigError(f'observed must be uint8 images (as `sample` returns), '
                      f'got {observed.dtype}.')
  if observed.shape != shape:
    raise ConfigError(f'observed must have shape {shape}, got '
                      f'{observed.shape}.')
  canvas = encode_images(likelihood, observed)
  return jnp.where(known, canvas, 0.0), known


# ------------------------------------------------- known prefixes and grids
# What an autoregressive model gives exactly beside log p(x): the
# conditional of the pixels after a known raster prefix (completion of a
# raster suffix), and weighted sums of per-pixel log-probabilities (the
# pixels off a known sub-grid in `jaxgen.models.multiscale_pixelcnn`).


def raster_prefix_mask(image_shape, num_known: int) -> jax.Array:
  """bool [H, W]: True at the first `num_known` pixels in raster order.

  Raises:
    ConfigError: unless 0 <= num_known <= H * W.
  """
  h, w = tuple(image_shape)[:2]
  if not isinstance(num_known, int) or not 0 <= num_known <= h * w:
    raise ConfigError(f'num_known={num_known!r} must be an int in '
                      f'[0, {h * w}] (pixels of a {h}x{w} image).')
  return (jnp.arange(h * w) < num_known).reshape(h, w)


def log_prob_map(likelihood: str, logits: jax.Array,
                 x: jax.Array) -> jax.Array:
  """log p of every sub-pixel [B, H, W, C] in nats (summed: `log_prob`)."""
  if likelihood == 'bernoulli':
    return losses.bernoulli_log_prob(logits, x)
  return losses.categorical_log_prob(logits, pixel_levels(x))


def weighted_log_prob(likelihood: str, logits: jax.Array, x: jax.Array,
                      weights: jax.Array) -> jax.Array:
  """sum over pixels of weights [H, W] * log p(pixel) [B] in nats.

  With weights 0 on a known raster prefix and 1 after it, this is the exact
  conditional log p(suffix | prefix): every suffix pixel's conditional
  reads the prefix and the earlier suffix pixels only.
  """
  lp = log_prob_map(likelihood, logits, x)
  lp = lp * jnp.asarray(weights, lp.dtype)[None, :, :, None]
  return lp.reshape(lp.shape[0], -1).sum(-1)
