"""The DBM: mean-field fixed point, enumeration, AIS and the bound."""

import itertools
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import dbm as dbm_config
from jaxgen.errors import ConfigError
from jaxgen.models import dbm


def _params(seed, d, h1, h2, scale):
  rng = np.random.default_rng(seed)
  return {'w1': jnp.float32(scale * rng.standard_normal((d, h1))),
          'w2': jnp.float32(scale * rng.standard_normal((h1, h2))),
          'b': jnp.float32(rng.standard_normal(d)),
          'c1': jnp.float32(rng.standard_normal(h1)),
          'c2': jnp.float32(rng.standard_normal(h2))}


def _binary(n):
  return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def test_mean_field_fixed_point_satisfies_its_equations():
  p = _params(0, 10, 6, 5, 0.5)
  v = jnp.float32(np.random.default_rng(1).integers(0, 2, (4, 10)))
  (mu1, mu2), (mu1_0, _) = jax.jit(lambda p, v: (
      dbm.mean_field(p, v, 50), dbm.mean_field(p, v, 0)))(p, v)
  np.testing.assert_allclose(
      mu1, jax.nn.sigmoid(p['c1'] + v @ p['w1'] + mu2 @ p['w2'].T),
      atol=1e-5)
  np.testing.assert_allclose(mu2, jax.nn.sigmoid(p['c2'] + mu1 @ p['w2']),
                             atol=1e-6)
  # Zero iterations is the bottom-up pass, not the fixed point.
  assert np.abs(mu1_0 - mu1).max() > 1e-3


def test_enumeration_matches_brute_force_over_all_three_layers():
  p64 = jax.tree.map(np.float64, _params(1, 4, 3, 2, 0.8))
  vs, h1s, h2s = _binary(4), _binary(3), _binary(2)
  neg_e = np.array([[[v @ p64['b'] + a @ p64['c1'] + c @ p64['c2']
                      + v @ p64['w1'] @ a + a @ p64['w2'] @ c
                      for c in h2s] for a in h1s] for v in vs])
  log_z = np.logaddexp.reduce(neg_e.ravel())
  log_p = np.logaddexp.reduce(neg_e.reshape(len(vs), -1), axis=1) - log_z
  p = jax.tree.map(jnp.float32, p64)
  got_z, got_p = jax.jit(lambda p, v: (dbm.log_partition_exact(p),
                                       dbm.log_prob_exact(p, v)))(
                                           p, jnp.float32(vs))
  np.testing.assert_allclose(got_z, log_z, rtol=1e-5)
  np.testing.assert_allclose(got_p, log_p, atol=1e-4)


def test_ais_matches_enumeration_and_the_bound_lies_below_log_p():
  p = _params(2, 12, 10, 6, 0.5)
  base_b = jnp.zeros(12)
  log_z, stderr = jax.jit(lambda p, k: dbm.ais_log_partition(
      p, k, base_b=base_b, num_betas=500, num_chains=100))(
          p, jax.random.key(0))
  exact = dbm.log_partition_exact(p)
  assert 0 < float(stderr) < 0.2
  assert abs(float(log_z) - float(exact)) < 4 * float(stderr) + 1e-3
  v = jnp.float32(np.random.default_rng(3).integers(0, 2, (8, 12)))
  net = dbm.Net(image_shape=(12, 1, 1), hidden_dims=(10, 6),
                mean_field_steps=30)
  variables = {'params': p, dbm.STATE: {'base_rate': base_b}}
  batch = {'image': v.reshape(8, 12, 1, 1)}
  log_p = dbm.log_prob_exact(p, v)
  bound = jax.jit(jax.vmap(lambda z: dbm.log_likelihood(
      variables, batch, None, net=net, log_z=z)))(jnp.stack([exact, log_z]))
  assert np.all(bound[0] <= log_p + 1e-4)  # with the exact log Z
  assert np.all(bound[0] > log_p - 3.0)  # a bound, not a loose one
  assert np.all(bound[1] <= log_p + 4 * float(stderr) + 1e-3)  # AIS log Z


@pytest.mark.parametrize('field,value,match', [
    ('model.hidden_dims', (16,), 'config.model.hidden_dims'),
    ('model.mean_field_steps', 0, 'config.model.mean_field_steps'),
    ('eval.estimators.ais.num_chains', 1,
     'config.eval.estimators.ais.num_chains'),
])
def test_bad_config_names_the_field(field, value, match):
  config = dbm_config.get_config('smoke')
  dataset = types.SimpleNamespace(pixel_levels=256, num_classes=10,
                                  name='digits')
  dbm.validate(config, dataset)
  config.unlock()
  node = config
  *parents, leaf = field.split('.')
  for name in parents:
    node = node[name]
  node[leaf] = value
  with pytest.raises(ConfigError, match=match):
    dbm.validate(config, dataset)
