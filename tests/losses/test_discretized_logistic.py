"""Tests for the (mixture of) discretized logistic likelihoods (PixelCNN++)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import losses
from tests.losses import numpy_reference as ref

_dlogistic = jax.jit(
    losses.discretized_logistic_log_prob,
    static_argnames=("num_bins", "log_scale_min"),
)
_mixture = jax.jit(
    losses.discretized_logistic_mixture_log_prob,
    static_argnames=("num_bins", "log_scale_min"),
)

_dlogistic_grads = jax.jit(
    jax.grad(
        lambda *a, **kw: losses.discretized_logistic_log_prob(*a, **kw).sum(),
        argnums=(0, 1, 2),
    ),
    static_argnames=("num_bins",),
)

# (mean, log_scale) pairs: near and far from [-1, 1], below the clamp, tiny
# and huge scales, and scales where the mid-bin fallback is taken
# (2/255 * exp(-log_scale) < 1e-3 for log_scale > ~2.06).
_PARAMS = [
    (0.0, -3.0),
    (0.1, -7.0),
    (-0.37, -7.0),
    (0.9, -12.0),  # Below the clamp.
    (1.0, -5.0),
    (-1.0, -5.0),
    (-0.999, -6.5),
    (0.5, -1.0),
    (0.0, 0.0),
    (2.5, -2.0),
    (-3.0, -4.0),
    (20.0, -7.0),  # Mean far outside [-1, 1] with the smallest scale.
    (-60.0, 1.0),
    (0.2, 2.0),
    (0.3, 3.0),  # Mid-bin fallback.
    (-0.7, 8.0),  # Mid-bin fallback.
    (0.0, 12.0),  # Mid-bin fallback.
]


def _levels(num_bins, dtype=np.float32):
  """The bin centres 2k/(num_bins-1) - 1, k = 0..num_bins-1."""
  k = np.arange(num_bins)
  return (2.0 * k / (num_bins - 1) - 1.0).astype(dtype)


def _assert_close_to_reference(actual, expected):
  actual = np.asarray(actual, np.float64)
  assert np.all(np.isfinite(actual))
  np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("num_bins", [2, 16, 256])
def test_matches_float64_reference(num_bins):
  x = _levels(num_bins)[:, None]
  means = np.array([m for m, _ in _PARAMS], np.float32)[None, :]
  log_scales = np.array([s for _, s in _PARAMS], np.float32)[None, :]
  actual = _dlogistic(x, means, log_scales, num_bins=num_bins)
  assert actual.shape == (num_bins, len(_PARAMS))
  assert actual.dtype == jnp.float32
  expected = ref.discretized_logistic_log_prob(x, means, log_scales, num_bins)
  _assert_close_to_reference(actual, expected)


def test_matches_reference_on_random_inputs():
  rng = np.random.default_rng(0)
  shape = (4, 8, 8, 3)
  x = _levels(256)[rng.integers(0, 256, size=shape)]
  means = rng.uniform(-1.5, 1.5, size=shape).astype(np.float32)
  log_scales = rng.uniform(-8.0, 3.0, size=shape).astype(np.float32)
  actual = _dlogistic(x, means, log_scales)
  assert actual.shape == shape
  _assert_close_to_reference(
      actual, ref.discretized_logistic_log_prob(x, means, log_scales)
  )


def test_log_scale_min_is_honoured():
  x = _levels(256)
  actual = _dlogistic(x, 0.1, -5.0, log_scale_min=-4.0)
  _assert_close_to_reference(
      actual, ref.discretized_logistic_log_prob(x, 0.1, -4.0)
  )


@pytest.mark.parametrize("num_bins", [2, 16, 256])
@pytest.mark.parametrize("mean,log_scale", _PARAMS + [(0.0, 30.0), (5.0, 80.0)])
def test_masses_sum_to_one(num_bins, mean, log_scale):
  x = _levels(num_bins)
  log_p = np.asarray(_dlogistic(x, mean, log_scale, num_bins=num_bins))
  assert np.all(np.isfinite(log_p)) and np.all(log_p <= 0.0)
  np.testing.assert_allclose(np.exp(np.float64(log_p)).sum(), 1.0, atol=1e-5)
  if log_scale <= 12.0:  # Where the float64 reference is itself accurate.
    ref_log_p = ref.discretized_logistic_log_prob(
        np.float64(x), mean, log_scale, num_bins
    )
    np.testing.assert_allclose(np.exp(ref_log_p).sum(), 1.0, atol=1e-12)


def test_huge_scale_matches_mid_bin_density():
  # For scale >> bin width every interior bin holds pdf(x) * width, and the two
  # edge bins hold half of the remaining mass each.
  x = _levels(256)
  log_scale = 40.0
  actual = np.asarray(_dlogistic(x, 0.0, log_scale), np.float64)
  z = np.float64(x) / np.exp(log_scale)
  expected_interior = (
      -np.abs(z)
      - 2 * np.log1p(np.exp(-np.abs(z)))
      - log_scale
      + np.log(2 / 255)
  )
  np.testing.assert_allclose(actual[1:-1], expected_interior[1:-1], rtol=1e-6)
  np.testing.assert_allclose(actual[[0, -1]], np.log(0.5), atol=1e-6)


_EXTREMES = [
    # (mean, log_scale): far means, scale far below the clamp, huge scale.
    (0.0, -7.0),
    (0.0, -30.0),
    (1.0, -7.0),
    (-1.0, -7.0),
    (300.0, -7.0),
    (-300.0, -7.0),
    (1e4, -7.0),
    (0.5, 25.0),
    (-50.0, 90.0),
    (0.0, 1e4),
]


@pytest.mark.parametrize("mean,log_scale", _EXTREMES)
@pytest.mark.parametrize("num_bins", [2, 256])
def test_values_and_gradients_finite(mean, log_scale, num_bins):
  x = _levels(num_bins)  # Includes the two edge levels.
  mean = jnp.full_like(x, mean)
  log_scale = jnp.full_like(x, log_scale)
  value = _dlogistic(x, mean, log_scale, num_bins=num_bins)
  assert np.all(np.isfinite(value))
  grads = _dlogistic_grads(x, mean, log_scale, num_bins=num_bins)
  for name, g in zip(("x", "mean", "log_scale"), grads):
    assert np.all(np.isfinite(g)), f"non-finite gradient w.r.t. {name}"


def test_gradient_zero_below_clamp_and_equal_value():
  x = _levels(256)
  below = _dlogistic(x, 0.3, -9.0)
  at = _dlogistic(x, 0.3, -7.0)
  np.testing.assert_array_equal(below, at)
  g = jax.grad(lambda s: _dlogistic(x, 0.3, s).sum())(-9.0)
  assert g == 0.0


@pytest.mark.parametrize(
    "level,mean,log_scale",
    [
        (0, -0.98, -4.0),  # Lowest level.
        (255, 0.95, -4.5),  # Highest level.
        (128, 0.1, -3.0),  # Interior, on the CDF-difference branch.
        (40, 0.6, -5.0),  # Interior, deep in the tail.
        (200, -0.2, 4.0),  # Interior, on the mid-bin branch.
        (0, 3.0, -1.0),  # Lowest level, mean far above.
        (255, -2.0, 0.5),  # Highest level, mean far below.
    ],
)
def test_gradients_match_finite_differences(level, mean, log_scale):
  x = _levels(256)[level]
  grads = jax.grad(
      lambda m, s: losses.discretized_logistic_log_prob(x, m, s), argnums=(0, 1)
  )(jnp.float32(mean), jnp.float32(log_scale))
  eps = 1e-5

  def f(m, s):
    return ref.discretized_logistic_log_prob(np.float64(x), m, s)

  fd_mean = (f(mean + eps, log_scale) - f(mean - eps, log_scale)) / (2 * eps)
  fd_scale = (f(mean, log_scale + eps) - f(mean, log_scale - eps)) / (2 * eps)
  np.testing.assert_allclose(grads[0], fd_mean, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(grads[1], fd_scale, rtol=1e-4, atol=1e-4)


def test_num_bins_is_validated():
  with pytest.raises(ValueError, match="num_bins"):
    losses.discretized_logistic_log_prob(0.0, 0.0, 0.0, num_bins=1)
  with pytest.raises(ValueError, match="num_bins"):
    losses.discretized_logistic_log_prob(0.0, 0.0, 0.0, num_bins=256.0)


# ---------------------------------------------------------------------------
# Mixture.


def _random_mixture_params(rng, batch_shape, channels, components):
  logit_weights = rng.normal(0.0, 2.0, batch_shape + (components,))
  means = rng.uniform(-1.3, 1.3, batch_shape + (channels, components))
  log_scales = rng.uniform(-7.5, 1.0, batch_shape + (channels, components))
  return tuple(
      a.astype(np.float32) for a in (logit_weights, means, log_scales)
  )


@pytest.mark.parametrize("channels", [1, 3])
def test_mixture_matches_reference(channels):
  rng = np.random.default_rng(1)
  batch_shape = (2, 5, 5)
  params = _random_mixture_params(rng, batch_shape, channels, 4)
  x = _levels(256)[rng.integers(0, 256, size=batch_shape + (channels,))]
  actual = _mixture(x, *params)
  assert actual.shape == batch_shape
  _assert_close_to_reference(
      actual, ref.discretized_logistic_mixture_log_prob(x, *params)
  )


def test_mixture_with_one_component_is_sum_over_channels():
  rng = np.random.default_rng(2)
  logit_weights, means, log_scales = _random_mixture_params(rng, (6,), 3, 1)
  x = _levels(256)[rng.integers(0, 256, size=(6, 3))]
  actual = _mixture(x, logit_weights, means, log_scales)
  expected = _dlogistic(x, means[..., 0], log_scales[..., 0]).sum(-1)
  np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)


def test_mixture_shares_the_indicator_across_channels():
  # With two components that each put (almost) all mass on one colour, the
  # mixed colours get (almost) no mass: a per-channel mixture would give them
  # a quarter of it each.
  levels = _levels(256)
  means = np.array([[-1.0, 1.0], [-1.0, 1.0]], np.float32)  # [C=2, K=2]
  log_scales = np.full((2, 2), -7.0, np.float32)
  logit_weights = np.zeros(2, np.float32)
  pure = _mixture(levels[[0, 0]], logit_weights, means, log_scales)
  mixed = _mixture(levels[[0, 255]], logit_weights, means, log_scales)
  log_p_edge = ref.discretized_logistic_log_prob(levels[0], -1.0, -7.0)
  np.testing.assert_allclose(pure, np.log(0.5) + 2 * log_p_edge, atol=1e-5)
  assert mixed < -1000.0


def _extreme_mixture_params(channels, components=3, seed=3):
  logit_weights, means, log_scales = _random_mixture_params(
      np.random.default_rng(seed), (), channels, components
  )
  # Make one component extreme: tiny scale and a mean far outside [-1, 1].
  means[:, 0] = [4.0, -1.0, 0.5][:channels]
  log_scales[:, 0] = -9.0
  return logit_weights, means, log_scales


@pytest.mark.parametrize(
    "channels,num_bins", [(1, 256), (1, 16), (3, 16), (3, 2)]
)
def test_mixture_masses_sum_to_one(channels, num_bins):
  params = _extreme_mixture_params(channels)
  levels = _levels(num_bins)
  # Every joint value of the C channels of a pixel.
  x = np.array(list(itertools.product(levels, repeat=channels)), np.float32)
  log_p = np.asarray(_mixture(x, *params, num_bins=num_bins), np.float64)
  assert log_p.shape == (num_bins**channels,)
  assert np.all(np.isfinite(log_p))
  np.testing.assert_allclose(np.exp(log_p).sum(), 1.0, atol=1e-5)
  ref_log_p = ref.discretized_logistic_mixture_log_prob(
      np.float64(x), *params, num_bins
  )
  np.testing.assert_allclose(np.exp(ref_log_p).sum(), 1.0, atol=1e-12)


def test_mixture_three_channels_of_256_levels_marginalise_to_one():
  # Summing over all 256 ** 3 colours directly is slow, so check the chain
  # sum_{x2} P(x0, x1, x2) = P(x0, x1), sum_{x1} P(x0, x1) = P(x0),
  # sum_{x0} P(x0) = 1, where the C-channel marginal is the same mixture
  # restricted to the first C channels. Together with the exact sum for
  # C = 3 at 16 levels above, this pins down normalisation at 256 levels.
  logit_weights, means, log_scales = _extreme_mixture_params(3)
  levels = _levels(256)
  rng = np.random.default_rng(4)
  prefixes = levels[rng.integers(0, 256, size=(12, 2))]
  prefixes[:4] = levels[[[0, 0], [255, 255], [0, 255], [255, 0]]]
  for c in (3, 2, 1):
    head = prefixes[:, : c - 1]  # [P, c-1]
    x = np.concatenate(
        [
            np.repeat(head[:, None, :], 256, axis=1),
            np.broadcast_to(levels[None, :, None], (len(head), 256, 1)),
        ],
        axis=-1,
    )  # [P, 256, c]: every value of the last channel after each prefix.
    log_p = np.asarray(
        _mixture(x, logit_weights, means[:c], log_scales[:c]), np.float64
    )
    summed = np.exp(log_p).sum(axis=1)
    if c == 1:
      np.testing.assert_allclose(summed, 1.0, atol=1e-5)
    else:
      log_marginal = _mixture(
          head, logit_weights, means[: c - 1], log_scales[: c - 1]
      )
      marginal = np.exp(np.asarray(log_marginal, np.float64))
      np.testing.assert_allclose(summed, marginal, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("channels", [1, 3])
def test_mixture_values_and_gradients_finite(channels):
  levels = _levels(256)
  cases = list(itertools.product([0, 255, 1, 254], [100.0, -100.0]))
  x = np.stack([np.full(channels, levels[k]) for k, _ in cases])  # [N, C]
  logit_weights = np.stack([[w, -w, 0.0] for _, w in cases]).astype(np.float32)
  n = len(cases)
  means = np.tile(np.array([50.0, -1.0, 1.0], np.float32), (n, channels, 1))
  log_scales = np.tile(
      np.array([-20.0, -7.0, 30.0], np.float32), (n, channels, 1)
  )

  def total(*args):
    return losses.discretized_logistic_mixture_log_prob(*args).sum()

  value = _mixture(x, logit_weights, means, log_scales)
  assert value.shape == (n,) and np.all(np.isfinite(value))
  grads = jax.jit(jax.grad(total, argnums=(0, 1, 2, 3)))(
      x, logit_weights, means, log_scales
  )
  for name, g in zip(("x", "logit_weights", "means", "log_scales"), grads):
    assert np.all(np.isfinite(g)), f"non-finite gradient w.r.t. {name}"


def test_mixture_shape_errors_name_the_argument():
  x = np.zeros((4, 3), np.float32)
  w = np.zeros((4, 5), np.float32)
  m = np.zeros((4, 3, 5), np.float32)
  with pytest.raises(ValueError, match="`x`"):
    losses.discretized_logistic_mixture_log_prob(x[:, :2], w, m, m)
  with pytest.raises(ValueError, match="`logit_weights`"):
    losses.discretized_logistic_mixture_log_prob(x, w[:, :4], m, m)
  with pytest.raises(ValueError, match="`log_scales`"):
    losses.discretized_logistic_mixture_log_prob(x, w, m, m[..., :4])
