"""The DDPM family: loss, bound, samplers, guidance, config checks.

The bound's arithmetic and the update rules are tested against float64
references in tests/losses/test_diffusion.py; here the family's wiring.
"""

import functools
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from experiments.configs import ddpm as config_lib
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.losses import diffusion
from jaxgen.models import ddpm


def _net(config):
  return train.make_net(ddpm, config.model)


def _batch(num=6, seed=0):
  rng = np.random.default_rng(seed)
  pixels = rng.integers(0, 256, (num, 8, 8, 1))
  return {'image': jnp.asarray(pixels / 127.5 - 1, jnp.float32),
          'label': jnp.asarray(rng.integers(0, 10, num), jnp.int32),
          'mask': jnp.ones(num, bool)}


@pytest.fixture(scope='module')
def model():
  config = config_lib.get_config('smoke,cond')
  net = _net(config)
  params = jax.jit(functools.partial(ddpm.init, net=net))(
      jax.random.key(0), _batch())
  return net, params


def test_loss_is_finite_per_example_and_keyed(model):
  net, params = model
  loss = jax.jit(functools.partial(ddpm.loss_fn, net=net, train=True))
  value, metrics = loss(params, _batch(), jax.random.key(1))
  again, _ = loss(params, _batch(), jax.random.key(1))
  other, _ = loss(params, _batch(), jax.random.key(2))
  assert metrics['simple'].shape == (6,) and np.isfinite(value)
  np.testing.assert_allclose(value, metrics['simple'].mean(), rtol=1e-6)
  assert value == again and value != other


def test_stratified_bound_with_all_timesteps_is_the_full_bound(model):
  net, params = model
  big_t = net.num_timesteps
  ll = jax.jit(functools.partial(ddpm.log_likelihood, net=net,
                                 chunk_size=8), static_argnames='num_timesteps')
  full = ll(params, _batch(), jax.random.key(3), num_timesteps=0)
  every = ll(params, _batch(), jax.random.key(3), num_timesteps=big_t)
  assert full.shape == (6,) and np.isfinite(full).all() and (full < 0).all()
  np.testing.assert_allclose(every, full, rtol=1e-5)


@pytest.fixture(scope='module')
def draw(model):
  """sample(params, key, 4, labels, **static), one compilation per static
  arguments."""
  net, params = model
  compiled = {}

  def run(key, labels=None, **static):
    static.setdefault('net', net)
    name = tuple(sorted(static.items(), key=lambda kv: kv[0]))
    if name not in compiled:
      compiled[name] = jax.jit(
          lambda p, k, y: ddpm.sample(p, k, 4, labels=y, **static))
    return np.asarray(compiled[name](params, key, labels))
  return run


def test_ddim_eta_one_over_all_steps_is_ancestral_with_posterior_variance(
    model, draw):
  net, _ = model
  key = jax.random.key(4)
  posterior = net.clone(variance='posterior')
  ancestral = draw(key, net=posterior, method='ancestral')
  ddim = draw(key, net=posterior, method='ddim', eta=1.0)
  assert ancestral.shape == (4, 8, 8, 1) and ancestral.dtype == np.uint8
  assert np.abs(ancestral.astype(int) - ddim).max() <= 1
  # A fresh key draws other images; the same key the same ones.
  np.testing.assert_array_equal(
      draw(key, net=posterior, method='ancestral'), ancestral)
  assert (draw(jax.random.key(5), net=posterior,
               method='ancestral') != ancestral).any()


def test_guided_eps_is_the_classifier_free_combination(model):
  net, params = model
  batch = _batch(4)
  x, y = batch['image'], batch['label']
  t = jnp.array([0, 3, 10, 19])
  fn = jax.jit(functools.partial(ddpm.guided_eps, net=net, guidance=2.5))
  guided = fn(params, x, t, y)
  apply = jax.jit(lambda p, x, t, y: net.apply({'params': p}, x, t, y))
  cond = apply(params, x, t, y)
  uncond = apply(params, x, t, jnp.full_like(y, net.num_classes))
  assert np.abs(cond - uncond).max() > 1e-3  # the label matters
  np.testing.assert_allclose(guided, 3.5 * cond - 2.5 * uncond, atol=1e-5)


def test_ddim_on_a_subsequence_with_guidance_runs(draw):
  labels = jnp.array([0, 1, 2, 3])
  images = draw(jax.random.key(6), labels, method='ddim', num_steps=5,
                guidance=3.0)
  assert images.shape == (4, 8, 8, 1) and images.dtype == np.uint8


def test_trajectory_ends_in_the_samples_of_the_same_key(model, draw):
  net, params = model
  key, labels = jax.random.key(7), jnp.array([0, 1, 2, 3])
  run = jax.jit(lambda p, k, y: ddpm.trajectory(
      p, k, 4, net=net, method='ddim', num_steps=5, labels=y))
  seq, states = run(params, key, labels)
  np.testing.assert_array_equal(seq, ddpm.timestep_sequence(
      net.num_timesteps, 5))
  assert states.shape == (6, 4, 8, 8, 1) and states.dtype == jnp.float32
  np.testing.assert_array_equal(
      ddpm.to_uint8(states[-1]),
      draw(key, labels, method='ddim', num_steps=5))
  # states[0] is the starting noise, and each step changes the state.
  assert abs(float(states[0].std()) - 1.0) < 0.3
  assert (np.abs(np.diff(np.asarray(states), axis=0)).max(axis=(1, 2, 3, 4))
          > 0).all()


def test_timestep_sequence_is_evenly_spaced_and_complete():
  np.testing.assert_array_equal(ddpm.timestep_sequence(10, 10),
                                np.arange(9, -1, -1))
  seq = ddpm.timestep_sequence(1000, 50)
  assert seq[0] == 999 and seq[-1] == 0 and len(seq) == 50
  assert np.ptp(np.diff(seq)) <= 1
  with pytest.raises(ValueError, match='num_steps'):
    ddpm.timestep_sequence(10, 11)


def test_sample_refuses_bad_arguments(model):
  net, params = model
  with pytest.raises(ValueError, match='ancestral'):
    ddpm.sample(params, jax.random.key(0), 2, net=net, method='ancestral',
                num_steps=3)
  with pytest.raises(ValueError, match='method'):
    ddpm.sample(params, jax.random.key(0), 2, net=net, method='euler')
  with pytest.raises(ValueError, match='guidance'):
    ddpm.sample(params, jax.random.key(0), 2, net=net.clone(num_classes=0),
                guidance=1.0)


def _dataset(pixel_levels=256, num_classes=10):
  return types.SimpleNamespace(name='digits', pixel_levels=pixel_levels,
                               num_classes=num_classes)


def test_validate_names_the_field():
  config = config_lib.get_config('smoke')
  ddpm.validate(config, _dataset())
  ddpm.validate(config_lib.get_config('mnist8k'), _dataset())
  cases = [
      ('data', 'binarize', 'dynamic', 'config.data.binarize'),
      ('data', 'value_range', 'unit', 'config.data.value_range'),
      ('data', 'dequantize', True, 'config.data.dequantize'),
      ('model', 'channels', (8, 10), 'config.model.channels'),
      ('model', 'num_groups', 8, 'config.model.channels'),
      ('model', 'channels', (8, 8, 8, 8), 'config.model.image_shape'),
      ('model', 'schedule', 'quadratic', 'config.model.schedule'),
      ('model', 'variance', 'learned', 'config.model.variance'),
      ('model', 'sampler', 'euler', 'config.model.sampler'),
      ('model', 'sample_steps', 5, 'config.model.sample_steps'),
      ('model', 'num_timesteps', 1, 'config.model.num_timesteps'),
      ('model', 'sinusoid_dim', 7, 'config.model.sinusoid_dim'),
      ('model', 'label_dropout', 1.0, 'config.model.label_dropout'),
  ]
  for group, field, value, message in cases:
    bad = ml_collections.ConfigDict(config.to_dict())
    bad[group][field] = value
    with pytest.raises(ConfigError, match=message.replace('.', r'\.')):
      ddpm.validate(bad, _dataset())
  bad = ml_collections.ConfigDict(config.to_dict())
  bad.eval.estimators.bound20.num_timesteps = 1
  with pytest.raises(ConfigError,
                     match=r'config\.eval\.estimators\.bound20\.num_timesteps'):
    ddpm.validate(bad, _dataset())
  with pytest.raises(ConfigError, match=r'config\.data\.binarize'):
    ddpm.validate(config, _dataset(pixel_levels=2))
  cond = config_lib.get_config('smoke,cond')
  with pytest.raises(ConfigError, match=r'config\.model\.num_classes'):
    ddpm.validate(cond, _dataset(num_classes=None))


@pytest.fixture(scope='module')
def cosine_terms():
  """T = 1,000 cosine steps and a tiny fixed noise predictor: per image,
  the bound's terms at chosen indices from one draw of x_t, with their
  inputs."""
  config = config_lib.get_config('smoke')
  config.model.num_timesteps = 1000
  net = _net(config)
  x0 = _batch(num=5)['image']
  sched = ddpm.schedule_of(net)
  t = jnp.array([1, 500, 997, 998, 999])
  noise = jax.random.normal(jax.random.key(2), x0.shape)

  @jax.jit
  def run(x0, noise):
    x_t = diffusion.q_sample(sched, x0, t, noise)
    # Near the optimum at large t (x_t is nearly all noise), off by a
    # smooth function of x_t.
    scale = jnp.asarray(sched.sqrt_one_minus_alphas_cumprod,
                        jnp.float32)[t][:, None, None, None]
    eps = scale * x_t + 0.05 * jnp.cos(3.0 * x_t)
    terms = diffusion.bound_terms(sched, x0, x_t, t, eps,
                                  variance=net.variance)
    return x_t, eps, terms, diffusion.prior_kl(sched, x0)

  return net, sched, np.asarray(t), np.asarray(x0, np.float64), *(
      np.asarray(a, np.float64) for a in run(x0, noise))


def test_cosine_bound_terms_per_t_match_float64_references(cosine_terms):
  """The KL terms from the posterior and model means, and from the noise
  prediction's error weighted by `eps_error_weights`, in float64 NumPy;
  the prior term from its closed form. Float32 keeps up at t = T, where
  1 / sqrt(abar_T) is about 2e4."""
  net, sched, t, x0, x_t, eps, terms, prior = cosine_terms
  betas, abar = np.asarray(sched.betas), np.asarray(sched.alphas_cumprod)
  abar_prev = np.append(1.0, abar[:-1])
  noise = (x_t - np.sqrt(abar[t])[:, None, None, None] * x0) / np.sqrt(
      1 - abar[t])[:, None, None, None]
  weights = ddpm.eps_error_weights(net)
  for i, ti in enumerate(t):
    b, a, ap = betas[ti], abar[ti], abar_prev[ti]
    post_var = b * (1 - ap) / (1 - a)
    x0_hat = (x_t[i] - np.sqrt(1 - a) * eps[i]) / np.sqrt(a)
    c1, c2 = b * np.sqrt(ap) / (1 - a), (1 - ap) * np.sqrt(1 - b) / (1 - a)
    diff = c1 * (x0[i] - x0_hat)  # the posterior mean minus the model's
    var_term = 0.5 * (np.log(b / post_var) + post_var / b - 1) * x0[i].size
    ref = var_term + (0.5 * diff ** 2 / b).sum()
    np.testing.assert_allclose(terms[i], ref, rtol=2e-4)
    via_weight = var_term + weights[ti] * ((noise[i] - eps[i]) ** 2).sum()
    np.testing.assert_allclose(via_weight, ref, rtol=1e-6)
  np.testing.assert_allclose(
      prior, 0.5 * (abar[-1] * (x0 ** 2).sum((1, 2, 3)) - x0[0].size * (
          abar[-1] + np.log1p(-abar[-1]))), rtol=1e-3, atol=1e-12)
  # Where the bound blows up: the last step, not the prior.
  assert (prior < 1e-6).all()
  assert terms[-1] > 100 * terms[-2]
  assert weights[-1] > 300 * weights[1:-1].max()
  linear = ddpm.eps_error_weights(ddpm.Net(schedule='linear'))
  assert linear[-1] < 0.02 and linear[1:].max() < 1.0
