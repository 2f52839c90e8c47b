"""Variational bounds on the log-likelihood: ELBO, IWAE and log-mean-exp.

All functions are per-example (unreduced): average over the batch yourself.
"""

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def _axis_size(shape: tuple[int, ...], axis: int | Sequence[int]) -> int:
  axes = (axis,) if isinstance(axis, int) else tuple(axis)
  if not axes:
    raise ValueError("`axis` must name at least one axis.")
  ndim = len(shape)
  for a in axes:
    if not -ndim <= a < ndim:
      raise ValueError(f"`axis` {a} is out of range for shape {shape}.")
  normalised = {a % ndim for a in axes}
  if len(normalised) != len(axes):
    raise ValueError(f"`axis` {axis} repeats an axis.")
  return math.prod(shape[a] for a in normalised)


def log_mean_exp(x: ArrayLike, axis: int | Sequence[int] = 0) -> jax.Array:
  r"""``log(mean(exp(x), axis))``, computed stably.

  .. math::
    \operatorname{log\_mean\_exp}(x) = \operatorname{logsumexp}_{i}(x_i)
                                      - \log K,

  where ``K`` is the number of elements reduced over (the product of the
  sizes of ``axis``). ``logsumexp`` subtracts the maximum first, so large or
  very negative ``x`` neither overflows nor underflows.

  Args:
    x: float array ``[...]``.
    axis: a static int or sequence of ints, the axes averaged over.

  Returns:
    Float array of ``x``'s shape with ``axis`` removed.

  Raises:
    ValueError: if ``axis`` is empty, repeated or out of range.
  """
  x = jnp.asarray(x, jnp.result_type(float, x))
  size = _axis_size(x.shape, axis)
  if size == 0:
    raise ValueError(f"log_mean_exp: cannot average over an empty axis {axis}.")
  axis = axis if isinstance(axis, int) else tuple(axis)
  return jax.scipy.special.logsumexp(x, axis=axis) - math.log(size)


def elbo(
    log_likelihood: ArrayLike, kl: ArrayLike, beta: ArrayLike = 1.0
) -> jax.Array:
  r"""Per-example ELBO: ``log p(x|z) - beta * KL(q(z|x) || p(z))``.

  .. math::
    \mathcal{L}(x) = \mathbb{E}_{q(z|x)}[\log p(x \mid z)]
      - \beta\, \mathrm{KL}\big(q(z \mid x) \,\|\, p(z)\big)
      \;\le\; \log p(x) \quad (\beta = 1).

  ``log_likelihood`` is usually a one-sample (reparameterised) Monte-Carlo
  estimate of the expectation, already summed over the data dimensions, and
  ``kl`` the analytic KL already summed over the latent dimensions (e.g.
  ``gaussian_kl(...).sum(-1)``). Only ``beta == 1`` gives a lower bound on
  ``log p(x)``: the beta-VAE objective with ``beta != 1`` is *not* a bound
  and must not be reported as a likelihood.

  Args:
    log_likelihood: float array ``[...]`` (typically ``[B]``), nats.
    kl: float array broadcastable with ``log_likelihood``, nats.
    beta: float scalar or array broadcastable with them (e.g. a warm-up
      schedule value).

  Returns:
    Float array of the broadcast shape: the ELBO in nats (maximise it; the
    loss is its negation).

  References:
    Kingma & Welling, *Auto-Encoding Variational Bayes*, ICLR 2014, eq. 3;
    Higgins et al., *beta-VAE*, ICLR 2017 (the beta-weighted objective).
  """
  dtype = jnp.result_type(float, log_likelihood, kl, beta)
  return jnp.asarray(log_likelihood, dtype) - jnp.asarray(
      beta, dtype
  ) * jnp.asarray(kl, dtype)


def iwae_bound(log_weights: ArrayLike, axis: int = 0) -> jax.Array:
  r"""Importance-weighted bound from ``K`` log importance weights.

  .. math::
    \mathcal{L}_K(x) = \log \frac1K \sum_{k=1}^K w_k,\qquad
    \log w_k = \log p(x, z_k) - \log q(z_k \mid x),\quad
    z_k \sim q(z \mid x).

  ``L_1`` is the ELBO and ``E[L_K] <= E[L_{K+1}] <= log p(x)``, with
  ``L_K -> log p(x)`` as ``K`` grows. For a single draw, ``L_K`` is at least
  the mean of the log weights (Jensen) and does not depend on their order.

  Args:
    log_weights: float array ``[..., K, ...]`` of log importance weights.
    axis: static int, the sample axis of size ``K`` (default 0).

  Returns:
    Float array of ``log_weights``'s shape with ``axis`` removed: the bound
    in nats per example.

  References:
    Burda, Grosse, Salakhutdinov. *Importance Weighted Autoencoders*,
    ICLR 2016, eq. 8 and theorem 1.
  """
  if not isinstance(axis, int):
    raise ValueError(f"iwae_bound: `axis` must be a single int, got {axis!r}.")
  return log_mean_exp(log_weights, axis=axis)
