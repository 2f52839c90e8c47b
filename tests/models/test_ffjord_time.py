"""FFJORD's learned end time: T = sqrt_end_time^2 starts at time_length,
the solve ends at it, and the loss's gradient in it is the closed form's
for linear dynamics; the fixed T adds no parameter."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import linalg
from scipy import stats

from experiments.configs import ffjord as ffjord_config
from jaxgen.errors import ConfigError
from jaxgen.models import ffjord
from tests.models.test_ffjord import _dataset
from tests.models.test_ffjord import _linear_params

A = np.array([[0.3, -0.8], [0.5, -0.2]])
X = np.array([[0.5, -1.0], [1.5, 0.2], [-0.7, 0.9]])
T0 = 0.7


def _closed_form(t):
  """(loss, dloss/dT) of f(z) = A z ending at t, in float64: z(t) =
  expm(t A) x, dz/dt = A z, log p(x) = log N(z(t)) + t tr(A)."""
  z = X @ linalg.expm(t * A).T
  loss = -(stats.norm.logpdf(z).sum(-1) + t * np.trace(A)).mean()
  grad = (np.einsum('bi,ij,bj->b', z, A, z) - np.trace(A)).mean()
  return loss, grad


@pytest.fixture(scope='module')
def learned():
  net = ffjord.Net(image_shape=(2,), hidden=(), time_length=T0,
                   train_time=True, rtol=1e-6, atol=1e-6, max_steps=500)
  init = ffjord.init(jax.random.key(0), {'point': jnp.zeros((1, 2))},
                     net=net)
  params = dict(_linear_params(net, A), sqrt_end_time=init['sqrt_end_time'])
  fn = jax.jit(jax.value_and_grad(
      lambda p, b: ffjord.loss_fn(p, b, None, net=net), has_aux=True))
  return net, init, params, fn


@pytest.mark.slow  # one compile of the gradient through the solver
def test_learned_end_time_starts_at_time_length_and_ends_the_solve(learned):
  _, init, params, fn = learned
  np.testing.assert_allclose(init['sqrt_end_time'], math.sqrt(T0), rtol=1e-7)
  batch = {'point': jnp.asarray(X, jnp.float32)}
  for t in (T0, 1.2):
    p = dict(params, sqrt_end_time=jnp.float32(math.sqrt(t)))
    (loss, metrics), grads = fn(p, batch)
    loss_ref, dloss_dt = _closed_form(t)
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-4)
    np.testing.assert_allclose(metrics['end_time'], t, rtol=1e-6)
    # d loss / d sqrt_end_time = d loss / dT * 2 sqrt(T).
    np.testing.assert_allclose(grads['sqrt_end_time'],
                               dloss_dt * 2 * math.sqrt(t), rtol=1e-3)


def test_fixed_end_time_adds_no_parameter():
  net = ffjord.Net(image_shape=(2,), hidden=(4,), time_length=T0)
  params = ffjord.init(jax.random.key(0), {'point': jnp.zeros((1, 2))},
                       net=net)
  assert 'sqrt_end_time' not in params
  # A Python float: the solve's end point stays a compile-time constant.
  assert ffjord.end_time(params, net=net) == T0
  assert isinstance(ffjord.end_time(params, net=net), float)
  config = ffjord_config.get_config('moons')
  assert config.model.train_time is False
  with config.ignore_type():
    config.model.train_time = 1
  with pytest.raises(ConfigError, match='config.model.train_time'):
    ffjord.validate(config, _dataset((2,)))
