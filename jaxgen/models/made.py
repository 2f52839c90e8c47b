"""MADE: masked autoencoder for distribution estimation, with mask ensembles.

Germain, Gregor, Murray, Larochelle, "MADE: Masked Autoencoder for
Distribution Estimation", ICML 2015.

A MADE is an MLP over a binary vector x in {0, 1}^D (the flattened image,
raster order) whose weight matrices are multiplied by binary masks so that
output d depends only on the inputs that come before d in an *ordering*:

    log p(x) = sum_d log p(x_d | x_{o < o(d)}),   p(x_d = 1 | .) = sigmoid(l_d).

Masks from degrees (section 4): the inputs get degrees m^0(d) = o(d) in
1..D, the position of d in the ordering; hidden unit k of layer l gets a
degree m^l(k) drawn uniformly from {min_k' m^{l-1}(k'), ..., D - 1}. Then,
with kernels laid out [inputs, outputs],

    M^l[k', k] = 1[m^l(k) >= m^{l-1}(k')]     (hidden layers, eq. 12)
    M^V[k, d]  = 1[m^0(d) > m^L(k)]            (output layer, eq. 13)
    A[d', d]   = 1[m^0(d) > m^0(d')]           (optional direct input-output
                                                connection, section 4.3)

and l = b + (W^V * M^V)^T h^L + (A * U)^T x. Every output degree-chain is
strictly increasing, so l_d depends only on x_{d'} with m^0(d') < m^0(d).

Order- and connectivity-agnostic training (section 4.2): a *mask set* (an
ordering, if ``ordering='random'``, and the hidden degrees) is a
deterministic function of (``mask_seed``, mask index): the degrees are drawn
from ``fold_in(key(mask_seed), index)``. Each training step draws one index
from the step's key, uniformly among ``num_masks`` fixed sets
(``num_masks=0``: any index in [0, 2^31), a fresh set almost every step), and
the whole batch uses that set. ``train=False`` uses set 0.

Mask ensembles at test time: `log_likelihood` with ``num_masks=K`` returns the
log-likelihood of the uniform *mixture* of the K models given by sets
0..K-1,

    log p_ens(x) = log (1/K) sum_k p_k(x)   (log-mean-exp, not the mean of
                                             the log-likelihoods),

which is itself an exact, normalised model (each p_k is); K = 1 is the
single model of set 0. `sample` draws from the same mixture: a set uniformly
per image, then ancestral sampling in that set's ordering.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import losses
from jaxgen import nn as jnn
from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.models import pixels
from jaxgen.nn import initializers as inits

LIKELIHOOD = 'exact'  # log p(x) of the mask ensemble (a mixture), exact
ORDERINGS = ('natural', 'random')
MAX_MASK_INDEX = 2 ** 31 - 1  # indices drawn when num_masks == 0


class Net(nn.Module):
  """The masked MLP; fields are ``config.model``.

  Attributes:
    image_shape: (H, W, C); the model sees D = H * W * C binary values.
    hidden_dims: widths of the masked hidden layers.
    activation: hidden nonlinearity (`jaxgen.nn.ACTIVATIONS`).
    num_masks: number of fixed mask sets trained on (1: a single MADE);
      0: a fresh mask set drawn every step.
    ordering: 'natural' (raster order in every set: only the connectivity
      varies) or 'random' (each set draws its own ordering: order-agnostic).
    mask_seed: seed of the mask sets.
    direct_connection: add the masked direct input-to-output layer A.
    eval_masks: default size K of the test-time ensemble (`log_likelihood`
      and `sample` average sets 0..K-1); at most num_masks when that is > 0.
  """
  image_shape: Sequence[int] = (8, 8, 1)
  hidden_dims: Sequence[int] = (500,)
  activation: str = 'relu'
  num_masks: int = 1
  ordering: str = 'natural'
  mask_seed: int = 0
  direct_connection: bool = False
  eval_masks: int = 1

  @property
  def num_dims(self) -> int:
    return math.prod(self.image_shape)

  @nn.compact
  def __call__(self, x: jax.Array, masks) -> jax.Array:
    """Logits [B, D] of p(x_d = 1 | x before d) for x [B, D] and `masks`."""
    act = jnn.activation(self.activation)
    init = inits.lecun_normal()
    dtype = x.dtype
    h = x
    for i, (width, mask) in enumerate(zip(self.hidden_dims, masks['hidden'])):
      kernel = self.param(f'kernel_{i}', init, (h.shape[-1], width))
      bias = self.param(f'bias_{i}', nn.initializers.zeros, (width,))
      h = act(h @ (kernel.astype(dtype) * mask) + bias.astype(dtype))
    kernel = self.param('kernel_out', init, (h.shape[-1], self.num_dims))
    bias = self.param('bias_out', nn.initializers.zeros, (self.num_dims,))
    logits = h @ (kernel.astype(dtype) * masks['out']) + bias.astype(dtype)
    if self.direct_connection:
      direct = self.param('kernel_direct', nn.initializers.zeros,
                          (self.num_dims, self.num_dims))
      logits = logits + x @ (direct.astype(dtype) * masks['direct'])
    return logits


def degrees(net: Net, index) -> list[jax.Array]:
  """Degrees [m^0 [D], m^1 [H_1], ..., m^L [H_L]] of mask set `index`.

  m^0 is a permutation of 1..D (the identity for 'natural' ordering); m^l is
  uniform on {min m^{l-1}, ..., D - 1}. A deterministic function of
  (net.mask_seed, index); jit-able with a traced index.
  """
  d = net.num_dims
  key = jax.random.fold_in(jax.random.key(net.mask_seed), index)
  order_key, *layer_keys = jax.random.split(key, 1 + len(net.hidden_dims))
  if net.ordering == 'random':
    order = jax.random.permutation(order_key, d)  # order[i]: i-th dimension
    m0 = jnp.argsort(order) + 1  # m0[d] = 1 + position of d in the ordering
  else:
    m0 = jnp.arange(1, d + 1)
  out = [m0.astype(jnp.int32)]
  for width, k in zip(net.hidden_dims, layer_keys):
    low = jnp.min(out[-1]) if len(out) > 1 else 1
    out.append(jax.random.randint(k, (width,), low, d, jnp.int32))
  return out


def masks_from_degrees(degs: Sequence[jax.Array], dtype=jnp.float32):
  """The masks of a set of degrees (eqs. 12-13), kernels laid out [in, out].

  Returns {'hidden': [M^1 [D, H_1], ..., M^L [H_{L-1}, H_L]],
  'out': M^V [H_L, D], 'direct': A [D, D]}.
  """
  m0 = degs[0]
  hidden = [(cur[None, :] >= prev[:, None]).astype(dtype)
            for prev, cur in zip(degs[:-1], degs[1:])]
  return {'hidden': hidden,
          'out': (m0[None, :] > degs[-1][:, None]).astype(dtype),
          'direct': (m0[None, :] > m0[:, None]).astype(dtype)}


def masks(net: Net, index, dtype=jnp.float32):
  """The masks of set `index`: `masks_from_degrees(degrees(net, index))`."""
  return masks_from_degrees(degrees(net, index), dtype)


def _check_ensemble(k: int, trained: int, field: str) -> None:
  if k < 1:
    raise ConfigError(f'{field}={k}: a MADE ensemble needs >= 1 mask set.')
  if trained and k > trained:
    raise ConfigError(
        f'{field}={k} exceeds the {trained} mask sets the model is trained on '
        '(config.model.num_masks).')


def ensemble_size(net: Net, num_masks: int | None = None) -> int:
  """K for the test-time ensemble: `num_masks`, else ``net.eval_masks``."""
  if num_masks is None:
    _check_ensemble(net.eval_masks, net.num_masks, 'config.model.eval_masks')
    return net.eval_masks
  _check_ensemble(num_masks, net.num_masks, 'num_masks (an estimator argument)')
  return num_masks


def validate(config, dataset) -> None:
  """Checks ``config.model`` against itself and the loaded dataset."""
  m = config.model
  if m.ordering not in ORDERINGS:
    raise ConfigError(f'config.model.ordering={m.ordering!r} is not one of '
                      f'{ORDERINGS}.')
  if m.num_masks < 0:
    raise ConfigError(f'config.model.num_masks={m.num_masks} must be >= 0 '
                      '(0: a fresh mask set each step).')
  if not m.hidden_dims or min(m.hidden_dims) < 1:
    raise ConfigError(f'config.model.hidden_dims={tuple(m.hidden_dims)} must '
                      'be one or more positive widths.')
  if math.prod(m.image_shape) < 2:
    raise ConfigError(f'config.model.image_shape={tuple(m.image_shape)}: '
                      'MADE needs D >= 2 dimensions.')
  jnn.activation(m.activation)
  _check_ensemble(m.eval_masks, m.num_masks, 'config.model.eval_masks')
  for name, kwargs in config.eval.estimators.items():
    if 'num_masks' in kwargs:
      _check_ensemble(kwargs['num_masks'], m.num_masks,
                      f'config.eval.estimators.{name}.num_masks')
  pixels.check_data_config('bernoulli', config.data, dataset.pixel_levels)


def _flat(batch) -> jax.Array:
  x = batch['image']
  return x.reshape(x.shape[0], -1)


def init(key: jax.Array, batch, *, net: Net) -> Any:
  """Initial parameters for a (preprocessed) example batch."""
  x = _flat(batch)
  return net.init(key, x, masks(net, 0, x.dtype))['params']


def log_prob(params, x: jax.Array, index, *, net: Net) -> jax.Array:
  """log p_index(x) [B] under mask set `index`, for binary x [B, D]."""
  logits = net.apply({'params': params}, x, masks(net, index, x.dtype))
  return losses.bernoulli_log_prob(logits, x).sum(-1)


def _train_index(net: Net, key: jax.Array) -> jax.Array:
  high = net.num_masks if net.num_masks else MAX_MASK_INDEX
  return jax.random.randint(key, (), 0, high)


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """Negative log-likelihood under one mask set, mean over unmasked rows.

  In training the set is drawn from `key` (order-agnostic training); in
  evaluation (train=False) it is set 0.

  Returns (scalar, {'nll': [B] nats of that set's model}).
  """
  index = _train_index(net, key) if train else 0
  nll = -log_prob(params, _flat(batch), index, net=net)
  return steps.masked_mean(nll, batch.get('mask')), {'nll': nll}


def log_likelihood(params, batch, key, *, net: Net,
                   num_masks: int | None = None) -> jax.Array:
  """Exact log-likelihood [B] of the K-mask ensemble (a uniform mixture).

  Args:
    params, batch, net: as for `loss_fn`.
    key: unused (the ensemble enumerates sets 0..K-1).
    num_masks: K (static); default ``net.eval_masks``.

  Returns:
    log (1/K) sum_{k<K} p_k(x) in nats, [B].
  """
  del key
  k = ensemble_size(net, num_masks)
  x = _flat(batch)
  per_mask = jax.lax.map(lambda i: log_prob(params, x, i, net=net),
                         jnp.arange(k))  # [K, B]
  return losses.log_mean_exp(per_mask, axis=0)


def _sample_one_set(params, key, num: int, index, *, net: Net) -> jax.Array:
  """num binary vectors [num, D] from the model of mask set `index`."""
  degs = degrees(net, index)
  position = degs[0] - 1  # position of each dimension in the ordering
  mask_set = masks_from_degrees(degs)
  variables = {'params': params}

  def body(i, x):
    logits = net.apply(variables, x, mask_set)
    draw = jax.random.bernoulli(jax.random.fold_in(key, i),
                                jax.nn.sigmoid(logits)).astype(x.dtype)
    return jnp.where(position[None, :] == i, draw, x)

  return jax.lax.fori_loop(0, net.num_dims, body,
                           jnp.zeros((num, net.num_dims), jnp.float32))


def sample(params, key, num: int, *, net: Net, num_masks: int | None = None):
  """`num` images from the K-mask ensemble: uint8 {0, 255} [num, H, W, C].

  Each image takes a mask set uniformly from 0..K-1 (the mixture
  `log_likelihood` evaluates); step i of the ancestral sampler fills the
  dimension at position i of that set's ordering. Costs K sampler runs.
  """
  k = ensemble_size(net, num_masks)
  pick_key, draw_key = jax.random.split(key)
  choice = jax.random.randint(pick_key, (num,), 0, k)
  per_set = jax.lax.map(
      lambda i: _sample_one_set(params, jax.random.fold_in(draw_key, i), num,
                                i, net=net),
      jnp.arange(k))  # [K, num, D]
  x = jnp.take_along_axis(per_set, choice[None, :, None], axis=0)[0]
  return (x * 255).astype(jnp.uint8).reshape((num,) + tuple(net.image_shape))
