"""NADE: conditionals vs a naive float64 NumPy NADE, normalisation, sampler."""

import itertools
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import nade as nade_config
from jaxgen.errors import ConfigError
from jaxgen.models import nade

D, H = 10, 7


def _random_params(net, seed, scale=1.0):
  """Random normal parameters, far from the (near-zero) initialisation, of
  the net's shapes (no init compilation)."""
  x = jnp.zeros((1,) + tuple(net.image_shape))
  shapes = jax.eval_shape(
      lambda: nade.init(jax.random.key(0), {'image': x}, net=net))
  rng = np.random.default_rng(seed)
  return jax.tree.map(
      lambda s: jnp.asarray(scale * rng.standard_normal(s.shape), s.dtype),
      shapes)


def _numpy_logits(params, x):
  """Naive O(D^2 H) NADE in float64: a separate pass per conditional."""
  w, c, v, b = (np.asarray(params[k], np.float64) for k in 'wcvb')
  x = np.asarray(x, np.float64)
  logits = np.zeros_like(x)
  for d in range(x.shape[1]):
    a = c + x[:, :d] @ w[:d]  # c + sum_{j<d} x_j W_j
    h = 1.0 / (1.0 + np.exp(-a))
    logits[:, d] = b[d] + h @ v[d]
  return logits


def _numpy_log_prob(logits, x):
  return np.sum(x * logits - np.logaddexp(0.0, logits), axis=-1)


@pytest.fixture(scope='module')
def model():
  net = nade.Net(image_shape=(1, D, 1), hidden_dim=H)
  return net, _random_params(net, 0)


def _all_vectors(dims):
  return np.array(list(itertools.product([0.0, 1.0], repeat=dims)))


def test_matches_naive_float64_numpy(model):
  net, params = model
  x = np.random.default_rng(0).integers(0, 2, size=(64, D)).astype(np.float32)
  batch = {'image': jnp.asarray(x).reshape(-1, 1, D, 1)}

  @jax.jit
  def run(params, batch):
    logits = net.apply({'params': params}, batch['image'].reshape(-1, D))
    return logits, nade.log_likelihood(params, batch, None, net=net)

  logits, ll = run(params, batch)
  ref = _numpy_logits(params, x)
  np.testing.assert_allclose(logits, ref, rtol=0, atol=1e-5)
  np.testing.assert_allclose(ll, _numpy_log_prob(ref, x), rtol=0, atol=1e-4)


def test_probabilities_sum_to_one_over_all_binary_vectors(model):
  net, params = model
  with jax.enable_x64(True):
    p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    x = jnp.asarray(_all_vectors(D)).reshape(-1, 1, D, 1)
    ll = jax.jit(lambda p, b: nade.log_likelihood(p, b, None, net=net))(
        p64, {'image': x})
    assert ll.dtype == jnp.float64
    total = float(jnp.exp(jax.scipy.special.logsumexp(ll)))
  assert abs(total - 1.0) < 1e-12, total


def test_conditional_d_ignores_inputs_from_d_on(model):
  net, params = model
  x = jnp.asarray(np.random.default_rng(1).integers(0, 2, D), jnp.float32)
  jac = jax.jit(jax.jacrev(
      lambda v: net.apply({'params': params}, v[None])[0]))(x)  # [D, D]
  jac = np.asarray(jac)
  upper = np.triu(np.ones((D, D), bool))  # j >= d
  assert np.all(jac[upper] == 0.0)
  assert np.all(jac[~upper] != 0.0)  # sigmoid units: every earlier input


def test_sampler_draws_from_the_model():
  """Empirical frequencies of 40,000 draws vs exp(log p) on D = 4."""
  dims = 4
  net = nade.Net(image_shape=(2, 2, 1), hidden_dim=5)
  params = _random_params(net, 3, scale=1.5)
  num = 40_000

  @jax.jit
  def run(params, key):
    images = nade.sample(params, key, num, net=net)
    table = jnp.asarray(_all_vectors(dims), jnp.float32).reshape(-1, 2, 2, 1)
    return images, nade.log_likelihood(params, {'image': table}, None,
                                       net=net)

  images, ll = run(params, jax.random.key(4))
  again, _ = run(params, jax.random.key(4))
  np.testing.assert_array_equal(images, again)
  assert images.dtype == jnp.uint8 and images.shape == (num, 2, 2, 1)
  assert set(np.unique(images)) <= {0, 255}
  bits = (np.asarray(images).reshape(num, dims) // 255).astype(int)
  index = bits @ (2 ** np.arange(dims)[::-1])  # itertools.product order
  freq = np.bincount(index, minlength=2 ** dims) / num
  prob = np.exp(np.asarray(ll, np.float64))
  np.testing.assert_allclose(prob.sum(), 1.0, atol=1e-5)
  sigma = np.sqrt(prob * (1 - prob) / num)
  assert np.all(np.abs(freq - prob) < 5 * sigma + 1e-4), (freq, prob)


def test_loss_is_masked_mean_nll(model):
  net, params = model
  x = np.random.default_rng(2).integers(0, 2, size=(4, D)).astype(np.float32)
  batch = {'image': jnp.asarray(x).reshape(-1, 1, D, 1),
           'mask': jnp.array([True, False, True, False])}
  loss, metrics = jax.jit(lambda p, b: nade.loss_fn(p, b, None, net=net))(
      params, batch)
  nll = -_numpy_log_prob(_numpy_logits(params, x), x)
  np.testing.assert_allclose(metrics['nll'], nll, rtol=1e-5)
  np.testing.assert_allclose(loss, nll[[0, 2]].mean(), rtol=1e-5)


def test_validate_names_the_field():
  config = nade_config.get_config('smoke')
  dataset = types.SimpleNamespace(pixel_levels=256, num_classes=10,
                                  name='digits')
  nade.validate(config, dataset)
  config.unlock()
  config.data.binarize = 'none'
  with pytest.raises(ConfigError, match='config.data.binarize'):
    nade.validate(config, dataset)
  config.data.binarize = 'dynamic'
  config.model.hidden_dim = 0
  with pytest.raises(ConfigError, match='config.model.hidden_dim'):
    nade.validate(config, dataset)
