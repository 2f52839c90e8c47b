r"""Gaussian mixtures: component log-densities, full covariances, responsibilities.

Pure, jit-able and unreduced, like the rest of `jaxgen.losses`. A mixture of
K Gaussians on R^D,

.. math::
  p(x) = \sum_k \pi_k\, \mathcal{N}(x;\ \mu_k,\ \Sigma_k),
  \qquad \pi = \operatorname{softmax}(\text{logit\_weights}),

is evaluated in log space from per-component log-densities
``log N(x; mu_k, Sigma_k)`` ([..., K]) and the log-weights:
``log p(x) = logsumexp_k(log_softmax(pi)_k + log N_k(x))``. The posterior
over components (the *responsibilities* of the E-step) is the softmax of the
same log-joint, so both come from one pass.

Full covariances are parameterised by their lower Cholesky factor
``Sigma = L L^T`` (positive diagonal): the Mahalanobis term is
``||L^{-1}(x - mu)||^2`` by a triangular solve (no inverse is formed) and
``log det Sigma = 2 sum_d log L_dd``. Diagonal mixtures use the existing
`jaxgen.losses.gaussian_mixture_log_prob` (per-dimension log-variances); this
module adds their per-component terms, which the E-step needs.

References:
  Bishop, *Pattern Recognition and Machine Learning*, 2006, sections 2.3
  (eq. 2.43, the multivariate Gaussian) and 9.2 (eqs. 9.7, 9.13 and 9.23:
  mixture log-likelihood and responsibilities).
  Dempster, Laird, Rubin. *Maximum Likelihood from Incomplete Data via the EM
  Algorithm*, JRSS B 1977.
"""

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

_LOG_2PI = math.log(2.0 * math.pi)


def _float(*args: ArrayLike):
  dtype = jnp.result_type(float, *args)
  return tuple(jnp.asarray(a, dtype) for a in args)


def gaussian_tril_log_prob(
    x: ArrayLike, mean: ArrayLike, scale_tril: ArrayLike
) -> jax.Array:
  r"""Log-density of a multivariate Gaussian given its Cholesky factor.

  .. math::
    \log \mathcal{N}(x; \mu, L L^\top)
      = -\tfrac12 \lVert L^{-1}(x - \mu) \rVert^2
        - \textstyle\sum_d \log L_{dd} - \tfrac{D}{2} \log 2\pi.

  Args:
    x: float array ``[..., D]``.
    mean: float array ``[..., D]`` broadcastable with ``x``.
    scale_tril: float array ``[..., D, D]``: lower-triangular ``L`` with a
      positive diagonal (the upper triangle is ignored); batch dims broadcast
      with those of ``x`` and ``mean``.

  Returns:
    Float array ``[...]`` (the broadcast batch shape): log N(x) in nats.

  References:
    Bishop 2006, eq. 2.43; Golub & Van Loan, *Matrix Computations*, 4.2
    (Cholesky).
  """
  x, mean, scale_tril = _float(x, mean, scale_tril)
  diff = x - mean
  batch = jnp.broadcast_shapes(diff.shape[:-1], scale_tril.shape[:-2])
  dims = scale_tril.shape[-1]
  diff = jnp.broadcast_to(diff, batch + (dims,))
  scale_tril = jnp.broadcast_to(scale_tril, batch + (dims, dims))
  z = jax.scipy.linalg.solve_triangular(scale_tril, diff[..., None],
                                        lower=True)[..., 0]
  half_log_det = jnp.sum(
      jnp.log(jnp.diagonal(scale_tril, axis1=-2, axis2=-1)), axis=-1)
  return -0.5 * jnp.sum(jnp.square(z), -1) - half_log_det - 0.5 * dims * _LOG_2PI


def gaussian_component_log_probs(
    x: ArrayLike, means: ArrayLike, log_vars: ArrayLike
) -> jax.Array:
  r"""Per-component log-densities of diagonal Gaussians: ``[..., K]``.

  .. math::
    \ell_k(x) = -\tfrac12 \textstyle\sum_d \big[(x_d - \mu_{kd})^2
      e^{-v_{kd}} + v_{kd} + \log 2\pi\big].

  ``logsumexp(log_softmax(pi) + ell, -1)`` is
  `jaxgen.losses.gaussian_mixture_log_prob` (same arguments).

  Args:
    x: float array ``[..., D]``.
    means: float array ``[K, D]``.
    log_vars: float array ``[K, D]``: per-dimension log *variances* ``v``.

  Returns:
    Float array ``[..., K]``, log N(x; mu_k, diag(exp(v_k))) in nats.
  """
  x, means, log_vars = _float(x, means, log_vars)
  precision = jnp.exp(-log_vars)
  sq = jnp.sum(jnp.square(x[..., None, :] - means) * precision, axis=-1)
  const = jnp.sum(log_vars, axis=-1) + means.shape[-1] * _LOG_2PI
  return -0.5 * (sq + const)


def tril_inverse(scale_trils: ArrayLike) -> jax.Array:
  r"""Inverses ``L^{-1}`` of lower-triangular matrices ``[..., D, D]``.

  By triangular solves against the identity; the result is lower
  triangular. ``sum(L^{-1} ** 2) = tr(Sigma^{-1})`` for ``Sigma = L L^T``.
  """
  (scale_trils,) = _float(scale_trils)
  eye = jnp.eye(scale_trils.shape[-1], dtype=scale_trils.dtype)
  return jax.scipy.linalg.solve_triangular(
      scale_trils, jnp.broadcast_to(eye, scale_trils.shape), lower=True)


def gaussian_tril_component_log_probs(
    x: ArrayLike,
    means: ArrayLike,
    scale_trils: ArrayLike,
    *,
    chunk_size: int | None = None,
    inverse_scale_trils: ArrayLike | None = None,
) -> jax.Array:
  r"""Per-component log-densities of full-covariance Gaussians: ``[..., K]``.

  ``ell_k(x) = log N(x; mu_k, L_k L_k^T)`` for every component. The inverse
  factors ``W_k = L_k^{-1}`` are formed once (K triangular solves against the
  identity, as scikit-learn's ``precisions_cholesky``), so the Mahalanobis
  terms ``||W_k (x - mu_k)||^2`` are matrix products, vmapped over the data
  points (in chunks of ``chunk_size`` to bound memory: K * D * chunk_size
  floats). Their error grows with the condition number of ``L_k`` (the
  square root of that of ``Sigma_k``); `gaussian_tril_log_prob` solves
  instead.

  Args:
    x: float array ``[..., D]``.
    means: float array ``[K, D]``.
    scale_trils: float array ``[K, D, D]``, lower Cholesky factors.
    chunk_size: data points per vmapped chunk (None: all at once). The
      values do not depend on it.
    inverse_scale_trils: optional ``[K, D, D]``, `tril_inverse` of
      ``scale_trils`` when the caller already has it.

  Returns:
    Float array ``[..., K]`` in nats.
  """
  x, means, scale_trils = _float(x, means, scale_trils)
  num_dims = means.shape[-1]
  inv = (tril_inverse(scale_trils) if inverse_scale_trils is None else
         jnp.asarray(inverse_scale_trils, scale_trils.dtype))  # [K, D, D]
  const = (jnp.sum(jnp.log(jnp.diagonal(scale_trils, axis1=-2, axis2=-1)), -1)
           + 0.5 * num_dims * _LOG_2PI)  # [K]

  def one(xi):  # [D] -> [K]
    z = jnp.einsum('ked,kd->ke', inv, xi - means)
    return -0.5 * jnp.sum(jnp.square(z), -1) - const

  flat = x.reshape(-1, num_dims)
  if flat.shape[0] == 0:
    return jnp.zeros(x.shape[:-1] + means.shape[:1], x.dtype)
  per = jax.lax.map(one, flat, batch_size=min(chunk_size or flat.shape[0],
                                              flat.shape[0]))
  return per.reshape(x.shape[:-1] + means.shape[:1])


def gaussian_tril_mixture_log_prob(
    x: ArrayLike,
    logit_weights: ArrayLike,
    means: ArrayLike,
    scale_trils: ArrayLike,
) -> jax.Array:
  r"""Log-density of a mixture of full-covariance Gaussians.

  .. math::
    \log p(x) = \operatorname{logsumexp}_k \big(
      \operatorname{log\_softmax}(\pi)_k
      + \log \mathcal{N}(x;\ \mu_k,\ L_k L_k^\top)\big).

  Args:
    x: float array ``[..., D]``.
    logit_weights: float array ``[K]``: unnormalised log mixture weights.
    means: float array ``[K, D]``.
    scale_trils: float array ``[K, D, D]``: lower Cholesky factors of the
      covariances (positive diagonals).

  Returns:
    Float array ``[...]``: log p(x) in nats per event.

  Raises:
    ValueError: if the component or event axes do not agree.

  References:
    Bishop 2006, eq. 9.14.
  """
  means, scale_trils, logit_weights = (
      jnp.asarray(a) for a in (means, scale_trils, logit_weights))
  x = jnp.asarray(x)
  if means.ndim != 2 or scale_trils.ndim != 3 or logit_weights.ndim != 1:
    raise ValueError(
        'gaussian_tril_mixture_log_prob: expected logit_weights [K], means '
        f'[K, D], scale_trils [K, D, D]; got {logit_weights.shape}, '
        f'{means.shape}, {scale_trils.shape}.')
  k, d = means.shape
  if scale_trils.shape != (k, d, d) or logit_weights.shape != (k,):
    raise ValueError(
        f'scale_trils must be (K, D, D) = {(k, d, d)} and logit_weights '
        f'(K,) = ({k},); got {scale_trils.shape} and {logit_weights.shape}.')
  if x.shape[-1:] != (d,):
    raise ValueError(f'`x` must end in D = {d}; got x {x.shape}.')
  comp = gaussian_tril_component_log_probs(x, means, scale_trils)
  return mixture_log_posterior(logit_weights, comp)[1]


def mixture_log_posterior(
    logit_weights: ArrayLike, component_log_probs: ArrayLike
) -> tuple[jax.Array, jax.Array]:
  r"""Log-responsibilities and the mixture log-likelihood, from one log-joint.

  With ``a_k = log_softmax(pi)_k + ell_k(x)`` (the log-joint
  ``log p(x, z = k)``):

  .. math::
    \log p(x) = \operatorname{logsumexp}_k a_k, \qquad
    \log r_k(x) = \log p(z = k \mid x) = a_k - \log p(x).

  Stable for any finite log-joint (no ``exp`` of un-normalised values; the
  component log-densities are shifted by their maximum before the weights
  are added, so responsibilities keep their relative precision when
  ``|ell_k|`` is large); components with ``-inf`` log-weight get
  ``r_k = 0``.

  Args:
    logit_weights: float array ``[K]`` (or ``[..., K]``): unnormalised log
      mixture weights.
    component_log_probs: float array ``[..., K]``: ``log p(x | z = k)``.

  Returns:
    ``(log_responsibilities [..., K], log_prob [...])`` in nats.

  References:
    Bishop 2006, eq. 9.13 (responsibilities) and 9.14.
  """
  logit_weights, comp = _float(logit_weights, component_log_probs)
  # Shift by the largest finite component first: comp - shift is computed
  # exactly for nearby values, so the responsibilities keep full relative
  # precision even when the log-densities are large (|ell| ~ 1e3 on images).
  shift = jax.lax.stop_gradient(jnp.max(
      jnp.where(jnp.isfinite(comp), comp, -jnp.inf), axis=-1, keepdims=True))
  shift = jnp.where(jnp.isfinite(shift), shift, 0.0)
  joint = jax.nn.log_softmax(logit_weights, axis=-1) + (comp - shift)
  log_norm = jax.scipy.special.logsumexp(joint, axis=-1, keepdims=True)
  return joint - log_norm, (log_norm + shift)[..., 0]


def mixture_responsibilities(
    logit_weights: ArrayLike, component_log_probs: ArrayLike
) -> jax.Array:
  r"""Posterior component probabilities ``r_k(x) = p(z = k | x)``: ``[..., K]``.

  .. math::
    r_k(x) = \frac{\pi_k\, p(x \mid k)}{\sum_j \pi_j\, p(x \mid j)}
           = \operatorname{softmax}_k\big(\operatorname{log\_softmax}(\pi)
             + \ell(x)\big)_k.

  Args:
    logit_weights: float array ``[K]`` (or ``[..., K]``).
    component_log_probs: float array ``[..., K]``.

  Returns:
    Float array ``[..., K]``, non-negative, summing to one over the last axis.
  """
  return jnp.exp(mixture_log_posterior(logit_weights, component_log_probs)[0])
