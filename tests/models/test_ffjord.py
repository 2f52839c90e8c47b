"""FFJORD: the ODE inverts, the log-det is the Jacobian's, the traces agree,
the density is right where it is known and integrates to 1, nfe counts the
dynamics' evaluations."""

import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate
from scipy import linalg
from scipy import stats

from experiments.configs import ffjord as ffjord_config
from jaxgen.errors import ConfigError
from jaxgen.models import ffjord
from tests.nn.test_flows import perturb

TOL = 1e-5  # the solver tolerances of these tests


def points_net(**kwargs):
  fields = dict(image_shape=(2,), hidden=(8, 8), time_length=1.0,
                rtol=TOL, atol=TOL, max_steps=500)
  fields.update(kwargs)
  return ffjord.Net(**fields)


@pytest.fixture(scope='module')
def points_model():
  """(net, params) of a 2-D flow with random dynamics (not the identity)."""
  net = points_net()
  params = ffjord.init(jax.random.key(0), {'point': jnp.zeros((1, 2))},
                       net=net)
  return net, perturb(params, 1, scale=1.0)


@pytest.fixture(scope='module')
def points():
  return jax.random.normal(jax.random.key(1), (4, 2)) * 1.5


def test_forward_then_inverse_returns_the_input(points_model, points):
  net, params = points_model
  fwd = jax.jit(lambda p, x: ffjord.forward(p, x, net=net))
  z, logdet = fwd(params, points)
  assert z.shape == (4, 2) and logdet.shape == (4,)
  assert float(jnp.abs(z - points).max()) > 0.1  # the flow moved the points
  x, inv_logdet = jax.jit(lambda p, z: ffjord.inverse(p, z, net=net))(
      params, z)
  np.testing.assert_allclose(x, points, atol=1e-3)
  # log|det dx/dz| of the reverse solve is minus the forward's.
  assert inv_logdet.shape == (4,)
  np.testing.assert_allclose(inv_logdet, -logdet, atol=2e-3)


def flow_jacobians(params, net, h0):
  """(h(T) [B, D], dh(T)/dh(0) [B, D, D]) of the ODE alone, in float64.

  An independent reference for the solver's integrated trace: SciPy's
  DOP853 integrates the state with its variational equation dJ/dt =
  (df/dz) J, J(0) = I, from 0 to T, with f and df/dz from the dynamics
  (float32 network, one forward-mode Jacobian per call).
  """
  shape = (1,) + tuple(net.image_shape)
  d = int(np.prod(net.image_shape))

  @jax.jit
  def f_and_jac(z, t):
    f = lambda v: ffjord.dynamics(params, v.reshape(shape), t,
                                  net=net).reshape(d)
    return f(z), jax.jacfwd(f)(z)

  def rhs(t, state):
    fz, dfdz = jax.device_get(f_and_jac(
        jnp.asarray(state[:d], jnp.float32), jnp.float32(t)))
    jac = state[d:].reshape(d, d)
    return np.concatenate([np.asarray(fz, np.float64),
                           (np.asarray(dfdz, np.float64) @ jac).ravel()])

  t_end = float(ffjord.end_time(params, net=net))
  ends, jacs = [], []
  for start in np.asarray(h0, np.float64).reshape(-1, d):
    sol = integrate.solve_ivp(rhs, (0.0, t_end),
                              np.concatenate([start, np.eye(d).ravel()]),
                              method='DOP853', rtol=1e-7, atol=1e-9)
    assert sol.success, sol.message
    ends.append(sol.y[:d, -1])
    jacs.append(sol.y[d:, -1].reshape(d, d))
  return np.stack(ends), np.stack(jacs)


def test_logdet_is_the_jacobians(points_model, points):
  """The integrated exact trace against slogdet of the flow map's Jacobian
  (`flow_jacobians`), and the end point against the reference's."""
  net, params = points_model
  z, logdet = jax.jit(lambda p, x: ffjord.forward(p, x, net=net))(params,
                                                                  points)
  ref_z, jac = flow_jacobians(params, net, points)
  ref = np.linalg.slogdet(jac)[1]
  assert np.abs(ref).max() > 0.05  # not volume-preserving
  np.testing.assert_allclose(logdet, ref, atol=2e-3)
  np.testing.assert_allclose(z, ref_z, atol=1e-3)


def _linear_params(net, a):
  """Params of ``Net(hidden=())`` whose dynamics is f(z, t) = a z: one
  ConcatSquash layer with gate sigmoid(0) = 1/2 and no bias terms."""
  d = a.shape[0]
  params = ffjord.init(jax.random.key(0), {'point': jnp.zeros((1, d))},
                       net=net)
  layer = params['ConcatSquashDense_0']
  zeros = jax.tree.map(jnp.zeros_like, layer)
  zeros['layer']['kernel'] = jnp.asarray(2.0 * a.T, jnp.float32)
  return {'ConcatSquashDense_0': zeros}


def test_linear_dynamics_have_the_closed_form_density_and_penalties():
  """f(z, t) = A z: z(T) = expm(T A) x, log|det| = T tr(A), the kinetic
  energy is the integral of |A expm(t A) x|^2 and the Jacobian penalty
  T |A eps|^2; references in float64 (SciPy's expm, the trapezoid rule)."""
  a = np.array([[0.3, -0.8, 0.1], [0.5, -0.2, 0.4], [0.0, 0.6, 0.25]])
  t_end = 1.3
  net = ffjord.Net(image_shape=(3,), hidden=(), time_length=t_end,
                   rtol=1e-6, atol=1e-6, kinetic_weight=0.1,
                   jacobian_weight=0.01, trace='hutchinson')
  params = _linear_params(net, a)
  x = np.array([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]])
  key = jax.random.key(3)
  batch = {'point': jnp.asarray(x, jnp.float32)}
  ll, (loss, metrics) = jax.jit(lambda p, b, k: (
      ffjord.log_likelihood(p, b, k, net=net),
      ffjord.loss_fn(p, b, k, net=net, train=True)))(params, batch, key)

  z_ref = x @ linalg.expm(t_end * a).T
  ll_ref = stats.norm.logpdf(z_ref).sum(-1) + t_end * np.trace(a)
  np.testing.assert_allclose(ll, ll_ref, rtol=1e-4, atol=1e-4)
  # The training NLL (Hutchinson's trace) integrates eps^T A eps in place
  # of tr(A): constant in time for linear dynamics.
  eps = np.asarray(jax.random.rademacher(key, x.shape, jnp.float32),
                   np.float64)
  hutch = np.einsum('bi,ij,bj->b', eps, a, eps)
  np.testing.assert_allclose(
      metrics['nll'], -(stats.norm.logpdf(z_ref).sum(-1) + t_end * hutch),
      rtol=1e-4, atol=1e-4)
  ts = np.linspace(0.0, t_end, 2001)
  speed = np.stack([((x @ linalg.expm(t * a).T) @ a.T) ** 2 for t in ts])
  kinetic_ref = np.trapezoid(speed.sum(-1), ts, axis=0)
  np.testing.assert_allclose(metrics['kinetic'], kinetic_ref, rtol=1e-4)
  jacobian_ref = t_end * ((eps @ a.T) ** 2).sum(-1)
  np.testing.assert_allclose(metrics['jacobian'], jacobian_ref, rtol=1e-4)
  objective = (metrics['nll'] + 0.1 * metrics['kinetic'] +
               0.01 * metrics['jacobian'])
  np.testing.assert_allclose(loss, objective.mean(), rtol=1e-5)


@pytest.mark.parametrize('noise', ffjord.NOISES)
def test_hutchinson_agrees_with_the_exact_trace_in_expectation(
    points_model, points, noise):
  """One solve of each point repeated 1,000 times: 1,000 independent
  noise draws; their mean is the exact log-likelihood within 4 standard
  errors (plus the solver's tolerance)."""
  net, params = points_model
  net = points_net(noise=noise)
  reps = 1000
  batch = {'point': jnp.repeat(points, reps, axis=0)}

  @jax.jit
  def both(p, b, k):
    return (ffjord.log_likelihood(p, b, k, net=net, trace='hutchinson'),
            ffjord.log_likelihood(p, b, k, net=net, trace='exact'))

  hutch, exact = both(params, batch, jax.random.key(7))
  hutch = np.asarray(hutch, np.float64).reshape(len(points), reps)
  exact = np.asarray(exact, np.float64).reshape(len(points), reps)
  std = hutch.std(axis=1)
  assert (std > 1e-3).all()  # the draws do differ
  np.testing.assert_allclose(exact, np.broadcast_to(exact[:, :1], exact.shape),
                             atol=1e-4)
  err = np.abs(hutch.mean(axis=1) - exact[:, 0])
  assert (err < 4 * std / math.sqrt(reps) + 1e-3).all(), (err, std)


def test_2d_density_integrates_to_one(points_model):
  net, params = points_model
  n, half_width = 241, 8.0
  axis = np.linspace(-half_width, half_width, n, dtype=np.float32)
  grid = np.stack(np.meshgrid(axis, axis, indexing='ij'), -1).reshape(-1, 2)
  ll = jax.jit(lambda p, b: ffjord.log_likelihood(p, b, None, net=net))(
      params, {'point': jnp.asarray(grid)})
  cell = (axis[1] - axis[0]) ** 2
  mass = float(np.exp(np.asarray(ll, np.float64)).sum() * cell)
  assert abs(mass - 1.0) < 1e-2, mass
  gauss = stats.multivariate_normal(np.zeros(2)).logpdf(grid)
  assert np.abs(np.asarray(ll) - gauss).max() > 0.1  # not the prior


def test_nfe_counts_the_evaluations_of_the_dynamics(points_model, points,
                                                    monkeypatch):
  """The loss's nfe is the count of calls of f in the compiled solve."""
  net, params = points_model
  calls = []
  original = ffjord.dynamics

  def counted(p, z, t, *, net):
    jax.debug.callback(lambda: calls.append(1))
    return original(p, z, t, net=net)

  monkeypatch.setattr(ffjord, 'dynamics', counted)
  batch = {'point': points, 'mask': jnp.array([True, True, True, False])}
  loss, metrics = jax.jit(lambda p, b: ffjord.loss_fn(
      p, b, None, net=net, train=True))(params, batch)
  jax.block_until_ready(metrics)
  nfe = np.asarray(metrics['nfe'])
  assert nfe.shape == (4,) and (nfe == nfe[0]).all() and nfe[0] > 0
  assert nfe[0] == len(calls) == 6 * metrics['num_steps'][0] + 1
  np.testing.assert_allclose(loss, metrics['nll'][:3].mean(), rtol=1e-5)
  assert 'kinetic' not in metrics  # no regulariser weighted


def test_a_solve_past_max_steps_is_not_finite(points_model, points):
  net, params = points_model
  z, logdet = ffjord.forward(params, points, net=points_net(max_steps=2))
  assert not np.isfinite(np.asarray(z)).any()
  assert not np.isfinite(np.asarray(logdet)).any()


def test_point_samples_map_back_to_the_prior_draw(points_model):
  net, params = points_model
  key = jax.random.key(5)
  draw = jax.jit(lambda p, k: (ffjord.sample(p, k, 3, net=net),
                               jax.random.normal(k, (3, 2))))
  x, z = draw(params, key)
  assert x.shape == (3, 2) and x.dtype == jnp.float32
  np.testing.assert_allclose(ffjord.forward(params, x, net=net)[0], z,
                             atol=1e-3)


def test_images_invert_and_their_logdet_includes_the_logit():
  """Conv dynamics with t as a channel on 3x3x1 images, logit
  pre-processing: the round trip, and the exact log-det against slogdet
  of the whole map's Jacobian: the ODE's (`flow_jacobians`) times the
  logit's diagonal (1 - 2 alpha) / (p (1 - p)), p = alpha + (1 - 2 alpha) y,
  in float64."""
  alpha = 0.05
  net = ffjord.Net(image_shape=(3, 3, 1), hidden=(4,), activation='softplus',
                   logit_alpha=alpha, rtol=TOL, atol=TOL, max_steps=500)
  y = jax.random.uniform(jax.random.key(2), (2, 3, 3, 1))
  params = perturb(ffjord.init(jax.random.key(4), {'image': y}, net=net), 6,
                   scale=0.3)

  @jax.jit
  def run(p, y, key):
    z, logdet = ffjord.forward(p, y, net=net)
    return (z, logdet, ffjord.inverse(p, z, net=net),
            ffjord.sample(p, key, 2, net=net))

  z, logdet, (back, back_logdet), images = run(params, y, jax.random.key(1))
  p = alpha + (1 - 2 * alpha) * np.asarray(y, np.float64).reshape(2, 9)
  h0 = np.log(p) - np.log1p(-p)
  ref_z, ode_jac = flow_jacobians(params, net, h0)
  jac = ode_jac * ((1 - 2 * alpha) / (p * (1 - p)))[:, None, :]
  ref = np.linalg.slogdet(jac)[1]
  assert z.shape == (2, 9)
  np.testing.assert_allclose(z, ref_z, atol=1e-3)
  np.testing.assert_allclose(back, y, atol=1e-3)
  np.testing.assert_allclose(logdet, ref, atol=2e-3)
  # The inverse's log-det, logit included, is minus the forward's.
  np.testing.assert_allclose(back_logdet, -ref, atol=2e-3)
  assert images.shape == (2, 3, 3, 1) and images.dtype == jnp.uint8


def _dataset(image_shape):
  if len(image_shape) == 1:
    return types.SimpleNamespace(image_shape=None, point_dim=image_shape[0],
                                 pixel_levels=None)
  return types.SimpleNamespace(image_shape=image_shape, point_dim=None,
                               pixel_levels=256)


@pytest.mark.parametrize('arg,field,value,match', [
    ('moons', 'model.trace', 'hutch', 'config.model.trace'),
    ('moons', 'model.solver', 'euler', 'config.model.solver'),
    ('moons', 'model.activation', 'relu', 'config.model.activation'),
    ('moons', 'model.noise', 'uniform', 'config.model.noise'),
    ('moons', 'model.rtol', 0.0, 'config.model.rtol'),
    ('moons', 'model.time_length', -1.0, 'config.model.time_length'),
    ('moons', 'model.max_steps', 0, 'config.model.max_steps'),
    ('moons', 'model.hidden', (64, 0), 'config.model.hidden'),
    ('moons', 'model.kinetic_weight', -0.1, 'config.model.kinetic_weight'),
    ('moons', 'model.logit_alpha', 0.05, 'config.model.logit_alpha'),
    ('smoke', 'data.dequantize', False, 'config.data.dequantize'),
    ('smoke', 'model.logit_alpha', 0.5, 'config.model.logit_alpha'),
])
def test_validate_names_the_bad_field(arg, field, value, match):
  config = ffjord_config.get_config(arg)
  dataset = _dataset(tuple(config.model.image_shape))
  ffjord.validate(config, dataset)  # fine as is
  section, name = field.split('.')
  config[section][name] = value
  with pytest.raises(ConfigError, match=match):
    ffjord.validate(config, dataset)


def test_validate_checks_the_estimators_tolerances():
  config = ffjord_config.get_config('moons')
  config.eval.estimators.exact.atol = -1e-5
  with pytest.raises(ConfigError, match='config.eval.estimators.exact.atol'):
    ffjord.validate(config, _dataset((2,)))


@pytest.mark.parametrize('arg', ['smoke', 'digits', 'mnist8k', 'moons',
                                 'ring8', 'checkerboard'])
def test_every_preset_builds_and_validates(arg):
  config = ffjord_config.get_config(arg)
  assert config.family == 'ffjord'
  toy = arg in ffjord_config.TOY
  assert config.data.dequantize != toy
  assert config.model.trace == ('exact' if toy else 'hutchinson')
  # 28x28: Hutchinson's estimate, the exact trace's 784 products are too
  # many; the smaller inputs are evaluated with the exact trace.
  name = 'hutchinson' if arg == 'mnist8k' else 'exact'
  assert tuple(config.eval.final_estimators) == (name,)
  assert config.eval.estimators[name].trace == name
  ffjord.validate(config, _dataset(tuple(config.model.image_shape)))


def test_concat_conv_is_a_3x3_same_convolution_of_x_and_t():
  """The patch-and-matmul layer against `lax.conv` with the same kernel."""
  layer = ffjord.ConcatConv(5)
  x = jax.random.normal(jax.random.key(0), (2, 4, 3, 2))
  t = 0.7
  params = layer.init(jax.random.key(1), x, t)['params']
  params = perturb(params, 3)
  out = layer.apply({'params': params}, x, t)
  kernel = params['Dense_0']['kernel'].reshape(3, 3, 3, 5)  # HWIO
  xt = jnp.concatenate([x, jnp.full(x.shape[:-1] + (1,), t)], axis=-1)
  ref = jax.lax.conv_general_dilated(
      xt, kernel, (1, 1), 'SAME',
      dimension_numbers=('NHWC', 'HWIO', 'NHWC')) + params['Dense_0']['bias']
  np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
