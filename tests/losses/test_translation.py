"""jaxgen.losses.translation against float64 NumPy, under jit."""

import jax
import numpy as np
import pytest

from jaxgen import losses


def f64(a):
  return np.asarray(a, np.float64)


def _close(actual, expected, rtol=1e-5, atol=1e-5):
  actual = np.asarray(actual, np.float64)
  assert actual.shape == np.shape(expected)
  assert np.all(np.isfinite(actual))
  np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


@pytest.fixture(scope='module')
def arrays():
  rng = np.random.default_rng(0)
  f32 = lambda *s, lo=-1, hi=1: rng.uniform(lo, hi, s).astype(np.float32)
  return dict(real=f32(3, 4, 5, lo=-30, hi=30), fake=f32(3, 4, 5, lo=-30,
                                                          hi=30),
              x=f32(3, 6, 6, 2), y=f32(3, 6, 6, 2), u=f32(3, 6, 6, 2),
              v=f32(3, 6, 6, 2))


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-f64(x)))


def test_patch_discriminator_loss_is_half_the_cross_entropy_per_patch(arrays):
  real, fake = arrays['real'], arrays['fake']
  out = jax.jit(losses.patch_discriminator_loss)(real, fake)
  # -log D - log(1 - D) from probabilities, with log1p(exp) for the tails.
  expected = 0.5 * (np.logaddexp(0, -f64(real)) + np.logaddexp(0, f64(fake)))
  _close(out, expected)
  moderate = np.clip(real, -5, 5), np.clip(fake, -5, 5)
  _close(losses.patch_discriminator_loss(*moderate),
         0.5 * (-np.log(_sigmoid(moderate[0]))
                - np.log(1 - _sigmoid(moderate[1]))))
  with pytest.raises(ValueError, match=r'\[B, h, w\]'):
    losses.patch_discriminator_loss(real[:, 0], fake[:, 0])


def test_pix2pix_generator_loss_is_eq_4(arrays):
  fake, x, y = arrays['fake'], arrays['x'], arrays['y']
  out = jax.jit(losses.pix2pix_generator_loss, static_argnums=3)(
      fake, x, y, 100.0)
  adversarial = np.logaddexp(0, -f64(fake)).mean((1, 2))
  l1 = np.abs(f64(x) - f64(y)).mean((1, 2, 3))
  _close(out, adversarial + 100.0 * l1, rtol=1e-5)
  _close(losses.l1_per_example(x, y), l1)
  # lambda = 0 leaves the adversarial term alone; L1 = 0 at the target.
  _close(losses.pix2pix_generator_loss(fake, x, y, 0.0), adversarial)
  _close(losses.pix2pix_generator_loss(fake, y, y), adversarial)


def test_psnr_in_decibels(arrays):
  x, y = arrays['x'], arrays['y']
  mse = np.square(f64(x) - f64(y)).mean((1, 2, 3))
  _close(jax.jit(losses.psnr)(x, y, 2.0), 10 * np.log10(4.0 / mse),
         rtol=1e-5)
  _close(losses.psnr(x / 2, y / 2), 10 * np.log10(4.0 / mse), rtol=1e-5)
  _close(losses.psnr(x, x), np.full(3, 100.0))  # floored mse


def test_cycle_and_identity_losses_are_l1_means(arrays):
  a, b, ca, cb = arrays['x'], arrays['y'], arrays['u'], arrays['v']
  l1 = lambda p, q: np.abs(f64(p) - f64(q)).mean((1, 2, 3))
  _close(jax.jit(losses.cycle_consistency_loss)(a, ca, b, cb),
         l1(ca, a) + l1(cb, b))
  _close(jax.jit(losses.identity_loss)(a, ca, b, cb), l1(ca, a) + l1(cb, b))
  # Perfect cycles cost nothing.
  _close(losses.cycle_consistency_loss(a, a, b, b), np.zeros(3))


def test_cyclegan_generator_loss_is_eq_3_least_squares(arrays):
  fb, fa = arrays['real'] / 10, arrays['fake'] / 10
  cycle = np.array([0.1, 0.2, 0.3], np.float32)
  identity = np.array([0.5, 0.0, 1.0], np.float32)
  out = jax.jit(losses.cyclegan_generator_loss, static_argnums=(4, 5))(
      fb, fa, cycle, identity, 10.0, 5.0)
  adv = (0.5 * np.square(f64(fb) - 1).mean((1, 2))
         + 0.5 * np.square(f64(fa) - 1).mean((1, 2)))
  _close(out, adv + 10.0 * f64(cycle) + 5.0 * f64(identity), rtol=1e-5)
