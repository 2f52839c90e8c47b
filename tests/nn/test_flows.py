"""Invertible layers: round trips, log-determinants against slogdet(jacfwd),
the logit pre-processing against float64 NumPy, squeeze's channel order."""

import math

import jax
from jax import flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxgen.nn import flows


def perturb(params, seed, scale=0.5):
  """Random parameters: every entry moved by N(0, scale^2) (NumPy noise, no
  compiled draw), so zero-initialised output layers and unit scales no
  longer make a layer the identity."""
  flat, unravel = flatten_util.ravel_pytree(params)
  noise = np.random.default_rng(seed).standard_normal(flat.shape)
  return unravel(flat + scale * noise.astype(np.float32))


def normal(seed, shape, scale=1.0):
  """float32 N(0, scale^2) inputs from NumPy (no compiled draw)."""
  return jnp.asarray(scale * np.random.default_rng(seed).standard_normal(
      shape), jnp.float32)


def uniform(seed, shape, low=0.0, high=1.0):
  """float32 U[low, high) inputs from NumPy."""
  return jnp.asarray(np.random.default_rng(seed).uniform(low, high, shape),
                     jnp.float32)


def _per_example_jacobians(f, x):
  one = lambda v: f(v.reshape((1,) + x.shape[1:])).reshape(-1)
  return jax.vmap(jax.jacfwd(one))(x.reshape(x.shape[0], -1))


def slogdets(jacobians):
  """log|det| of each [D, D] Jacobian, in float64."""
  sign, logdet = np.linalg.slogdet(np.asarray(jacobians, np.float64))
  assert np.all(sign != 0)
  return logdet


def jacobian_logdets(f, x):
  """Per-example log|det| of f: [B, ...] -> [B, ...] by jacfwd (jitted)."""
  return slogdets(jax.jit(lambda v: _per_example_jacobians(f, v))(x))


def flow_program(apply):
  """One compiled program of a flow ``apply(params, x, inverse) -> (y,
  logdet [B])``: ``run(params, x) -> (y, logdet, inverse(y), its logdet,
  per-example Jacobians of the forward map)``."""

  @jax.jit
  def run(params, x):
    y, logdet = apply(params, x, False)
    back, inv_logdet = apply(params, y, True)
    jac = _per_example_jacobians(lambda v: apply(params, v, False)[0], x)
    return y, logdet, back, inv_logdet, jac

  return run


def check_flow(run, params, x, rtol=1e-4):
  """The round trip, the inverse's log-det and the forward's against
  slogdet(jacfwd), from a `flow_program`; returns the forward's (y, logdet).
  """
  y, logdet, back, inv_logdet, jac = run(params, x)
  assert y.shape[0] == x.shape[0] and logdet.shape == x.shape[:1]
  np.testing.assert_allclose(back, x, atol=1e-5)
  np.testing.assert_allclose(inv_logdet, -logdet, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(logdet, slogdets(jac), rtol=rtol, atol=rtol)
  return y, logdet


# (mask, parity, affine, example shape): both masks on conv nets (images)
# and MLPs (vectors), both parities, odd sizes, additive and affine.
COUPLINGS = [
    ('checkerboard', 1, True, (3, 4, 2)),
    ('channel', 1, True, (2, 2, 4)),
    ('checkerboard', 0, True, (5,)),
    ('checkerboard', 1, False, (5,)),
    ('channel', 0, False, (2, 2, 2)),
]


@pytest.mark.parametrize('mask,parity,affine,shape', COUPLINGS)
def test_coupling_inverts_and_its_logdet_is_the_jacobians(
    mask, parity, affine, shape):
  layer = flows.Coupling(mask=mask, parity=parity, affine=affine, hidden=4,
                         depth=1)
  x = normal(0, (2,) + shape)
  params = jax.jit(layer.init)(jax.random.key(1), x)
  run = flow_program(lambda p, v, inv: layer.apply(p, v, inverse=inv))
  # Zero-initialised output layer: every coupling starts as the identity.
  y0, ld0 = run(params, x)[:2]
  np.testing.assert_array_equal(y0, x)
  np.testing.assert_array_equal(ld0, 0.0)

  params = perturb(params, 2)
  y, logdet = check_flow(run, params, x)
  assert y.shape == x.shape
  assert float(jnp.abs(y - x).max()) > 1e-2  # not the identity any more
  if not affine:
    np.testing.assert_allclose(logdet, 0.0)  # NICE: volume preserving
  if mask == 'checkerboard' and len(shape) == 3:
    # The conditioning pixels pass unchanged, every other entry moves.
    b = flows.checkerboard(shape[0], shape[1], parity)
    np.testing.assert_array_equal(y * b, x * b)
    moved = np.broadcast_to(b == 0, y.shape)
    assert np.all(np.abs(np.asarray(y - x))[moved] > 0)


def test_checkerboard_mask_pattern():
  b = flows.checkerboard(3, 4, 1)
  assert b.shape == (3, 4, 1) and b.sum() == 6
  assert b[0, 1, 0] == 1 and b[0, 0, 0] == 0 and b[1, 0, 0] == 1
  np.testing.assert_array_equal(flows.checkerboard(3, 4, 0), 1 - b)


def test_channel_partition_halves_and_parity_swaps_them():
  cond, moved = flows.partition(4, 'channel', 0)
  np.testing.assert_array_equal(cond, [0, 1])
  np.testing.assert_array_equal(moved, [2, 3])
  cond, moved = flows.partition(5, 'checkerboard', 1)
  np.testing.assert_array_equal(cond, [1, 3])
  np.testing.assert_array_equal(moved, [0, 2, 4])


def test_scaling_inverts_and_its_logdet_is_the_jacobians():
  layer = flows.Scaling()
  x = normal(0, (2, 2, 2, 1))
  params = perturb(layer.init(jax.random.key(1), x), 2)
  check_flow(flow_program(lambda p, v, inv: layer.apply(p, v, inverse=inv)),
             params, x, rtol=1e-5)


@pytest.mark.parametrize('alpha', [0.0, 0.05])
def test_logit_preprocessing_matches_float64_numpy(alpha):
  x = uniform(0, (3, 2, 2, 1), 0.01, 0.99)
  y, logdet = flows.logit_forward(x, alpha)
  x64 = np.asarray(x, np.float64)
  p = alpha + (1 - 2 * alpha) * x64
  np.testing.assert_allclose(y, np.log(p / (1 - p)), rtol=1e-5, atol=1e-5)
  ref = (np.log(1 - 2 * alpha) - np.log(p) - np.log(1 - p)).reshape(3, -1)
  np.testing.assert_allclose(logdet, ref.sum(-1), rtol=1e-5)
  np.testing.assert_allclose(
      logdet, jacobian_logdets(lambda v: flows.logit_forward(v, alpha)[0], x),
      rtol=1e-4)
  back, inv = flows.logit_inverse(y, alpha)
  np.testing.assert_allclose(back, x, atol=1e-5)
  np.testing.assert_allclose(inv, -logdet, rtol=1e-5)


def test_logit_logdet_is_finite_at_the_edges_of_the_data():
  x = jnp.array([[0.0, 1.0, 255.99 / 256]])
  y, logdet = flows.logit_forward(x, 0.05)
  assert np.all(np.isfinite(y)) and np.isfinite(logdet).all()
  ref = sum(np.log(0.9) - np.log(p) - np.log(1 - p)
            for p in 0.05 + 0.9 * np.array([0.0, 1.0, 255.99 / 256]))
  np.testing.assert_allclose(logdet, [ref], rtol=1e-5)


def test_squeeze_channel_order_and_round_trip():
  x = normal(0, (2, 4, 6, 3))
  y = flows.squeeze(x)
  assert y.shape == (2, 2, 3, 12)
  xn, yn = np.asarray(x), np.asarray(y)
  for i in range(2):
    for j in range(3):
      for c in range(3):
        for di in range(2):
          for dj in range(2):
            assert yn[:, i, j, 4 * c + 2 * di + dj].tolist() == \
                xn[:, 2 * i + di, 2 * j + dj, c].tolist()
  np.testing.assert_array_equal(flows.unsqueeze(y), x)
  # A permutation: |det| = 1.
  np.testing.assert_allclose(
      jacobian_logdets(flows.squeeze, x[:, :2, :2]), 0.0, atol=1e-6)


def test_factoring_out_half_the_channels_round_trips():
  x = jnp.arange(2 * 2 * 2 * 4.0).reshape(2, 2, 2, 4)
  kept, out = flows.split_half(x)
  assert kept.shape == out.shape == (2, 2, 2, 2)
  np.testing.assert_array_equal(kept, x[..., :2])
  np.testing.assert_array_equal(flows.merge_half(kept, out), x)


def test_priors_match_scipy_and_temperature_scales_draws():
  z = normal(0, (3, 2, 2), 3.0)
  z64 = np.asarray(z, np.float64).reshape(3, -1)
  np.testing.assert_allclose(flows.gaussian_log_prob(z),
                             stats.norm.logpdf(z64).sum(-1), rtol=1e-5)
  np.testing.assert_allclose(flows.logistic_log_prob(z),
                             stats.logistic.logpdf(z64).sum(-1), rtol=1e-5)
  big = jnp.array([[80.0, -80.0]])  # softplus form: no overflow
  np.testing.assert_allclose(flows.logistic_log_prob(big), [-160.0],
                             rtol=1e-6)
  key = jax.random.key(1)
  for prior, std in (('gaussian', 1.0), ('logistic', math.pi / math.sqrt(3))):
    draws = flows.sample_prior(key, (20_000,), prior, temperature=0.5)
    assert abs(float(draws.std()) - 0.5 * std) < 0.03 * std
    np.testing.assert_allclose(
        flows.sample_prior(key, (20_000,), prior), draws / 0.5, rtol=1e-6)
