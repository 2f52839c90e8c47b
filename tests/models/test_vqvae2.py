"""Two-level VQ-VAE: code map shapes, decode paths, straight-through, step."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxgen import steps
from jaxgen.models import pixels
from jaxgen.models import vqvae2
from jaxgen.nn import quantizers


def _net(**overrides):
  fields = dict(image_shape=(8, 8, 1), hidden_channels=8, res_channels=4,
                num_res_blocks=1, bottom_downsamples=1, top_downsamples=1,
                code_dim=4, num_codes=8, quantizer='ema')
  fields.update(overrides)
  return vqvae2.Net(**fields)


@pytest.fixture(scope='module')
def model():
  net = _net()
  x = jax.random.bernoulli(jax.random.key(0), 0.4, (4, 8, 8, 1))
  batch = {'image': x.astype(jnp.float32), 'label': jnp.zeros(4, jnp.int32),
           'mask': jnp.ones(4, bool)}
  variables = jax.jit(lambda k, b: vqvae2.init(k, b, net=net))(
      jax.random.key(1), batch)
  return net, variables, batch


@pytest.mark.parametrize('shape,bottom,want', [
    ((28, 28, 1), 2, ((4, 4), (7, 7))),
    ((8, 8, 1), 1, ((2, 2), (4, 4))),
    ((32, 32, 3), 2, ((4, 4), (8, 8))),
])
def test_code_map_shapes(shape, bottom, want):
  net = _net(image_shape=shape, bottom_downsamples=bottom)
  batch = {'image': jnp.zeros((2,) + shape)}
  variables = jax.eval_shape(lambda: vqvae2.init(jax.random.key(0), batch,
                                                 net=net))
  codes = jax.eval_shape(lambda v: vqvae2.encode_codes(v, batch, net=net),
                         variables)
  assert tuple(c.shape[1:] for c in codes) == want
  assert vqvae2.code_shapes(net) == want
  images = jax.eval_shape(
      lambda v: vqvae2.sample(v, jax.random.key(0), 3, net=net), variables)
  assert images.shape == (3,) + shape and images.dtype == jnp.uint8


def test_decode_codes_equals_the_forward_decoder(model):
  net, variables, batch = model

  @jax.jit
  def run(variables):
    out = net.apply(variables, batch['image'])
    codes = vqvae2.encode_codes(variables, batch, net=net)
    return out['decoder'], vqvae2.decode_codes(variables, codes, net=net)

  forward, decoded = run(variables)
  np.testing.assert_allclose(decoded['logits'], forward['logits'], rtol=1e-5,
                             atol=1e-5)


def test_straight_through_reaches_both_encoders(model):
  net, variables, batch = model

  @jax.jit
  def recon_grads(params):
    def recon(params):
      out = net.apply({**variables, 'params': params}, batch['image'])
      return -pixels.log_prob(net.likelihood, out['decoder'],
                              batch['image']).sum()
    return jax.grad(recon)(params)

  grads = recon_grads(variables['params'])
  # encoder_top is reached by the reconstruction only through the top
  # quantizer's straight-through estimator (no latent loss is included).
  for name in ('encoder_top', 'encoder_bottom', 'pre_bottom'):
    norm = optax.tree.norm(grads[name])
    assert float(norm) > 0, name


def test_train_step_updates_both_codebooks(model):
  net, variables, batch = model
  tx = steps.params_optimizer(optax.adam(1e-3))
  config = ml_collections.ConfigDict({'train': {'ema_decay': 0.0}})
  step = jax.jit(vqvae2.make_train_step(net=net, tx=tx,
                                        preprocess=lambda b, k: b,
                                        config=config))
  state = steps.TrainState(step=jnp.zeros((), jnp.int32), params=variables,
                           opt_state=tx.init(variables))
  new, metrics = step(state, batch, jax.random.key(2))
  for level in vqvae2.LEVELS:
    before = variables[quantizers.STATE][level]['codebook']
    after = new.params[quantizers.STATE][level]['codebook']
    assert bool(jnp.any(before != after)), level
  for name in ('perplexity_top', 'perplexity_bottom', 'codes_used_top',
               'restarts_bottom', 'quantization_error_top', 'nll'):
    assert np.isfinite(float(metrics[name])), name
  # Uniform bound: (2*2 + 4*4) code positions of K = 8.
  np.testing.assert_allclose(
      float(metrics['nll'] - metrics['recon_nll']), 20 * np.log(8), rtol=1e-5)
