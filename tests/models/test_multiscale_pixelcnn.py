"""Multi-scale PixelCNN: stage 2 causal off the grid (Jacobian), the exact
NLL as the two stages' sum against float64 NumPy, sampling and
super-resolution keeping x_s, the factor check.

Training through the shared trainer: tests/models/test_families.py
(``test_family_trains_with_its_smoke_config[multiscale_pixelcnn]``).
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from experiments.configs import multiscale_pixelcnn as ms_config
from jaxgen.errors import ConfigError
from jaxgen.models import multiscale_pixelcnn as ms
from tests.models.test_pixelcnn import numpy_nll

# 6x6 images, x_s 3x3: grid pixels in rows 0, 2, 4 and columns 0, 2, 4.
NET = ms.Net(image_shape=(6, 6, 1), factor=2, features=8, num_layers=2,
             low_features=4, low_layers=1, input_kernel=3, kernel_size=3,
             output_features=(8,), cond_features=4)
GRID = np.asarray(ms.grid_mask(NET.image_shape, NET.factor)).reshape(-1)


@pytest.fixture(scope='module')
def params():
  """Every parameter redrawn from N(0, 0.5^2), so no path is zero."""
  shapes = jax.eval_shape(lambda: ms.init(
      jax.random.key(0), {'image': jnp.zeros((1,) + NET.image_shape)},
      net=NET))
  rng = np.random.default_rng(1)
  return jax.tree.map(
      lambda s: jnp.asarray(0.5 * rng.normal(size=s.shape), jnp.float32),
      shapes)


@pytest.fixture(scope='module')
def images():
  return jax.random.bernoulli(jax.random.key(2), 0.5,
                              (3,) + NET.image_shape).astype(jnp.float32)


def test_stage_two_is_causal_off_the_grid(params, images):
  """Stage 2's logits at pixel p depend on no pixel off the grid at or after
  p (in raster order), and do depend on later grid pixels (x_s)."""
  fn = lambda v: NET.apply({'params': params}, v[None])[1][0]
  jac = jax.jit(jax.jacfwd(fn))(images[0])
  d = images[0].size
  dep = np.abs(np.asarray(jac, np.float64)).reshape(d, d)  # [out, in]
  later = np.triu(np.ones((d, d), bool))  # in >= out
  bad = np.argwhere((dep != 0) & later & ~GRID[None, :] & ~GRID[:, None])
  assert not bad.size, f'non-causal (out, in) pairs: {bad[:5]}'
  # x_s reaches forward: (0, 1) sees the grid pixel (0, 2), (1, 1) sees
  # (2, 2), through the 3x3 convolution of the upsampled x_s.
  assert dep[1, 2] > 0 and dep[7, 14] > 0
  assert (dep[~GRID][:, GRID] > 0).any(1).all()  # every pixel reads x_s


def test_nll_is_the_sum_of_the_two_stages(params, images):
  """-log p(x) = -log p_1(x_s) - sum over pixels off the grid of
  log p_2(x_i | x_<i, x_s): float64 NumPy from the logits; grid pixels have
  weight 0 (their stage-2 terms would change the sum)."""
  batch = {'image': images, 'mask': jnp.array([True, True, False])}

  @jax.jit
  def run(p, b):
    return (ms.loss_fn(p, b, None, net=NET),
            NET.apply({'params': p}, b['image']),
            ms.log_likelihood(p, b, None, net=NET))

  (loss, metrics), (low_logits, high_logits), log_lik = run(params, batch)
  x = np.asarray(images)
  ref_low = numpy_nll('bernoulli', low_logits, x[:, ::2, ::2])
  off = ~GRID.reshape(1, 6, 6, 1)
  ref_high = numpy_nll('bernoulli', np.asarray(high_logits) * off, x * off)
  ref_high -= 9 * np.log(2.0)  # the 9 grid terms at logit 0 (x = 0)
  every = numpy_nll('bernoulli', high_logits, x)
  assert not np.allclose(every, ref_high, rtol=1e-4)
  np.testing.assert_allclose(metrics['nll_low'], ref_low, rtol=1e-5)
  np.testing.assert_allclose(metrics['nll_high'], ref_high, rtol=1e-5)
  np.testing.assert_allclose(metrics['nll'], ref_low + ref_high, rtol=1e-5)
  np.testing.assert_allclose(loss, (ref_low + ref_high)[:2].mean(),
                             rtol=1e-5)
  np.testing.assert_allclose(
      metrics['bits_per_dim'], (ref_low + ref_high) / (36 * np.log(2)),
      rtol=1e-5)
  np.testing.assert_allclose(log_lik, -metrics['nll'], rtol=1e-6)


@pytest.fixture(scope='module')
def samples(params):
  return np.asarray(ms.sample(params, jax.random.key(3), 4, net=NET))


def test_samples_and_super_resolution_keep_the_grid(params, samples):
  assert samples.shape == (4, 6, 6, 1) and samples.dtype == np.uint8
  assert set(np.unique(samples)) <= {0, 255}
  x_s = samples[:, ::2, ::2]
  out = [np.asarray(ms.super_resolve(params, x_s, jax.random.key(k),
                                     net=NET)) for k in (4, 5)]
  for o in out:
    np.testing.assert_array_equal(o[:, ::2, ::2], x_s)
  assert (out[0] != out[1]).any()  # other keys, other pixels off the grid
  naive = ms.super_resolve(params, x_s, jax.random.key(4), net=NET,
                           method='naive')
  np.testing.assert_array_equal(naive, out[0])  # the same sampler, two ways


def test_super_resolve_checks_the_subsampled_shape(params, samples):
  with pytest.raises(ConfigError, match=r'x_s must be uint8 \[B, 3, 3, 1\]'):
    ms.super_resolve(params, samples, jax.random.key(0), net=NET)


def test_a_factor_that_does_not_divide_the_image_is_refused():
  dataset = ml_collections.ConfigDict(dict(num_classes=10, name='digits',
                                           pixel_levels=256))
  config = ms_config.get_config('smoke')  # 8x8 digits
  ms.validate(config, dataset)
  config.model.factor = 3
  with pytest.raises(ConfigError, match=r'config.model.factor=3 must divide'):
    ms.validate(config, dataset)
  with pytest.raises(ConfigError, match=r'config.model.factor=1 must be'):
    ms.check_factor((8, 8, 1), 1)
