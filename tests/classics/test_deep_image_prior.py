"""Deep Image Prior: early fitting denoises, the inpainting loss ignores the
missing pixels, bad input."""

import jax
import numpy as np
import pytest

from jaxgen.classics import deep_image_prior as dip
from jaxgen.errors import ConfigError
from jaxgen.errors import DataError

# A small net and one compiled chunk of 20 steps shared by every test.
SMALL = dict(log_every=20, lr=0.01, channels=(8, 16), input_channels=8)


@pytest.fixture(scope='module')
def images():
  y, x = np.mgrid[:16, :16] / 15
  clean = 0.3 + 0.4 * x * (1 - y) + 0.25 * ((x - .5) ** 2 + (y - .5) ** 2 < .1)
  noise = 0.1 * np.random.default_rng(0).normal(size=clean.shape)
  return (clean.astype(np.float32),
          np.clip(clean + noise, 0, 1).astype(np.float32))


@pytest.fixture(scope='module')
def denoised(images):
  clean, noisy = images
  return dip.fit(jax.random.key(0), noisy, clean=clean, num_steps=40,
                 **SMALL)


def test_early_output_is_closer_to_the_clean_image_than_the_input(
    images, denoised):
  clean, noisy = images
  image, curve = denoised
  assert image.shape == (16, 16) and image.dtype == np.float32
  np.testing.assert_array_equal(curve['step'], [20, 40])
  noisy_psnr = dip.psnr(noisy, clean)
  assert curve['psnr'].max() > noisy_psnr + 2
  np.testing.assert_allclose(curve['psnr'][-1], dip.psnr(image, clean),
                             atol=1e-3)
  np.testing.assert_allclose(curve['fit_psnr'][-1], dip.psnr(image, noisy),
                             atol=1e-3)


def test_inpainting_ignores_the_missing_pixels(images, denoised):
  clean, noisy = images
  mask = np.zeros((16, 16), bool)
  mask[5:11, 4:12] = True
  zeros, ones = noisy.copy(), noisy.copy()
  zeros[mask], ones[mask] = 0.0, 1.0
  a, curve_a = dip.fit(jax.random.key(1), zeros, mask=mask, num_steps=20,
                       **SMALL)
  b, curve_b = dip.fit(jax.random.key(1), ones, mask=mask, num_steps=20,
                       **SMALL)
  np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(curve_a['fit_psnr'], curve_b['fit_psnr'])
  assert 'psnr' not in curve_a
  # Same key, no mask, same image: the denoising run's first chunk differs
  # (the loss sees every pixel).
  c, _ = dip.fit(jax.random.key(1), zeros, num_steps=20, **SMALL)
  assert not np.array_equal(a, c)
  assert np.isclose(curve_a['fit_psnr'][0], dip.psnr(a, zeros, mask),
                    atol=1e-3)


@pytest.mark.parametrize('kwargs, error, field', [
    (dict(corrupted=np.zeros((4, 4, 1, 1))), DataError, 'corrupted'),
    (dict(corrupted=np.full((8, 8), 2.0)), DataError, 'corrupted'),
    (dict(mask=np.zeros((8, 7), bool)), DataError, 'mask'),
    (dict(clean=np.zeros((8, 8, 3))), DataError, 'clean'),
    (dict(num_steps=70), ConfigError, 'num_steps'),
    (dict(lr=0.0), ConfigError, 'lr'),
    (dict(channels=()), ConfigError, 'channels'),
])
def test_bad_input_is_named(kwargs, error, field):
  args = dict(corrupted=np.zeros((8, 8), np.float32), num_steps=100,
              log_every=50)
  args.update(kwargs)
  with pytest.raises(error, match=field):
    dip.fit(jax.random.key(0), **args)
