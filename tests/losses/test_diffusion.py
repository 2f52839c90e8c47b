"""jaxgen.losses.diffusion against independent float64 NumPy computations.

The Gaussian toy: for data x_0 ~ N(mu, s^2) per dimension the noise
prediction that minimises L_simple is E[eps | x_t] in closed form, the
reverse means are then linear in x_t, and every term of the bound has a
float64 expectation (the decoder's by Gauss-Hermite quadrature).
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxgen.losses import diffusion as dif

MU, S = 0.2, 0.3


def _linear(num_t=1000):
  return dif.schedule('linear', num_t)


def test_linear_schedule_matches_the_formula():
  betas = dif.beta_schedule('linear', 1000)
  ref = [1e-4 + (0.02 - 1e-4) * i / 999 for i in range(1000)]
  assert betas.dtype == np.float64
  np.testing.assert_allclose(betas, ref, rtol=1e-12)


def test_cosine_schedule_matches_eq_17_and_is_clipped():
  num_t, s = 50, 0.008
  f = [math.cos((i / num_t + s) / (1 + s) * math.pi / 2) ** 2
       for i in range(num_t + 1)]
  ref = [min(1 - f[i + 1] / f[i], 0.999) for i in range(num_t)]
  betas = dif.beta_schedule('cosine', num_t)
  np.testing.assert_allclose(betas, ref, rtol=1e-12)
  assert betas[-1] == 0.999  # f(T) = 0: the last beta is the clip
  np.testing.assert_allclose(
      np.cumprod(1 - betas)[:-1], np.array(f[1:-1]) / f[0], rtol=1e-12)


@pytest.mark.parametrize('name', dif.SCHEDULES)
def test_schedule_table_matches_loops(name):
  sched = dif.schedule(name, 30)
  abar, rows = 1.0, []
  for beta in dif.beta_schedule(name, 30):
    prev, abar = abar, abar * (1 - beta)
    rows.append((abar, prev, beta * (1 - prev) / (1 - abar),
                 beta * math.sqrt(prev) / (1 - abar),
                 (1 - prev) * math.sqrt(1 - beta) / (1 - abar)))
  abar, prev, post_var, c1, c2 = map(np.array, zip(*rows))
  np.testing.assert_allclose(sched.alphas_cumprod, abar, rtol=1e-12)
  np.testing.assert_allclose(sched.alphas_cumprod_prev, prev, rtol=1e-12)
  np.testing.assert_allclose(sched.posterior_variance, post_var, rtol=1e-12,
                             atol=1e-300)
  np.testing.assert_allclose(sched.posterior_mean_coef1, c1, rtol=1e-12)
  np.testing.assert_allclose(sched.posterior_mean_coef2, c2, rtol=1e-12)
  assert sched.posterior_variance[0] == 0.0
  np.testing.assert_allclose(sched.posterior_log_variance_clipped,
                             np.log(np.r_[post_var[1], post_var[1:]]))
  np.testing.assert_allclose(dif.model_log_variance(sched, 'beta'),
                             np.log(np.r_[post_var[1], sched.betas[1:]]))
  assert all(np.isfinite(np.asarray(v)).all() for v in sched)


def test_closed_form_marginal_matches_composed_forward_steps():
  """q(x_t | x_0) of eq. 4 equals composing the T Gaussian steps exactly."""
  sched = _linear()
  x0 = np.array([-1.0, -0.3, 0.0, 0.7, 1.0])
  t = np.arange(0, 1000, 37)
  mean, var, log_var = dif.q_mean_variance(
      sched, np.broadcast_to(x0, (len(t), 5)), t)
  m, v, ref_m, ref_v = x0.copy(), 0.0, [], []
  for beta in sched.betas:  # x_t = sqrt(1 - beta) x_{t-1} + sqrt(beta) e
    m, v = math.sqrt(1 - beta) * m, (1 - beta) * v + beta
    ref_m.append(m)
    ref_v.append(v)
  np.testing.assert_allclose(mean, np.array(ref_m)[t], rtol=2e-5, atol=1e-7)
  np.testing.assert_allclose(var[:, 0], np.array(ref_v)[t], rtol=2e-5)
  np.testing.assert_allclose(log_var[:, 0], np.log(np.array(ref_v)[t]),
                             atol=2e-5)


def test_q_sample_matches_iterated_forward_process_by_monte_carlo():
  sched = dif.schedule('cosine', 12)
  n, t = 40_000, 7
  x0 = jnp.full((n, 1), 0.5)
  keys = jax.random.split(jax.random.key(0), 13)
  x = x0
  for s in range(t + 1):
    beta = float(sched.betas[s])
    x = math.sqrt(1 - beta) * x + math.sqrt(beta) * jax.random.normal(
        keys[s], x.shape)
  direct = dif.q_sample(sched, x0, jnp.full((n,), t),
                        jax.random.normal(keys[12], x0.shape))
  se = 4 / math.sqrt(n)
  for a in (x, direct):
    assert abs(float(a.mean()) - 0.5 * sched.sqrt_alphas_cumprod[t]) < se
    assert abs(float(a.var()) / (1 - sched.alphas_cumprod[t]) - 1) < 3 * se


def test_posterior_is_bayes_rule_on_a_grid():
  """q(x_{t-1} | x_t, x_0) prop. to q(x_{t-1} | x_0) q(x_t | x_{t-1})."""
  sched = _linear(200)
  x0, xt = 0.4, -0.25
  for t in (1, 5, 60, 199):
    abar_prev = sched.alphas_cumprod[t - 1]
    beta = sched.betas[t]
    grid = np.linspace(-4, 4, 400_001)
    log_w = (stats.norm.logpdf(grid, math.sqrt(abar_prev) * x0,
                               math.sqrt(1 - abar_prev))
             + stats.norm.logpdf(xt, math.sqrt(1 - beta) * grid,
                                 math.sqrt(beta)))
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    ref_mean = (w * grid).sum()
    ref_var = (w * (grid - ref_mean) ** 2).sum()
    mean, var, log_var = dif.q_posterior(sched, np.array([x0]),
                                         np.array([xt]), np.array([t]))
    np.testing.assert_allclose(mean[0], ref_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var[0], ref_var, rtol=1e-4)
    np.testing.assert_allclose(log_var[0], math.log(ref_var), atol=1e-4)


def _ref_discretized_gaussian(x, mean, sigma, num_bins=256):
  """Bin masses from SciPy's normal CDF / survival function, float64."""
  h = 1 / (num_bins - 1)
  lo = stats.norm.logcdf(x + h, mean, sigma)
  hi = stats.norm.logsf(x - h, mean, sigma)
  with np.errstate(divide='ignore'):
    left = lo + np.log(-np.expm1(stats.norm.logcdf(x - h, mean, sigma) - lo))
    right = hi + np.log(-np.expm1(stats.norm.logsf(x + h, mean, sigma) - hi))
  mid = np.where(x < mean, left, right)
  return np.where(x < -1 + h, lo, np.where(x > 1 - h, hi, mid))


@pytest.mark.parametrize('mean,log_scale', [
    (0.0, -1.0), (0.37, -4.0), (-0.9, -7.5), (3.0, 0.5), (-0.2, 3.0),
    (0.999, -9.0)])
def test_decoder_sums_to_one_and_matches_reference(mean, log_scale):
  x = np.arange(256) / 127.5 - 1
  lp = np.asarray(dif.discretized_gaussian_log_prob(x, mean, log_scale),
                  np.float64)
  assert np.isfinite(lp).all()
  np.testing.assert_allclose(np.exp(lp).sum(), 1.0, rtol=1e-5)
  ref = _ref_discretized_gaussian(x, mean, math.exp(log_scale))
  ok = ref > -80  # where float32 can follow; the tails stay finite anyway
  np.testing.assert_allclose(lp[ok], ref[ok], rtol=1e-4, atol=1e-5)


def test_decoder_is_finite_with_gradients_at_the_edge_levels():
  x = jnp.array([-1.0, 1.0, -1.0, 1.0])
  mean = jnp.array([1.0, -1.0, 50.0, -50.0])
  f = lambda m, s: dif.discretized_gaussian_log_prob(x, m, s).sum()
  for log_scale in (-8.0, 0.0, 4.0):
    s = jnp.full(4, log_scale)
    assert np.isfinite(dif.discretized_gaussian_log_prob(x, mean, s)).all()
    grads = jax.grad(f, argnums=(0, 1))(mean, s)
    assert all(np.isfinite(g).all() for g in grads)


def test_simple_loss_is_the_per_example_mean_square():
  eps = np.arange(12.0).reshape(2, 3, 2)
  pred = eps + np.array([1.0, 2.0])[:, None, None]
  np.testing.assert_allclose(dif.simple_loss(eps, pred), [1.0, 4.0])


def test_prior_term_vanishes_at_t_equal_T_for_the_linear_schedule():
  x0 = jnp.asarray(np.linspace(-1, 1, 64).reshape(1, 8, 8, 1))
  prior = float(dif.prior_kl(_linear(), x0)[0])
  assert 0 <= prior < 64 * 5e-5


# The Gaussian toy case.


def _optimal_eps(sched):
  def eps_fn(x_t, t):
    a = jnp.asarray(sched.sqrt_alphas_cumprod, jnp.float32)[t][:, None]
    b = jnp.asarray(sched.sqrt_one_minus_alphas_cumprod, jnp.float32)[t][
        :, None]
    return b * (x_t - a * MU) / (a ** 2 * S ** 2 + b ** 2)
  return eps_fn


def _expected_bound(sched, x0, variance):
  """E over x_t of L_T + sum_t L_t and of L_0 in float64, per dimension of
  x0 [D]."""
  num_t = sched.num_timesteps
  betas, abar = sched.betas, sched.alphas_cumprod
  log_var = np.asarray(dif.model_log_variance(sched, variance))
  total = 0.5 * (abar[-1] * x0 ** 2 - abar[-1] - np.log1p(-abar[-1]))
  for t in range(num_t):
    a, b = math.sqrt(abar[t]), math.sqrt(1 - abar[t])
    # eps*(x_t) = g x_t + e; mu_p = p x_t + q (eq. 11).
    g = b / (a ** 2 * S ** 2 + b ** 2)
    e = -g * a * MU
    p = (1 - betas[t] / b * g) / math.sqrt(1 - betas[t])
    q = -betas[t] / b * e / math.sqrt(1 - betas[t])
    var_p = math.exp(log_var[t])
    if t == 0:
      z, w = np.polynomial.hermite_e.hermegauss(80)
      w = w / w.sum()
      x1 = a * x0[:, None] + b * z[None, :]
      ll = _ref_discretized_gaussian(x0[:, None], p * x1 + q,
                                     math.sqrt(var_p))
      decoder = -(ll * w).sum(-1)
      total = total + decoder
      continue
    c1 = sched.posterior_mean_coef1[t]
    c2 = sched.posterior_mean_coef2[t]
    var_q = sched.posterior_variance[t]
    mean_d = c1 * x0 + (c2 - p) * a * x0 - q
    e_d2 = mean_d ** 2 + (c2 - p) ** 2 * b ** 2
    total = total + 0.5 * (np.log(var_p / var_q) + var_q / var_p - 1
                           + e_d2 / var_p)
  return total, decoder


@pytest.mark.parametrize('variance', dif.VARIANCES)
def test_bound_of_the_optimal_eps_matches_its_float64_expectation(variance):
  sched = dif.schedule('cosine', 40)
  rng = np.random.default_rng(0)
  levels = np.clip(np.round((rng.normal(MU, S, 1000) + 1) * 127.5), 0, 255)
  x0 = levels / 127.5 - 1
  ref, ref_decoder = (r.sum() for r in _expected_bound(sched, x0, variance))
  reps = 8
  batch = jnp.asarray(np.broadcast_to(x0, (reps, 1000)), jnp.float32)
  total, prior, decoder = jax.jit(
      lambda x, k: dif.variational_bound(_optimal_eps(sched), sched, x, k,
                                         variance=variance, chunk_size=16)
  )(batch, jax.random.key(1))
  assert np.isfinite(total).all() and (decoder > 0).all()
  np.testing.assert_allclose(prior, prior[0])
  np.testing.assert_allclose(float(total.mean()), ref, rtol=5e-3)
  np.testing.assert_allclose(float(decoder.mean()), ref_decoder, rtol=2e-2)
  # A bound on the model's discrete log-likelihood: its expectation over
  # the data is above the data's discrete entropy.
  h = 1 / 255
  levels_all = np.arange(256) / 127.5 - 1
  p = np.diff(stats.norm.cdf(np.r_[-np.inf, levels_all[:-1] + h, np.inf],
                             MU, S))
  entropy = -(p * np.log(p)).sum()
  assert ref / 1000 > entropy


def test_stratified_estimate_is_unbiased_and_full_with_T_samples():
  sched = dif.schedule('cosine', 30)
  ts, w = dif.stratified_timesteps(jax.random.key(0), 2000, 30, 7)
  assert ts.shape == (2000, 7) and (ts[:, 0] == 0).all()
  np.testing.assert_allclose(w.sum(1), 30)
  g = np.sin(np.arange(30.0)) + np.arange(30.0) / 10  # any function of t
  est = (np.asarray(w) * g[np.asarray(ts)]).sum(1)
  assert abs(est.mean() - g.sum()) < 4 * est.std() / math.sqrt(2000)
  ts, w = dif.stratified_timesteps(jax.random.key(0), 3, 30, 30)
  np.testing.assert_array_equal(ts, np.broadcast_to(np.arange(30), (3, 30)))
  x0 = jnp.asarray(np.linspace(-1, 1, 12).reshape(3, 4))
  bound = jax.jit(functools.partial(dif.variational_bound,
                                    _optimal_eps(sched), sched, chunk_size=7),
                  static_argnames='num_samples')
  full = bound(x0, jax.random.key(2))[0]
  every = bound(x0, jax.random.key(2), num_samples=30)[0]
  np.testing.assert_allclose(full, every, rtol=1e-6)


def _run_sampler(sched, step_fn, steps, shape, key):
  ts, prev = steps
  eps_fn = _optimal_eps(sched)

  def body(x, inp):
    i, t, tp = inp
    eps = eps_fn(x, jnp.full(x.shape[:1], t))
    noise = jax.random.normal(jax.random.fold_in(key, i), x.shape)
    return step_fn(x, t, tp, eps, noise), None

  x = jax.random.normal(jax.random.fold_in(key, 10**6), shape)
  return jax.lax.scan(body, x, (jnp.arange(len(ts)), ts, prev))[0]


def test_ddim_eta_one_is_ancestral_sampling_with_the_posterior_variance():
  sched = dif.schedule('cosine', 100)
  ts = jnp.arange(99, -1, -1)
  prev = ts - 1
  shape = (4000, 2)
  key = jax.random.key(3)
  ddim = jax.jit(lambda: _run_sampler(
      sched, lambda x, t, tp, e, z: dif.ddim_step(sched, x, t, tp, e, z, 1.0),
      (ts, prev), shape, key))()
  ancestral = jax.jit(lambda: _run_sampler(
      sched, lambda x, t, tp, e, z: dif.ancestral_step(
          sched, x, t, e, z, variance='posterior'),
      (ts, prev), shape, key))()
  np.testing.assert_allclose(ddim, ancestral, atol=2e-4)
  # Both recover the data's moments from N(0, I).
  for x in (ddim, ancestral):
    assert abs(float(x.mean()) - MU) < 0.02
    assert abs(float(x.std()) / S - 1) < 0.05
  # Deterministic DDIM (the probability-flow discretisation): close on all
  # 100 steps, and its error grows on a 20-step sub-sequence.
  errors = []
  for n in (100, 20):
    sub = jnp.asarray(np.round(np.linspace(99, 0, n)).astype(np.int32))
    x = jax.jit(lambda sub=sub: _run_sampler(
        sched,
        lambda x, t, tp, e, z: dif.ddim_step(sched, x, t, tp, e, z, 0.0),
        (sub, jnp.append(sub[1:], -1)), shape, key))()
    assert abs(float(x.mean()) - MU) < 0.02
    errors.append(abs(float(x.std()) / S - 1))
  assert errors[0] < 0.05 and errors[0] < errors[1] < 0.15, errors


def test_bound_terms_are_finite_and_nonnegative():
  sched = _linear()
  x0 = jnp.asarray(np.linspace(-1, 1, 64).reshape(4, 4, 4, 1))
  t = jnp.array([0, 1, 500, 999])
  noise = jax.random.normal(jax.random.key(0), x0.shape)

  @jax.jit
  def terms(x0, t, noise):
    xt = dif.q_sample(sched, x0, t, noise)
    return dif.bound_terms(sched, x0, xt, t, noise * 0.9)

  for scale in (1.0, 1e3):  # data and far-off predictions
    out = terms(x0, t, noise * scale)
    assert np.isfinite(out).all() and (out >= 0).all()


def test_bad_schedule_arguments_raise():
  with pytest.raises(ValueError, match='schedule'):
    dif.beta_schedule('quadratic', 10)
  with pytest.raises(ValueError, match='num_timesteps'):
    dif.beta_schedule('linear', 0)
  with pytest.raises(ValueError, match='variance'):
    dif.model_log_variance(_linear(10), 'learned')
