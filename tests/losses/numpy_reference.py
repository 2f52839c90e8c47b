"""Independent float64 NumPy/SciPy references for the jaxgen.losses tests.

Nothing here imports jaxgen or JAX: each reference takes another route to the
same quantity (SciPy distributions, probabilities instead of logits, explicit
CDF differences) so that a shared mistake is unlikely.
"""

import numpy as np
from scipy import special
from scipy import stats


def f64(a):
  return np.asarray(a, dtype=np.float64)


def bernoulli_log_prob(logits, x):
  """-BCE from probabilities, float64: valid for moderate logits only."""
  p = 1.0 / (1.0 + np.exp(-f64(logits)))
  x = f64(x)
  return x * np.log(p) + (1.0 - x) * np.log1p(-p)


def gaussian_log_prob(x, mean, log_scale):
  return stats.norm.logpdf(f64(x), loc=f64(mean), scale=np.exp(f64(log_scale)))


def categorical_log_prob(logits, labels):
  log_p = special.log_softmax(f64(logits), axis=-1)
  return np.take_along_axis(log_p, np.asarray(labels)[..., None], -1)[..., 0]


def discretized_logistic_log_prob(
    x, mean, log_scale, num_bins=256, log_scale_min=-7.0
):
  """log P(bin of x) from SciPy's logistic log-CDF / log-SF, float64."""
  x, mean, log_scale = np.broadcast_arrays(f64(x), f64(mean), f64(log_scale))
  scale = np.exp(np.maximum(log_scale, log_scale_min))
  half = 1.0 / (num_bins - 1)
  upper, lower = x + half, x - half
  dist = stats.logistic(loc=mean, scale=scale)
  log_cdf_upper = dist.logcdf(upper)
  log_cdf_lower = dist.logcdf(lower)
  log_sf_upper = dist.logsf(upper)
  log_sf_lower = dist.logsf(lower)
  with np.errstate(divide="ignore"):
    # Left of the mode difference the CDFs, right of it the survival
    # functions, so that nothing cancels: log(e^A - e^B) = A + log(-expm1(B-A)).
    via_cdf = log_cdf_upper + np.log(-np.expm1(log_cdf_lower - log_cdf_upper))
    via_sf = log_sf_lower + np.log(-np.expm1(log_sf_upper - log_sf_lower))
  interior = np.where(lower > mean, via_sf, via_cdf)
  lowest = x < -1.0 + half
  highest = x > 1.0 - half
  return np.where(
      lowest, log_cdf_upper, np.where(highest, log_sf_lower, interior)
  )


def discretized_logistic_mixture_log_prob(
    x, logit_weights, means, log_scales, num_bins=256, log_scale_min=-7.0
):
  per_channel = discretized_logistic_log_prob(
      f64(x)[..., None], means, log_scales, num_bins, log_scale_min
  )
  log_w = special.log_softmax(f64(logit_weights), axis=-1)
  return special.logsumexp(log_w + per_channel.sum(-2), axis=-1)


def gaussian_mixture_log_prob(x, logit_weights, means, log_vars):
  """Per-component SciPy multivariate normals with diagonal covariance."""
  x = f64(x)
  log_w = special.log_softmax(f64(logit_weights))
  comps = [
      stats.multivariate_normal(mean=f64(m), cov=np.diag(np.exp(f64(v))))
      for m, v in zip(means, log_vars)
  ]
  per_comp = np.stack([c.logpdf(x) for c in comps], axis=-1)
  per_comp = np.reshape(per_comp, x.shape[:-1] + (-1,))
  return special.logsumexp(log_w + per_comp, axis=-1)


def gaussian_kl(mean, log_var, prior_mean, prior_log_var):
  """KL in std form: log(sp / sq) + (sq^2 + dmu^2) / (2 sp^2) - 1/2."""
  sq = np.exp(0.5 * f64(log_var))
  sp = np.exp(0.5 * f64(prior_log_var))
  dmu = f64(mean) - f64(prior_mean)
  return np.log(sp / sq) + (sq**2 + dmu**2) / (2.0 * sp**2) - 0.5


def log_mean_exp(x, axis):
  x = f64(x)
  axes = (axis,) if isinstance(axis, int) else tuple(axis)
  k = np.prod([x.shape[a] for a in axes])
  return special.logsumexp(x, axis=axes) - np.log(k)
