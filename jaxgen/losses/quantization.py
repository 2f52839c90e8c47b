"""Vector-quantization objectives: codebook and commitment losses, perplexity.

van den Oord, Vinyals & Kavukcuoglu, "Neural Discrete Representation
Learning" (VQ-VAE), NeurIPS 2017, eq. 3; Jang, Gu & Poole, "Categorical
Reparameterization with Gumbel-Softmax", ICLR 2017 (the KL of a categorical
posterior to a uniform prior).

With an encoder output z_e and its nearest code e = e_{k(z_e)}, the VQ-VAE
trains the decoder on the straight-through value

    z_q = z_e + sg[e - z_e]        (value e, gradient d/dz_q passed to z_e)

and adds, per latent vector,

    codebook   ||sg[z_e] - e||^2   (moves the code toward the encoding)
    commitment ||z_e - sg[e]||^2   (keeps the encoder close to its code)

    L_vq = codebook + beta * commitment.

Every function is pure, jit-able and unreduced over the latent positions:
the caller sums over a code map and averages over the batch. Squared
distances are summed over the last (code) axis.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def straight_through(z_e: ArrayLike, e: ArrayLike) -> jax.Array:
  """z_e + sg[e - z_e]: the value of `e` with the gradient of `z_e`.

  Args:
    z_e: encoder outputs [..., D].
    e: their quantized values [..., D] (e.g. the nearest codes).

  Returns:
    [..., D] equal to `e` (up to float rounding of z_e + (e - z_e)); its
    Jacobian with respect to `z_e` is the identity and with respect to `e`
    zero, so the decoder's gradient reaches the encoder unchanged.
  """
  z_e = jnp.asarray(z_e)
  return z_e + jax.lax.stop_gradient(jnp.asarray(e) - z_e)


def codebook_loss(z_e: ArrayLike, e: ArrayLike) -> jax.Array:
  """||sg[z_e] - e||^2 summed over the last axis: [...].

  Its gradient with respect to the code is 2 (e - z_e): a gradient step moves
  each selected code toward the encodings assigned to it. No gradient reaches
  `z_e`.
  """
  diff = jax.lax.stop_gradient(jnp.asarray(z_e)) - jnp.asarray(e)
  return jnp.sum(jnp.square(diff), axis=-1)


def commitment_loss(z_e: ArrayLike, e: ArrayLike) -> jax.Array:
  """||z_e - sg[e]||^2 summed over the last axis: [...].

  Gradient 2 (z_e - e) with respect to `z_e`, none to the code.
  """
  diff = jnp.asarray(z_e) - jax.lax.stop_gradient(jnp.asarray(e))
  return jnp.sum(jnp.square(diff), axis=-1)


def vq_loss(z_e: ArrayLike, e: ArrayLike, beta: float = 0.25,
            *, update_codebook: bool = True) -> jax.Array:
  """The VQ-VAE's latent loss per vector: codebook + beta * commitment.

  Args:
    z_e: encoder outputs [..., D].
    e: their nearest codes [..., D].
    beta: commitment cost (the paper uses 0.25).
    update_codebook: False drops the codebook term (codes learned by
      exponential moving averages instead of gradients, VQ-VAE appendix A.1).

  Returns:
    [...] ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2 (codebook term only when
    `update_codebook`).
  """
  loss = beta * commitment_loss(z_e, e)
  if update_codebook:
    loss = loss + codebook_loss(z_e, e)
  return loss


def code_usage(assignments: ArrayLike,
               weights: ArrayLike | None = None) -> jax.Array:
  """Average assignment over positions: [K], sums to 1.

  Args:
    assignments: one-hot codes or soft assignment probabilities [..., K].
    weights: optional [...] non-negative weights (e.g. a mask broadcast over
      the code map); positions of weight 0 do not count.

  Returns:
    [K] p_k = sum_n w_n a_{n,k} / sum_n w_n (all zeros if every weight is 0).
  """
  a = jnp.asarray(assignments)
  a = a.reshape(-1, a.shape[-1])
  if weights is None:
    w = jnp.ones(a.shape[:1], a.dtype)
  else:
    w = jnp.broadcast_to(jnp.asarray(weights, a.dtype),
                         jnp.shape(assignments)[:-1]).reshape(-1)
  total = jnp.sum(w[:, None] * a, axis=0)
  return total / jnp.maximum(jnp.sum(w), jnp.finfo(a.dtype).tiny)


def perplexity(usage: ArrayLike) -> jax.Array:
  """exp(H(p)) of a code-usage distribution p [..., K] (`code_usage`): [...].

  H(p) = -sum_k p_k log p_k with 0 log 0 = 0. A uniform usage of K codes
  gives K, a single code 1: the effective number of codes in use.
  """
  p = jnp.asarray(usage)
  safe = jnp.where(p > 0, p, 1.0)
  entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(safe), 0.0), axis=-1)
  return jnp.exp(entropy)


def codebook_perplexity(assignments: ArrayLike,
                        weights: ArrayLike | None = None) -> jax.Array:
  """Perplexity of the average assignment: exp(H(code_usage(a, w))), scalar.

  The VQ-VAE literature's codebook-usage metric (e.g. the Sonnet reference
  implementation): K when every code is used equally often, 1 when a single
  code is used.
  """
  return perplexity(code_usage(assignments, weights))


def categorical_kl_to_uniform(logits: ArrayLike) -> jax.Array:
  """KL(q || Uniform(K)) = sum_k q_k log q_k + log K from logits: [...].

  q = softmax(logits) over the last axis; computed from log_softmax so that
  saturated logits give finite values and gradients. The KL term of a
  categorical (Gumbel-softmax) latent with a uniform prior.
  """
  logits = jnp.asarray(logits)
  log_q = jax.nn.log_softmax(logits, axis=-1)
  k = logits.shape[-1]
  return jnp.sum(jnp.exp(log_q) * log_q, axis=-1) + jnp.log(float(k))
