"""Glow's layers: round trips, log-determinants against slogdet(jacfwd),
the LU 1x1 convolution against float64 NumPy, actnorm's data-dependent
initialisation, the coupling's sigmoid(h + 2) scale at initialisation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nn import flows
from tests.nn.test_flows import check_flow
from tests.nn.test_flows import flow_program
from tests.nn.test_flows import normal
from tests.nn.test_flows import perturb

LAYERS = {
    'actnorm': lambda: flows.ActNorm(),
    'invconv': lambda: flows.InvConv1x1(seed=3),
    'coupling': lambda: flows.GlowCoupling(hidden=4, depth=1),
    'step': lambda: flows.FlowStep(hidden=4, depth=1, seed=5),
}
IMAGES = (3, 2, 2, 4)  # [B, H, W, C]
POINTS = (3, 3)  # [B, D]: an odd D splits 1 / 2


def _apply(layer):
  return lambda p, v, inv: layer.apply({'params': p}, v, inverse=inv)


@pytest.fixture(scope='module', params=[IMAGES, POINTS], ids=['images',
                                                             'points'])
def shape(request):
  return request.param


@pytest.mark.parametrize('name', sorted(LAYERS))
def test_layer_inverts_and_its_logdet_is_the_jacobians(name, shape):
  layer = LAYERS[name]()
  x = normal(0, shape)
  params = perturb(layer.init(jax.random.key(0), x)['params'], 1, scale=0.3)
  y, logdet = check_flow(flow_program(_apply(layer)), params, x)
  assert y.shape == x.shape
  if name in ('coupling', 'step'):  # input-dependent log-det
    assert float(jnp.abs(logdet - logdet.mean()).max()) > 1e-4


@pytest.fixture(scope='module')
def invconv():
  layer = flows.InvConv1x1(seed=7)
  x = normal(2, (2, 3, 3, 5))
  params = layer.init(jax.random.key(0), x)['params']
  return layer, x, params


def _numpy_weight(params, channels, seed):
  p, _, _, sign, _ = flows.rotation_lu(channels, seed)
  f64 = lambda a: np.asarray(a, np.float64)
  lower = np.tril(f64(params['lower']), -1) + np.eye(channels)
  upper = np.triu(f64(params['upper']), 1) + np.diag(
      f64(sign) * np.exp(f64(params['log_s'])))
  return f64(p) @ lower @ upper


def test_invconv_starts_at_a_rotation_and_keeps_p_and_signs_fixed(invconv):
  layer, _, params = invconv
  assert sorted(params) == ['log_s', 'lower', 'upper']  # P, sign(s): no params
  w = _numpy_weight(params, 5, 7)
  np.testing.assert_allclose(w @ w.T, np.eye(5), atol=1e-5)
  p = flows.rotation_lu(5, 7)[0]
  assert sorted(p.sum(0)) == [1] * 5 and sorted(p.sum(1)) == [1] * 5
  # The layer applies W: on the basis vectors it returns W's columns.
  cols = layer.apply({'params': params}, jnp.eye(5)[:, None, None, :])[0]
  np.testing.assert_allclose(np.asarray(cols).reshape(5, 5).T, w, atol=1e-5)
  other = flows.InvConv1x1(seed=8).init(jax.random.key(0), jnp.zeros(
      (1, 5)))['params']
  assert np.abs(_numpy_weight(other, 5, 8) - w).max() > 0.1  # per-layer seed


def test_invconv_matches_float64_numpy_weight_and_logdet(invconv):
  layer, x, params = invconv
  params = perturb(params, 3, scale=0.4)
  y, logdet = jax.jit(layer.apply)({'params': params}, x)
  w = _numpy_weight(params, 5, 7)
  ref = np.asarray(x, np.float64) @ w.T
  np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
  _, slogdet = np.linalg.slogdet(w)
  np.testing.assert_allclose(logdet, np.full(2, 3 * 3 * slogdet), rtol=1e-5)
  # Only the triangles are read: the other entries carry no signal.
  junk = dict(params, lower=params['lower'] + jnp.triu(jnp.ones((5, 5))),
              upper=params['upper'] + jnp.tril(jnp.ones((5, 5))))
  np.testing.assert_array_equal(layer.apply({'params': junk}, x)[0], y)


def test_actnorm_data_init_normalises_per_channel():
  layer = flows.ActNorm()
  x = normal(4, (6, 3, 3, 2)) * jnp.array([3.0, 0.2]) + jnp.array([5.0, -1.0])
  params = layer.init(jax.random.key(0), x)['params']
  np.testing.assert_array_equal(layer.apply({'params': params}, x)[0], x)
  (y, _), sown = layer.apply({'params': params}, x, init=True,
                             mutable=[flows.ACTNORM_INIT])
  new = flows.actnorm_data_init({'a': params}, {'a': sown[flows.ACTNORM_INIT]})
  y2, logdet = layer.apply({'params': new['a']}, x)
  np.testing.assert_allclose(y2, y, atol=1e-6)
  np.testing.assert_allclose(y2.mean((0, 1, 2)), 0, atol=1e-5)
  np.testing.assert_allclose(y2.var((0, 1, 2)), 1, atol=1e-4)
  std = np.asarray(x, np.float64).std((0, 1, 2))
  np.testing.assert_allclose(logdet, np.full(6, -9 * np.log(std).sum()),
                             rtol=1e-4)


def test_coupling_starts_with_the_sigmoid_of_two_scale():
  layer = flows.GlowCoupling(hidden=4)
  x = normal(5, (2, 2, 2, 4))
  params = layer.init(jax.random.key(0), x)['params']
  y, logdet = layer.apply({'params': params}, x)
  s = 1.0 / (1.0 + math.exp(-2.0))
  np.testing.assert_allclose(y[..., :2], x[..., :2])
  np.testing.assert_allclose(y[..., 2:], x[..., 2:] * s, rtol=1e-6)
  np.testing.assert_allclose(logdet, np.full(2, 8 * math.log(s)), rtol=1e-6)
