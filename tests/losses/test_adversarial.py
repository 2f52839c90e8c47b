"""jaxgen.losses.adversarial against float64 NumPy, at extremes, and at optima."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxgen import losses


def f64(a):
  return np.asarray(a, np.float64)


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-f64(x)))


def _close(actual, expected, rtol=1e-5, atol=1e-5):
  actual = np.asarray(actual, np.float64)
  assert np.all(np.isfinite(actual))
  np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


@pytest.fixture(scope='module')
def logits():
  rng = np.random.default_rng(0)
  real = rng.uniform(-8, 8, (64,)).astype(np.float32)
  fake = rng.uniform(-8, 8, (64,)).astype(np.float32)
  return real, fake


def test_gan_losses_match_probability_forms(logits):
  real, fake = logits
  d_real, d_fake = _sigmoid(real), _sigmoid(fake)
  _close(jax.jit(losses.gan_discriminator_loss)(real, fake),
         -np.log(d_real) - np.log1p(-d_fake))
  _close(jax.jit(losses.gan_generator_loss_minimax)(fake), np.log1p(-d_fake))
  _close(jax.jit(losses.gan_generator_loss_nonsaturating)(fake),
         -np.log(d_fake))
  # Broadcasting: one fake logit against a batch of real ones.
  _close(losses.gan_discriminator_loss(real, fake[0]),
         -np.log(d_real) - np.log1p(-d_fake[0]))


def test_wasserstein_least_squares_and_began_values(logits):
  real, fake = logits
  _close(jax.jit(losses.wasserstein_critic_loss)(real, fake),
         f64(fake) - f64(real))
  _close(losses.wasserstein_generator_loss(fake), -f64(fake))
  _close(jax.jit(losses.least_squares_discriminator_loss)(real, fake),
         0.5 * (f64(real) - 1) ** 2 + 0.5 * f64(fake) ** 2)
  _close(losses.least_squares_discriminator_loss(real, fake, 0.5, -0.5),
         0.5 * (f64(real) - 0.5) ** 2 + 0.5 * (f64(fake) + 0.5) ** 2)
  _close(losses.least_squares_generator_loss(fake),
         0.5 * (f64(fake) - 1) ** 2)

  rng = np.random.default_rng(1)
  x = rng.normal(size=(5, 4, 4, 2)).astype(np.float32)
  rec = rng.normal(size=(5, 4, 4, 2)).astype(np.float32)
  l1 = np.abs(f64(x) - f64(rec)).reshape(5, -1).mean(-1)
  _close(jax.jit(losses.autoencoder_l1_loss)(x, rec), l1)
  lr, lf = l1, l1[::-1] * 0.7
  _close(losses.began_discriminator_loss(lr, lf, 0.3), lr - 0.3 * lf)
  _close(losses.began_generator_loss(lf), lf)
  _close(losses.began_convergence(lr, lf, 0.5), lr + np.abs(0.5 * lr - lf))
  # k_t + lambda (gamma L(x) - L(G(z))), clipped to [0, 1] at both ends.
  for k, real_mean, fake_mean, expected in (
      (0.2, 2.0, 0.4, 0.2 + 0.01 * (0.5 * 2.0 - 0.4)),
      (0.999, 2.0, 0.4, 1.0),
      (0.0005, 0.1, 0.2, 0.0)):
    _close(losses.began_balance_update(k, real_mean, fake_mean, 0.5, 0.01),
           expected, atol=1e-7)
  # k is a constant for the discriminator's gradient.
  g = jax.grad(lambda k: losses.began_discriminator_loss(1.0, 2.0, k))(0.5)
  assert g == 0.0


def test_losses_and_gradients_finite_at_saturated_logits():
  big = jnp.array([100.0, -100.0, 100.0, -100.0])
  other = jnp.array([100.0, 100.0, -100.0, -100.0])
  fns = {
      'gan_discriminator_loss': lambda r, f: losses.gan_discriminator_loss(
          r, f),
      'minimax': lambda r, f: losses.gan_generator_loss_minimax(f),
      'nonsaturating': lambda r, f: losses.gan_generator_loss_nonsaturating(f),
      'wasserstein': losses.wasserstein_critic_loss,
      'least_squares': losses.least_squares_discriminator_loss,
  }
  for name, fn in fns.items():
    value = jax.jit(fn)(big, other)
    grads = jax.jit(jax.grad(lambda r, f: fn(r, f).sum(), (0, 1)))(big, other)
    assert np.all(np.isfinite(value)), name
    for g in grads:
      assert np.all(np.isfinite(g)), name
  # The right values: -log D(x) ~ 100 when D rejects a real example.
  np.testing.assert_allclose(
      losses.gan_discriminator_loss(big, other), [100.0, 200.0, 0.0, 100.0],
      atol=1e-6)
  np.testing.assert_allclose(
      losses.gan_generator_loss_nonsaturating(big), [0.0, 100.0, 0.0, 100.0],
      atol=1e-6)
  # Minimax saturates: its gradient vanishes where D rejects the sample;
  # the non-saturating one keeps a unit gradient there.
  g_mm = jax.grad(lambda f: losses.gan_generator_loss_minimax(f).sum())(big)
  g_ns = jax.grad(
      lambda f: losses.gan_generator_loss_nonsaturating(f).sum())(big)
  np.testing.assert_allclose(g_mm, [-1.0, 0.0, -1.0, 0.0], atol=1e-6)
  np.testing.assert_allclose(g_ns, [0.0, -1.0, 0.0, -1.0], atol=1e-6)


def test_discriminator_optimum_on_a_1d_example():
  """For fixed densities the loss is minimised by p_data / (p_data + p_g).

  D is a free logit per point of a 1-D grid, trained by gradient descent on
  the expected loss E_data softplus(-l) + E_g softplus(l) (quadrature over
  the grid). At the optimum the expected GAN value is -log 4 + 2 JSD
  (Goodfellow et al. 2014, Thm. 1), so the loss is log 4 - 2 JSD.
  """
  x = np.linspace(-4.0, 5.0, 181)
  dx = x[1] - x[0]
  p_data = stats.norm.pdf(x, 0.0, 1.0)
  p_g = 0.6 * stats.norm.pdf(x, 1.5, 0.7) + 0.4 * stats.norm.pdf(x, -1, 1.2)
  pd, pg = jnp.asarray(p_data * dx, jnp.float32), jnp.asarray(p_g * dx,
                                                               jnp.float32)

  def expected_loss(l):
    # Real examples only enter through -log D, fake ones through
    # -log(1 - D): pair each with a logit whose term is exactly 0.
    return ((pd * losses.gan_discriminator_loss(l, -1e4)).sum()
            + (pg * losses.gan_discriminator_loss(1e4, l)).sum())

  @jax.jit
  def fit(l):
    # Each logit's curvature is (pd + pg) s (1 - s): precondition by it.
    def body(l, _):
      g = jax.grad(expected_loss)(l)
      s = jax.nn.sigmoid(l)
      return l - g / ((pd + pg) * s * (1 - s)), None
    return jax.lax.scan(body, l, None, length=50)[0]

  logits = fit(jnp.zeros_like(pd))
  d_star = p_data / (p_data + p_g)
  np.testing.assert_allclose(np.asarray(jax.nn.sigmoid(logits)), d_star,
                             atol=1e-4)
  m = 0.5 * (p_data + p_g)
  jsd = 0.5 * np.sum(dx * p_data * np.log(p_data / m)) + 0.5 * np.sum(
      dx * p_g * np.log(p_g / m))
  mass = 0.5 * (p_data.sum() + p_g.sum()) * dx  # quadrature of the unit mass
  np.testing.assert_allclose(float(expected_loss(logits)),
                             mass * np.log(4.0) - 2 * jsd, rtol=1e-4)


def test_safe_norm_value_and_gradient():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(3, 7)).astype(np.float32)
  _close(losses.safe_norm(x, axis=-1), np.linalg.norm(f64(x), axis=-1))
  g = jax.grad(lambda v: losses.safe_norm(v))(x[0])
  _close(g, f64(x[0]) / np.linalg.norm(f64(x[0])))
  zero = jnp.zeros(5)
  assert float(losses.safe_norm(zero)) == 0.0
  np.testing.assert_array_equal(jax.grad(losses.safe_norm)(zero), 0.0)
  # The plain form is NaN there: the case the safe norm exists for.
  assert np.isnan(jax.grad(jnp.linalg.norm)(zero)).all()


def test_gradient_penalty_matches_float64_reference():
  rng = np.random.default_rng(3)
  b, d, h = 6, 5, 4
  w = rng.normal(size=(d, h)).astype(np.float32)
  v = rng.normal(size=(h,)).astype(np.float32)
  real = rng.normal(size=(b, d)).astype(np.float32)
  fake = rng.normal(size=(b, d)).astype(np.float32)
  key = jax.random.key(0)

  def critic(x):
    return jnp.tanh(x @ w) @ v

  gp = jax.jit(lambda r, f: losses.gradient_penalty(critic, r, f, key))(
      real, fake)
  x_hat = np.asarray(losses.interpolates(key, real, fake), np.float64)
  # The weights e are per example, in [0, 1], shared by all coordinates.
  e = (x_hat - f64(fake)) / (f64(real) - f64(fake))
  assert np.all((e >= -1e-5) & (e <= 1 + 1e-5))
  np.testing.assert_allclose(e, e[:, :1].repeat(d, 1), atol=1e-4)
  # f(x) = v . tanh(W^T x): grad = W (v * (1 - tanh^2)).
  t = np.tanh(x_hat @ f64(w))
  grads = (f64(v) * (1 - t ** 2)) @ f64(w).T
  expected = (np.linalg.norm(grads, axis=-1) - 1.0) ** 2
  _close(gp, expected, rtol=1e-4)
  _close(losses.gradient_penalty_from_gradients(grads.reshape(b, 1, d)),
         expected, rtol=1e-5)


def test_gradient_penalty_gradient_finite_when_input_gradient_is_zero():
  """A critic flat at the interpolates: the penalty's parameter-gradient is 0."""
  x = jnp.zeros((4, 3))

  def penalty(theta, norm):
    def critic(v):
      return theta * jnp.sum(v ** 2, axis=-1)  # grad_x = 2 theta x = 0 at 0
    grads = jax.grad(lambda v: critic(v).sum())(x)
    return jnp.mean(jnp.square(norm(grads) - 1.0))

  safe = lambda g: losses.safe_norm(g, axis=-1)
  value, grad = jax.jit(jax.value_and_grad(lambda t: penalty(t, safe)))(2.0)
  assert float(value) == 1.0
  assert np.isfinite(grad) and float(grad) == 0.0
  # And through the library's gradient_penalty with a zero-gradient critic.
  g = jax.jit(jax.grad(lambda t: losses.gradient_penalty(
      lambda v: t * jnp.sum(v ** 2, axis=-1), x, x, jax.random.key(1)).mean()))(
          2.0)
  assert np.isfinite(g) and float(g) == 0.0
  # The naive norm gives NaN: the test can fail.
  naive = lambda g: jnp.sqrt(jnp.sum(g ** 2, axis=-1))
  assert np.isnan(jax.grad(lambda t: penalty(t, naive))(2.0))
