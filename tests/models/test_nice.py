"""NICE: volume-preserving couplings, the scaling's log-det, the logistic
prior's likelihood, inverse round trips and samples."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from experiments.configs import nice as nice_config
from jaxgen.errors import ConfigError
from jaxgen.models import nice
from tests.nn.test_flows import check_flow
from tests.nn.test_flows import flow_program
from tests.nn.test_flows import normal
from tests.nn.test_flows import perturb
from tests.nn.test_flows import uniform


def flow_apply(net):
  return lambda p, v, inv: (nice.inverse(p, v, net=net) if inv else
                            nice.forward(p, v, net=net))


@pytest.fixture(scope='module')
def images():
  return uniform(0, (3, 2, 3, 1))


def random_params(net, batch, seed):
  params = jax.jit(lambda k: nice.init(k, batch, net=net))(
      jax.random.key(seed))
  return perturb(params, seed, scale=0.3)


@pytest.mark.parametrize('logit_alpha', [0.0, 0.05])
def test_flow_inverts_and_its_logdet_is_the_jacobians(images, logit_alpha):
  net = nice.Net(image_shape=(2, 3, 1), num_couplings=3, hidden=8, depth=1,
                 logit_alpha=logit_alpha)
  params = random_params(net, {'image': images}, 1)
  _, logdet = check_flow(flow_program(flow_apply(net)), params, images)
  scaling = float(params['scaling']['log_scale'].sum())
  if logit_alpha:
    assert float(jnp.abs(logdet - logdet.mean()).max()) > 1e-3
  else:
    # Additive couplings preserve volume: only the scaling's sum s is left.
    np.testing.assert_allclose(logdet, scaling, rtol=1e-5)


@pytest.fixture(scope='module')
def points_model():
  net = nice.Net(image_shape=(2,), num_couplings=4, hidden=8, depth=2,
                 prior='logistic')
  params = random_params(net, {'point': jnp.zeros((1, 2))}, 2)
  return net, params


def test_log_likelihood_is_the_logistic_prior_of_forward_plus_logdet(
    points_model):
  net, params = points_model
  x = normal(3, (5, 2), 2.0)
  ll = jax.jit(lambda p, b: nice.log_likelihood(p, b, None, net=net))(
      params, {'point': x})
  z, logdet = jax.jit(lambda p, v: nice.forward(p, v, net=net))(params, x)
  ref = (stats.logistic.logpdf(np.asarray(z, np.float64)).sum(-1)
         + params['scaling']['log_scale'].sum())
  np.testing.assert_allclose(ll, ref, rtol=1e-5)
  np.testing.assert_allclose(logdet, params['scaling']['log_scale'].sum(),
                             rtol=1e-5)
  # The logistic prior's sample draws are inverted exactly.
  key = jax.random.key(4)
  points, prior_draw = jax.jit(lambda p, k: (
      nice.sample(p, k, 5, net=net, temperature=0.8),
      0.8 * jax.random.logistic(k, (5, 2))))(params, key)
  assert points.shape == (5, 2) and points.dtype == jnp.float32
  z_back = jax.jit(lambda p, v: nice.forward(p, v, net=net))(params, points)[0]
  np.testing.assert_allclose(z_back, prior_draw, atol=1e-5)


def test_image_samples_are_uint8_of_the_inverse(images):
  net = nice.Net(image_shape=(2, 3, 1), num_couplings=2, hidden=4, depth=1,
                 prior='gaussian')
  params = random_params(net, {'image': images}, 5)
  key = jax.random.key(6)
  out, x = jax.jit(lambda p, k: (
      nice.sample(p, k, 3, net=net),
      nice.inverse(p, jax.random.normal(k, (3, 6)), net=net)[0]))(params, key)
  assert out.shape == (3, 2, 3, 1) and out.dtype == jnp.uint8
  expected = np.clip(np.floor(np.asarray(x) * 256), 0, 255).astype(np.uint8)
  np.testing.assert_array_equal(out, expected)


def _dataset(image_shape):
  if len(image_shape) == 1:
    return types.SimpleNamespace(image_shape=None, point_dim=image_shape[0],
                                 pixel_levels=None)
  return types.SimpleNamespace(image_shape=tuple(image_shape), point_dim=None,
                               pixel_levels=256)


@pytest.mark.parametrize('arg,field,value,match', [
    ('smoke', 'model.prior', 'laplace', 'config.model.prior'),
    ('smoke', 'model.num_couplings', 1, 'config.model.num_couplings'),
    ('smoke', 'model.depth', -1, 'config.model.depth'),
    ('smoke', 'data.binarize', 'dynamic', 'config.data.binarize'),
    ('moons', 'model.logit_alpha', 0.1, 'config.model.logit_alpha'),
])
def test_validate_names_the_bad_field(arg, field, value, match):
  config = nice_config.get_config(arg)
  dataset = _dataset(config.model.image_shape)
  nice.validate(config, dataset)  # fine as is
  section, name = field.split('.')
  config[section][name] = value
  with pytest.raises(ConfigError, match=match):
    nice.validate(config, dataset)


@pytest.mark.parametrize('arg', ['smoke', 'digits', 'mnist8k', 'moons',
                                 'ring8', 'checkerboard'])
def test_every_preset_builds_and_validates(arg):
  config = nice_config.get_config(arg)
  assert config.family == 'nice'
  nice.validate(config, _dataset(config.model.image_shape))
