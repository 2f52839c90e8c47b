"""Gaussian diffusion (DDPM): schedules, the forward process, the bound.

Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020
(equation numbers below are theirs unless another paper is named); the
cosine schedule is Nichol & Dhariwal, "Improved Denoising Diffusion
Probabilistic Models", ICML 2021; DDIM is Song, Meng, Ermon, "Denoising
Diffusion Implicit Models", ICLR 2021.

Indexing. Timesteps are 0-based: index ``t`` in ``[0, T)`` is the paper's
step ``t + 1``. ``x_t`` at index t is the latent after t + 1 noising
steps; index 0's reverse step is the decoder p(x_0 | x_1) and the prior
p(x_T) = N(0, I) sits after index T - 1.

Everything is pure and jit-able. Schedules are computed once in float64
NumPy (`make_schedule`) and held in a `Schedule`, a NamedTuple of [T]
arrays (a pytree: pass it through `jax.jit` as an argument or close over
it; inside JAX its entries become float32 under the default
configuration). Per-example terms sum over every axis but the first and
are in nats.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr
from jax.typing import ArrayLike

from jaxgen.losses.divergences import gaussian_kl

SCHEDULES = ('linear', 'cosine')
VARIANCES = ('beta', 'posterior')

_LOG_2PI = math.log(2.0 * math.pi)
# Standardised bin width below which the discretized Gaussian uses the
# mid-bin density times the width (relative error below width**2 / 24).
_MIDPOINT_WIDTH = 1e-3


def beta_schedule(name: str, num_timesteps: int, *, beta_start: float = 1e-4,
                  beta_end: float = 0.02, cosine_s: float = 0.008,
                  max_beta: float = 0.999) -> np.ndarray:
  r"""The noise variances beta_1..beta_T as float64 NumPy [T].

  - 'linear' (Ho et al. 2020, §4): evenly spaced from `beta_start` to
    `beta_end` (1e-4 to 0.02 for T = 1000).
  - 'cosine' (Nichol & Dhariwal 2021, eq. 17):
    :math:`\bar\alpha(t) = f(t) / f(0)`,
    :math:`f(t) = \cos^2\big(\frac{t/T + s}{1 + s} \frac{\pi}{2}\big)`,
    :math:`\beta_t = 1 - \bar\alpha(t) / \bar\alpha(t - 1)` clipped at
    `max_beta` (0.999) so the last steps stay finite.

  Raises:
    ValueError: an unknown name or num_timesteps < 1.
  """
  if name not in SCHEDULES:
    raise ValueError(f'schedule {name!r} is not one of {SCHEDULES}.')
  if isinstance(num_timesteps, bool) or int(num_timesteps) != num_timesteps \
      or num_timesteps < 1:
    raise ValueError(f'num_timesteps={num_timesteps!r} must be an integer '
                     '>= 1.')
  if name == 'linear':
    return np.linspace(beta_start, beta_end, num_timesteps, dtype=np.float64)
  steps = np.arange(num_timesteps + 1, dtype=np.float64) / num_timesteps
  f = np.cos((steps + cosine_s) / (1.0 + cosine_s) * np.pi / 2.0) ** 2
  alphas_cumprod = f / f[0]
  betas = 1.0 - alphas_cumprod[1:] / alphas_cumprod[:-1]
  return np.minimum(betas, max_beta)


class Schedule(NamedTuple):
  """Per-timestep constants of a diffusion, each [T] (float64 from
  `make_schedule`). Index t is the paper's step t + 1."""
  betas: ArrayLike
  alphas_cumprod: ArrayLike  # abar_t
  alphas_cumprod_prev: ArrayLike  # abar_{t-1}, 1 at index 0
  sqrt_alphas_cumprod: ArrayLike
  sqrt_one_minus_alphas_cumprod: ArrayLike
  log_one_minus_alphas_cumprod: ArrayLike
  sqrt_recip_alphas_cumprod: ArrayLike  # 1 / sqrt(abar_t)
  sqrt_recipm1_alphas_cumprod: ArrayLike  # sqrt(1 / abar_t - 1)
  posterior_variance: ArrayLike  # beta-tilde_t (eq. 7); 0 at index 0
  posterior_log_variance_clipped: ArrayLike  # index 0 takes index 1's value
  posterior_mean_coef1: ArrayLike  # of x_0 in eq. 7
  posterior_mean_coef2: ArrayLike  # of x_t in eq. 7
  beta_log_variance: ArrayLike  # log beta_t; index 0 takes beta-tilde_1

  @property
  def num_timesteps(self) -> int:
    return int(np.shape(self.betas)[0])


def make_schedule(betas: ArrayLike) -> Schedule:
  r"""The `Schedule` of float64 [T] constants for `betas` [T] in (0, 1).

  With :math:`\alpha_t = 1 - \beta_t` and
  :math:`\bar\alpha_t = \prod_{s \le t} \alpha_s` (eq. 4), the posterior
  q(x_{t-1} | x_t, x_0) = N(mu-tilde, beta-tilde) of eq. 6-7 has

  .. math::
    \tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}\beta_t,
    \quad
    \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\beta_t}{1 - \bar\alpha_t} x_0
      + \frac{\sqrt{\alpha_t}(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t} x_t.

  beta-tilde is 0 at the first step, so its log is clipped there to the
  second step's value (as the authors' code); the log of the larger choice
  sigma_t^2 = beta_t takes the same value at the first step, where it
  sets the decoder's scale.

  Raises:
    ValueError: betas not a 1-D array in (0, 1], or T < 2.
  """
  betas = np.asarray(betas, dtype=np.float64)
  if betas.ndim != 1 or betas.shape[0] < 2:
    raise ValueError(f'betas must have shape [T] with T >= 2, got '
                     f'{betas.shape}.')
  if not np.all((betas > 0) & (betas <= 1)):
    raise ValueError('betas must lie in (0, 1].')
  alphas = 1.0 - betas
  abar = np.cumprod(alphas)
  abar_prev = np.append(1.0, abar[:-1])
  post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
  post_log_var = np.log(np.append(post_var[1], post_var[1:]))
  return Schedule(
      betas=betas,
      alphas_cumprod=abar,
      alphas_cumprod_prev=abar_prev,
      sqrt_alphas_cumprod=np.sqrt(abar),
      sqrt_one_minus_alphas_cumprod=np.sqrt(1.0 - abar),
      log_one_minus_alphas_cumprod=np.log1p(-abar),
      sqrt_recip_alphas_cumprod=np.sqrt(1.0 / abar),
      sqrt_recipm1_alphas_cumprod=np.sqrt(1.0 / abar - 1.0),
      posterior_variance=post_var,
      posterior_log_variance_clipped=post_log_var,
      posterior_mean_coef1=betas * np.sqrt(abar_prev) / (1.0 - abar),
      posterior_mean_coef2=(1.0 - abar_prev) * np.sqrt(alphas) / (1.0 - abar),
      beta_log_variance=np.log(np.append(post_var[1], betas[1:])),
  )


def schedule(name: str, num_timesteps: int, **kwargs) -> Schedule:
  """`make_schedule` of `beta_schedule`(name, num_timesteps, **kwargs)."""
  return make_schedule(beta_schedule(name, num_timesteps, **kwargs))


def _take(values: ArrayLike, t: ArrayLike, like: jax.Array) -> jax.Array:
  """values[t] [B], broadcast against `like` [B, ...] in its dtype."""
  dtype = jnp.result_type(float, like)
  out = jnp.asarray(values, dtype)[jnp.asarray(t)]
  return out.reshape(out.shape + (1,) * (jnp.ndim(like) - out.ndim))


def _sum_per_example(x: jax.Array) -> jax.Array:
  return x.reshape(x.shape[0], -1).sum(-1)


def model_log_variance(sched: Schedule, variance: str) -> ArrayLike:
  """log sigma_t^2 [T] of the fixed reverse variance (Ho et al. §3.2).

  'beta': sigma_t^2 = beta_t; 'posterior': sigma_t^2 = beta-tilde_t
  (both clipped at the first step, see `make_schedule`).
  """
  if variance not in VARIANCES:
    raise ValueError(f'variance {variance!r} is not one of {VARIANCES}.')
  return (sched.beta_log_variance if variance == 'beta'
          else sched.posterior_log_variance_clipped)


def q_mean_variance(sched: Schedule, x_start: ArrayLike, t: ArrayLike):
  r"""q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) (eq. 4).

  Args:
    sched: the schedule.
    x_start: x_0 [B, ...].
    t: int [B] timestep indices.

  Returns:
    (mean [B, ...], variance [B, 1, ...], log-variance [B, 1, ...]).
  """
  x_start = jnp.asarray(x_start)
  mean = _take(sched.sqrt_alphas_cumprod, t, x_start) * x_start
  # From the float64 table: 1 - abar_t in float32 loses small t.
  var = jnp.square(_take(sched.sqrt_one_minus_alphas_cumprod, t, x_start))
  return mean, var, _take(sched.log_one_minus_alphas_cumprod, t, x_start)


def q_sample(sched: Schedule, x_start: ArrayLike, t: ArrayLike,
             noise: ArrayLike) -> jax.Array:
  r"""x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (eq. 4, reparameterised).

  Args:
    sched: the schedule.
    x_start: x_0 [B, ...].
    t: int [B] timestep indices.
    noise: eps ~ N(0, I), shaped like x_start.

  Returns:
    x_t [B, ...].
  """
  x_start = jnp.asarray(x_start)
  return (_take(sched.sqrt_alphas_cumprod, t, x_start) * x_start
          + _take(sched.sqrt_one_minus_alphas_cumprod, t, x_start) * noise)


def q_posterior(sched: Schedule, x_start: ArrayLike, x_t: ArrayLike,
                t: ArrayLike):
  r"""q(x_{t-1} | x_t, x_0) = N(mu-tilde_t, beta-tilde_t I) (eq. 6-7).

  Args:
    sched: the schedule.
    x_start: x_0 [B, ...].
    x_t: [B, ...].
    t: int [B] timestep indices (at index 0 the variance is 0 and its log
      is clipped, see `make_schedule`).

  Returns:
    (mean [B, ...], variance [B, 1, ...], clipped log-variance
    [B, 1, ...]).
  """
  x_start, x_t = jnp.asarray(x_start), jnp.asarray(x_t)
  mean = (_take(sched.posterior_mean_coef1, t, x_t) * x_start
          + _take(sched.posterior_mean_coef2, t, x_t) * x_t)
  return (mean, _take(sched.posterior_variance, t, x_t),
          _take(sched.posterior_log_variance_clipped, t, x_t))


def predict_start_from_noise(sched: Schedule, x_t: ArrayLike, t: ArrayLike,
                             eps: ArrayLike) -> jax.Array:
  r"""x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) (eq. 4 inverted)."""
  x_t = jnp.asarray(x_t)
  return (_take(sched.sqrt_recip_alphas_cumprod, t, x_t) * x_t
          - _take(sched.sqrt_recipm1_alphas_cumprod, t, x_t) * eps)


def p_mean_from_eps(sched: Schedule, x_t: ArrayLike, t: ArrayLike,
                    eps: ArrayLike, *, clip: bool = False) -> jax.Array:
  r"""The reverse mean mu_theta(x_t, t) of an eps-prediction (eq. 11).

  .. math::
    \mu_\theta = \frac{1}{\sqrt{\alpha_t}}\Big(x_t -
      \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}} \epsilon_\theta\Big),

  computed as the posterior mean at the predicted x_0 (the same value);
  with `clip` the predicted x_0 is clipped to [-1, 1] first (the data
  range), which moves the mean but keeps p a normalised Gaussian.
  """
  x_start = predict_start_from_noise(sched, x_t, t, eps)
  if clip:
    x_start = jnp.clip(x_start, -1.0, 1.0)
  return q_posterior(sched, x_start, x_t, t)[0]


def simple_loss(eps: ArrayLike, eps_pred: ArrayLike) -> jax.Array:
  r"""L_simple of eq. 14 per example: mean over dimensions of
  :math:`\|\epsilon - \epsilon_\theta(x_t, t)\|^2`.

  Args:
    eps: the noise drawn for x_t, [B, ...].
    eps_pred: the network's prediction, [B, ...].

  Returns:
    [B] (the mean over every axis but the first; the paper's sum is D times
    this).
  """
  sq = jnp.square(jnp.asarray(eps_pred) - jnp.asarray(eps))
  return sq.reshape(sq.shape[0], -1).mean(-1)


def discretized_gaussian_log_prob(x: ArrayLike, mean: ArrayLike,
                                  log_scale: ArrayLike, *,
                                  num_bins: int = 256) -> jax.Array:
  r"""Elementwise log-mass of a Gaussian discretized to `num_bins` levels.

  The decoder of Ho et al. §3.3 (eq. 13): data on the bin centres of
  [-1, 1], level k at ``2 k / (num_bins - 1) - 1``, half-width
  ``h = 1 / (num_bins - 1)``; the mass of a level is the Gaussian mass of
  [x - h, x + h], with the edge bins taking the tails (-inf at -1, +inf at
  1), so the masses of the levels sum to one. In log space with
  a = (x + h - mean) / sigma, b = (x - h - mean) / sigma:

  * lowest level: log Phi(a) (``log_ndtr``);
  * highest level: log Phi(-b);
  * interior: log(Phi(u) - Phi(l)) = log Phi(u) + log(-expm1(log Phi(l) -
    log Phi(u))) on the side of the mean where nothing cancels ((u, l) =
    (a, b) left of it, (-b, -a) right of it);
  * a standardised width 2h / sigma under 1e-3 uses the mid-bin density
    times the bin width.

  Unselected branches stay finite, so values and gradients are finite at
  levels 0 and num_bins - 1 and for any mean and scale.

  Args:
    x: [...] values on the bin centres of [-1, 1].
    mean: broadcastable with x.
    log_scale: broadcastable with x: log sigma (half the log-variance).
    num_bins: static int >= 2.

  Returns:
    [...] log P(x) in nats.
  """
  dtype = jnp.result_type(float, x, mean, log_scale)
  x, mean, log_scale = (jnp.asarray(a, dtype) for a in (x, mean, log_scale))
  half = 1.0 / (num_bins - 1)
  inv = jnp.exp(-log_scale)
  a = inv * (x - mean + half)
  b = inv * (x - mean - half)
  log_lowest = log_ndtr(a)
  log_highest = log_ndtr(-b)
  right = (a + b) > 0
  upper = jnp.where(right, -b, a)
  lower = jnp.where(right, -a, b)
  log_upper, log_lower = log_ndtr(upper), log_ndtr(lower)
  width = 2.0 * half * inv
  narrow = width < _MIDPOINT_WIDTH
  diff = jnp.where(narrow, -1.0, jnp.minimum(log_lower - log_upper, -1e-30))
  log_delta = log_upper + jnp.log(-jnp.expm1(diff))
  mid = inv * (x - mean)
  log_mid = (-0.5 * jnp.square(mid) - log_scale - 0.5 * _LOG_2PI
             + math.log(2.0 * half))
  log_interior = jnp.where(narrow, log_mid, log_delta)
  return jnp.where(x < -1.0 + half, log_lowest,
                   jnp.where(x > 1.0 - half, log_highest, log_interior))


def prior_kl(sched: Schedule, x_start: ArrayLike) -> jax.Array:
  """L_T = KL(q(x_T | x_0) || N(0, I)) per example, [B] nats (eq. 5)."""
  x_start = jnp.asarray(x_start)
  t = jnp.full((x_start.shape[0],), sched.num_timesteps - 1)
  mean, _, log_var = q_mean_variance(sched, x_start, t)
  return _sum_per_example(gaussian_kl(mean, log_var))


def bound_terms(sched: Schedule, x_start: ArrayLike, x_t: ArrayLike,
                t: ArrayLike, eps_pred: ArrayLike, *, variance: str = 'beta',
                clip: bool = False, num_bins: int = 256) -> jax.Array:
  r"""The bound's term of index t, per example, [B] nats (eq. 5).

  Index t is the paper's step t + 1, so this is its L_t (L_0 the decoder).
  With the model p(x_{t-1} | x_t) = N(mu_theta(x_t, t), sigma_t^2 I)
  (`p_mean_from_eps`, sigma_t^2 from `model_log_variance`), x_{t-1}
  meaning the latent one step before x_t:

  * index t >= 1: KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) summed
    over dimensions, in log-variance form (`gaussian_kl`);
  * index 0: -log p(x_0 | x_1), the discretized Gaussian decoder
    (`discretized_gaussian_log_prob`) at mean mu_theta and the first
    step's sigma.

  Args:
    sched: the schedule.
    x_start: x_0 [B, ...] on the bin centres of [-1, 1].
    x_t: [B, ...], a draw of q(x_t | x_0).
    t: int [B] timestep indices.
    eps_pred: eps_theta(x_t, t), [B, ...].
    variance: 'beta' or 'posterior'.
    clip: clip the predicted x_0 to [-1, 1] in the model mean.
    num_bins: levels of the data (256).

  Returns:
    [B] nats; their sum over t plus `prior_kl` is the negative bound.
  """
  x_start, x_t = jnp.asarray(x_start), jnp.asarray(x_t)
  t = jnp.asarray(t)
  model_mean = p_mean_from_eps(sched, x_t, t, eps_pred, clip=clip)
  model_log_var = _take(model_log_variance(sched, variance), t, x_t)
  true_mean, _, true_log_var = q_posterior(sched, x_start, x_t, t)
  kl = _sum_per_example(gaussian_kl(true_mean, true_log_var, model_mean,
                                    model_log_var))
  decoder_nll = -_sum_per_example(discretized_gaussian_log_prob(
      x_start, model_mean, 0.5 * model_log_var, num_bins=num_bins))
  return jnp.where(t == 0, decoder_nll, kl)


EpsFn = Callable[[jax.Array, jax.Array], jax.Array]


def stratified_timesteps(key: jax.Array, batch_size: int, num_timesteps: int,
                         num_samples: int):
  """Timesteps and weights for an unbiased estimate of sum_{t>=1} L_t.

  Index 0 (the decoder) always comes first with weight 1; the indices
  1..T-1 are cut into `num_samples` - 1 contiguous strata of near-equal
  size, one index is drawn uniformly from each (independently per
  example) and weighted by its stratum's size, so the weighted sum is
  unbiased for the sum over all T terms.

  Returns:
    (int32 [B, num_samples] timesteps, float32 [B, num_samples] weights).
  """
  strata = num_samples - 1
  if not 1 <= strata <= num_timesteps - 1:
    raise ValueError(f'num_samples={num_samples} must lie in [2, T] = '
                     f'[2, {num_timesteps}].')
  edges = np.linspace(1, num_timesteps, strata + 1).round().astype(np.int32)
  lo, size = edges[:-1], np.diff(edges)
  u = jax.random.uniform(key, (batch_size, strata))
  picks = lo + jnp.minimum(jnp.floor(u * size), size - 1).astype(jnp.int32)
  ts = jnp.concatenate([jnp.zeros((batch_size, 1), jnp.int32), picks], 1)
  weights = jnp.concatenate(
      [jnp.ones((batch_size, 1)), jnp.broadcast_to(
          jnp.asarray(size, jnp.float32), (batch_size, strata))], 1)
  return ts, weights


def variational_bound(eps_fn: EpsFn, sched: Schedule, x_start: ArrayLike,
                      key: jax.Array, *, variance: str = 'beta',
                      num_samples: int | None = None, chunk_size: int = 50,
                      clip: bool = False, num_bins: int = 256):
  r"""The negative variational bound -log p(x_0) <= L_T + sum_t L_t (eq. 5).

  Each L_t (t >= 1) and L_0 is a single-draw estimate at x_t ~ q(x_t |
  x_0) (its expectation over x_t is the bound); L_T is exact. With
  `num_samples` None every one of the T terms is evaluated; otherwise L_0
  and `num_samples` - 1 stratified timesteps per example
  (`stratified_timesteps`), an unbiased estimate of the same sum.
  Timesteps go through `eps_fn` in chunks of `chunk_size` per example
  (`lax.map`), so memory grows with B * chunk_size, not B * T.

  Args:
    eps_fn: eps_theta(x_t [B, ...], t int [B]) -> [B, ...].
    sched: the schedule.
    x_start: x_0 [B, ...] on the bin centres of [-1, 1].
    key: PRNG key for the x_t draws (and the strata).
    variance: the reverse variance, 'beta' or 'posterior'.
    num_samples: None (all T) or the timesteps per example (>= 2).
    chunk_size: timesteps per network call.
    clip: clip the predicted x_0 to [-1, 1].
    num_bins: data levels.

  Returns:
    (total [B] nats = prior + weighted sum of terms, prior [B] = L_T,
    decoder [B] = L_0 (its single-draw value)).
  """
  x_start = jnp.asarray(x_start)
  batch = x_start.shape[0]
  num_t = sched.num_timesteps
  t_key, noise_key = jax.random.split(key)
  if num_samples is None:
    ts = jnp.broadcast_to(jnp.arange(num_t, dtype=jnp.int32), (batch, num_t))
    weights = jnp.ones((batch, num_t))
  else:
    ts, weights = stratified_timesteps(t_key, batch, num_t, num_samples)
  k = ts.shape[1]
  chunk = max(1, min(chunk_size, k))
  num_chunks = -(-k // chunk)
  pad = num_chunks * chunk - k
  ts = jnp.pad(ts, ((0, 0), (0, pad)))
  weights = jnp.pad(weights, ((0, 0), (0, pad)))
  ts = ts.reshape(batch, num_chunks, chunk).transpose(1, 2, 0)  # [n, c, B]
  weights = weights.reshape(batch, num_chunks, chunk).transpose(1, 2, 0)

  def one(t, noise):  # t [B], noise [B, ...] -> [B]
    x_t = q_sample(sched, x_start, t, noise)
    return bound_terms(sched, x_start, x_t, t, eps_fn(x_t, t),
                       variance=variance, clip=clip, num_bins=num_bins)

  def chunk_terms(args):
    i, t, w = args  # [], [c, B], [c, B]
    noise = jax.random.normal(jax.random.fold_in(noise_key, i),
                              (chunk,) + x_start.shape, x_start.dtype)
    terms = jax.vmap(one)(t, noise)  # [c, B]
    first = (t == 0) & (w > 0)  # padding repeats index 0 with weight 0
    return (w * terms).sum(0), jnp.where(first, terms, 0.0).sum(0)

  sums, decoder = jax.lax.map(
      chunk_terms, (jnp.arange(num_chunks), ts, weights))
  prior = prior_kl(sched, x_start)
  return prior + sums.sum(0), prior, decoder.sum(0)


def ddim_sigma(sched: Schedule, t: ArrayLike, t_prev: ArrayLike,
               eta: ArrayLike) -> jax.Array:
  r"""sigma of a DDIM step from index t to t_prev (Song et al. 2021, eq. 16).

  .. math::
    \sigma = \eta \sqrt{\frac{1 - \bar\alpha_{prev}}{1 - \bar\alpha_t}}
      \sqrt{1 - \frac{\bar\alpha_t}{\bar\alpha_{prev}}},

  with abar_prev = 1 for t_prev = -1 (the data). eta = 1 between
  consecutive steps is the posterior's sqrt(beta-tilde_t).
  """
  abar = jnp.asarray(sched.alphas_cumprod, jnp.float32)
  a_t = abar[t]
  a_prev = jnp.where(t_prev >= 0, abar[jnp.maximum(t_prev, 0)], 1.0)
  return eta * jnp.sqrt((1.0 - a_prev) / (1.0 - a_t) * (1.0 - a_t / a_prev))


def ddim_step(sched: Schedule, x_t: ArrayLike, t: ArrayLike,
              t_prev: ArrayLike, eps: ArrayLike, noise: ArrayLike,
              eta: ArrayLike = 0.0, *, clip: bool = False) -> jax.Array:
  r"""One DDIM update x_t -> x_{t_prev} (Song et al. 2021, eq. 12).

  .. math::
    x_{prev} = \sqrt{\bar\alpha_{prev}}\,\hat x_0
      + \sqrt{1 - \bar\alpha_{prev} - \sigma^2}\,\epsilon_\theta
      + \sigma z,
    \quad \hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\epsilon_\theta)
      / \sqrt{\bar\alpha_t},

  sigma from `ddim_sigma`; t_prev = -1 returns x-hat_0 (plus sigma z with
  sigma = 0). eta = 0 is deterministic.

  Args:
    sched: the schedule.
    x_t: [B, ...]; t, t_prev: int scalars (or [B]); eps: eps_theta(x_t, t);
    noise: z ~ N(0, I) like x_t; eta: >= 0.
    clip: clip x-hat_0 to [-1, 1] (then eps is recomputed from it).
  """
  x_t = jnp.asarray(x_t)
  t = jnp.broadcast_to(jnp.asarray(t), x_t.shape[:1])
  t_prev = jnp.broadcast_to(jnp.asarray(t_prev), x_t.shape[:1])
  x0 = predict_start_from_noise(sched, x_t, t, eps)
  if clip:
    x0 = jnp.clip(x0, -1.0, 1.0)
    eps = ((_take(sched.sqrt_recip_alphas_cumprod, t, x_t) * x_t - x0)
           / _take(sched.sqrt_recipm1_alphas_cumprod, t, x_t))
  abar = jnp.asarray(sched.alphas_cumprod, x_t.dtype)
  a_prev = jnp.where(t_prev >= 0, abar[jnp.maximum(t_prev, 0)], 1.0)
  a_prev = a_prev.reshape(a_prev.shape + (1,) * (x_t.ndim - 1))
  sigma = ddim_sigma(sched, t, t_prev, eta)
  sigma = sigma.reshape(sigma.shape + (1,) * (x_t.ndim - 1))
  direction = jnp.sqrt(jnp.maximum(1.0 - a_prev - sigma ** 2, 0.0)) * eps
  return jnp.sqrt(a_prev) * x0 + direction + sigma * noise


def ancestral_step(sched: Schedule, x_t: ArrayLike, t: ArrayLike,
                   eps: ArrayLike, noise: ArrayLike, *,
                   variance: str = 'beta', clip: bool = False) -> jax.Array:
  r"""One step of Ho et al.'s Algorithm 2: x_{t-1} = mu_theta + sigma_t z,
  with no noise at index 0 (the output is the decoder's mean).

  Args:
    sched: the schedule.
    x_t: [B, ...]; t: int scalar or [B]; eps: eps_theta(x_t, t);
    noise: z ~ N(0, I) like x_t.
    variance: 'beta' or 'posterior' (sigma_t^2).
    clip: clip the predicted x_0 to [-1, 1] in the mean.
  """
  x_t = jnp.asarray(x_t)
  t = jnp.broadcast_to(jnp.asarray(t), x_t.shape[:1])
  mean = p_mean_from_eps(sched, x_t, t, eps, clip=clip)
  log_var = _take(model_log_variance(sched, variance), t, x_t)
  nonzero = (t > 0).reshape((-1,) + (1,) * (x_t.ndim - 1))
  return mean + jnp.where(nonzero, jnp.exp(0.5 * log_var), 0.0) * noise
