"""The GSN with a latent state: the state (x, h) is threaded through the
chain (and through walkback's gradient), a chain continues bitwise
from the state it stopped at, and the chain figure keeps its states."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import gsn as gsn_config
from jaxgen.errors import ConfigError
from jaxgen.models import gsn


def _net(**kwargs):
  config = gsn_config.get_config('smoke,latent')
  fields = {k: tuple(v) if isinstance(v, list) else v
            for k, v in config.model.items()}
  fields.update(kwargs)
  return gsn.Net(**fields)


@pytest.fixture(scope='module')
def model():
  net = _net(walkback_steps=3)
  x = jax.random.bernoulli(jax.random.key(0), 0.5,
                           (4,) + tuple(net.image_shape)).astype(jnp.float32)
  params = gsn.init(jax.random.key(1), {'image': x}, net=net)
  h0 = jnp.zeros((4, net.latent_dim))
  key = jax.random.key(2)

  @jax.jit
  def run(params, x, h0):
    whole = gsn.latent_chain(params, key, x, h0, net=net, num_steps=5)
    first = gsn.latent_chain(params, key, x, h0, net=net, num_steps=3)
    rest = gsn.latent_chain(params, key, first[0], first[1], net=net,
                            num_steps=2, first_step=4)
    other_h = gsn.latent_chain(params, key, x, h0 + 1.0, net=net,
                               num_steps=1)
    same_h = gsn.latent_chain(params, key, x, h0, net=net, num_steps=1)
    grads = jax.grad(lambda p: gsn.walkback_terms(p, x, key, net=net).sum())(
        params)
    images = gsn.sample(params, jax.random.key(3), 2, net=net)
    return whole, first, rest, other_h, same_h, grads, images

  return types.SimpleNamespace(net=net, x=x, params=params, h0=h0,
                               out=jax.device_get(run(params, x, h0)))


def test_a_chain_continues_bitwise_from_its_state(model):
  whole, first, rest, _, _, _, _ = model.out
  for got, want in zip(rest, whole):
    np.testing.assert_array_equal(got, want)
  assert not np.array_equal(first[1], whole[1])  # h moved after step 3
  assert np.abs(whole[1]).max() > 0


def test_the_latent_state_is_threaded(model):
  _, _, _, other_h, same_h, grads, _ = model.out
  # The next h (and the distribution of x) depends on the previous h.
  assert np.abs(other_h[1] - same_h[1]).max() > 1e-3
  assert np.abs(other_h[2] - same_h[2]).max() > 1e-4
  # Walkback from h_0 = 0: only steps 2..K see V h, so V's gradient comes
  # through the unrolled latent states.
  assert np.abs(grads['recur']['kernel']).max() > 0
  assert np.all(np.isfinite(grads['decode']['dense_0']['kernel']))


def test_samples_run_the_latent_chain(model):
  images = model.out[-1]
  assert images.shape == (2,) + tuple(model.net.image_shape)
  assert images.dtype == jnp.uint8
  with pytest.raises(ValueError, match='latent_chain'):
    gsn.chain(model.params, jax.random.key(3), model.x, net=model.net,
              num_steps=1)


@pytest.mark.parametrize('field,value', [('latent_dim', -1),
                                         ('latent_noise', -0.5)])
def test_bad_latent_fields_name_the_field(field, value):
  config = gsn_config.get_config('smoke,latent')
  config.unlock()
  config.model[field] = value
  dataset = types.SimpleNamespace(image_shape=(8, 8, 1), pixel_levels=256,
                                  name='digits')
  with pytest.raises(ConfigError, match=f'config.model.{field}'):
    gsn.validate(config, dataset)


def test_the_chain_figure_keeps_every_nth_mean_of_one_chain(model):
  # gsn.chain_figure (experiments.chains) runs the latent chain in blocks
  # of `every` steps: its kept columns are the means of one continued chain.
  key, net = jax.random.key(4), model.net

  @jax.jit
  def run(params, x, h0):
    trace = gsn._chain_trace  # pylint: disable=protected-access
    kept = trace(params, x, key, net=net, num_steps=4, every=2)
    whole = gsn.latent_chain(params, key, x, h0, net=net, num_steps=4)
    return kept, gsn.to_uint8(x, net=net), gsn.to_uint8(whole[2], net=net)

  kept, start, last = run(model.params, model.x, model.h0)
  assert len(kept) == 3 and kept[0].dtype == jnp.uint8
  np.testing.assert_array_equal(kept[0], start)
  np.testing.assert_array_equal(kept[-1], last)
  assert not np.array_equal(kept[1], kept[2])
