"""MADE: masks vs a NumPy reference, causality by Jacobian, normalisation,
the ensemble as a mixture, order-agnostic training, the sampler."""

import itertools
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import made as made_config
from jaxgen.errors import ConfigError
from jaxgen.models import made

D = 10
HIDDEN = (12, 9)


def _net(**kw):
  fields = dict(image_shape=(1, D, 1), hidden_dims=HIDDEN, num_masks=8,
                ordering='random', mask_seed=3, direct_connection=True,
                eval_masks=3)
  fields.update(kw)
  return made.Net(**fields)


def _random_params(net, seed):
  """Random normal parameters: every weight nonzero (the direct layer starts
  at 0), far from the near-zero initialisation, and no init compilation."""
  x = jnp.zeros((1,) + tuple(net.image_shape))
  shapes = jax.eval_shape(
      lambda: made.init(jax.random.key(0), {'image': x}, net=net))
  rng = np.random.default_rng(seed)
  return jax.tree.map(
      lambda s: jnp.asarray(1.0 * rng.standard_normal(s.shape), s.dtype),
      shapes)


@pytest.fixture(scope='module')
def model():
  net = _net()
  return net, _random_params(net, 0)


def _all_vectors(dims):
  return np.array(list(itertools.product([0.0, 1.0], repeat=dims)))


def _numpy_masks(degs):
  """Germain et al. eqs. 12-13, element by element."""
  degs = [np.asarray(m) for m in degs]
  hidden = []
  for prev, cur in zip(degs[:-1], degs[1:]):
    m = np.zeros((len(prev), len(cur)))
    for i in range(len(prev)):
      for k in range(len(cur)):
        m[i, k] = cur[k] >= prev[i]
    hidden.append(m)
  m0, last = degs[0], degs[-1]
  out = np.array([[m0[d] > last[k] for d in range(len(m0))]
                  for k in range(len(last))], float)
  direct = np.array([[m0[d] > m0[j] for d in range(len(m0))]
                     for j in range(len(m0))], float)
  return hidden, out, direct


@pytest.mark.parametrize('ordering', ['natural', 'random'])
def test_degrees_and_masks_match_numpy_reference(ordering):
  net = _net(ordering=ordering)
  orderings = set()
  run = jax.jit(lambda i: (made.degrees(net, i), made.masks(net, i)))
  for index in range(5):
    degs, masks = run(index)
    m0 = np.asarray(degs[0])
    assert sorted(m0) == list(range(1, D + 1))  # a permutation of 1..D
    if ordering == 'natural':
      np.testing.assert_array_equal(m0, np.arange(1, D + 1))
    orderings.add(tuple(m0))
    prev_min = 1
    for m in degs[1:]:
      m = np.asarray(m)
      assert m.min() >= prev_min and m.max() <= D - 1
      prev_min = m.min()
    hidden, out, direct = _numpy_masks(degs)
    for got, want in zip(masks['hidden'], hidden, strict=True):
      np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(masks['out'], out)
    np.testing.assert_array_equal(masks['direct'], direct)
    # A deterministic function of (mask_seed, index).
    again, _ = run(index)
    for a, b in zip(degs, again):
      np.testing.assert_array_equal(a, b)
  assert len(orderings) == (1 if ordering == 'natural' else 5)


def test_output_d_ignores_inputs_not_before_d_in_the_ordering(model):
  """Exactly zero where position(j) >= position(d); nonzero elsewhere.

  With the direct layer on (and nonzero), every allowed entry is reached,
  so the Jacobian's support must equal the strict ordering; a forbidden
  entry could only vanish by an exact cancellation between the hidden path
  and the direct path, so the hidden path is checked too.
  """
  net, params = model
  x = jnp.asarray(np.random.default_rng(0).integers(0, 2, D), jnp.float32)

  @jax.jit
  def jacobian(params, index):
    masks = made.masks(net, index)
    return jax.jacrev(lambda v: net.apply({'params': params}, v[None],
                                          masks)[0])(x)  # [out d, in j]

  for index in range(4):
    jac = np.asarray(jacobian(params, index))
    m0 = np.asarray(made.degrees(net, index)[0])
    forbidden = m0[None, :] >= m0[:, None]  # position(j) >= position(d)
    assert np.all(jac[forbidden] == 0.0), index
    assert np.all(jac[~forbidden] != 0.0), index


def test_each_mask_and_the_ensemble_normalise(model):
  net, params = model
  with jax.enable_x64(True):
    p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    x = jnp.asarray(_all_vectors(D)).reshape(-1, 1, D, 1)

    @jax.jit
    def run(params):
      per_mask = jax.vmap(lambda i: made.log_prob(
          params, x.reshape(-1, D), i, net=net))(jnp.arange(3))
      ensemble = made.log_likelihood(params, {'image': x}, None, net=net)
      return per_mask, ensemble

    per_mask, ensemble = run(p64)
    assert ensemble.dtype == jnp.float64
  per_mask = np.asarray(per_mask)
  for lp in per_mask:
    assert abs(np.exp(lp).sum() - 1.0) < 1e-12
  assert abs(np.exp(np.asarray(ensemble)).sum() - 1.0) < 1e-12
  # The ensemble is the mixture: log-mean-exp of the per-mask likelihoods,
  # which differs from (and is >= by Jensen) the mean of the log-likelihoods.
  mixture = np.logaddexp.reduce(per_mask, axis=0) - np.log(3)
  np.testing.assert_allclose(ensemble, mixture, rtol=0, atol=1e-12)
  assert np.all(mixture >= per_mask.mean(0) - 1e-12)
  assert np.max(mixture - per_mask.mean(0)) > 1e-3


def test_order_agnostic_training_draws_a_mask_set_per_step(model):
  net, params = model
  x = np.random.default_rng(1).integers(0, 2, size=(5, D)).astype(np.float32)
  batch = {'image': jnp.asarray(x).reshape(-1, 1, D, 1)}

  @jax.jit
  def run(params, key):
    per_mask = jax.vmap(lambda i: made.log_prob(
        params, batch['image'].reshape(-1, D), i, net=net))(
            jnp.arange(net.num_masks))
    _, train = made.loss_fn(params, batch, key, net=net, train=True)
    _, evaluation = made.loss_fn(params, batch, key, net=net, train=False)
    return (per_mask, train['nll'], evaluation['nll'],
            made._train_index(net, key))

  used = set()
  for seed in range(12):
    per_mask, train, evaluation, index = run(params, jax.random.key(seed))
    np.testing.assert_allclose(evaluation, -per_mask[0], rtol=1e-6)
    match = [i for i in range(net.num_masks)
             if np.allclose(train, -per_mask[i], rtol=1e-6)]
    assert len(match) == 1, seed
    assert match[0] == int(index)
    used.add(match[0])
  assert len(used) >= 4  # 12 draws among 8 sets


def test_sampler_draws_from_the_ensemble_mixture():
  """Frequencies of 30,000 draws vs the 3-set mixture on D = 4."""
  dims = 4
  net = made.Net(image_shape=(1, dims, 1), hidden_dims=(6,), num_masks=3,
                 ordering='random', mask_seed=1, direct_connection=True,
                 eval_masks=3)
  params = _random_params(net, 5)
  num = 30_000

  @jax.jit
  def run(params, key):
    images = made.sample(params, key, num, net=net)
    table = jnp.asarray(_all_vectors(dims), jnp.float32).reshape(
        -1, 1, dims, 1)
    single = made.log_likelihood(params, {'image': table}, None, net=net,
                                 num_masks=1)
    return images, made.log_likelihood(params, {'image': table}, None,
                                       net=net), single

  images, ll, single = run(params, jax.random.key(2))
  again, _, _ = run(params, jax.random.key(2))
  np.testing.assert_array_equal(images, again)
  assert images.dtype == jnp.uint8 and images.shape == (num, 1, dims, 1)
  bits = (np.asarray(images).reshape(num, dims) // 255).astype(int)
  freq = np.bincount(bits @ (2 ** np.arange(dims)[::-1]),
                     minlength=2 ** dims) / num
  prob = np.exp(np.asarray(ll, np.float64))
  sigma = np.sqrt(prob * (1 - prob) / num)
  assert np.all(np.abs(freq - prob) < 5 * sigma + 1e-4), (freq, prob)
  # The mixture differs from set 0 alone, so this checks the mixing too.
  assert np.max(np.abs(np.exp(np.asarray(single)) - prob)) > 0.02


def test_validate_names_the_field():
  dataset = types.SimpleNamespace(pixel_levels=256, num_classes=10,
                                  name='digits')
  config = made_config.get_config('smoke')
  made.validate(config, dataset)
  config.unlock()
  config.eval.estimators.ensemble.num_masks = 5
  with pytest.raises(ConfigError,
                     match='config.eval.estimators.ensemble.num_masks'):
    made.validate(config, dataset)
  config.eval.estimators.ensemble.num_masks = 2
  config.model.ordering = 'reversed'
  with pytest.raises(ConfigError, match='config.model.ordering'):
    made.validate(config, dataset)
  config.model.ordering = 'natural'
  config.data.binarize = 'none'
  with pytest.raises(ConfigError, match='config.data.binarize'):
    made.validate(config, dataset)
  net = _net(num_masks=2, eval_masks=2)
  with pytest.raises(ConfigError, match='exceeds the 2 mask sets'):
    made.ensemble_size(net, 3)
  # num_masks=0 trains on a fresh set each step: any ensemble size is fine.
  assert made.ensemble_size(_net(num_masks=0, eval_masks=2), 7) == 7
  with pytest.raises(ConfigError, match='config.model.eval_masks'):
    made.ensemble_size(_net(num_masks=0, eval_masks=0))
