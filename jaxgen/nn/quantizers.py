"""Discrete bottlenecks: nearest-code vector quantization and Gumbel-softmax.

- Vector quantization with a straight-through gradient (van den Oord,
  Vinyals & Kavukcuoglu, "Neural Discrete Representation Learning",
  NeurIPS 2017, §3.1-3.2): each encoder vector z [D] is replaced by its
  nearest code e_k, k = argmin_j ||z - e_j||^2, and the decoder's gradient is
  copied to z (`jaxgen.losses.straight_through`).
- Codebook learned by exponential moving averages instead of gradients (the
  same paper, appendix A.1), with Laplace-smoothed counts as in the
  reference Sonnet implementation: for code i, with n_i the (weighted)
  number of batch vectors assigned to it and s_i their sum,

      N_i <- gamma N_i + (1 - gamma) n_i
      m_i <- gamma m_i + (1 - gamma) s_i
      N~_i = (N_i + eps) / (sum_j N_j + K eps) * sum_j N_j
      e_i  = m_i / N~_i

  N starts at 1 and m at the initial codebook, so e starts at the initial
  codebook (up to the smoothing).
- Dead-code restarts (Dhariwal et al., "Jukebox", 2020, §2.3; Williams et
  al., "Hierarchical Quantized Autoencoders", 2020): a code whose moving
  count N_i falls below a threshold is moved onto an encoder output drawn
  uniformly from the current batch (masked rows excluded) and its count is
  reset to the threshold.
- Categorical latents with the Gumbel-softmax / straight-through estimator
  (Jang, Gu & Poole, ICLR 2017; Maddison, Mnih & Teh, ICLR 2017), written
  as ``stop_gradient(hardmax(y) - y) + y`` with y = softmax((logits + g) /
  tau): one-hot values forward, the softmax's gradient backward.

Non-gradient state (moving counts and sums, and the EMA codebook) lives in
the Flax collection ``'codebook_ema'``; the pure update functions here are
applied by the family's train step, never inside `loss_fn`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import losses
from jaxgen.nn import initializers as inits

STATE = 'codebook_ema'  # the Flax collection of the quantizers' state


def squared_distances(z: jax.Array, codebook: jax.Array) -> jax.Array:
  """||z - e_k||^2 for every code: z [..., D], codebook [K, D] -> [..., K].

  Expanded as ||z||^2 - 2 z.e_k + ||e_k||^2 (one matmul instead of a
  [..., K, D] difference tensor).
  """
  z2 = jnp.sum(jnp.square(z), axis=-1, keepdims=True)
  e2 = jnp.sum(jnp.square(codebook), axis=-1)
  return z2 - 2.0 * jnp.einsum('...d,kd->...k', z, codebook) + e2


def nearest_code(z: jax.Array, codebook: jax.Array) -> jax.Array:
  """argmin_k ||z - e_k||^2: z [..., D], codebook [K, D] -> int32 [...].

  Ties go to the lowest index.
  """
  return jnp.argmin(squared_distances(z, codebook), axis=-1).astype(jnp.int32)


def hardmax(logits: jax.Array) -> jax.Array:
  """one_hot(argmax(logits)) over the last axis, in the logits' dtype."""
  return jax.nn.one_hot(jnp.argmax(logits, axis=-1), logits.shape[-1],
                        dtype=logits.dtype)


def straight_through_softmax(logits: jax.Array,
                             temperature: float = 1.0) -> jax.Array:
  """sg(hardmax(y) - y) + y with y = softmax(logits / tau): [..., K].

  Forward: the one-hot of argmax (exactly, up to float rounding). Backward:
  the Jacobian of the tempered softmax.
  """
  y = jax.nn.softmax(logits / temperature, axis=-1)
  return jax.lax.stop_gradient(hardmax(y) - y) + y


def gumbel_softmax(key: jax.Array, logits: jax.Array, temperature: float = 1.0,
                   hard: bool = True) -> jax.Array:
  """A (relaxed) one-hot sample of Categorical(softmax(logits)): [..., K].

  y = softmax((logits + g) / tau), g ~ Gumbel(0, 1) i.i.d. With ``hard`` the
  straight-through version sg(hardmax(y) - y) + y is returned: an exact
  one-hot draw forward (Gumbel-max: argmax(logits + g) ~ softmax(logits)),
  the relaxed sample's gradient backward.
  """
  g = jax.random.gumbel(key, logits.shape, logits.dtype)
  y = jax.nn.softmax((logits + g) / temperature, axis=-1)
  if hard:
    y = jax.lax.stop_gradient(hardmax(y) - y) + y
  return y


# ----------------------------------------------------------- EMA updates


def assignment_stats(z: jax.Array, indices: jax.Array, weights: jax.Array,
                     num_codes: int) -> tuple[jax.Array, jax.Array]:
  """Per-code weighted counts n [K] and sums s [K, D] of a batch.

  Args:
    z: encoder outputs [N, D] (flattened over batch and positions).
    indices: their codes int [N].
    weights: [N] (1 for a counted vector, 0 for a masked one).
    num_codes: K.
  """
  onehot = jax.nn.one_hot(indices, num_codes, dtype=z.dtype) * weights[:, None]
  return onehot.sum(0), onehot.T @ z


def laplace_smoothed(counts: jax.Array, epsilon: float) -> jax.Array:
  """(N_i + eps) / (sum N + K eps) * sum N: counts without zeros, same sum."""
  total = jnp.sum(counts)
  return (counts + epsilon) / (total + counts.shape[0] * epsilon) * total


def ema_update(state: dict[str, jax.Array], z: jax.Array, indices: jax.Array,
               weights: jax.Array, *, decay: float,
               epsilon: float) -> dict[str, jax.Array]:
  """One EMA step of the codebook (VQ-VAE appendix A.1, Laplace smoothing).

  Args:
    state: {'cluster_size': N [K], 'embed_sum': m [K, D], 'codebook': [K, D]}.
    z, indices, weights: the batch's encoder outputs [N, D], their nearest
      codes [N] and weights [N] (`assignment_stats`).
    decay: gamma in [0, 1).
    epsilon: Laplace smoothing of the counts.

  Returns:
    The new state; the codebook is m / N~ (module docstring).
  """
  n, s = assignment_stats(z, indices, weights, state['cluster_size'].shape[0])
  size = decay * state['cluster_size'] + (1.0 - decay) * n
  embed_sum = decay * state['embed_sum'] + (1.0 - decay) * s
  codebook = embed_sum / laplace_smoothed(size, epsilon)[:, None]
  return {'cluster_size': size, 'embed_sum': embed_sum, 'codebook': codebook}


def count_update(cluster_size: jax.Array, indices: jax.Array,
                 weights: jax.Array, *, decay: float) -> jax.Array:
  """Moving usage counts N [K] of a gradient-trained codebook (for restarts)."""
  n = jnp.sum(jax.nn.one_hot(indices, cluster_size.shape[0],
                             dtype=cluster_size.dtype) * weights[:, None], 0)
  return decay * cluster_size + (1.0 - decay) * n


def restart_dead_codes(key: jax.Array, codebook: jax.Array,
                       state: dict[str, jax.Array], z: jax.Array,
                       weights: jax.Array, *, threshold: float):
  """Moves codes with moving count < threshold onto random batch encodings.

  Args:
    key: chooses, for every code, a batch vector with probability
      proportional to `weights`.
    codebook: the codes [K, D] in use (params or EMA state).
    state: the code's moving statistics: 'cluster_size' [K] and, for an EMA
      codebook, 'embed_sum' [K, D] (and 'codebook').
    z: the batch's encoder outputs [N, D]; weights: [N] (0 = masked).
    threshold: counts below it are dead; 0 disables restarts.

  Returns:
    (codebook', state', dead bool [K]). A restarted code i becomes z_j; its
    count becomes `threshold` and its sum threshold * z_j (so e_i = m_i /
    N_i = z_j before smoothing). Live codes are untouched. Nothing moves
    when every weight is 0.
  """
  size = state['cluster_size']
  total = jnp.sum(weights)
  dead = (size < threshold) & (total > 0)
  logits = jnp.where(weights > 0, 0.0, -jnp.inf)
  rows = jax.random.categorical(key, logits, shape=size.shape)
  chosen = z[rows].astype(codebook.dtype)
  new_codebook = jnp.where(dead[:, None], chosen, codebook)
  new_state = dict(state)
  new_state['cluster_size'] = jnp.where(dead, threshold, size).astype(size.dtype)
  if 'embed_sum' in state:
    new_state['embed_sum'] = jnp.where(dead[:, None], threshold * chosen,
                                       state['embed_sum'])
    new_state['codebook'] = new_codebook
  return new_codebook, new_state, dead


# -------------------------------------------------------------- modules


class VectorQuantizer(nn.Module):
  """Nearest-code quantization of [..., D] vectors with a K x D codebook.

  Attributes:
    num_codes: K.
    code_dim: D.
    use_ema: True keeps the codebook in the ``'codebook_ema'`` collection,
      updated by `ema_update` (no gradient); False makes it a parameter
      trained by the codebook loss.

  Both kinds keep moving usage counts ``cluster_size`` [K] (initialised to
  1) in ``'codebook_ema'`` for dead-code restarts and usage metrics; an EMA
  codebook also keeps ``embed_sum`` [K, D] and ``codebook`` [K, D].
  """
  num_codes: int
  code_dim: int
  use_ema: bool = False

  def setup(self):
    init = inits.variance_scaling(1.0, 'fan_out', 'uniform')
    shape = (self.num_codes, self.code_dim)
    if self.use_ema:
      codebook = self.variable(STATE, 'codebook',
                               lambda: init(self.make_rng('params'), shape))
      self.embed_sum = self.variable(STATE, 'embed_sum',
                                     lambda: codebook.value)
      self._codebook = codebook
    else:
      self._codebook = self.param('codebook', init, shape)
    self.cluster_size = self.variable(STATE, 'cluster_size',
                                      lambda: jnp.ones((self.num_codes,)))

  @property
  def codebook(self) -> jax.Array:
    return self._codebook.value if self.use_ema else self._codebook

  def __call__(self, z_e: jax.Array) -> dict[str, jax.Array]:
    """z_e [..., D] -> {'z_q': straight-through [..., D], 'e': nearest codes
    [..., D], 'indices': int32 [...], 'z_e': z_e}."""
    codebook = self.codebook
    indices = nearest_code(z_e, codebook)
    e = jnp.take(codebook, indices, axis=0)
    return {'z_q': losses.straight_through(z_e, e), 'e': e,
            'indices': indices, 'z_e': z_e}

  def embed(self, indices: jax.Array) -> jax.Array:
    """Codes of int indices [...] -> [..., D]."""
    return jnp.take(self.codebook, indices, axis=0)


class GumbelQuantizer(nn.Module):
  """Categorical latents: logits over K codes, Gumbel-softmax, code vectors.

  Attributes:
    num_codes: K.
    code_dim: D (the embedding of the one-hot sample).
    temperature: tau of the relaxation.

  ``__call__(h, key)`` projects h [..., F] to logits [..., K]; with a key it
  draws a straight-through Gumbel-softmax one-hot y, without one it takes
  the mode (argmax, straight-through softmax), and returns z_q = y @ E.
  """
  num_codes: int
  code_dim: int
  temperature: float = 1.0

  def setup(self):
    self.to_logits = inits.Dense(self.num_codes, name='logits')
    self.codebook = self.param(
        'codebook', inits.variance_scaling(1.0, 'fan_out', 'uniform'),
        (self.num_codes, self.code_dim))

  def __call__(self, h: jax.Array,
               key: jax.Array | None = None) -> dict[str, jax.Array]:
    logits = self.to_logits(h)
    if key is None:
      y = straight_through_softmax(logits, self.temperature)
    else:
      y = gumbel_softmax(key, logits, self.temperature, hard=True)
    z_q = jnp.einsum('...k,kd->...d', y, self.codebook)
    return {'z_q': z_q, 'logits': logits,
            'indices': jnp.argmax(y, axis=-1).astype(jnp.int32), 'y': y}

  def embed(self, indices: jax.Array) -> jax.Array:
    return jnp.take(self.codebook, indices, axis=0)


def state_update(state: dict[str, Any], level: dict[str, jax.Array],
                 weights: jax.Array, key: jax.Array, codebook: jax.Array, *,
                 use_ema: bool, decay: float, epsilon: float,
                 threshold: float):
  """The non-gradient update of one VectorQuantizer after a train step.

  Args:
    state: that quantizer's ``'codebook_ema'`` variables.
    level: its outputs ('z_e' [..., D], 'indices' [...]) on the batch.
    weights: [...] broadcastable to the indices (0 = masked example).
    key: for dead-code restarts.
    codebook: the codebook after the optimizer step (the parameter for a
      gradient codebook; ignored for an EMA one, which is in `state`).
    use_ema, decay, epsilon, threshold: the quantizer's settings.

  Returns:
    (state', codebook' (the restarted parameter codebook, or the EMA one),
    stats {'restarts': scalar number of codes moved}).
  """
  z = level['z_e'].reshape(-1, level['z_e'].shape[-1])
  indices = level['indices'].reshape(-1)
  w = jnp.broadcast_to(weights, level['indices'].shape).reshape(-1)
  w = w.astype(z.dtype)
  z = jax.lax.stop_gradient(z)
  if use_ema:
    state = ema_update(state, z, indices, w, decay=decay, epsilon=epsilon)
    codebook = state['codebook']
  else:
    state = dict(state)
    state['cluster_size'] = count_update(state['cluster_size'], indices, w,
                                         decay=decay)
  dead = jnp.zeros(state['cluster_size'].shape, bool)
  if threshold > 0:
    codebook, state, dead = restart_dead_codes(key, codebook, state, z, w,
                                               threshold=threshold)
  return state, codebook, {'restarts': dead.sum().astype(jnp.float32)}
