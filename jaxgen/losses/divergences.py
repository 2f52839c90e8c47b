"""Divergences between distributions, in closed form and log-parameter form."""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def gaussian_kl(
    mean: ArrayLike,
    log_var: ArrayLike,
    prior_mean: ArrayLike = 0.0,
    prior_log_var: ArrayLike = 0.0,
) -> jax.Array:
  r"""Elementwise KL divergence between two univariate Gaussians.

  .. math::
    \mathrm{KL}\big(\mathcal{N}(\mu, e^{v}) \,\|\,
                    \mathcal{N}(\mu_p, e^{v_p})\big)
      = \tfrac12 \Big( v_p - v + \big(e^{v} + (\mu - \mu_p)^2\big) e^{-v_p}
        - 1 \Big).

  Written in log-variances so that no variance is ever divided by or logged,
  and evaluated as ``0.5 * (expm1(v - v_p) - (v - v_p) + (mu - mu_p)**2 *
  exp(-v_p))``: the same quantity, without the cancellation that lets the
  textbook form round below zero when q is close to p;
  with the default standard-normal prior it is the VAE regulariser
  ``0.5 * (exp(v) + mu**2 - 1 - v)``. For diagonal Gaussians sum the result
  over the latent axis. The value is >= 0 (up to rounding), and 0 iff the two
  Gaussians coincide.

  Args:
    mean: float array ``[...]``, the mean ``mu`` of q.
    log_var: float array broadcastable with ``mean``: ``v = log Var_q``.
    prior_mean: float array or scalar broadcastable with ``mean``: ``mu_p``.
    prior_log_var: float array or scalar broadcastable with ``mean``:
      ``v_p = log Var_p``.

  Returns:
    Float array of the broadcast shape, KL(q || p) in nats per element.

  References:
    Kingma & Welling, *Auto-Encoding Variational Bayes*, ICLR 2014,
    appendix B (standard-normal prior case).
  """
  dtype = jnp.result_type(float, mean, log_var, prior_mean, prior_log_var)
  mean, log_var, prior_mean, prior_log_var = (
      jnp.asarray(a, dtype) for a in (mean, log_var, prior_mean, prior_log_var)
  )
  log_ratio = log_var - prior_log_var  # v - v_p
  # v_p - v + e^{v - v_p} - 1 == expm1(v - v_p) - (v - v_p): the same value,
  # but with a correctly rounded expm1 it cannot go negative (expm1(t) >= t
  # and rounding is monotone), and it is exactly 0 when q == p.
  return 0.5 * (
      (jnp.expm1(log_ratio) - log_ratio)
      + jnp.square(mean - prior_mean) * jnp.exp(-prior_log_var)
  )
