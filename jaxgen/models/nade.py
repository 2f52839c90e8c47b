"""NADE: the neural autoregressive distribution estimator for binary vectors.

Larochelle & Murray, "The Neural Autoregressive Distribution Estimator",
AISTATS 2011 (eqs. 2-3 and section 3, the O(DH) computation).

For x in {0, 1}^D (the flattened binarized image, raster order) and H
sigmoid hidden units with weights W [D, H] (row d is the paper's column
W_{:,d}), c [H], V [D, H], b [D]:

    a_d = c + sum_{j<d} x_j W_j                      [H]
    h_d = sigmoid(a_d)
    p(x_d = 1 | x_{<d}) = sigmoid(b_d + V_d . h_d)

    log p(x) = sum_d [x_d l_d - softplus(l_d)],   l_d = b_d + V_d . h_d.

The hidden layer is shared across the D conditionals: a_{d+1} = a_d +
x_d W_d, so all pre-activations are one exclusive cumulative sum over d of
x_j W_j ([B, D, H]), O(DH) per example instead of D separate O(DH) passes.
The sampler carries a_d through a `lax.scan` over d, also O(DH).

The cumulative sum is a parallel prefix sum (`jax.lax.associative_scan`:
O(DH) work, O(log D) depth). ``jnp.cumsum`` computes the same thing, but
XLA:CPU lowers it to a ``reduce_window`` whose work grows as D^2 per hidden
unit, slower forward and backward at every size the configs use.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import losses
from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.models import pixels
from jaxgen.nn import initializers as inits

LIKELIHOOD = 'exact'  # log_likelihood is the exact log p(x) in nats


def exclusive_cumsum(v: jax.Array) -> jax.Array:
  """out[:, d] = sum_{j<d} v[:, j] for v [B, D, ...] (zero at d = 0).

  A parallel prefix sum of v shifted one position along axis 1.
  """
  shifted = jnp.concatenate([jnp.zeros_like(v[:, :1]), v[:, :-1]], axis=1)
  return jax.lax.associative_scan(jnp.add, shifted, axis=1)


class Net(nn.Module):
  """NADE's parameters; fields are ``config.model``.

  Attributes:
    image_shape: (H, W, C); the model sees D = H * W * C binary values.
    hidden_dim: number of sigmoid hidden units H (500 in the paper's MNIST
      experiments).
    init_scale: standard deviation of the normal initialisation of W and V
      (the paper initialises small random weights; biases start at 0).
  """
  image_shape: Sequence[int] = (8, 8, 1)
  hidden_dim: int = 500
  init_scale: float = 0.01

  @property
  def num_dims(self) -> int:
    return math.prod(self.image_shape)

  def setup(self):
    d, h = self.num_dims, self.hidden_dim
    init = inits.normal(self.init_scale)
    self.w = self.param('w', init, (d, h))  # input d -> hidden
    self.c = self.param('c', nn.initializers.zeros, (h,))
    self.v = self.param('v', init, (d, h))  # hidden -> output d
    self.b = self.param('b', nn.initializers.zeros, (d,))

  def __call__(self, x: jax.Array) -> jax.Array:
    """Logits l [B, D] of p(x_d = 1 | x_{<d}) for binary x [B, D].

    a_d = c + sum_{j<d} x_j W_j (`exclusive_cumsum`): [B, D, H] memory,
    O(BDH) work.
    """
    dtype = x.dtype
    w, v = self.w.astype(dtype), self.v.astype(dtype)
    contrib = x[:, :, None] * w[None]  # [B, D, H]: x_j W_j
    a = self.c.astype(dtype) + exclusive_cumsum(contrib)
    h = jax.nn.sigmoid(a)
    return jnp.einsum('bdh,dh->bd', h, v) + self.b.astype(dtype)

  def conditional(self, a: jax.Array, d: jax.Array) -> jax.Array:
    """Logit [B] of dimension d given its pre-activation a_d [B, H]."""
    h = jax.nn.sigmoid(a)
    return h @ self.v[d].astype(a.dtype) + self.b[d].astype(a.dtype)

  def initial(self, batch: int, dtype=jnp.float32) -> jax.Array:
    """a_0 = c for `batch` rows: [batch, H]."""
    return jnp.broadcast_to(self.c.astype(dtype), (batch, self.hidden_dim))

  def update(self, a: jax.Array, d: jax.Array, x_d: jax.Array) -> jax.Array:
    """a_{d+1} = a_d + x_d W_d for a [B, H], x_d [B]."""
    return a + x_d[:, None] * self.w[d].astype(a.dtype)


def validate(config, dataset) -> None:
  """Checks ``config.model`` against itself and the loaded dataset."""
  m = config.model
  if m.hidden_dim < 1:
    raise ConfigError(f'config.model.hidden_dim={m.hidden_dim} must be >= 1.')
  if m.init_scale <= 0:
    raise ConfigError(f'config.model.init_scale={m.init_scale} must be > 0.')
  pixels.check_data_config('bernoulli', config.data, dataset.pixel_levels)


def _flat(batch) -> jax.Array:
  x = batch['image']
  return x.reshape(x.shape[0], -1)


def init(key: jax.Array, batch, *, net: Net) -> Any:
  """Initial parameters for a (preprocessed) example batch."""
  return net.init(key, _flat(batch))['params']


def log_likelihood(params, batch, key, *, net: Net) -> jax.Array:
  """Exact log p(x) in nats: [B]. `key` is unused."""
  del key
  x = _flat(batch)
  logits = net.apply({'params': params}, x)
  return losses.bernoulli_log_prob(logits, x).sum(-1)


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """Negative log-likelihood, mean over unmasked rows; {'nll': [B]}."""
  del train
  nll = -log_likelihood(params, batch, key, net=net)
  return steps.masked_mean(nll, batch.get('mask')), {'nll': nll}


def sample(params, key, num: int, *, net: Net) -> jax.Array:
  """`num` ancestral samples, uint8 {0, 255} [num, H, W, C].

  A `lax.scan` over d carries a_d [num, H]; dimension d is drawn with
  ``jax.random.split(key, D)[d]``.
  """
  variables = {'params': params}
  keys = jax.random.split(key, net.num_dims)

  def body(a, inputs):
    d, step_key = inputs
    logit = net.apply(variables, a, d, method=Net.conditional)
    x_d = jax.random.bernoulli(step_key, jax.nn.sigmoid(logit)).astype(a.dtype)
    return net.apply(variables, a, d, x_d, method=Net.update), x_d

  a0 = net.apply(variables, num, method=Net.initial)
  _, xs = jax.lax.scan(body, a0, (jnp.arange(net.num_dims), keys))
  images = (xs.T * 255).astype(jnp.uint8)
  return images.reshape((num,) + tuple(net.image_shape))
