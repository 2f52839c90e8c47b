"""Generative stochastic networks: the chain's operator, walkback, sampling.

References are float64 NumPy computations of the same quantities; the
toy-ring test trains a narrowed ring8 model briefly and scores its chains with
the mode-coverage metric of `jaxgen.metrics`.
"""

import functools
import itertools
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.configs import gsn as gsn_config
from jaxgen import data as data_lib
from jaxgen import metrics
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.models import gsn

TINY_SHAPE = (1, 3, 1)  # 3 binary pixels: 8 states to enumerate


def _np_params(params):
  """[(kernel, bias), ...] of the MLP's dense layers, float64."""
  mlp = params['mlp']
  return [(np.asarray(mlp[f'dense_{i}']['kernel'], np.float64),
           np.asarray(mlp[f'dense_{i}']['bias'], np.float64))
          for i in range(len(mlp))]


def _np_logits(layers, x):
  """The tanh MLP of P(x | x~) in float64: x~ [N, D] -> logits [N, D]."""
  h = np.asarray(x, np.float64).reshape(len(x), -1)
  for i, (w, b) in enumerate(layers):
    h = h @ w + b
    if i + 1 < len(layers):
      h = np.tanh(h)
  return h


def _np_bernoulli_log_prob(logits, x):
  """sum_i log P(x_i | logits_i), float64 [N]."""
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  return (x * logits - np.logaddexp(0.0, logits)).sum(-1)


def _np_corruption(corruption, p, x_tilde, x):
  """C(x~ | x) of one binary example each, float64."""
  same = (x_tilde == x).astype(np.float64)
  other = 0.5 if corruption == 'salt_pepper' else (x_tilde == 0).astype(
      np.float64)
  return np.prod((1 - p) * same + p * other)


def _tiny(corruption, **kwargs):
  net = gsn.Net(image_shape=TINY_SHAPE, hidden=(5,),
                corruption=corruption, noise_level=0.3, **kwargs)
  params = net.init(jax.random.key(3), jnp.zeros((1,) + TINY_SHAPE))['params']
  # Larger weights than the initializer's, so P(x | x~) depends on x~.
  params = jax.tree.map(lambda a: 3.0 * a, params)
  return net, params


@pytest.mark.parametrize('corruption', ['salt_pepper', 'masking'])
def test_transition_operator_is_a_distribution(corruption):
  net, params = _tiny(corruption)
  states = np.array(list(itertools.product((0.0, 1.0), repeat=3)))
  reps = 4000
  x0 = np.repeat(states, reps, axis=0).reshape((-1,) + TINY_SHAPE)

  @jax.jit
  def operator_and_one_step(params, key):
    # log T(x' | x), and one chain step from every x, `reps` times each.
    return (gsn.transition_log_probs(params, net=net),
            gsn.chain(params, key, x0, net=net, num_steps=1)[1])

  log_t, x1 = operator_and_one_step(params, jax.random.key(0))
  log_t = np.asarray(log_t, np.float64)
  layers = _np_params(params)
  # P(x' | x~) [x~, x'] and C(x~ | x) [x, x~], then T = C P.
  log_p = np.stack([_np_bernoulli_log_prob(_np_logits(layers, states),
                                           np.broadcast_to(x_next, (8, 3)))
                    for x_next in states], axis=1)
  c = np.array([[_np_corruption(corruption, 0.3, xt, x) for xt in states]
                for x in states])
  np.testing.assert_allclose(c.sum(1), 1.0, atol=1e-12)
  expected = c @ np.exp(log_p)
  np.testing.assert_allclose(np.exp(log_t), expected, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(np.exp(log_t).sum(1), 1.0, atol=1e-5)
  assert np.exp(log_t).min() > 0  # every state reachable: an ergodic chain

  # The sampler draws from that operator.
  x1 = np.asarray(x1).reshape(8, reps, 3)
  index = (x1 @ np.array([4.0, 2.0, 1.0])).astype(int)
  freq = np.stack([np.bincount(row, minlength=8) / reps for row in index])
  np.testing.assert_allclose(freq, expected, atol=0.035)


def test_corruption_log_prob_matches_reference():
  for corruption in ('salt_pepper', 'masking'):
    net, _ = _tiny(corruption)
    states = np.array(list(itertools.product((0.0, 1.0), repeat=3)))
    xt = np.tile(states, (8, 1))
    x = np.repeat(states, 8, axis=0)
    got = gsn.corruption_log_prob(xt.reshape((-1,) + TINY_SHAPE),
                                  x.reshape((-1,) + TINY_SHAPE), net=net)
    want = [_np_corruption(corruption, 0.3, a, b) for a, b in zip(xt, x)]
    np.testing.assert_allclose(np.exp(got), want, rtol=1e-6)


def test_walkback_loss_against_float64_reference():
  x = np.array(list(itertools.product((0.0, 1.0), repeat=3)))
  batch = {'image': jnp.asarray(x.reshape((-1,) + TINY_SHAPE)),
           'mask': jnp.array([True] * 7 + [False])}
  # K = 1 with masking at level 0 (x~ = x): the loss is -log P(x | x),
  # whatever the key.
  net, params = _tiny('masking')
  net = net.clone(noise_level=0.0, walkback_steps=1)
  # K = 3 through a net whose P(x | x~) is (all but surely) the point mass
  # on 1 - x~: the chain x, 1 - x, x, ... is deterministic, and step k
  # scores the clean x from the corrupted state of step k (x~_k = x*_{k-1}).
  net3 = gsn.Net(image_shape=TINY_SHAPE, hidden=(3,), corruption='masking',
                 noise_level=0.0, walkback_steps=3)
  flip = {'mlp': {
      'dense_0': {'kernel': 20.0 * jnp.eye(3), 'bias': -10.0 * jnp.ones(3)},
      'dense_1': {'kernel': -20.0 * jnp.eye(3), 'bias': jnp.zeros(3)}}}

  @jax.jit
  def losses(params, flip, key):
    return (gsn.loss_fn(params, batch, key, net=net),
            gsn.loss_fn(flip, batch, key, net=net3)[1])

  ref = -_np_bernoulli_log_prob(_np_logits(_np_params(params), x), x)
  for seed in (0, 1):
    (loss, m), m3 = losses(params, flip, jax.random.key(seed))
    np.testing.assert_allclose(m['walkback_nll'], ref, rtol=1e-5)
    np.testing.assert_allclose(m['recon_nll'], ref, rtol=1e-5)
    np.testing.assert_allclose(loss, ref[:7].mean(), rtol=1e-5)
  layers = _np_params(flip)
  terms = [-_np_bernoulli_log_prob(_np_logits(layers, state), x)
           for state in (x, 1.0 - x, x)]
  np.testing.assert_allclose(m3['walkback_nll'], sum(terms), rtol=1e-5)
  np.testing.assert_allclose(m3['recon_nll'], terms[0], rtol=1e-5)
  assert np.all(terms[1] < 1e-5) and np.all(terms[0] > 10)


def test_walkback_gradient_treats_sampled_states_as_constants():
  # Gaussian reconstructions are drawn by reparameterization, so a gradient
  # through the states would change the result.
  net = gsn.Net(image_shape=(2,), hidden=(8,), reconstruction='gaussian',
                output_std=0.5, corruption='gaussian', noise_level=0.3,
                walkback_steps=2)
  x = jax.random.normal(jax.random.key(0), (6, 2))
  params = net.init(jax.random.key(1), x)['params']
  key = jax.random.key(2)
  batch = {'point': x, 'mask': jnp.ones(6, bool)}

  @jax.jit
  def both(params):
    grad = jax.grad(lambda p: gsn.loss_fn(p, batch, key, net=net)[0])(params)
    # The same chain (same step keys), its states constants.
    states = jax.lax.stop_gradient(
        gsn.chain(params, key, x, net=net, num_steps=1))

    def frozen(p):
      total = 0.0
      for k in (1, 2):
        corrupt_key, _ = jax.random.split(jax.random.fold_in(key, k))
        x_tilde = gsn.corrupt(corrupt_key, states[k - 1], net=net)
        dist = gsn.reconstruction_params(p, x_tilde, net=net)
        total -= gsn.reconstruction_log_prob(net, dist, x).mean()
      return total

    return grad, jax.grad(frozen)(params)

  grad, want = both(params)
  for g, w in zip(jax.tree.leaves(grad), jax.tree.leaves(want)):
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)


@pytest.fixture(scope='module')
def digits_net():
  net = gsn.Net(image_shape=(8, 8, 1), hidden=(16,), burn_in=4)
  params = net.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))['params']
  return net, params


def test_chain_shapes_and_determinism(digits_net):
  net, params = digits_net
  x0 = jax.random.bernoulli(jax.random.key(1), 0.3, (4, 8, 8, 1)).astype(
      jnp.float32)

  @jax.jit
  def run(params, key):
    chain = functools.partial(gsn.chain, params, key, x0, net=net,
                              num_steps=6)
    return chain(every=2), chain(), chain(every=2, mean=True)

  states, single, means = map(np.asarray, run(params, jax.random.key(5)))
  assert states.shape == (4, 4, 8, 8, 1) and states.dtype == np.float32
  np.testing.assert_array_equal(states[0], x0)
  assert set(np.unique(states)) <= {0.0, 1.0}
  # Every second state of the one-step chain is the two-step chain's.
  np.testing.assert_array_equal(single[::2], states)
  assert 0 < means[1:].min() and means[1:].max() < 1
  again, _, _ = run(params, jax.random.key(5))
  np.testing.assert_array_equal(states, again)
  other, _, _ = run(params, jax.random.key(6))
  assert not np.array_equal(states, other)
  with pytest.raises(ValueError, match='every'):
    gsn.chain(params, jax.random.key(5), x0, net=net, num_steps=6, every=0)
  with pytest.raises(ValueError, match='num_steps'):
    gsn.chain(params, jax.random.key(5), x0, net=net, num_steps=5, every=2)


def test_sample_is_the_chain_from_noise(digits_net):
  net, params = digits_net

  @jax.jit
  def draw(params, key):
    start_key, chain_key = jax.random.split(key)
    means = gsn.chain(params, chain_key, gsn.start(start_key, 5, net=net),
                      net=net, num_steps=4, every=4, mean=True)[-1]
    return gsn.sample(params, key, 5, net=net), gsn.to_uint8(means, net=net)

  images, want = map(np.asarray, draw(params, jax.random.key(7)))
  assert images.shape == (5, 8, 8, 1) and images.dtype == np.uint8
  np.testing.assert_array_equal(images, want)
  np.testing.assert_array_equal(images, draw(params, jax.random.key(7))[0])


def _config(arg='smoke'):
  return gsn_config.get_config(arg).unlock()


DIGITS = types.SimpleNamespace(name='digits', image_shape=(8, 8, 1),
                               pixel_levels=256)


@pytest.mark.parametrize('field,value', [
    ('noise_level', 1.5), ('noise_level', 0.0), ('walkback_steps', 0),
    ('burn_in', 0), ('corruption', 'blur'), ('reconstruction', 'laplace'),
    ('hidden', ()), ('output_std', -1.0)])
def test_validate_names_the_field(field, value):
  c = _config()
  gsn.validate(c, DIGITS)  # the preset passes
  c.model[field] = value
  with pytest.raises(ConfigError, match=f'config.model.{field}'):
    gsn.validate(c, DIGITS)


def test_validate_checks_the_data():
  c = _config('ring8')
  points = types.SimpleNamespace(name='toy:ring8', image_shape=None,
                                 pixel_levels=None)
  gsn.validate(c, points)
  c.model.noise_level = -0.3
  with pytest.raises(ConfigError, match='config.model.noise_level'):
    gsn.validate(c, points)
  c.model.noise_level = 0.3
  c.model.reconstruction = 'bernoulli'
  with pytest.raises(ConfigError, match='config.model.reconstruction'):
    gsn.validate(c, points)
  c = _config()
  c.data.binarize = 'none'  # 8-bit pixels under a Bernoulli reconstruction
  with pytest.raises(ConfigError, match='binarize'):
    gsn.validate(c, DIGITS)
  c = _config()
  c.data.binarize, c.data.dequantize = 'none', True  # dequantized pixels
  c.model.reconstruction = c.model.corruption = 'gaussian'
  gsn.validate(c, DIGITS)
  c.data.dequantize = False
  with pytest.raises(ConfigError, match='dequantize'):
    gsn.validate(c, DIGITS)
  c = _config()
  c.model.reconstruction = 'gaussian'  # salt-and-pepper needs binary data
  with pytest.raises(ConfigError, match='config.model.corruption'):
    gsn.validate(c, DIGITS)


RING8_STEPS = 800


@pytest.fixture(scope='module')
def ring8_chains():
  """The ring8 preset's model, narrowed, trained in one compiled scan on
  fresh draws of the mixture; chains of its burn-in from noise and 20
  steps from data."""
  config = gsn_config.get_config('ring8')
  net = train.make_net(gsn, config.model).clone(hidden=(64, 64, 64))
  tx = optax.adam(optax.cosine_decay_schedule(3e-3, RING8_STEPS))
  name = config.data.name

  @jax.jit
  def run(key):
    init_key, train_key, noise_key, data_key, chain_key = jax.random.split(
        key, 5)
    params = gsn.init(init_key, {'point': jnp.zeros((1, 2))}, net=net)

    def step(carry, i):
      params, opt_state = carry
      batch_key, loss_key = jax.random.split(jax.random.fold_in(train_key, i))
      batch = {'point': data_lib.sample_toy(name, batch_key, 256)}
      grads = jax.grad(lambda p: gsn.loss_fn(p, batch, loss_key,
                                             net=net)[0])(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), None

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)),
                                  jnp.arange(RING8_STEPS))
    from_noise = gsn.sample(params, noise_key, 1000, net=net)
    data = data_lib.sample_toy(name, data_key, 500)
    from_data = gsn.chain(params, chain_key, data, net=net, num_steps=20,
                          every=20)[-1]
    return from_noise, from_data

  return name, run(jax.random.key(0))


@pytest.mark.slow
def test_ring8_chains_cover_the_modes(ring8_chains):
  name, (from_noise, from_data) = ring8_chains
  assert from_noise.shape == (1000, 2) and from_noise.dtype == np.float32
  centers, std = data_lib.toy_modes(name)
  scores = metrics.toy_mode_coverage(np.asarray(from_noise), centers, std)
  assert scores['modes_covered'] == 8, scores
  assert scores['high_quality_share'] > 0.3, scores
  # Started from data, the chain stays on the ring and covers it too.
  scores = metrics.toy_mode_coverage(np.asarray(from_data), centers, std)
  assert scores['modes_covered'] == 8, scores
  radius = np.linalg.norm(np.asarray(from_data), axis=-1)
  assert abs(np.median(radius) - 2.0) < 0.1
