"""Tests for the Bernoulli, Gaussian, categorical, Gaussian-mixture terms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import losses
from tests.losses import numpy_reference as ref


def _assert_close(actual, expected, rtol=1e-5, atol=1e-5):
  actual = np.asarray(actual, np.float64)
  assert np.all(np.isfinite(actual))
  np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def _assert_grads_finite(fn, args, names):
  argnums = tuple(range(len(names)))
  grads = jax.jit(jax.grad(lambda *a: fn(*a).sum(), argnums=argnums))(*args)
  for name, g in zip(names, grads):
    assert np.all(np.isfinite(g)), f"non-finite gradient w.r.t. {name}"


# ---------------------------------------------------------------------------
# Bernoulli.


def test_bernoulli_matches_bce_from_probabilities():
  rng = np.random.default_rng(0)
  logits = rng.uniform(-15.0, 15.0, size=(64, 10)).astype(np.float32)
  x_binary = rng.integers(0, 2, size=(64, 10)).astype(np.float32)
  x_soft = rng.uniform(0.0, 1.0, size=(64, 10)).astype(np.float32)
  fn = jax.jit(losses.bernoulli_log_prob)
  for x in (x_binary, x_soft):
    actual = fn(logits, x)
    assert actual.shape == (64, 10) and actual.dtype == jnp.float32
    _assert_close(actual, ref.bernoulli_log_prob(logits, x))


def test_bernoulli_accepts_integer_and_bool_targets():
  logits = np.array([-2.0, 0.5, 3.0], np.float32)
  x = np.array([1, 0, 1])
  expected = ref.bernoulli_log_prob(logits, x)
  _assert_close(jax.jit(losses.bernoulli_log_prob)(logits, x), expected)
  _assert_close(
      jax.jit(losses.bernoulli_log_prob)(logits, x.astype(bool)), expected
  )


def test_bernoulli_saturated_logits():
  logits = jnp.array([100.0, -100.0, 100.0, -100.0, 88.0, -1e4])
  x = jnp.array([1.0, 0.0, 0.0, 1.0, 0.5, 1.0])
  actual = jax.jit(losses.bernoulli_log_prob)(logits, x)
  # Right answers: ~0 when the label agrees, ~-|logit| when it does not.
  expected = np.array([0.0, 0.0, -100.0, -100.0, -44.0, -1e4])
  _assert_close(actual, expected, rtol=1e-6, atol=1e-6)
  _assert_grads_finite(losses.bernoulli_log_prob, (logits, x), ("logits", "x"))
  g = jax.grad(lambda l: losses.bernoulli_log_prob(l, x).sum())(logits)
  np.testing.assert_allclose(g, x - jax.nn.sigmoid(logits), atol=1e-7)


# ---------------------------------------------------------------------------
# Gaussian.


def test_gaussian_matches_scipy():
  rng = np.random.default_rng(1)
  x = rng.normal(0.0, 3.0, size=(50, 4)).astype(np.float32)
  mean = rng.normal(0.0, 2.0, size=(50, 4)).astype(np.float32)
  log_scale = rng.uniform(-4.0, 3.0, size=(1, 4)).astype(np.float32)
  actual = jax.jit(losses.gaussian_log_prob)(x, mean, log_scale)
  assert actual.shape == (50, 4)
  _assert_close(actual, ref.gaussian_log_prob(x, mean, log_scale))


def test_gaussian_extremes_are_finite():
  x = jnp.array([0.0, 1e3, -1.0, 0.0])
  mean = jnp.array([0.0, -1e3, 1.0, 5.0])
  log_scale = jnp.array([-20.0, 0.0, 30.0, -5.0])
  value = jax.jit(losses.gaussian_log_prob)(x, mean, log_scale)
  assert np.all(np.isfinite(value))
  _assert_close(value, ref.gaussian_log_prob(x, mean, log_scale), rtol=1e-6)
  _assert_grads_finite(
      losses.gaussian_log_prob, (x, mean, log_scale), ("x", "mean", "log_scale")
  )


# ---------------------------------------------------------------------------
# Categorical.


def test_categorical_matches_log_softmax_reference():
  rng = np.random.default_rng(2)
  logits = rng.normal(0.0, 5.0, size=(3, 7, 256)).astype(np.float32)
  labels = rng.integers(0, 256, size=(3, 7)).astype(np.int32)
  actual = jax.jit(losses.categorical_log_prob)(logits, labels)
  assert actual.shape == (3, 7)
  _assert_close(actual, ref.categorical_log_prob(logits, labels))


def test_categorical_broadcasts_labels_against_logits():
  rng = np.random.default_rng(3)
  logits = rng.normal(size=(5, 10)).astype(np.float32)  # One distribution ...
  labels = rng.integers(0, 10, size=(4, 5))  # ... scored on 4 label sets.
  actual = jax.jit(losses.categorical_log_prob)(logits, labels)
  expected = ref.categorical_log_prob(
      np.broadcast_to(logits, (4, 5, 10)), labels
  )
  _assert_close(actual, expected)


def test_categorical_saturated_and_masked_logits():
  logits = jnp.array([[100.0, -100.0, 0.0], [-100.0, 100.0, -jnp.inf]])
  labels = jnp.array([1, 1])
  actual = jax.jit(losses.categorical_log_prob)(logits, labels)
  np.testing.assert_allclose(actual, [-200.0, 0.0], atol=1e-5)
  g = jax.grad(lambda l: losses.categorical_log_prob(l, labels).sum())(logits)
  assert np.all(np.isfinite(g))
  np.testing.assert_allclose(
      g, jax.nn.one_hot(labels, 3) - jax.nn.softmax(logits), atol=1e-6
  )


def test_categorical_rejects_float_labels():
  with pytest.raises(ValueError, match="labels"):
    losses.categorical_log_prob(jnp.zeros((2, 3)), jnp.zeros(2))


# ---------------------------------------------------------------------------
# Gaussian mixture.


def test_gaussian_mixture_matches_scipy():
  rng = np.random.default_rng(4)
  k, d = 4, 3
  x = rng.normal(0.0, 2.0, size=(6, 5, d)).astype(np.float32)
  logit_weights = rng.normal(size=(k,)).astype(np.float32)
  means = rng.normal(0.0, 2.0, size=(k, d)).astype(np.float32)
  log_vars = rng.uniform(-3.0, 2.0, size=(k, d)).astype(np.float32)
  actual = jax.jit(losses.gaussian_mixture_log_prob)(
      x, logit_weights, means, log_vars
  )
  assert actual.shape == (6, 5)
  _assert_close(
      actual, ref.gaussian_mixture_log_prob(x, logit_weights, means, log_vars)
  )


def test_gaussian_mixture_with_one_component_is_diagonal_gaussian():
  rng = np.random.default_rng(5)
  x = rng.normal(size=(8, 3)).astype(np.float32)
  means = rng.normal(size=(1, 3)).astype(np.float32)
  log_vars = rng.normal(size=(1, 3)).astype(np.float32)

  @jax.jit
  def both(x, means, log_vars):
    mixture = losses.gaussian_mixture_log_prob(
        x, jnp.array([3.0]), means, log_vars
    )
    single = losses.gaussian_log_prob(x, means[0], 0.5 * log_vars[0])
    return mixture, single.sum(-1)

  actual, expected = both(x, means, log_vars)
  np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)


def test_gaussian_mixture_far_from_every_component_is_finite():
  x = jnp.full((2, 2), 1e3)
  logit_weights = jnp.array([100.0, -100.0])
  means = jnp.zeros((2, 2))
  log_vars = jnp.array([[-10.0, -10.0], [10.0, 10.0]])
  value = jax.jit(losses.gaussian_mixture_log_prob)(
      x, logit_weights, means, log_vars
  )
  # The broad component wins by a wide margin despite its tiny weight.
  expected = ref.gaussian_mixture_log_prob(x, logit_weights, means, log_vars)
  _assert_close(value, expected, rtol=1e-5)
  _assert_grads_finite(
      losses.gaussian_mixture_log_prob,
      (x, logit_weights, means, log_vars),
      ("x", "logit_weights", "means", "log_vars"),
  )


def test_gaussian_mixture_shape_errors_name_the_argument():
  with pytest.raises(ValueError, match="`x`"):
    losses.gaussian_mixture_log_prob(
        jnp.zeros((4, 2)), jnp.zeros(3), jnp.zeros((3, 5)), jnp.zeros((3, 5))
    )
  with pytest.raises(ValueError, match="`logit_weights`"):
    losses.gaussian_mixture_log_prob(
        jnp.zeros((4, 5)), jnp.zeros(2), jnp.zeros((3, 5)), jnp.zeros((3, 5))
    )
  with pytest.raises(ValueError, match="`log_vars`"):
    losses.gaussian_mixture_log_prob(
        jnp.zeros((4, 5)), jnp.zeros(3), jnp.zeros((3, 5)), jnp.zeros((3, 4))
    )
