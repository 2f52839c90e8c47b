"""Adversarial objectives: GAN, WGAN, WGAN-GP, LSGAN and BEGAN, from logits.

Every function is pure, jit-able and *unreduced*: it takes the raw outputs of
a discriminator (logits for the GAN and LSGAN objectives, unbounded critic
scores for the Wasserstein ones, per-example autoencoder losses for BEGAN)
and returns one value per element, which the caller averages over the batch.
Nothing is computed from probabilities: log D(x) = log_sigmoid(l) and
log(1 - D(x)) = log_sigmoid(-l) = -softplus(l), so values and gradients stay
finite at logits of any magnitude.

With ``l_r`` the discriminator's logits on real data and ``l_f`` on generated
data (D = sigmoid(l)):

=======================  =====================================================
GAN discriminator        ``-log D(x) - log(1 - D(G(z)))
                         = softplus(-l_r) + softplus(l_f)``
                         (Goodfellow et al. 2014, eq. 1; minimised)
GAN generator, minimax   ``log(1 - D(G(z))) = -softplus(l_f)`` (eq. 1;
                         saturates when D rejects the samples)
GAN generator,           ``-log D(G(z)) = softplus(-l_f)`` (Goodfellow et al.
non-saturating           2014, Sec. 3; the standard in practice)
WGAN critic              ``f(G(z)) - f(x)`` (Arjovsky et al. 2017, Alg. 1)
WGAN generator           ``-f(G(z))``
gradient penalty         ``(||grad_x f(x_hat)||_2 - 1)^2`` at
                         ``x_hat = e x + (1 - e) G(z)``, ``e ~ U[0, 1]``
                         (Gulrajani et al. 2017, Alg. 1)
LSGAN discriminator      ``((l_r - b)^2 + (l_f - a)^2) / 2`` (Mao et al.
                         2017, eq. 2; a = 0, b = 1)
LSGAN generator          ``(l_f - c)^2 / 2`` (c = 1)
BEGAN                    ``L(v) = mean |v - AE(v)|``, ``L_D = L(x) - k L(G(z))``,
                         ``L_G = L(G(z))``, ``k <- clip(k + lambda (gamma L(x)
                         - L(G(z))), 0, 1)``, ``M = L(x) + |gamma L(x) -
                         L(G(z))|`` (Berthelot et al. 2017, eqs. 4-5, Sec. 3.4)
=======================  =====================================================

The gradient penalty's norm is *safe at zero*: ``safe_norm`` uses the
double-``where`` pattern, so the penalty's gradient (a second derivative of
the critic) is finite when the critic's input-gradient vanishes, where the
plain ``sqrt`` would give 0 * inf = NaN.

References:
  Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014.
  Arjovsky, Chintala & Bottou, "Wasserstein GAN", ICML 2017.
  Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017.
  Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017.
  Berthelot, Schumm & Metz, "BEGAN: Boundary Equilibrium Generative
  Adversarial Networks", arXiv:1703.10717, 2017.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def _float(x: ArrayLike) -> jax.Array:
  x = jnp.asarray(x)
  return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(float)


# ----------------------------------------------------------------- GAN


def gan_discriminator_loss(real_logits: ArrayLike,
                           fake_logits: ArrayLike) -> jax.Array:
  r"""The GAN discriminator's cross-entropy, from logits (minimised).

  .. math::
    -\log D(x) - \log(1 - D(G(z)))
      = \operatorname{softplus}(-l_r) + \operatorname{softplus}(l_f).

  For fixed densities its expectation is minimised by
  D*(x) = p_data(x) / (p_data(x) + p_g(x)) (Goodfellow et al. 2014, Prop. 1).

  Args:
    real_logits: float ``[...]``, discriminator logits on real examples.
    fake_logits: float, broadcastable with `real_logits`, logits on generated
      examples (paired row by row, or any broadcastable shape).

  Returns:
    The broadcast shape, nats per pair.
  """
  return (jax.nn.softplus(-_float(real_logits))
          + jax.nn.softplus(_float(fake_logits)))


def gan_generator_loss_minimax(fake_logits: ArrayLike) -> jax.Array:
  r"""The minimax generator loss ``log(1 - D(G(z))) = -softplus(l_f)``.

  Minimising it is the generator's side of Goodfellow et al.'s eq. 1. Its
  gradient ``-sigmoid(l_f)`` vanishes as D rejects the samples
  (``l_f -> -inf``), which is why the non-saturating loss is used in
  practice.

  Args:
    fake_logits: float ``[...]``, discriminator logits on generated examples.

  Returns:
    Same shape, nats (<= 0).
  """
  return -jax.nn.softplus(_float(fake_logits))


def gan_generator_loss_nonsaturating(fake_logits: ArrayLike) -> jax.Array:
  r"""The non-saturating generator loss ``-log D(G(z)) = softplus(-l_f)``.

  Same fixed point as the minimax loss, strong gradients early in training
  (Goodfellow et al. 2014, Sec. 3).

  Args:
    fake_logits: float ``[...]``, discriminator logits on generated examples.

  Returns:
    Same shape, nats (>= 0).
  """
  return jax.nn.softplus(-_float(fake_logits))


# ---------------------------------------------------------------- WGAN


def wasserstein_critic_loss(real_scores: ArrayLike,
                            fake_scores: ArrayLike) -> jax.Array:
  r"""The WGAN critic loss ``f(G(z)) - f(x)`` (minimised).

  Its negative batch mean estimates the Wasserstein-1 distance
  ``E f(x) - E f(G(z))`` when f is 1-Lipschitz (Arjovsky et al. 2017,
  eq. 3), enforced by weight clipping (WGAN) or `gradient_penalty`
  (WGAN-GP).

  Args:
    real_scores: float ``[...]``, critic outputs on real examples.
    fake_scores: float, broadcastable, critic outputs on generated examples.

  Returns:
    The broadcast shape.
  """
  return _float(fake_scores) - _float(real_scores)


def wasserstein_generator_loss(fake_scores: ArrayLike) -> jax.Array:
  """The WGAN generator loss ``-f(G(z))``, elementwise."""
  return -_float(fake_scores)


def safe_norm(x: ArrayLike, axis: int | Sequence[int] | None = None,
              keepdims: bool = False) -> jax.Array:
  r"""Euclidean norm whose gradient is finite (zero) at the zero vector.

  .. math::
    \|x\| = \sqrt{s}, \quad s = \textstyle\sum x^2, \qquad
    \text{computed as } \operatorname{where}(s > 0,
      \sqrt{\operatorname{where}(s > 0, s, 1)}, 0).

  The inner ``where`` keeps ``sqrt`` away from 0 so its derivative never
  produces inf; the outer one selects 0 there. The value is exact
  everywhere; the gradient is ``x / ||x||`` away from zero and 0 at it (the
  plain form gives NaN).

  Args:
    x: float array.
    axis: axes to reduce (None: all).
    keepdims: keep the reduced axes with size 1.

  Returns:
    The norm over `axis`.
  """
  x = _float(x)
  sq = jnp.sum(jnp.square(x), axis=axis, keepdims=keepdims)
  positive = sq > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def gradient_penalty_from_gradients(gradients: ArrayLike,
                                    target: float = 1.0) -> jax.Array:
  r"""``(||g_i|| - target)^2`` per example, with `safe_norm`.

  Args:
    gradients: float ``[B, ...]``, the critic's input-gradient per example.
    target: the norm the penalty pulls towards (1 for 1-Lipschitz).

  Returns:
    ``[B]``.
  """
  g = _float(gradients)
  norms = safe_norm(g.reshape(g.shape[0], -1), axis=-1)
  return jnp.square(norms - target)


def interpolates(key: jax.Array, real: ArrayLike, fake: ArrayLike) -> jax.Array:
  r"""``e x + (1 - e) x~`` with one ``e ~ U[0, 1]`` per example.

  Args:
    key: PRNG key for ``e``.
    real: float ``[B, ...]``.
    fake: float, same shape.

  Returns:
    ``[B, ...]``, points on the segments between paired real and fake rows.
  """
  real, fake = _float(real), _float(fake)
  eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1),
                           real.dtype)
  return eps * real + (1.0 - eps) * fake


def gradient_penalty(critic: Callable[[jax.Array], jax.Array],
                     real: ArrayLike, fake: ArrayLike, key: jax.Array,
                     target: float = 1.0) -> jax.Array:
  r"""The WGAN-GP penalty ``(||grad_x f(x_hat)|| - 1)^2`` per example.

  ``x_hat`` are `interpolates` of `real` and `fake`; the input-gradient of
  each example is taken as ``grad_x sum_i f(x_hat)_i``, which equals the
  per-example gradient when the critic treats examples independently (no
  batch normalization: Gulrajani et al. 2017, Sec. 4, use layer norm or
  none). Differentiating the result w.r.t. the critic's parameters (closed
  over in `critic`) gives the double-backpropagation term of the paper.

  Args:
    critic: ``x [B, ...] -> scores [B]`` (or ``[B, 1]``).
    real: float ``[B, ...]``.
    fake: float, same shape (stop its gradient if the generator should not
      receive one).
    key: PRNG key for the interpolation weights.
    target: the target norm.

  Returns:
    ``[B]``.
  """
  x_hat = interpolates(key, real, fake)
  grads = jax.grad(lambda x: jnp.sum(critic(x)))(x_hat)
  return gradient_penalty_from_gradients(grads, target)


# --------------------------------------------------------------- LSGAN


def least_squares_discriminator_loss(real_outputs: ArrayLike,
                                     fake_outputs: ArrayLike,
                                     real_target: float = 1.0,
                                     fake_target: float = 0.0) -> jax.Array:
  r"""LSGAN discriminator loss ``((D(x) - b)^2 + (D(G(z)) - a)^2) / 2``.

  Mao et al. 2017, eq. 2, with the 0-1 coding a = 0, b = 1 by default; D's
  output is linear (no sigmoid).

  Args:
    real_outputs: float ``[...]``.
    fake_outputs: float, broadcastable.
    real_target: b.
    fake_target: a.

  Returns:
    The broadcast shape.
  """
  return 0.5 * (jnp.square(_float(real_outputs) - real_target)
                + jnp.square(_float(fake_outputs) - fake_target))


def least_squares_generator_loss(fake_outputs: ArrayLike,
                                 target: float = 1.0) -> jax.Array:
  r"""LSGAN generator loss ``(D(G(z)) - c)^2 / 2`` (c = 1), elementwise."""
  return 0.5 * jnp.square(_float(fake_outputs) - target)


# --------------------------------------------------------------- BEGAN


def autoencoder_l1_loss(x: ArrayLike, reconstruction: ArrayLike) -> jax.Array:
  r"""BEGAN's ``L(v) = mean_j |v_j - AE(v)_j|`` per example (eta = 1).

  Args:
    x: float ``[B, ...]``, the autoencoder's input.
    reconstruction: float, same shape, its output.

  Returns:
    ``[B]``: the mean absolute error over each example's elements.
  """
  diff = jnp.abs(_float(x) - _float(reconstruction))
  return diff.reshape(diff.shape[0], -1).mean(-1)


def began_discriminator_loss(real_loss: ArrayLike, fake_loss: ArrayLike,
                             k: ArrayLike) -> jax.Array:
  r"""``L_D = L(x) - k_t L(G(z))`` (Berthelot et al. 2017, eq. 4).

  Args:
    real_loss: float ``[B]``, `autoencoder_l1_loss` on real examples.
    fake_loss: float ``[B]``, on generated examples.
    k: the balance term k_t in [0, 1] (a scalar; not differentiated).

  Returns:
    ``[B]``.
  """
  return _float(real_loss) - jax.lax.stop_gradient(_float(k)) * _float(
      fake_loss)


def began_generator_loss(fake_loss: ArrayLike) -> jax.Array:
  r"""``L_G = L(G(z))``, elementwise (eq. 4)."""
  return _float(fake_loss)


def began_balance_update(k: ArrayLike, real_loss: ArrayLike,
                         fake_loss: ArrayLike, gamma: float,
                         lambda_k: float) -> jax.Array:
  r"""``k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)``.

  Eq. 4 of Berthelot et al. 2017, with batch means of the autoencoder
  losses.

  Args:
    k: scalar k_t.
    real_loss: the mean of L(x) over the batch (a scalar).
    fake_loss: the mean of L(G(z)) (a scalar).
    gamma: the diversity ratio gamma = E L(G(z)) / E L(x) aimed for.
    lambda_k: the proportional gain.

  Returns:
    Scalar k_{t+1}.
  """
  return jnp.clip(_float(k) + lambda_k * (gamma * _float(real_loss)
                                           - _float(fake_loss)), 0.0, 1.0)


def began_convergence(real_loss: ArrayLike, fake_loss: ArrayLike,
                      gamma: float) -> jax.Array:
  r"""The convergence measure ``M = L(x) + |gamma L(x) - L(G(z))|`` (eq. 5).

  Elementwise: pass batch means for the paper's M_global, or per-example
  values.
  """
  real_loss = _float(real_loss)
  return real_loss + jnp.abs(gamma * real_loss - _float(fake_loss))
