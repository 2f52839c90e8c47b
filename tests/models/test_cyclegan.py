"""CycleGAN: cycle/identity wiring, the image history buffer, the step."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import cyclegan as cyclegan_config
from jaxgen import losses
from jaxgen import train
from jaxgen.data import paired
from jaxgen.errors import ConfigError
from jaxgen.models import cyclegan
from tests import helpers


class _Identity(nn.Module):
  """A 'generator' that returns its input (one unused weight)."""

  @nn.compact
  def __call__(self, x):
    self.param('unused', nn.initializers.zeros, ())
    return x


def test_identity_generators_have_zero_cycle_and_identity_loss(monkeypatch):
  monkeypatch.setattr(cyclegan, 'generator_module',
                      lambda net, **kw: _Identity(**kw))
  net = cyclegan.Net(image_shape=(8, 8, 1), d_channels=(4,), d_strides=(1,),
                     d_kernel=3, history_size=0, bank_size=2)
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.uniform(-1, 1, (6, 8, 8, 1)), jnp.float32)
  batch = {'image': images, 'mask': jnp.ones(6, bool)}
  params = cyclegan.init(jax.random.key(0), batch, net=net)
  _, m = jax.jit(lambda p, b: cyclegan.loss_fn(p, b, jax.random.key(1),
                                               net=net))(params, batch)
  np.testing.assert_array_equal(m['cycle'], np.zeros(6))
  np.testing.assert_array_equal(m['identity'], np.zeros(6))
  # F = identity leaves the dilation in place: l1 is |dilate(x) - x|.
  a = np.asarray(images, np.float64)
  thick = np.asarray(paired.dilate(images), np.float64)
  np.testing.assert_allclose(m['l1'], np.abs(thick - a).mean((1, 2, 3)) / 2,
                             rtol=1e-6)
  np.testing.assert_array_equal(m['l1_ab'], m['l1'])
  # The rows' objectives sum to the pairs' eq. 3 (here adversarial only).
  d = params['discriminator']['params']
  patches = lambda name, v: cyclegan.discriminator_module(net).apply(
      {'params': d[name]}, None, v)
  thin, thick3 = images[:3], paired.dilate(images[3:])
  pairs = losses.cyclegan_generator_loss(
      patches('d_b', thin), patches('d_a', thick3), np.zeros(3), np.zeros(3))
  np.testing.assert_allclose(np.sum(m['g_loss']), np.sum(pairs), rtol=1e-5)
  d_pairs = (losses.least_squares_discriminator_loss(
      patches('d_a', thin), patches('d_a', thick3)).mean((1, 2))
             + losses.least_squares_discriminator_loss(
                 patches('d_b', thick3), patches('d_b', thin)).mean((1, 2)))
  np.testing.assert_allclose(np.sum(m['d_loss']), np.sum(d_pairs), rtol=1e-5)


def _query(images, stored, count, key):
  return jax.jit(cyclegan.history_query)(jnp.asarray(images, jnp.float32),
                                         jnp.asarray(stored, jnp.float32),
                                         jnp.asarray(count, jnp.int32), key)


def test_history_fills_first_returning_the_current_images():
  current = np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones(
      (5, 2, 2, 1), np.float32)
  out, stored, count = _query(current, np.zeros((8, 2, 2, 1)), 0,
                              jax.random.key(0))
  np.testing.assert_array_equal(out, current)
  np.testing.assert_array_equal(stored[:5], current)
  assert int(count) == 5
  # 3 more fill it; the last 2 of the next query already see it full.
  out, stored, count = _query(current + 10, stored, count, jax.random.key(1))
  np.testing.assert_array_equal(out[:3], current[:3] + 10)
  np.testing.assert_array_equal(stored[5:], current[:3] + 10)
  assert int(count) == 8


def test_full_history_returns_current_or_stored_with_probability_half():
  """Replayed in NumPy: each returned image is either the current one
  (buffer unchanged) or one the buffer held, whose slot the current image
  then takes; over 4,000 draws about half are stored ones, from slots
  chosen uniformly."""
  size, m = 10, 4000
  stored0 = np.arange(size, dtype=np.float32)[:, None, None, None]
  current = (1000 + np.arange(m, dtype=np.float32))[:, None, None, None]
  out, stored, _ = _query(current, stored0, size, jax.random.key(7))
  out = np.asarray(out)[:, 0, 0, 0]
  buffer = stored0[:, 0, 0, 0].copy()
  slots = []
  for j in range(m):
    if out[j] == current[j, 0, 0, 0]:
      continue
    slot = np.flatnonzero(buffer == out[j])
    assert len(slot) == 1, (j, out[j])
    slots.append(slot[0])
    buffer[slot[0]] = current[j, 0, 0, 0]
  np.testing.assert_array_equal(np.asarray(stored)[:, 0, 0, 0], buffer)
  share = len(slots) / m
  assert abs(share - 0.5) < 4 * np.sqrt(0.25 / m), share
  counts = np.bincount(slots, minlength=size)
  expected = len(slots) / size
  chi2 = ((counts - expected) ** 2 / expected).sum()
  assert chi2 < 30.0, counts  # 9 degrees of freedom: p < 1e-3 above 27.9


@pytest.fixture(scope='module')
def stepped(tmp_path_factory):
  config = cyclegan_config.get_config('smoke')
  exp = train.Experiment(config, str(tmp_path_factory.mktemp('cyc')))
  step, batch = helpers.train_step_and_batch(exp)

  @jax.jit
  def run(init_key, train_key, batch):
    state = exp._init_state(init_key)  # pylint: disable=protected-access
    final, metrics = step(state, batch, train_key)
    images = cyclegan.sample(final.params, train_key, 10, net=exp.net)
    return state, final, metrics, images

  return exp, batch, run(exp.init_key, exp.train_key, batch)


def test_step_updates_every_net_and_the_buffers(stepped):
  exp, batch, (state, final, metrics, images) = stepped
  assert int(final.step) == 1
  for values in jax.device_get(metrics).values():
    assert np.all(np.isfinite(values))
  assert set(metrics) >= {'loss', 'g_loss', 'd_loss', 'cycle', 'identity'}
  for player, names in (('generator', cyclegan.GENERATORS),
                        ('discriminator', cyclegan.DISCRIMINATORS)):
    for name in names:
      moved = [np.abs(np.asarray(a) - np.asarray(b)).max() for a, b in zip(
          jax.tree.leaves(state.params[player]['params'][name]),
          jax.tree.leaves(final.params[player]['params'][name]))]
      assert max(moved) > 0, name
    assert int(final.opt_state[player][0].count) == 1
  history = final.params['history']
  assert int(history['count_a']) == int(history['count_b']) == 8
  assert np.abs(np.asarray(history['fake_a'])).max() > 0
  np.testing.assert_array_equal(np.asarray(final.params['bank'])[:32],
                                np.asarray(batch['image']))
  assert images.shape == (10, 8, 8, 1) and images.dtype == jnp.uint8


def test_odd_batch_is_refused(tmp_path):
  config = cyclegan_config.get_config('smoke')
  config.train.batch_size = 33
  with pytest.raises(ConfigError, match=r'batch_size=33 must be even'):
    train.Experiment(config, str(tmp_path))
