"""Gaussian mixture by EM: float64 reference, monotonicity, recovery, sampler.

The reference is an independent float64 NumPy/SciPy EM with the same
objective (module docstring of `jaxgen.models.gmm`): E-step log-joint
``log pi_k + log N(y; mu_k, Sigma_k) - s tr(Sigma_k^-1) / 2``, M-step
``Sigma_k = weighted covariance + s I``.
"""

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize
from scipy import special
from scipy import stats

from experiments.configs import gmm as gmm_config
from jaxgen import data as data_lib
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.models import gmm


def _reference_em_step(y, logits, means, covs, s, diagonal):
  """One float64 EM step; returns (objective sum, logits, means, covs)."""
  k, d = means.shape
  comp = np.stack([
      stats.multivariate_normal(means[j], covs[j]).logpdf(y)
      - 0.5 * s * np.trace(np.linalg.inv(covs[j])) for j in range(k)], -1)
  joint = logits - special.logsumexp(logits) + comp
  obj = special.logsumexp(joint, -1)
  r = np.exp(joint - obj[:, None])
  nk = r.sum(0)
  new_means = (r.T @ y) / nk[:, None]
  new_covs = []
  for j in range(k):
    c = y - new_means[j]
    cov = (c * r[:, j:j + 1]).T @ c / nk[j]
    if diagonal:
      cov = np.diag(np.diag(cov))
    new_covs.append(cov + s * np.eye(d))
  return obj.sum(), np.log(nk / len(y)), new_means, np.stack(new_covs)


def _covs(params):
  if 'log_vars' in params:
    return np.stack([np.diag(np.exp(v)) for v in np.asarray(params['log_vars'])])
  trils = np.asarray(params['scale_trils'])
  return trils @ np.swapaxes(trils, -1, -2)


def _initialize(key, y, net):
  """`gmm.initialize` as one compiled program (eagerly, op by op, it costs
  more to dispatch than to compile)."""
  return jax.jit(functools.partial(gmm.initialize, net=net))(key, y)


def _blobs(rng, n, d, k, spread=3.0):
  centres = rng.normal(size=(k, d)) * spread
  labels = rng.integers(0, k, size=n)
  return centres[labels] + rng.normal(size=(n, d)) * rng.uniform(
      0.5, 1.5, size=(1, d))


@pytest.mark.parametrize('covariance', ['diag', 'full'])
def test_em_matches_float64_reference_and_never_decreases(covariance):
  rng = np.random.default_rng(0)
  y = _blobs(rng, 120, 3, 3)
  net = gmm.Net(image_shape=(1, 3, 1), num_components=4,
                covariance=covariance, covariance_floor=1e-2, chunk_size=32)
  s = gmm.smoothing_variance(net)
  with jax.enable_x64(True):
    params = _initialize(jax.random.key(0), jnp.asarray(y), net)
    assert params['means'].dtype == jnp.float64
    step = jax.jit(lambda p: gmm.em_step(p, jnp.asarray(y), net=net))
    ref = (np.asarray(params['logits']), np.asarray(params['means']),
           _covs(params))
    objectives = []
    for it in range(25):
      new, _, _, obj = step(params)
      ref_obj, *ref = _reference_em_step(y, *ref, s, covariance == 'diag')
      objectives.append(float(obj.sum()))
      if it < 5:  # the parameters themselves, early on
        np.testing.assert_allclose(objectives[-1], ref_obj, rtol=1e-10)
        np.testing.assert_allclose(new['logits'], ref[0], atol=1e-9)
        np.testing.assert_allclose(new['means'], ref[1], atol=1e-9)
        np.testing.assert_allclose(_covs(new), ref[2], atol=1e-9)
      params = new
  diffs = np.diff(objectives)
  assert diffs.min() >= -1e-9 * abs(objectives[-1]), diffs
  assert objectives[-1] > objectives[0] + 1.0  # it did learn


@pytest.mark.parametrize('covariance', ['diag', 'full'])
def test_em_never_decreases_the_mixture_log_likelihood(covariance):
  # With no covariance floor the smoothing is only the dequantization
  # noise's s = 1 / (12 256^2), and EM's objective differs from the exact
  # mixture log-likelihood sum_i log p(y_i) by s tr(Sigma^-1) / 2 per point:
  # the log-likelihood itself must not decrease beyond that.
  rng = np.random.default_rng(1)
  y = _blobs(rng, 200, 4, 3)
  net = gmm.Net(image_shape=(1, 4, 1), num_components=5,
                covariance=covariance, covariance_floor=0.0, chunk_size=64)
  with jax.enable_x64(True):
    params = _initialize(jax.random.key(1), jnp.asarray(y), net)
    step = jax.jit(lambda p: gmm.em_step(p, jnp.asarray(y), net=net)[0])
    log_lik = jax.jit(
        lambda p: gmm.mixture_log_prob(p, jnp.asarray(y), net=net).sum())
    values = [float(log_lik(params))]
    for _ in range(30):
      params = step(params)
      values.append(float(log_lik(params)))
  tol = len(y) * gmm.smoothing_variance(net) * 100.0
  assert np.diff(values).min() >= -tol, np.diff(values)
  assert values[-1] > values[0] + 10.0  # it did learn


@pytest.fixture(scope='module')
def digits_midpoints():
  """Real 8x8 digit pixels (constant border columns included), as EM sees them."""
  d = gmm_config.get_config('digits').data
  dataset = data_lib.load_dataset(
      name=d.name, splits=dict(d.splits),
      shuffle_before_split=d.shuffle_before_split, split_seed=d.split_seed)
  source = dataset.splits['train']
  batch = next(data_lib.eval_batches(source, batch_size=len(source)))
  return gmm.midpoints(jnp.asarray(batch['image'])).reshape(len(source), -1)


@pytest.mark.parametrize('covariance', ['diag', 'full'])
def test_float32_em_on_pixels_is_monotone_without_a_floor(
    digits_midpoints, covariance):
  """Constant pixels, floor 0: only the dequantization variance keeps Sigma > 0."""
  y = digits_midpoints
  const = np.ptp(np.asarray(y), 0) == 0
  assert const.any()  # the data do have exactly constant dimensions
  net = gmm.Net(image_shape=(8, 8, 1), num_components=6,
                covariance=covariance, covariance_floor=0.0)
  step = jax.jit(lambda p: gmm.em_step(p, y, net=net)[::3])
  params = _initialize(jax.random.key(1), y, net)
  objectives = []
  for _ in range(20):
    params, obj = step(params)
    objectives.append(float(np.asarray(obj, np.float64).sum()))
  assert np.all(np.isfinite(objectives))
  diffs = np.diff(objectives)
  assert diffs.min() >= -2e-6 * abs(objectives[-1]), diffs
  # A pixel constant in the data has variance exactly s in every component.
  covs = _covs(params)
  s = gmm.smoothing_variance(net)
  np.testing.assert_allclose(np.diagonal(covs, axis1=1, axis2=2)[:, const],
                             s, rtol=1e-3)


def test_floor_effect_on_a_constant_pixel():
  """E_u log N at a constant pixel = -log(2 pi s)/2 - 1/(24 256^2 s)."""
  rng = np.random.default_rng(2)
  pixels = np.stack([rng.integers(0, 256, 400), np.full(400, 17)], -1)
  for floor in (0.0, 1e-3):
    net = gmm.Net(image_shape=(1, 2, 1), num_components=1,
                  covariance='diag', covariance_floor=floor)
    y = gmm.midpoints(jnp.asarray(pixels))
    params = jax.jit(lambda y: gmm.em_step(  # pylint: disable=cell-var-from-loop
        gmm.initialize(jax.random.key(0), y, net=net), y, net=net)[0])(y)
    s = gmm.smoothing_variance(net)
    np.testing.assert_allclose(np.exp(params['log_vars'][0, 1]), s, rtol=1e-5)
    # Monte Carlo over the dequantization noise of the constant pixel.
    u = (17 + rng.uniform(size=200_000)) / 256
    mc = stats.norm(float(params['means'][0, 1]), math.sqrt(s)).logpdf(u).mean()
    formula = -0.5 * math.log(2 * math.pi * s) - 1 / (24 * 256 ** 2 * s)
    np.testing.assert_allclose(mc, formula, atol=2e-3)
  # floor 0: 5.37 nats, 0.18 below the bin's ln 256.
  s0 = gmm.DEQUANTIZATION_VARIANCE
  assert abs(-0.5 * math.log(2 * math.pi * math.e * s0) - 5.369) < 1e-3


@pytest.mark.parametrize('covariance', ['diag', 'full'])
def test_em_recovers_a_known_mixture(covariance):
  rng = np.random.default_rng(3)
  weights = np.array([0.5, 0.3, 0.2])
  means = np.array([[0.0, 0.0], [6.0, 1.0], [-2.0, 7.0]])
  if covariance == 'full':
    covs = np.array([[[1.0, 0.6], [0.6, 1.0]], [[0.5, -0.2], [-0.2, 0.8]],
                     [[2.0, 0.0], [0.0, 0.3]]])
  else:
    covs = np.array([np.diag(v) for v in ([1.0, 0.4], [0.5, 2.0], [1.5, 0.3])])
  n = 6000
  z = rng.choice(3, size=n, p=weights)
  y = np.stack([rng.multivariate_normal(means[k], covs[k]) for k in z])
  net = gmm.Net(image_shape=(1, 2, 1), num_components=3,
                covariance=covariance, covariance_floor=0.0)
  yj = jnp.asarray(y, jnp.float32)
  params = _initialize(jax.random.key(4), yj, net)

  @jax.jit
  def fit(params):
    body = lambda _, p: gmm.em_step(p, yj, net=net)[0]
    return jax.lax.fori_loop(0, 100, body, params)

  params = fit(params)
  fitted = np.asarray(params['means'])
  cost = np.linalg.norm(fitted[:, None] - means[None], axis=-1)
  rows, cols = optimize.linear_sum_assignment(cost)  # label switching
  order = cols.argsort()
  fitted_w = np.exp(np.asarray(params['logits']))[rows][order]
  np.testing.assert_allclose(fitted_w, weights, atol=0.02)
  np.testing.assert_allclose(fitted[rows][order], means, atol=0.08)
  np.testing.assert_allclose(_covs(params)[rows][order], covs, atol=0.12)


def test_stepwise_merge_equals_pooled_moments():
  """rho_t = 1 / (t + 1) over equal batches = moments of all data at once."""
  rng = np.random.default_rng(5)
  k, d, n = 3, 4, 50
  ys = [rng.normal(size=(n, d)) + t for t in range(3)]
  rs = [rng.dirichlet(np.ones(k), size=n) for _ in range(3)]
  for covariance in ('diag', 'full'):
    with jax.enable_x64(True):
      stats_ = None
      for t, (y, r) in enumerate(zip(ys, rs)):
        new = gmm.batch_moments(jnp.asarray(r), jnp.asarray(y), covariance)
        stats_ = new if stats_ is None else gmm.merge_moments(
            stats_, new, 1.0 / (t + 1))
      pooled = gmm.batch_moments(jnp.asarray(np.concatenate(rs)),
                                 jnp.asarray(np.concatenate(ys)), covariance)
    y, r = np.concatenate(ys), np.concatenate(rs)
    nk = r.sum(0)
    mean = r.T @ y / nk[:, None]
    full = np.stack([((y - mean[j]) * r[:, j:j + 1]).T @ (y - mean[j]) / nk[j]
                     for j in range(k)])
    cov = full if covariance == 'full' else np.diagonal(full, axis1=1, axis2=2)
    for got in (stats_, pooled):
      np.testing.assert_allclose(got.weight, nk / nk.sum(), rtol=1e-12)
      np.testing.assert_allclose(got.mean, mean, rtol=1e-12)
      np.testing.assert_allclose(got.cov, cov, rtol=1e-10)


def test_log_likelihood_is_the_exact_mixture_density():
  rng = np.random.default_rng(6)
  net = gmm.Net(image_shape=(2, 2, 1), num_components=3, covariance='full',
                covariance_floor=1e-3)
  pixels = rng.integers(0, 256, size=(40, 2, 2, 1))
  y = (pixels + rng.uniform(size=pixels.shape)) / 256
  batch = {'image': jnp.asarray(y, jnp.float32),
           'mask': jnp.ones((40,), bool)}

  @jax.jit
  def run(b):
    p = gmm.init(jax.random.key(0), b, net=net)
    p = gmm.em_step(p, b['image'].reshape(40, -1), net=net)[0]
    return (p, gmm.log_likelihood(p, b, None, net=net),
            net.apply({'params': p}, b['image']),
            gmm.loss_fn(p, b, None, net=net)[1])

  params, ll, applied, metrics = run(batch)
  structure = jax.tree.structure(jax.eval_shape(
      net.init, jax.random.key(0), batch['image'])['params'])
  assert jax.tree.structure(params) == structure
  covs = _covs(params).astype(np.float64)
  w = np.exp(np.asarray(params['logits'], np.float64))
  flat = y.reshape(40, -1)
  ref = np.log(sum(w[k] / w.sum() * stats.multivariate_normal(
      np.asarray(params['means'][k], np.float64), covs[k]).pdf(flat)
                   for k in range(3)))
  np.testing.assert_allclose(ll, ref, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(applied, ll, rtol=1e-6)
  np.testing.assert_allclose(metrics['nll'], -ref + 4 * math.log(256),
                             rtol=1e-5)


@pytest.mark.parametrize('covariance', ['diag', 'full'])
def test_sampler_draws_the_mixture(covariance):
  """Component frequencies, means and covariances of 8-bit samples."""
  means = np.array([[0.25, 0.3], [0.7, 0.75]])
  if covariance == 'full':
    covs = np.array([[[4e-4, 3e-4], [3e-4, 4e-4]], [[9e-4, -4e-4],
                                                    [-4e-4, 4e-4]]])
    params = {'scale_trils': jnp.asarray(np.linalg.cholesky(covs),
                                         jnp.float32)}
  else:
    covs = np.array([np.diag([4e-4, 9e-4]), np.diag([6e-4, 3e-4])])
    params = {'log_vars': jnp.asarray(np.log(np.diagonal(covs, axis1=1,
                                                         axis2=2)),
                                      jnp.float32)}
  weights = np.array([0.3, 0.7])
  params.update(logits=jnp.asarray(np.log(weights), jnp.float32),
                means=jnp.asarray(means, jnp.float32))
  net = gmm.Net(image_shape=(1, 2, 1), num_components=2,
                covariance=covariance)
  n = 20_000
  images = jax.jit(lambda p, k: gmm.sample(p, k, n, net=net))(
      params, jax.random.key(7))
  assert images.shape == (n, 1, 2, 1) and images.dtype == jnp.uint8
  y = (np.asarray(images, np.float64).reshape(n, 2) + 0.5) / 256
  z = np.argmin(np.linalg.norm(y[:, None] - means[None], axis=-1), -1)
  freq = np.bincount(z, minlength=2) / n
  np.testing.assert_allclose(freq, weights, atol=4 * math.sqrt(0.21 / n))
  for k in range(2):
    yk = y[z == k]
    np.testing.assert_allclose(yk.mean(0), means[k], atol=1e-3)
    # Sample covariance, quantization (1 / (12 * 256^2)) removed.
    cov = np.cov(yk.T) - np.eye(2) / (12 * 256 ** 2)
    np.testing.assert_allclose(cov, covs[k], atol=6e-5)


def _config(**model):
  config = gmm_config.get_config('smoke')
  config.train.batch_size = 256  # the whole smoke training split
  config.model.online_decay = 0.0
  for k, v in model.items():
    config.model[k] = v
  return config


@pytest.mark.parametrize('field,value,config_field', [
    ('model.covariance', 'spherical', 'config.model.covariance'),
    ('model.online_decay', 0.3, 'config.model.online_decay'),
    ('model.initialization', 'zeros', 'config.model.initialization'),
    ('data.dequantize', False, 'config.data.dequantize'),
    ('train.batch_size', 128, 'config.train.batch_size'),
    ('train.ema_decay', 0.99, 'config.train.ema_decay'),
])
def test_validate_names_the_field(field, value, config_field, tmp_path):
  config = _config()
  node, leaf = field.split('.')
  config[node][leaf] = value
  with pytest.raises(ConfigError, match=config_field.replace('.', r'\.')):
    train.Experiment(config, str(tmp_path))


@pytest.mark.slow
def test_batch_em_through_the_trainer(tmp_path):
  """The shared loop: logged objective never worse, eval nll == exact nll."""
  config = _config(covariance='full', num_components=3)
  config.train.num_steps = 6
  config.train.log_every_steps = 1
  exp = train.Experiment(config, str(tmp_path))
  state = exp.train()
  with open(tmp_path / 'metrics.jsonl') as f:
    rows = [json.loads(line) for line in f]
  loss = [r['loss'] for r in rows if r['split'] == 'train']
  assert len(loss) == 6
  assert np.diff(loss).max() <= 1e-6 * abs(loss[-1]), loss
  results = exp.evaluate(state)
  np.testing.assert_allclose(results['nll'], results['exact/nll_nats'],
                             rtol=1e-6)
  np.testing.assert_allclose(results['exact/bits_per_dim'],
                             results['nll'] / (64 * math.log(2)), rtol=1e-6)


@pytest.mark.slow
def test_stepwise_em_resumes_bitwise(tmp_path):
  """Moments in opt_state survive a checkpoint: 2 + 2 steps == 4 steps."""
  config = gmm_config.get_config('smoke')  # stepwise EM, batches of 32
  config.train.num_steps = 4
  whole = train.Experiment(config, str(tmp_path / 'whole')).train()
  assert isinstance(whole.opt_state, gmm.Moments)
  config.train.num_steps = 2
  train.Experiment(config, str(tmp_path / 'split')).train()
  config.train.num_steps = 4
  resumed = train.Experiment(config, str(tmp_path / 'split')).train()
  for a, b in zip(jax.tree.leaves((whole.params, whole.opt_state)),
                  jax.tree.leaves((resumed.params, resumed.opt_state)),
                  strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
