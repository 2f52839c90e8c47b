"""jaxgen.nn.adversarial: the BEGAN decoder against its plain formulation."""

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.errors import ConfigError
from jaxgen.nn import adversarial as adv


def _began_decoder_reference(p, h, image_shape, channels, num_scales, repeat):
  """Dense, then per block: nearest 2x upsampling (blocks after the first),
  `repeat` 'SAME' 3x3 convolutions with ELU; a linear 3x3 output conv."""
  def conv(x, q):
    return lax.conv_general_dilated(
        x, q['kernel'], (1, 1), 'SAME',
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
        precision=lax.Precision.HIGHEST) + q['bias']
  h0, w0 = image_shape[0] >> num_scales, image_shape[1] >> num_scales
  x = h @ p['project']['kernel'] + p['project']['bias']
  x = x.reshape(h.shape[0], h0, w0, channels)
  for s in range(num_scales + 1):
    if s:
      x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    for r in range(repeat):
      x = jax.nn.elu(conv(x, p[f'conv_{s}_{r}']))
  return conv(x, p['to_image'])


@pytest.mark.parametrize('repeat', [1, 2])
def test_began_decoder_equals_upsample_then_convolve(repeat):
  """The first conv after each upsampling runs on the coarse grid
  (`unet.UpsampleConv`): same parameters and values as upsampling first."""
  net = adv.BEGANDecoder((8, 8, 2), channels=4, num_scales=2, repeat=repeat)
  h = jax.random.normal(jax.random.key(0), (3, 5))
  params = net.init(jax.random.key(1), h)['params']
  params = jax.tree.map(lambda a: a + 0.05, params)  # non-zero biases
  got = net.apply({'params': params}, h)
  want = _began_decoder_reference(params, h, (8, 8, 2), 4, 2, repeat)
  assert got.shape == (3, 8, 8, 2)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_began_decoder_rejects_blocks_without_convolutions():
  with pytest.raises(ConfigError, match='repeat'):
    adv.BEGANDecoder((8, 8, 1), channels=4, num_scales=1, repeat=0).init(
        jax.random.key(0), jnp.zeros((1, 3)))
