"""Gated PixelCNN: vertical and horizontal gated stacks, no blind spot.

van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu,
"Conditional Image Generation with PixelCNN Decoders", NeurIPS 2016: §2.1-2.3,
Fig. 2 (one gated layer), eq. 2 (gated unit) and eq. 4 (conditioning).

Layer l (p features, kernel k; the first layer uses `input_kernel`):

    v_pre = V_l * v + c_l                      (k//2+1 x k, rows <= i)
    v'    = tanh(v_pre_f) . sigmoid(v_pre_g)
    h_pre = H_l * h + L_l down_shift(v_pre) + c_l   (1 x k//2+1, cols <= j)
    g     = tanh(h_pre_f) . sigmoid(h_pre_g)
    h'    = h + R_l g        (no identity at l = 0: h is the image there)
    skip += S_l g            (with use_skip)

`down_shift` moves the vertical stack one row down, so the horizontal stack
at (i, j) sees rows < i through it (every column within the vertical
receptive field: no blind spot, unlike PixelCNN's masked k x k stack) and
row i left of j through its own convolution (mask 'A' on the image at l = 0,
'B' after). c_l = C_l^T y is the conditioning (y: a one-hot label and/or an
arbitrary vector), added in every layer to both stacks. Output:
ReLU, 1x1 layers (`output_features`), ReLU, 1x1 -> C * K logits, K = 1
(Bernoulli) or 256 (softmax per sub-pixel).

Colour (C = 3): every feature map of the horizontal stack is split into
contiguous R | G | B groups; the centre taps and the 1x1 layers are masked
so group g at (i, j) sees x[i, j, < g] only, and the gate splits each group
into its f and g halves. The vertical stack only carries rows above, which
every group may see.

Likelihood, sampling (naive and cached, with completion): as `pixelcnn`.
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


def gate(x: jax.Array, groups: int = 1) -> jax.Array:
  """tanh(f) * sigmoid(g): [..., 2F] -> [..., F], per colour group.

  The input is `groups` contiguous blocks; block b = [f_b, g_b] (halves), and
  the output block b is tanh(f_b) * sigmoid(g_b), so colour groups stay apart.
  """
  shape = x.shape[:-1]
  x = x.reshape(shape + (groups, 2, x.shape[-1] // (2 * groups)))
  out = jnp.tanh(x[..., 0, :]) * jax.nn.sigmoid(x[..., 1, :])
  return out.reshape(shape + (-1,))


class Net(nn.Module):
  """The Gated PixelCNN; fields are ``config.model``.

  Attributes:
    image_shape: (H, W, C); C = 1 or 3 (R -> G -> B).
    likelihood: 'bernoulli' or 'categorical' (256 levels).
    features: p, channels of each stack (a multiple of C).
    num_layers: gated layers.
    input_kernel: k of the first gated layer (on the image).
    kernel_size: k of the later gated layers.
    output_features: widths of the hidden 1x1 output layers.
    use_skip: sum skip connections from every layer into the output
      (otherwise the output reads the last horizontal stack).
    num_classes: > 0: class-conditional (one-hot label as conditioning).
    cond_dim: > 0: conditional on an arbitrary vector cond [B, cond_dim]
      (passed as ``cond``; may be combined with labels).
    cond_spatial: ``cond`` is a map [B, H, W, cond_dim] instead, projected
      by a 1x1 convolution into every layer at every position (the paper's
      location-dependent conditioning, eq. 5: V * s with s = m(h)). It must
      not depend on the image being modelled (it is not masked).
    num_levels: 'categorical' only: levels >= num_levels get the logit
      `MASKED_LOGIT`, so they carry no probability and are never drawn (a
      prior over K < 256 codes); 256 leaves the softmax whole.
    crop_input: the first layer's kernels hold only what a k x k mask 'A'
      reaches (1 channel only): the vertical one k//2 rows (rows i - k//2
      .. i - 1 after `down_shift`; otherwise k//2 + 1, one row more), the
      horizontal one the k//2 columns left of j (no all-zero centre tap).
      With ``use_skip=False`` and ``output_features=(features,)`` this is,
      parameter for parameter, the cropped-kernel layout of the PyTorch
      peer of `experiments.bench_peers`.
  """
  image_shape: Sequence[int] = (28, 28, 1)
  likelihood: str = 'bernoulli'
  features: int = 64
  num_layers: int = 10
  input_kernel: int = 7
  kernel_size: int = 3
  output_features: Sequence[int] = (128,)
  use_skip: bool = True
  num_classes: int = 0
  cond_dim: int = 0
  cond_spatial: bool = False
  num_levels: int = ars.NUM_LEVELS
  crop_input: bool = False

  def setup(self):
    c, p = self.image_shape[-1], self.features
    kernels = [self.input_kernel] + [self.kernel_size] * (self.num_layers - 1)
    crop = [self.crop_input] + [False] * (self.num_layers - 1)
    self.vconv = [masked.VerticalStackConv(2 * p, k, rows=k // 2 if cut else 0)
                  for k, cut in zip(kernels, crop)]
    self.hconv = [masked.HorizontalStackConv(2 * p, k, 'A' if l == 0 else 'B',
                                             color_channels=c, crop_centre=cut)
                  for l, (k, cut) in enumerate(zip(kernels, crop))]
    self.link = [inits.Dense(2 * p) for _ in kernels]
    self.res = [masked.MaskedConv2D(p, 1, 'B', color_channels=c)
                for _ in kernels]
    if self.use_skip:
      self.skip = [masked.MaskedConv2D(p, 1, 'B', color_channels=c)
                   for _ in kernels]
    if self.num_classes or self.cond_dim:
      self.cond_proj = [inits.Dense(2 * p, use_bias=False) for _ in kernels]
    widths = tuple(self.output_features) + (
        c * ars.num_outputs(self.likelihood),)
    self.output_convs = [masked.MaskedConv2D(w, 1, 'B', color_channels=c)
                         for w in widths]

  def _cond_biases(self, labels, cond) -> list:
    """Per layer [B, 1, 1, 2p], or [B, h, w, 2p] for a spatial cond map
    [B, h, w, cond_dim] (the whole map, a row or a pixel of it); 0.0 for an
    unconditional model."""
    parts = []
    if self.num_classes:
      parts.append(jax.nn.one_hot(labels, self.num_classes)[:, None, None, :])
    if self.cond_dim:
      cond = jnp.asarray(cond, jnp.float32)
      parts.append(cond if self.cond_spatial else cond[:, None, None, :])
    if not parts:
      return [0.0] * self.num_layers
    spatial = jnp.broadcast_shapes(*(x.shape[:3] for x in parts))
    y = jnp.concatenate([jnp.broadcast_to(x, spatial + x.shape[3:])
                         for x in parts], axis=-1)
    return [proj(y) for proj in self.cond_proj]

  def _cond_at(self, cond, i, j=None):
    """A spatial cond map's row i (or pixel (i, j)); other conds unchanged."""
    if not (self.cond_dim and self.cond_spatial):
      return cond
    row = jax.lax.dynamic_slice_in_dim(cond, i, 1, axis=1)
    return row if j is None else jax.lax.dynamic_slice_in_dim(row, j, 1,
                                                              axis=2)

  def _vertical(self, ops, biases) -> list[jax.Array]:
    """The vertical stack's pre-activations v_pre, one per layer."""
    pres, v = [], None
    for l in range(self.num_layers):
      pre = (ops.image_conv(self.vconv[0]) if l == 0 else
             ops.conv(self.vconv[l], v)) + biases[l]
      pres.append(pre)
      v = gate(pre)
    return pres

  def _horizontal(self, ops, links, biases) -> jax.Array:
    """Horizontal stack and output layers; links[l] = down_shift(v_pre_l)."""
    groups = self.image_shape[-1]
    h, skip = None, 0.0
    for l in range(self.num_layers):
      pre = (ops.image_conv(self.hconv[0]) if l == 0 else
             ops.conv(self.hconv[l], h))
      g = gate(pre + self.link[l](links[l]) + biases[l], groups)
      if self.use_skip:
        skip = skip + self.skip[l](g)
      r = self.res[l](g)
      h = r if l == 0 else h + r
    out = skip if self.use_skip else h
    for layer in self.output_convs:
      out = layer(nn.relu(out))
    logits = ars.split_logits(self.likelihood, out, groups)
    if self.likelihood == 'categorical' and self.num_levels < ars.NUM_LEVELS:
      # Here, so the full pass and the cached sampler both see it.
      valid = jnp.arange(ars.NUM_LEVELS) < self.num_levels
      logits = jnp.where(valid, logits, MASKED_LOGIT)
    return logits

  def __call__(self, x: jax.Array, labels: jax.Array | None = None,
               cond: jax.Array | None = None) -> jax.Array:
    """x [B, H, W, C] -> logits [B, H, W, C] (Bernoulli) or [B, H, W, C, 256].

    The logits at (i, j, c) depend on every x[< (i, j)] in the receptive
    field and on x[i, j, < c], and on nothing else.
    """
    biases = self._cond_biases(labels, cond)
    ops = ars.FullOps(x)
    links = [masked.down_shift(v) for v in self._vertical(ops, biases)]
    return self._horizontal(ops, links, biases)

  def pixel_logits(self, state, canvas: jax.Array, i, j,
                   labels: jax.Array | None = None,
                   cond: jax.Array | None = None):
    """Horizontal stack at pixel (i, j) from caches: (state', [B, C(, 256)]).

    state = (h_caches, v_caches, v_rows): the horizontal convolutions' input
    caches (`ar_sampling.PixelOps`), the vertical ones' row caches
    (`ar_sampling.RowOps`) and v_pre of row i - 1 for every layer
    ([B, 1, W, 2p]; zeros for row 0, as `down_shift` gives).
    """
    h_caches, v_caches, v_rows = state
    links = [jax.lax.dynamic_slice_in_dim(r, j, 1, axis=2) for r in v_rows]
    ops = ars.PixelOps(canvas, i, j, h_caches)
    logits = self._horizontal(
        ops, links, self._cond_biases(labels, self._cond_at(cond, i, j)))
    return (ops.new_caches, v_caches, v_rows), logits[:, 0, 0]

  def vertical_row(self, state, canvas: jax.Array, i,
                   labels: jax.Array | None = None,
                   cond: jax.Array | None = None):
    """The vertical stack on the finished row i: state for row i + 1."""
    h_caches, v_caches, _ = state
    ops = ars.RowOps(canvas, i, v_caches)
    pres = self._vertical(ops,
                          self._cond_biases(labels, self._cond_at(cond, i)))
    return h_caches, ops.new_caches, pres


# exp(MASKED_LOGIT - max) underflows to exactly 0 in float32: a masked level
# has probability 0 (finite, unlike -inf, so 0 * logit stays 0).
MASKED_LOGIT = -1e9


def validate(config, dataset) -> None:
  """Checks ``config.model`` against itself and the loaded dataset."""
  m = config.model
  ars.check_likelihood(m.likelihood)
  num_levels = m.get('num_levels', ars.NUM_LEVELS)
  if not 2 <= num_levels <= ars.NUM_LEVELS:
    raise ConfigError(f'config.model.num_levels={num_levels} must be in '
                      f'[2, {ars.NUM_LEVELS}].')
  channels = m.image_shape[-1]
  if channels not in (1, 3):
    raise ConfigError(f'config.model.image_shape={tuple(m.image_shape)}: '
                      'Gated PixelCNN models 1 or 3 channels.')
  if m.features <= 0 or m.features % channels:
    raise ConfigError(f'config.model.features={m.features} must be a positive '
                      f'multiple of {channels} (colour groups).')
  ars.check_output_features(m.output_features, channels)
  for name in ('input_kernel', 'kernel_size'):
    k = m[name]
    if k < 1 or k % 2 == 0:
      raise ConfigError(f'config.model.{name}={k} must be odd and positive.')
  if m.num_layers < 1:
    raise ConfigError(f'config.model.num_layers={m.num_layers} must be >= 1.')
  if m.get('crop_input', False) and (channels != 1 or m.input_kernel < 3):
    raise ConfigError(
        f'config.model.crop_input=True needs 1 channel and input_kernel >= 3, '
        f'got image_shape={tuple(m.image_shape)}, '
        f'input_kernel={m.input_kernel}.')
  if m.cond_dim:
    raise ConfigError(
        f'config.model.cond_dim={m.cond_dim}: vector conditioning reads '
        "batch['cond'], which no dataset provides; train it from the library "
        '(loss_fn with a cond entry) or set cond_dim=0.')
  ars.check_num_classes(m.num_classes, dataset)
  ars.check_data_config(m.likelihood, config.data, dataset.pixel_levels)


def _conditioning(net: Net, batch) -> dict[str, Any]:
  return {'labels': batch['label'] if net.num_classes else None,
          'cond': batch['cond'] if net.cond_dim else None}


def init(key: jax.Array, batch, *, net: Net) -> Any:
  """Initial parameters for a (preprocessed) example batch.

  A vector-conditional net (cond_dim > 0) reads ``batch['cond']`` [B, cond_dim]
  (zeros when absent).
  """
  batch = dict(batch)
  if net.cond_dim and 'cond' not in batch:
    x = batch['image']
    batch['cond'] = jnp.zeros(
        (x.shape[:3] if net.cond_spatial else x.shape[:1]) + (net.cond_dim,))
  return net.init(key, batch['image'], **_conditioning(net, batch))['params']


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """Mean negative log-likelihood (nats per image) over unmasked rows.

  Args:
    params: the Net's parameters.
    batch: {'image': float [B, H, W, C] ({0, 1} or pixel / 255), 'label':
      int [B], optional 'mask': bool [B], 'cond': float [B, cond_dim] for a
      vector-conditional net}.
    key: unused (deterministic model); part of the contract.
    net: the Net.
    train: unused (no dropout).

  Returns:
    (scalar loss, {'nll': [B] nats, 'bits_per_dim': [B]}).
  """
  del key, train
  x = batch['image']
  logits = net.apply({'params': params}, x, **_conditioning(net, batch))
  return ars.nll_loss(net.likelihood, logits, x, batch.get('mask'))


def log_likelihood(params, batch, key, *, net: Net) -> jax.Array:
  """Exact log p(x) [B] in nats, on the data the model sees."""
  del key
  x = batch['image']
  logits = net.apply({'params': params}, x, **_conditioning(net, batch))
  return ars.log_prob(net.likelihood, logits, x)


def sample(params, key, num: int, *, net: Net, labels=None, cond=None,
           observed=None, observed_mask=None, method: str = 'cached'):
  """`num` images by ancestral sampling: uint8 [num, H, W, C].

  Args:
    params, key, num, net: as `pixelcnn.sample`.
    labels: int [num] for a class-conditional net (default 0, 1, ...).
    cond: float [num, cond_dim] for a vector-conditional net, [num, H, W,
      cond_dim] for a spatially conditional one (required).
    observed, observed_mask: completion, as `pixelcnn.sample`.
    method: 'cached' (default) or 'naive'; the same key gives the same
      samples.
  """
  ars.check_method(method)
  labels = ars.sample_labels(net.num_classes, num, labels)
  if net.cond_dim:
    if cond is None:
      raise ConfigError(f'this net is conditioned on a vector '
                        f'(cond_dim={net.cond_dim}): pass cond.')
    cond = jnp.asarray(cond, jnp.float32)
    want = ((num,) + tuple(net.image_shape[:2]) + (net.cond_dim,)
            if net.cond_spatial else (num, net.cond_dim))
    if cond.shape != want:
      raise ConfigError(f'cond must have shape {want}, got {cond.shape}.')
  elif cond is not None:
    raise ConfigError('cond given to a net with cond_dim=0.')
  canvas, known = ars.start_canvas(net.likelihood, net.image_shape, num,
                                   observed, observed_mask)
  out = _sample(params, key, labels, cond, canvas, known, net=net,
                method=method)
  return ars.decode_images(net.likelihood, out)


def complete(params, x, num_known: int, key, *, net: Net, labels=None,
             cond=None, method: str = 'cached'):
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
    cond: as for `sample` (a vector- or spatially-conditional net).
    method: 'cached' or 'naive' (as `sample`).

  Returns:
    uint8 [B, H, W, C]: the prefix of x (encoded and decoded: {0, 255} for
    a Bernoulli model) followed by the sampled suffix.
  """
  mask = ars.raster_prefix_mask(net.image_shape, num_known)
  return sample(params, key, jnp.shape(x)[0], net=net, labels=labels, cond=cond,
                observed=x, observed_mask=mask, method=method)


def conditional_log_likelihood(params, batch, num_known: int, *,
                               net: Net) -> jax.Array:
  """Exact log p(suffix | prefix) [B] in nats: the pixels after the first
  `num_known` (raster order) given those, from one network pass (batch as
  for `loss_fn`)."""
  weights = ~ars.raster_prefix_mask(net.image_shape, num_known)
  x = batch['image']
  logits = net.apply({'params': params}, x, **_conditioning(net, batch))
  return ars.weighted_log_prob(net.likelihood, logits, x, weights)


def sample_canvas(params, key, canvas: jax.Array, known: jax.Array, *,
                  net: Net, labels=None, cond=None,
                  method: str = 'cached') -> jax.Array:
  """The sampler of `sample` on a model-input canvas, for composite models.

  Args:
    params, key, net, method: as for `sample`.
    canvas: float [B, H, W, C] in the model's encoding ({0, 1}, or pixel /
      255), holding the kept values where `known`.
    known: bool [H, W, C]: positions kept from `canvas`; the others are
      drawn in raster order given everything before them.
    labels: int [B] for a class-conditional net, else None.
    cond: as for `sample` (checked there), else None.

  Returns:
    The filled canvas float [B, H, W, C] (one jitted loop).
  """
  ars.check_method(method)
  return _sample(params, key, labels, cond, canvas, known, net=net,
                 method=method)

def _cached_fns(params, labels, cond, canvas, *, net: Net):
  """(pixel_fn, end_row_fn, initial state) for `ar_sampling.sample_cached`."""
  variables = {'params': params}

  def pixel_fn(state, canvas, i, j):
    return net.apply(variables, state, canvas, i, j, labels, cond,
                     method=Net.pixel_logits)

  def end_row_fn(state, canvas, i):
    return net.apply(variables, state, canvas, i, labels, cond,
                     method=Net.vertical_row)

  def shapes():
    rows = end_row_fn((None, None, None), canvas, 0)
    return pixel_fn(rows, canvas, 0, 0)[0]

  state = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                       jax.eval_shape(shapes))
  return pixel_fn, end_row_fn, state


@functools.partial(jax.jit, static_argnames=('net', 'method'))
def _sample(params, key, labels, cond, canvas, known, *, net: Net,
            method: str):
  draw = ars.draw_fn(net.likelihood)
  if method == 'naive':
    return ars.sample_naive(
        lambda x: net.apply({'params': params}, x, labels, cond), draw, key,
        canvas, known)
  pixel_fn, end_row_fn, state = _cached_fns(params, labels, cond, canvas,
                                            net=net)
  return ars.sample_cached(pixel_fn, end_row_fn, state, draw, key, canvas,
                           known)


@functools.partial(jax.jit, static_argnames=('net',))
def incremental_logits(params, x, labels=None, cond=None, *, net: Net):
  """Logits of image x [B, H, W, C] computed by the cached sampler's passes.

  Runs the incremental (cached) computation over a given image instead of
  sampling: equal to ``net.apply(params, x)`` up to float rounding. Shows
  that the caches compute the same function as the full network.
  """
  pixel_fn, end_row_fn, state = _cached_fns(params, labels, cond, x, net=net)
  return ars.teacher_forced(pixel_fn, end_row_fn, state, x)
