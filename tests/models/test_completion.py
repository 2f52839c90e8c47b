"""Completion of a known raster prefix (PixelCNN, Gated PixelCNN): the
prefix kept, the rest drawn from the exact conditionals (enumerated on a
2x2 binary image), and the conditional log-likelihood normalised.

PixelCNN++'s `complete`: tests/models/test_pixelcnnpp.py.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.errors import ConfigError
from jaxgen.models import ar_sampling as ars
from jaxgen.models import gated_pixelcnn as gated
from jaxgen.models import pixelcnn

NETS = {
    'pixelcnn': (pixelcnn, pixelcnn.Net(
        image_shape=(2, 2, 1), likelihood='bernoulli', features=4,
        num_blocks=1, input_kernel=3, block_kernel=3, output_features=(4,))),
    'gated_pixelcnn': (gated, gated.Net(
        image_shape=(2, 2, 1), likelihood='bernoulli', features=4,
        num_layers=2, input_kernel=3, kernel_size=3, output_features=(4,))),
}
NUM = 4000  # completions of one image, one sampler call


def numpy_params(module, net, seed):
  """Every parameter drawn from N(0, 1) (no compile)."""
  batch = {'image': jnp.zeros((1, 2, 2, 1)), 'label': jnp.zeros((1,), int)}
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), batch,
                                              net=net))
  rng = np.random.default_rng(seed)
  return jax.tree.map(
      lambda s: jnp.asarray(rng.normal(size=s.shape), jnp.float32), shapes)


@pytest.fixture(scope='module', params=sorted(NETS))
def completions(request):
  """(module, net, params, the image, completions under two keys)."""
  module, net = NETS[request.param]
  params = numpy_params(module, net, seed=3)
  x = np.zeros((NUM, 2, 2, 1), np.uint8)
  x[:, 0, 0] = 255  # the known prefix: pixel (0, 0) = 1
  x[:, 1, 1] = 255  # not known: must not be read
  out = [np.asarray(module.complete(params, x, 1, jax.random.key(k),
                                    net=net)) for k in (0, 1)]
  return module, net, params, x, out


def test_the_prefix_is_kept_and_keys_give_other_completions(completions):
  _, _, _, x, (first, second) = completions
  assert first.dtype == np.uint8 and first.shape == x.shape
  np.testing.assert_array_equal(first[:, 0, 0], x[:, 0, 0])
  np.testing.assert_array_equal(second[:, 0, 0], x[:, 0, 0])
  assert set(np.unique(first)) == {0, 255}
  assert (first != second).any()


def test_completions_follow_the_exact_conditional(completions):
  """The 8 completions of pixels 1..3 given pixel 0: their probabilities
  from `conditional_log_likelihood` sum to 1, and their frequencies over
  NUM draws match them (within 4.5 standard errors)."""
  module, net, params, _, (first, _) = completions
  rest = np.array(list(itertools.product([0, 1], repeat=3)))  # [8, 3]
  images = np.concatenate([np.ones((8, 1)), rest], 1).reshape(8, 2, 2, 1)
  batch = {'image': jnp.asarray(images, jnp.float32),
           'label': jnp.zeros((8,), int)}

  @jax.jit
  def run(params, batch):
    cond = [module.conditional_log_likelihood(params, batch, k, net=net)
            for k in (1, 0, 4)]
    return cond, module.log_likelihood(params, batch, None, net=net)

  (log_p, none_known, all_known), log_lik = run(params, batch)
  p = np.exp(np.asarray(log_p, np.float64))
  np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-5)
  # Prefix 0 and H * W: log p(x) and 0.
  np.testing.assert_allclose(none_known, log_lik, rtol=1e-6)
  np.testing.assert_array_equal(all_known, 0.0)
  drawn = (first.reshape(NUM, 4)[:, 1:] // 255) @ np.array([4, 2, 1])
  freq = np.bincount(drawn, minlength=8) / NUM
  tolerance = 4.5 * np.sqrt(p * (1 - p) / NUM) + 1e-3
  assert (np.abs(freq - p) <= tolerance).all(), (freq, p)
  assert p.max() < 0.9  # the check is not about one near-certain outcome


def test_num_known_out_of_range_is_refused():
  with pytest.raises(ConfigError, match=r'num_known=5 must be an int in '
                     r'\[0, 4\]'):
    ars.raster_prefix_mask((2, 2, 1), 5)
  np.testing.assert_array_equal(ars.raster_prefix_mask((2, 3, 1), 4),
                                [[True, True, True], [True, False, False]])
