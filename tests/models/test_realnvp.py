"""RealNVP: the whole flow inverts, its log-det is the Jacobian's, the
likelihood is the change of variables, a 2-D density integrates to 1."""

import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from experiments.configs import realnvp as realnvp_config
from jaxgen import data as data_lib
from jaxgen import evaluate
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.models import realnvp
from tests.nn.test_flows import check_flow
from tests.nn.test_flows import flow_program
from tests.nn.test_flows import perturb
from tests.nn.test_flows import uniform

ALPHA = 0.05


def tiny_net(num_scales=2, depth=1, final_couplings=2):
  return realnvp.Net(image_shape=(4, 4, 1), num_scales=num_scales,
                     couplings_per_scale=1, final_couplings=final_couplings,
                     hidden=4, depth=depth, logit_alpha=ALPHA)


def flow_apply(net):
  return lambda p, v, inv: (realnvp.inverse(p, v, net=net) if inv else
                            realnvp.forward(p, v, net=net))


@pytest.fixture(scope='module')
def images():
  """Dequantized-scale inputs y in [0, 1), [3, 4, 4, 1]."""
  return uniform(0, (3, 4, 4, 1))


class Compiled(types.SimpleNamespace):
  """A net's contract functions, jitted once per module."""


def compiled(net):
  return Compiled(
      net=net,
      forward=jax.jit(lambda p, x: realnvp.forward(p, x, net=net)),
      inverse=jax.jit(lambda p, z: realnvp.inverse(p, z, net=net)),
      log_det=jax.jit(lambda p, x: realnvp.log_det(p, x, net=net)),
      log_likelihood=jax.jit(lambda p, b: realnvp.log_likelihood(
          p, b, None, net=net)),
      loss_fn=jax.jit(lambda p, b: realnvp.loss_fn(p, b, None, net=net,
                                                   train=True)),
      # Three samples at temperature 0.5, and the prior draw they invert.
      sample=jax.jit(lambda p, k: (
          realnvp.sample(p, k, 3, net=net, temperature=0.5),
          0.5 * jax.random.normal(k, (3, math.prod(net.image_shape))))))


@pytest.fixture(scope='module')
def model(images):
  """(jitted functions, initial params, random params) of a 2-scale flow on
  4x4x1."""
  net = tiny_net()
  params = jax.jit(lambda k: realnvp.init(k, {'image': images}, net=net))(
      jax.random.key(1))
  return compiled(net), params, perturb(params, 2, scale=0.3)


@pytest.fixture(scope='module')
def points_model():
  net = realnvp.Net(image_shape=(2,), num_scales=1, final_couplings=4,
                    hidden=8, depth=2, logit_alpha=0.0)
  params = jax.jit(lambda k: realnvp.init(k, {'point': jnp.zeros((1, 2))},
                                          net=net))(jax.random.key(3))
  return compiled(net), perturb(params, 4, scale=0.1)


@pytest.mark.parametrize('num_scales', [2, 3])
def test_flow_inverts_and_its_logdet_is_the_jacobians(model, images,
                                                      num_scales):
  net = (tiny_net() if num_scales == 2 else
         tiny_net(num_scales, depth=0, final_couplings=1))
  if num_scales == 2:
    params = model[2]
  else:
    params = jax.jit(lambda k: realnvp.init(k, {'image': images}, net=net))(
        jax.random.key(1))
    params = perturb(params, 2, scale=0.3)
  z, logdet = check_flow(flow_program(flow_apply(net)), params, images)
  assert z.shape == (3, 16)
  assert float(jnp.abs(logdet - logdet.mean()).max()) > 1e-3  # x-dependent


def test_latent_shapes_cover_every_dimension_once():
  for num_scales, shapes in ((1, ((4, 4, 1),)),
                             (2, ((2, 2, 2), (2, 2, 2))),
                             (3, ((2, 2, 2), (1, 1, 4), (1, 1, 4)))):
    net = tiny_net(num_scales)
    assert net.latent_shapes() == shapes
    assert sum(math.prod(s) for s in shapes) == 16


def test_initial_flow_is_the_logit_map_and_likelihood_matches_numpy(
    model, images):
  """Couplings start at the identity: log p(y) is the Gaussian density of
  logit(alpha + (1 - 2 alpha) y) times the logit's Jacobian, in float64."""
  fns, params, _ = model
  ll = fns.log_likelihood(params, {'image': images})
  y = np.asarray(images, np.float64).reshape(3, -1)
  p = ALPHA + (1 - 2 * ALPHA) * y
  logit = np.log(p) - np.log1p(-p)
  ref = (stats.norm.logpdf(logit) + np.log(1 - 2 * ALPHA) - np.log(p)
         - np.log1p(-p)).sum(-1)
  np.testing.assert_allclose(ll, ref, rtol=1e-5)


def test_log_likelihood_is_prior_of_forward_plus_logdet(model, images):
  fns, _, params = model
  batch = {'image': images, 'mask': jnp.array([True, True, False])}
  ll = fns.log_likelihood(params, batch)
  z, logdet = fns.forward(params, images)
  np.testing.assert_allclose(fns.log_det(params, images), logdet, rtol=1e-6)
  ref = stats.norm.logpdf(np.asarray(z, np.float64)).sum(-1) + logdet
  np.testing.assert_allclose(ll, ref, rtol=1e-5)
  loss, metrics = fns.loss_fn(params, batch)
  np.testing.assert_allclose(metrics['nll'], -ll, rtol=1e-6)
  np.testing.assert_allclose(loss, -ll[:2].mean(), rtol=1e-5)  # masked row
  # The loss's bits/dim is the evaluator's with the preprocessing's offset.
  _, offset_per_dim = data_lib.make_preprocess(
      binarize='none', dequantize=True, value_range='unit')
  report = evaluate.nll_report(ll, 16, offset_per_dim * 16)
  np.testing.assert_allclose(metrics['bits_per_dim'], report['bits_per_dim'],
                             rtol=1e-5)
  np.testing.assert_allclose(report['bits_per_dim'],
                             (-ll / 16 + math.log(256)) / math.log(2),
                             rtol=1e-5)


def test_samples_are_the_inverse_of_a_prior_draw(model):
  fns, _, params = model
  key = jax.random.key(5)
  images, z = fns.sample(params, key)
  assert images.shape == (3, 4, 4, 1) and images.dtype == jnp.uint8
  x, logdet = fns.inverse(params, z)
  np.testing.assert_array_equal(images, realnvp.to_uint8(x))
  z_back, forward_logdet = fns.forward(params, x)
  np.testing.assert_allclose(z_back, z, atol=1e-4)
  np.testing.assert_allclose(forward_logdet, -logdet, rtol=1e-4)


def test_point_samples_map_back_to_the_prior_draw(points_model):
  fns, params = points_model
  key = jax.random.key(6)
  points, prior_draw = fns.sample(params, key)
  assert points.shape == (3, 2) and points.dtype == jnp.float32
  z, _ = fns.forward(params, points)
  np.testing.assert_allclose(z, prior_draw, atol=1e-5)


def test_2d_density_integrates_to_one(points_model):
  fns, params = points_model
  n, half_width = 601, 12.0
  axis = np.linspace(-half_width, half_width, n, dtype=np.float32)
  grid = np.stack(np.meshgrid(axis, axis, indexing='ij'), -1).reshape(-1, 2)
  ll = fns.log_likelihood(params, {'point': grid})
  cell = (axis[1] - axis[0]) ** 2
  mass = float(np.exp(np.asarray(ll, np.float64)).sum() * cell)
  assert abs(mass - 1.0) < 1e-2, mass
  # Not the prior: the random couplings moved the density.
  gauss = stats.multivariate_normal(np.zeros(2)).logpdf(grid)
  assert np.abs(np.asarray(ll) - gauss).max() > 0.1


def test_reference_layout_has_the_peer_parameter_count():
  config = realnvp_config.get_config('mnist8k')
  net = train.make_net(realnvp, config.model)
  x = jnp.zeros((1, 28, 28, 1))
  shapes = jax.eval_shape(
      lambda k: realnvp.init(k, {'image': x}, net=net), jax.random.key(0))
  count = lambda tree: sum(math.prod(l.shape) for l in jax.tree.leaves(tree))
  assert count(shapes) == 1_204_711
  assert count(shapes['checker_0']) == 149_507  # C = 1: net + 1 scale
  assert count(shapes['channel_0']) == 151_238  # 2 -> 4 channels + 2 scales
  assert count(shapes['final_1']) == 151_238
  assert len(shapes) == 8


def _dataset(image_shape=(8, 8, 1)):
  if len(image_shape) == 1:
    return types.SimpleNamespace(image_shape=None, point_dim=image_shape[0],
                                 pixel_levels=None)
  return types.SimpleNamespace(image_shape=image_shape, point_dim=None,
                               pixel_levels=256)


@pytest.mark.parametrize('arg,field,value,dataset,match', [
    ('smoke', 'model.num_scales', 3, (6, 6, 1), 'config.model.num_scales'),
    ('smoke', 'model.logit_alpha', 0.5, (8, 8, 1), 'config.model.logit_alpha'),
    ('smoke', 'data.dequantize', False, (8, 8, 1), 'config.data.dequantize'),
    ('smoke', 'data.value_range', 'symmetric', (8, 8, 1),
     'config.data.value_range'),
    ('smoke', 'model.final_couplings', 0, (8, 8, 1),
     'config.model.final_couplings'),
    ('smoke', 'model.hidden', 0, (8, 8, 1), 'config.model.hidden'),
    ('moons', 'model.num_scales', 2, (2,), 'config.model.num_scales'),
    ('moons', 'model.logit_alpha', 0.05, (2,), 'config.model.logit_alpha'),
])
def test_validate_names_the_bad_field(arg, field, value, dataset, match):
  config = realnvp_config.get_config(arg)
  realnvp.validate(config, _dataset(config.model.image_shape))  # fine as is
  section, name = field.split('.')
  config[section][name] = value
  with pytest.raises(ConfigError, match=match):
    realnvp.validate(config, _dataset(dataset))


@pytest.mark.parametrize('arg', ['smoke', 'digits', 'mnist8k', 'moons',
                                 'ring8', 'checkerboard'])
def test_every_preset_builds_and_validates(arg):
  config = realnvp_config.get_config(arg)
  assert config.family == 'realnvp'
  toy = arg in realnvp_config.TOY
  assert config.data.name == (f'toy:{arg}' if toy else config.data.name)
  assert config.data.dequantize != toy
  realnvp.validate(config, _dataset(tuple(config.model.image_shape)))
