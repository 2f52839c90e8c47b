"""The RBM: energies and conditionals, AIS against enumeration, the CD-1
gradient, persistent chains across a resume, config errors, the NumPy
sweep of the benchmark."""

import itertools
import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import bench_rbm
from experiments.configs import rbm as rbm_config
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.models import rbm
from tests import helpers


def _params(seed, d, h, scale, dtype=np.float32):
  rng = np.random.default_rng(seed)
  return {'w': (scale * rng.standard_normal((d, h))).astype(dtype),
          'b': rng.standard_normal(d).astype(dtype),
          'c': rng.standard_normal(h).astype(dtype)}


def _binary(n):
  return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def _softplus(x):
  return np.logaddexp(0.0, x)


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize('visible', rbm.VISIBLE)
def test_free_energy_and_conditionals_match_float64_numpy(visible):
  p = _params(0, 6, 4, 0.7, np.float64)
  rng = np.random.default_rng(1)
  v = (rng.integers(0, 2, (5, 6)) if visible == 'bernoulli'
       else rng.standard_normal((5, 6)))
  h = rng.integers(0, 2, (5, 4)).astype(np.float64)
  softplus = _softplus(v @ p['w'] + p['c']).sum(-1)
  if visible == 'bernoulli':
    f = -v @ p['b'] - softplus
    mean = _sigmoid(h @ p['w'].T + p['b'])
  else:
    f = 0.5 * ((v - p['b']) ** 2).sum(-1) - softplus
    mean = h @ p['w'].T + p['b']
  p32 = jax.tree.map(jnp.float32, p)
  got_f, got_ph, got_mean = jax.jit(lambda p, v, h: (
      rbm.free_energy(p, v, visible), rbm.hidden_probs(p, v),
      rbm.visible_mean(p, h, visible)))(p32, jnp.float32(v), jnp.float32(h))
  np.testing.assert_allclose(got_f, f, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(got_ph, _sigmoid(v @ p['w'] + p['c']),
                             atol=1e-6)
  np.testing.assert_allclose(got_mean, mean, atol=1e-5)
  # F is -log sum_h exp(-E(v, h)), by enumerating h (Bernoulli).
  if visible == 'bernoulli':
    hs = _binary(4)
    neg_e = ((v @ p['b'])[:, None] + (hs @ p['c'])[None]
             + v @ p['w'] @ hs.T)  # [5, 16]
    np.testing.assert_allclose(-np.logaddexp.reduce(neg_e, axis=1), f,
                               rtol=1e-10)


def test_exact_log_partition_matches_brute_force_both_ways():
  p = _params(2, 5, 4, 0.8, np.float64)
  vs, hs = _binary(5), _binary(4)
  neg_e = ((vs @ p['b'])[:, None] + (hs @ p['c'])[None]
           + vs @ p['w'] @ hs.T)
  brute = np.logaddexp.reduce(neg_e.ravel())
  p32 = jax.tree.map(jnp.float32, p)
  # D < H: enumerate v instead (the transposed model has the same Z).
  pt = {'w': p32['w'].T, 'b': p32['c'], 'c': p32['b']}
  by_h, by_v = jax.jit(lambda p, pt: (rbm.log_partition_exact(p),
                                      rbm.log_partition_exact(pt)))(p32, pt)
  np.testing.assert_allclose(by_h, brute, rtol=1e-5)
  np.testing.assert_allclose(by_v, brute, rtol=1e-5)


@pytest.fixture(scope='module')
def ais_fn():
  return jax.jit(lambda p, base_b, key: rbm.ais_log_partition(
      p, key, base_b=base_b, visible='bernoulli', num_betas=500,
      num_chains=100))


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_ais_log_z_is_within_its_standard_errors_of_enumeration(ais_fn,
                                                                 seed):
  p = jax.tree.map(jnp.asarray, _params(seed, 20, 12, 0.5))
  exact = float(rbm.log_partition_exact(p))
  base_b = jnp.asarray(np.random.default_rng(seed).normal(0, 1, 20),
                       jnp.float32)
  log_z, stderr = map(float, ais_fn(p, base_b, jax.random.key(seed)))
  assert 0 < stderr < 0.2
  assert abs(log_z - exact) < 4 * stderr + 1e-3, (log_z, exact, stderr)


def test_gaussian_ais_and_exact_log_partition():
  p = jax.tree.map(jnp.asarray, _params(3, 6, 5, 0.3))
  log_z, stderr = jax.jit(lambda p: rbm.ais_log_partition(
      p, jax.random.key(0), base_b=jnp.zeros(6), visible='gaussian',
      num_betas=300, num_chains=100))(p)
  exact = rbm.log_partition_exact(p, visible='gaussian')
  assert abs(float(log_z) - float(exact)) < 4 * float(stderr) + 1e-3


def test_gaussian_log_likelihood_is_a_density_of_the_pixels():
  """With the exact log Z, exp(log_likelihood) of a 2-pixel Gaussian RBM is
  the float64 mixture sum_h p(h) N(v; b + W h, I) / prod_i std_i of the
  raw pixels y, v = (y - mean) / std, and integrates to 1 over y."""
  p64 = _params(5, 2, 3, 0.7, np.float64)
  mean, std = np.array([0.4, 0.6]), np.array([0.3, 0.15])
  net = rbm.Net(image_shape=(1, 2, 1), hidden_dim=3, visible='gaussian')
  variables = {'params': jax.tree.map(jnp.float32, p64),
               rbm.STATE: {'mean': jnp.float32(mean),
                           'std': jnp.float32(std)}}
  step = 0.05  # in units of std: a Riemann sum over +-7 std
  axes = [m + s * np.arange(-7.0, 7.0, step) for m, s in zip(mean, std)]
  y = np.stack(np.meshgrid(*axes, indexing='ij'), -1).reshape(-1, 2)
  log_p = np.asarray(jax.jit(lambda v, y: rbm.log_likelihood(
      v, {'image': y.reshape(-1, 1, 2, 1)}, jax.random.key(0), net=net,
      log_z=rbm.log_partition_exact(v['params'], visible='gaussian')))(
          variables, jnp.float32(y)), np.float64)
  # The reference: p(h) ∝ exp(c.h + b.Wh + |Wh|^2 / 2) over 2^3 states.
  hs = _binary(3)
  wh = hs @ p64['w'].T
  log_ph = hs @ p64['c'] + wh @ p64['b'] + 0.5 * (wh ** 2).sum(-1)
  log_ph -= np.logaddexp.reduce(log_ph)
  v = (y - mean) / std
  sq = ((v[:, None, :] - p64['b'] - wh[None]) ** 2).sum(-1)
  expected = (np.logaddexp.reduce(log_ph - 0.5 * sq, axis=1)
              - math.log(2 * math.pi) - np.log(std).sum())
  np.testing.assert_allclose(log_p, expected, atol=2e-3)
  cell = np.prod([step * s for s in std])
  assert math.isclose(np.exp(log_p).sum() * cell, 1.0, rel_tol=1e-3)


def test_cd1_gradient_is_the_enumerated_expectation_difference():
  """The step's gradient, averaged over many one-step chains from one v0,
  equals E_data[dF] - E_{v1 ~ T(v1 | v0)}[dF] computed by enumeration."""
  d, h, rows = 4, 3, 20_000
  p64 = _params(4, d, h, 0.8, np.float64)
  v0 = np.array([1.0, 0.0, 1.0, 1.0])
  net = rbm.Net(image_shape=(d, 1, 1), hidden_dim=h, train_mode='cd',
                cd_steps=1)
  variables = {'params': jax.tree.map(jnp.float32, p64),
               rbm.STATE: {'chains': jnp.zeros((1, d))}}
  batch = {'image': jnp.tile(jnp.float32(v0).reshape(1, d, 1, 1),
                             (rows, 1, 1, 1)),
           'mask': jnp.ones((rows,), bool)}
  grads = jax.jit(jax.grad(lambda p: rbm.cd_objective(
      {**variables, 'params': p}, batch, jax.random.key(0), net)[0]))(
          variables['params'])

  def d_free_energy(v):  # dF/d(w, b, c) at v (numpy, float64)
    ph = _sigmoid(v @ p64['w'] + p64['c'])
    return {'w': -np.outer(v, ph), 'b': -v, 'c': -ph}

  hs, vs = _binary(h), _binary(d)
  ph = _sigmoid(v0 @ p64['w'] + p64['c'])
  p_h = np.prod(np.where(hs == 1, ph, 1 - ph), axis=1)  # [2^h]
  pv = _sigmoid(hs @ p64['w'].T + p64['b'])  # [2^h, d]
  p_v1 = np.array([np.sum(p_h * np.prod(np.where(v == 1, pv, 1 - pv), 1))
                   for v in vs])
  assert math.isclose(p_v1.sum(), 1.0, rel_tol=1e-9)
  expected_neg = {k: sum(pr * d_free_energy(v)[k] for pr, v in zip(p_v1, vs))
                  for k in ('w', 'b', 'c')}
  data = d_free_energy(v0)
  for k in ('w', 'b', 'c'):
    np.testing.assert_allclose(grads[k], data[k] - expected_neg[k],
                               atol=0.025)


def _dataset():
  return types.SimpleNamespace(pixel_levels=256, num_classes=10,
                               name='digits')


@pytest.mark.parametrize('field,value,match', [
    ('model.train_mode', 'cd2', 'config.model.train_mode'),
    ('model.cd_steps', 0, 'config.model.cd_steps'),
    ('model.visible', 'poisson', 'config.model.visible'),
    ('eval.estimators.ais.num_betas', 1,
     'config.eval.estimators.ais.num_betas'),
    ('data.binarize', 'none', 'config.data.binarize'),
])
def test_bad_config_names_the_field(field, value, match):
  config = rbm_config.get_config('smoke')
  rbm.validate(config, _dataset())
  config.unlock()
  node = config
  *parents, leaf = field.split('.')
  for name in parents:
    node = node[name]
  node[leaf] = value
  with pytest.raises(ConfigError, match=match):
    rbm.validate(config, _dataset())


def test_gaussian_config_validates_and_bad_data_is_refused():
  config = rbm_config.get_config('smoke,gaussian')
  rbm.validate(config, _dataset())
  config.unlock()
  config.data.dequantize = False
  with pytest.raises(ConfigError, match='config.data.dequantize'):
    rbm.validate(config, _dataset())


@pytest.mark.slow
def test_pcd_chains_are_checkpointed_and_resume_is_bitwise(tmp_path):
  """4 steps == 2 steps, restore, 2 more: params and chains alike."""

  def run(workdir, steps):
    config = rbm_config.get_config('smoke')
    config.unlock()
    config.train.num_steps = steps
    config.optimizer.schedule = 'constant'  # the same at 2 and 4 steps
    exp = train.Experiment(config, str(workdir))
    return exp, exp.train()

  _, full = run(tmp_path / 'full', 4)
  _, half = run(tmp_path / 'half', 2)
  exp, resumed = run(tmp_path / 'half', 4)
  assert int(resumed.step) == 4
  chains = np.asarray(jax.device_get(full.params[rbm.STATE]['chains']))
  start = np.asarray(jax.device_get(half.params[rbm.STATE]['chains']))
  assert not np.array_equal(chains, start)  # the chains moved and were saved
  restored, _ = exp.restore(step=2)
  helpers.assert_trees_equal(helpers.params_of(restored),
                             helpers.params_of(half))
  helpers.assert_trees_equal(helpers.params_of(full),
                             helpers.params_of(resumed))


class _JaxUniforms:
  """A stand-in for np.random.Generator whose i-th `random` call returns
  the uniforms `rbm.gibbs_chain` draws at sweep i."""

  def __init__(self, key, num_sweeps):
    self._keys = iter(jax.random.split(key, num_sweeps))

  def random(self, shape, dtype):
    return np.asarray(jax.random.uniform(next(self._keys), shape), dtype)


def test_benchmark_numpy_sweep_matches_the_family_chain():
  """bench_rbm's NumPy chain, fed the family's uniforms, visits the same
  binary states and ends at the same probabilities."""
  p = _params(0, 20, 12, 0.5)
  v0 = (np.random.default_rng(1).random((6, 20)) < 0.5).astype(np.float32)
  key = jax.random.key(2)
  v_jax, mean_jax = rbm.gibbs_chain({k: jnp.asarray(a) for k, a in p.items()},
                                    jnp.asarray(v0), key, 7, 'bernoulli')
  v_np, mean_np = bench_rbm.gibbs_chain_numpy(p, v0, _JaxUniforms(key, 7), 7)
  assert v_np.dtype == np.float32 and v_np.shape == (6, 20)
  np.testing.assert_array_equal(v_np, np.asarray(v_jax))
  np.testing.assert_allclose(mean_np, np.asarray(mean_jax), atol=1e-5)
  assert 0 < v_np.mean() < 1
