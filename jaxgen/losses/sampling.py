"""Reparameterised sampling, so gradients flow through latent samples."""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def gaussian_reparameterize(
    key: jax.Array,
    mean: ArrayLike,
    log_var: ArrayLike,
    num_samples: int | None = None,
) -> jax.Array:
  r"""Draws ``z ~ N(mean, exp(log_var))`` as a differentiable function of both.

  .. math::
    z = \mu + e^{v/2} \odot \varepsilon,\qquad
    \varepsilon \sim \mathcal{N}(0, I),

  so ``dz/dmu = 1`` and ``dz/dv = 0.5 * exp(v/2) * eps``: gradients of any
  expectation over ``z`` can be estimated by back-propagating through the
  sample (the reparameterisation trick).

  Args:
    key: a JAX PRNG key; the same key gives the same sample.
    mean: float array ``[...]``, ``mu``.
    log_var: float array broadcastable with ``mean``: the log *variance*
      ``v`` (the standard deviation is ``exp(0.5 * v)``).
    num_samples: ``None`` for one sample of the broadcast shape ``[...]``, or
      a static positive Python int ``S`` for ``S`` independent samples
      stacked on a new leading axis ``[S, ...]`` (mark it static under
      ``jax.jit``).

  Returns:
    Float array ``[...]`` or ``[num_samples, ...]`` with the promoted
    floating dtype of ``mean`` and ``log_var``.

  Raises:
    ValueError: if ``num_samples`` is not ``None`` or a positive int.

  References:
    Kingma & Welling, *Auto-Encoding Variational Bayes*, ICLR 2014,
    section 2.4; Rezende, Mohamed, Wierstra, *Stochastic Backpropagation*,
    ICML 2014.
  """
  dtype = jnp.result_type(float, mean, log_var)
  mean = jnp.asarray(mean, dtype)
  log_var = jnp.asarray(log_var, dtype)
  shape = jnp.broadcast_shapes(mean.shape, log_var.shape)
  if num_samples is not None:
    if (
        isinstance(num_samples, bool)
        or not isinstance(num_samples, int)
        or num_samples < 1
    ):
      raise ValueError(
          "gaussian_reparameterize: `num_samples` must be None or a positive"
          f" Python int (static under jit), got {num_samples!r}."
      )
    shape = (num_samples,) + shape
  eps = jax.random.normal(key, shape, dtype)
  return mean + jnp.exp(0.5 * log_var) * eps
