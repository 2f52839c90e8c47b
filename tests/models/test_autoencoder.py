"""Autoencoders: the lecture architecture, denoising corruption, errors."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxgen.errors import ConfigError
from jaxgen.models import autoencoder


@pytest.fixture(scope='module')
def mnist_ae():
  net = autoencoder.Net(image_shape=(28, 28, 1), latent_dim=16)
  x = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1))
  params = jax.jit(lambda k: autoencoder.init(k, {'image': x}, net=net))(
      jax.random.key(0))
  return net, params, x


def test_four_convolutions_and_four_transposed(mnist_ae):
  net, params, x = mnist_ae
  assert sorted(params['encoder']) == [f'conv_{i}' for i in range(4)]
  assert sorted(params['decoder']) == (
      [f'deconv_{i}' for i in range(4)] + ['project'])
  code = net.apply({'params': params}, x, method=autoencoder.Net.encode)
  assert code.shape == (3, 16)
  out = net.apply({'params': params}, x)
  assert out.shape == x.shape


def test_loss_is_cross_entropy_of_the_reconstruction(mnist_ae):
  net, params, x = mnist_ae
  loss, metrics = jax.jit(lambda p: autoencoder.loss_fn(
      p, {'image': x}, jax.random.key(1), net=net))(params)
  logits = np.asarray(net.apply({'params': params}, x), np.float64)
  xx = np.asarray(x, np.float64)
  bce = (np.logaddexp(0, logits) - xx * logits).reshape(3, -1).sum(-1)
  np.testing.assert_allclose(metrics['recon_loss'], bce, rtol=1e-5)
  np.testing.assert_allclose(loss, bce.mean(), rtol=1e-5)
  mse = ((1 / (1 + np.exp(-logits)) - xx) ** 2).reshape(3, -1).mean(-1)
  np.testing.assert_allclose(metrics['recon_error'], mse, rtol=1e-4)


@pytest.mark.parametrize('noise,level', [('gaussian', 0.3), ('masking', 0.5)])
def test_denoising_corruption(noise, level):
  x = jnp.full((2, 8, 8, 1), 0.5)
  key = jax.random.key(0)
  y = autoencoder.corrupt(key, x, noise, level)
  assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
  assert not np.allclose(y, x)
  np.testing.assert_array_equal(y, autoencoder.corrupt(key, x, noise, level))
  if noise == 'masking':
    assert abs(float((y == 0).mean()) - level) < 0.2
  np.testing.assert_array_equal(autoencoder.corrupt(key, x, 'none', 0.0), x)


@pytest.mark.parametrize('field,value,match', [
    ('noise', 'salt', 'config.model.noise'),
    ('reconstruction', 'l1', 'config.model.reconstruction'),
    ('noise_level', -1.0, 'config.model.noise_level'),
])
def test_validate_names_the_field(field, value, match):
  c = ml_collections.ConfigDict()
  c.model = dict(noise='none', noise_level=0.0, reconstruction='bernoulli',
                 conv_channels=(1, 1), conv_strides=(1, 1))
  c.data = dict(value_range='unit', dequantize=False)
  c.model[field] = value
  with pytest.raises(ConfigError, match=match):
    autoencoder.validate(c, None)
