"""Glow: the whole flow inverts, its log-det is the Jacobian's, the
likelihood is the change of variables, actnorm's data-dependent
initialisation, temperature and class-conditional sampling, the trainer's
data_init and resume."""

import math
import types

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from experiments.configs import glow as glow_config
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.models import glow
from jaxgen.models import realnvp
from jaxgen.nn import flows
from tests import helpers
from tests.nn.test_flows import check_flow
from tests.nn.test_flows import flow_program
from tests.nn.test_flows import perturb
from tests.nn.test_flows import uniform


@pytest.fixture(scope='module')
def images():
  """Dequantized-scale inputs y in [0, 1), [3, 4, 4, 1]."""
  return uniform(0, (3, 4, 4, 1))


def _init(net, batch, seed=1):
  return jax.jit(lambda k: glow.init(k, batch, net=net))(jax.random.key(seed))


class Compiled(types.SimpleNamespace):
  """A net's functions, jitted once per module."""


def compiled(net, temperature=0.5):
  return Compiled(
      net=net,
      forward=jax.jit(lambda p, x, l=None: glow.forward(p, x, net=net,
                                                        labels=l)),
      inverse=jax.jit(lambda p, z, l=None: glow.inverse(p, z, net=net,
                                                        labels=l)),
      log_likelihood=jax.jit(lambda p, b: glow.log_likelihood(
          p, b, None, net=net)),
      loss_fn=jax.jit(lambda p, b: glow.loss_fn(p, b, None, net=net)),
      data_init=jax.jit(lambda p, b: glow.data_init(p, b, None, net=net)),
      # Three samples at `temperature`, and the prior draw they invert.
      sample=jax.jit(lambda p, k: (
          glow.sample(p, k, 3, net=net, temperature=temperature),
          temperature * jax.random.normal(
              k, (3, math.prod(net.image_shape))))))


@pytest.fixture(scope='module')
def model(images):
  """(jitted functions, data-initialised params, random params): 2 levels
  of 2 steps on 4x4x1."""
  net = glow.Net(image_shape=(4, 4, 1), levels=2, steps_per_level=2,
                 hidden=4)
  fns = compiled(net, temperature=1.0)
  params = fns.data_init(_init(net, {'image': images}), {'image': images})
  return fns, params, perturb(params, 2, scale=0.2)


@pytest.fixture(scope='module')
def points_model():
  net = glow.Net(image_shape=(2,), levels=1, steps_per_level=3, hidden=8,
                 depth=1)
  params = _init(net, {'point': jnp.zeros((1, 2))}, seed=3)
  return compiled(net), perturb(params, 4, scale=0.2)


def test_flow_inverts_and_its_logdet_is_the_jacobians(model, images):
  fns, _, params = model
  run = flow_program(lambda p, v, inv: (glow.inverse(p, v, net=fns.net) if inv
                                        else glow.forward(p, v, net=fns.net)))
  z, logdet = check_flow(run, params, images)
  assert z.shape == (3, 16)
  assert float(jnp.abs(logdet - logdet.mean()).max()) > 1e-3


def test_points_flow_inverts_and_its_logdet_is_the_jacobians(points_model):
  fns, params = points_model
  run = flow_program(lambda p, v, inv: (glow.inverse(p, v, net=fns.net) if inv
                                        else glow.forward(p, v, net=fns.net)))
  check_flow(run, params, uniform(1, (4, 2), -2.0, 2.0))


def test_latent_shapes_cover_every_dimension_once():
  for levels, shapes in ((1, ((2, 2, 4),)),
                         (2, ((2, 2, 2), (1, 1, 8)))):
    net = glow.Net(image_shape=(4, 4, 1), levels=levels)
    assert net.latent_shapes() == shapes
    assert sum(math.prod(s) for s in shapes) == 16


def test_log_likelihood_is_prior_of_forward_plus_logdet(model, images):
  """Recomputed from the split: the factored-out half under its learned
  Gaussian (mean and log-scale from the kept half), the top latent under
  N(0, I), plus the steps' log-dets, in float64."""
  fns, _, params = model
  net = fns.net
  batch = {'image': images, 'mask': jnp.array([True, True, False])}
  ll = fns.log_likelihood(params, batch)
  eps, logdet = fns.forward(params, images)
  np.testing.assert_allclose(
      ll, stats.norm.logpdf(np.asarray(eps, np.float64)).sum(-1) + logdet,
      rtol=1e-5)
  # Independently: run the levels by hand with the bound submodules.
  def by_hand(mdl, x):
    h, steps_ld = flows.squeeze(x - 0.5), 0.0
    for step in mdl.steps[:2]:
      h, ld = step(h)
      steps_ld += ld
    h, z = flows.split_half(h)
    mean, log_scale = jnp.split(mdl.split_priors[0](h), 2, axis=-1)
    h = flows.squeeze(h)
    for step in mdl.steps[2:]:
      h, ld = step(h)
      steps_ld += ld
    return z, mean, log_scale, h, steps_ld
  z, mean, log_scale, top, steps_ld = jax.device_get(
      net.apply({'params': params}, images, method=by_hand))
  f64 = lambda a: np.asarray(a, np.float64).reshape(3, -1)
  ref = (stats.norm.logpdf(f64(z), f64(mean), np.exp(f64(log_scale))).sum(-1)
         + stats.norm.logpdf(f64(top)).sum(-1) + steps_ld)
  assert np.abs(f64(log_scale)).max() > 1e-3  # the split prior is learned
  np.testing.assert_allclose(ll, ref, rtol=1e-5)
  loss, metrics = fns.loss_fn(params, batch)
  np.testing.assert_allclose(metrics['nll'], -ll, rtol=1e-6)
  np.testing.assert_allclose(loss, -ll[:2].mean(), rtol=1e-5)  # masked row
  np.testing.assert_allclose(metrics['bits_per_dim'],
                             (-ll / 16 + math.log(256)) / math.log(2),
                             rtol=1e-5)


def test_data_init_normalises_every_actnorm_output(model, images):
  fns, params, _ = model
  _, state = fns.net.apply(
      {'params': params}, images, capture_intermediates=lambda mdl, name: (
          isinstance(mdl, flows.ActNorm) and name == '__call__'),
      mutable=['intermediates'])
  outputs = flax.traverse_util.flatten_dict(state['intermediates'])
  assert len(outputs) == 4  # one actnorm per step
  for path, ((y, _),) in outputs.items():
    axes = tuple(range(y.ndim - 1))
    np.testing.assert_allclose(y.mean(axes), 0, atol=1e-4, err_msg=str(path))
    np.testing.assert_allclose(y.var(axes), 1, atol=1e-3, err_msg=str(path))
  # Not at the identity: a later actnorm sees the output of initialised ones.
  assert float(jnp.abs(params['steps_2']['actnorm']['bias']).max()) > 1e-3


def test_samples_are_the_inverse_of_a_prior_draw(model):
  fns, _, params = model
  images, z = fns.sample(params, jax.random.key(5))
  assert images.shape == (3, 4, 4, 1) and images.dtype == jnp.uint8
  x, logdet = fns.inverse(params, z)
  np.testing.assert_array_equal(images, realnvp.to_uint8(x))
  z_back, forward_logdet = fns.forward(params, x)
  np.testing.assert_allclose(z_back, z, atol=1e-4)
  np.testing.assert_allclose(forward_logdet, -logdet, rtol=1e-4)


def test_prior_draws_scale_with_temperature(points_model):
  fns, params = points_model
  key = jax.random.key(6)
  hot = compiled(fns.net, temperature=1.0).sample(params, key)
  for points, draw in (fns.sample(params, key), hot):
    assert points.shape == (3, 2) and points.dtype == jnp.float32
    z, _ = fns.forward(params, points)
    np.testing.assert_allclose(z, draw, atol=1e-5)
  np.testing.assert_allclose(fns.forward(params, fns.sample(params, key)[0])[0],
                             0.5 * fns.forward(params, hot[0])[0], atol=1e-5)


def test_class_conditional_prior_depends_on_the_label(images):
  net = glow.Net(image_shape=(4, 4, 1), levels=2, steps_per_level=1,
                 hidden=4, num_classes=3)
  # The likelihood's dependence on the label: the smoke,cond tests below.
  params = _init(net, {'image': images, 'label': jnp.zeros(3, jnp.int32)})
  assert params['class_prior']['embedding'].shape == (3, 2 * 8)
  params = perturb(params, 7, scale=0.3)
  draw = jax.jit(lambda p, l: glow.sample(p, jax.random.key(0), 3, net=net,
                                          labels=l))
  a, b = draw(params, jnp.zeros(3, jnp.int32)), draw(params,
                                                     jnp.ones(3, jnp.int32))
  assert np.any(np.asarray(a) != np.asarray(b))
  with pytest.raises(ValueError, match='labels'):
    jax.eval_shape(lambda: glow.forward(params, images, net=net))


def _dataset(image_shape=(8, 8, 1)):
  if len(image_shape) == 1:
    return types.SimpleNamespace(image_shape=None, point_dim=image_shape[0],
                                 pixel_levels=None, num_classes=0, name='toy')
  return types.SimpleNamespace(image_shape=image_shape, point_dim=None,
                               pixel_levels=256, num_classes=10,
                               name='digits')


@pytest.mark.parametrize('arg,field,value,dataset,match', [
    ('smoke', 'model.levels', 4, (8, 8, 1), 'config.model.levels'),
    ('smoke', 'model.levels', 0, (8, 8, 1), 'config.model.levels'),
    ('smoke', 'model.steps_per_level', 0, (8, 8, 1),
     'config.model.steps_per_level'),
    ('smoke', 'model.num_classes', -1, (8, 8, 1), 'config.model.num_classes'),
    ('smoke', 'model.num_classes', 5, (8, 8, 1), 'config.model.num_classes'),
    ('moons', 'model.num_classes', 2, (2,), 'config.model.num_classes'),
    ('smoke', 'model.hidden', 0, (8, 8, 1), 'config.model.hidden'),
    ('smoke', 'data.dequantize', False, (8, 8, 1), 'config.data.dequantize'),
    ('moons', 'model.levels', 2, (2,), 'config.model.levels'),
])
def test_validate_names_the_bad_field(arg, field, value, dataset, match):
  config = glow_config.get_config(arg)
  glow.validate(config, _dataset(config.model.image_shape))  # fine as is
  section, name = field.split('.')
  config[section][name] = value
  with pytest.raises(ConfigError, match=match):
    glow.validate(config, _dataset(dataset))


@pytest.mark.parametrize('arg', ['smoke', 'digits', 'mnist8k', 'moons', 'ring8',
                                 'checkerboard'])
def test_every_preset_builds_and_validates(arg):
  config = glow_config.get_config(arg)
  assert config.family == 'glow'
  glow.validate(config, _dataset(tuple(config.model.image_shape)))


def _run(workdir, num_steps):
  config = glow_config.get_config('smoke')
  config.train.num_steps = num_steps
  config.train.checkpoint_every_steps = 2
  config.train.eval_every_steps = 0
  config.train.image_every_steps = 0
  exp = train.Experiment(config, str(workdir))
  return exp, exp.train()


def test_trainer_data_init_is_seeded_and_resume_is_bitwise(tmp_path):
  exp, full = _run(tmp_path / 'full', 4)
  first = helpers.params_of(exp.init_state())
  helpers.assert_trees_equal(first, helpers.params_of(exp.init_state()))
  # The actnorms were set from data (they start at 0 without it).
  assert np.abs(first['steps_0']['actnorm']['log_scale']).max() > 0.1
  _run(tmp_path / 'half', 2)
  _, resumed = _run(tmp_path / 'half', 4)  # restores step 2, runs 2 more
  helpers.assert_trees_equal(helpers.params_of(full),
                             helpers.params_of(resumed))
  helpers.assert_trees_equal(jax.device_get(full.opt_state),
                             jax.device_get(resumed.opt_state))


@pytest.fixture(scope='module')
def cond_run(tmp_path_factory):
  """The smoke,cond preset: its data-initialised parameters, first training
  batch, and the loss and gradients of one training step on it."""
  exp = train.Experiment(glow_config.get_config('smoke,cond'),
                         str(tmp_path_factory.mktemp('glow_cond')))
  params = helpers.params_of(exp.init_state())
  batch = next(exp.train_iterator())

  def step(p, b, key):
    pre = exp.preprocess(b, key)
    (loss, _), grads = jax.value_and_grad(
        lambda q: glow.loss_fn(q, pre, None, net=exp.net), has_aux=True)(p)
    return loss, grads, pre['label']

  loss, grads, labels = jax.jit(step)(params, batch, jax.random.key(0))
  return types.SimpleNamespace(exp=exp, params=params, batch=batch,
                               loss=loss, grads=grads, labels=labels)


def test_cond_preset_trains_on_the_pipeline_labels(cond_run):
  assert cond_run.exp.net.num_classes == 10
  assert np.isfinite(float(cond_run.loss))
  labels = np.asarray(cond_run.labels)
  np.testing.assert_array_equal(labels, cond_run.batch['label'])
  # Only the embedding rows of the batch's classes get a gradient.
  rows = np.abs(np.asarray(
      cond_run.grads['class_prior']['embedding'])).sum(axis=1)
  assert set(np.flatnonzero(rows > 0)) == set(np.unique(labels))


def test_cond_likelihood_differs_across_labels_in_the_bayes_scorer(cond_run):
  from jaxgen.uses import scoring  # pylint: disable=g-import-not-at-top
  exp, images = cond_run.exp, cond_run.batch['image'][:8]
  key = jax.random.key(3)
  # The zero-initialised class prior: every label scores the same (one
  # dequantization noise for all classes).
  flat = scoring.class_nll(exp, cond_run.params, images, key,
                           estimator='exact')
  assert flat.shape == (8, 10)
  np.testing.assert_allclose(flat, flat[:, :1].repeat(10, 1), rtol=1e-6)
  moved = flax.core.copy(cond_run.params, {'class_prior': {
      'embedding': -3.0 * cond_run.grads['class_prior']['embedding']}})
  nll = scoring.class_nll(exp, moved, images, key, estimator='exact')
  spread = nll.max(1) - nll.min(1)
  assert spread.min() > 1e-3
  # A step against the gradient makes each row's own label more likely
  # than an unseen one (the classes outside this batch keep a zero prior).
  own = nll[np.arange(8), np.asarray(cond_run.labels)[:8]]
  assert np.all(own <= flat[:, 0])


def test_cond_sampling_rejects_bad_labels(cond_run):
  exp, params = cond_run.exp, cond_run.params
  key = jax.random.key(0)
  with pytest.raises(ConfigError, match=r'integers in \[0, 10\)'):
    glow.sample(params, key, 3, net=exp.net, labels=np.array([0, 1, 10]))
  with pytest.raises(ConfigError, match=r'integers in \[0, 10\)'):
    glow.sample(params, key, 2, net=exp.net, labels=np.array([-1, 0]))
  with pytest.raises(ConfigError, match=r'shape \(3,\)'):
    glow.sample(params, key, 3, net=exp.net, labels=np.array([0, 1]))
  with pytest.raises(ValueError, match='cond'):
    glow_config.get_config('moons,cond')
