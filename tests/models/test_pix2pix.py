"""pix2pix: PatchGAN receptive field, the two-player step, metrics, resume.

Smoke-sized nets on 8x8 digits; the step is compiled once (module fixture).
Colourisation: tiny nets on 8x8 crops of two bundled photos, one step.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import pix2pix as pix2pix_config
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.models import pix2pix
from jaxgen.nn import translation as nets
from tests import helpers


@pytest.mark.parametrize('kernel,strides,size,image', [
    (4, (2, 1), 16, 24), (3, (2, 2), 15, 32)])
def test_patch_receptive_field_by_jacobian(kernel, strides, size, image):
  """Output (i, j) depends on the input window the helper gives, reaches
  each of its four borders, and nothing outside it."""
  got_size, jump, offset = nets.patch_receptive_field(kernel, strides)
  assert got_size == size
  disc = nets.PatchDiscriminator((3, 4)[:len(strides)], strides, kernel)
  x = jnp.zeros((1, image, image, 1))
  y = jax.random.normal(jax.random.key(1), (1, image, image, 1))
  params = disc.init(jax.random.key(0), x, y)
  out_shape = disc.apply(params, x, y).shape
  # An output whose window lies inside the image.
  i = next(o for o in range(out_shape[1])
           if o * jump + offset >= 1 and o * jump + offset + size < image)
  lo, hi = i * jump + offset, i * jump + offset + size - 1
  grad = jax.grad(lambda v: disc.apply(params, x, v)[0, i, i])(y)
  g = np.abs(np.asarray(grad)[0, ..., 0])
  inside = np.zeros_like(g, bool)
  inside[lo:hi + 1, lo:hi + 1] = True
  assert np.all(g[~inside] == 0)
  for edge in (g[lo, lo:hi + 1], g[hi, lo:hi + 1], g[lo:hi + 1, lo],
               g[lo:hi + 1, hi]):
    assert edge.max() > 0
  # The condition channel is seen through the same window.
  gx = jax.grad(lambda v: disc.apply(params, v, y)[0, i, i])(x)
  assert np.all(np.asarray(gx)[0, ..., 0][~inside] == 0)


def test_presets_patch_sizes():
  for arg, size in (('mnist8k', 16), ('digits', 7)):
    net = train.make_net(pix2pix, pix2pix_config.get_config(arg).model)
    assert pix2pix.receptive_field(net)[0] == size


@pytest.fixture(scope='module')
def stepped(tmp_path_factory):
  """A smoke 'inpaint' run: its state before and after 2 jitted steps of
  one batch, the step metrics, and the batch."""
  config = pix2pix_config.get_config('smoke,inpaint')
  config.model.bank_size = 40  # < 2 batches of 32: the ring wraps
  exp = train.Experiment(config, str(tmp_path_factory.mktemp('p2p')))
  step, batch = helpers.train_step_and_batch(exp)

  @jax.jit
  def run(init_key, train_key, batch):
    state = exp._init_state(init_key)  # pylint: disable=protected-access
    final, metrics = jax.lax.scan(
        lambda s, _: step(s, batch, train_key), state, None, length=2)
    return state, final, metrics

  return exp, batch, run(exp.init_key, exp.train_key, batch)


def test_step_updates_both_players_and_the_bank(stepped):
  exp, batch, (state, final, metrics) = stepped
  assert int(final.step) == 2
  for values in jax.device_get(metrics).values():
    assert np.all(np.isfinite(values))
  assert set(metrics) >= {'loss', 'd_loss', 'g_loss', 'l1', 'd_real',
                          'd_fake', 'd_grad_norm', 'g_grad_norm'}
  for player in ('generator', 'discriminator'):
    moved = [np.abs(np.asarray(a) - np.asarray(b)).max() for a, b in zip(
        jax.tree.leaves(state.params[player]['params']),
        jax.tree.leaves(final.params[player]['params']))]
    assert max(moved) > 0, player
    assert int(final.opt_state[player][0].count) == 2
  # Step 0 wrote rows 0..31, step 1 rows 32..39 then 0..23 (mod 40): the
  # batch's rows 8..31 sit at 0..23 and its rows 24..31 at 24..31.
  raw = np.asarray(batch['image'])
  bank = np.asarray(final.params['bank'])
  assert bank.dtype == np.uint8
  np.testing.assert_array_equal(bank[:24], raw[8:32])
  np.testing.assert_array_equal(bank[24:32], raw[24:32])
  np.testing.assert_array_equal(bank[32:40], raw[:8])


@pytest.fixture(scope='module')
def evaluated(stepped):
  """One jitted call: loss_fn's metrics, G(x) under two dropout keys,
  `sample` of 45 (the 40-row bank cycled) and `translation_rows`."""
  exp, batch, (_, final, _) = stepped
  net = exp.net

  @jax.jit
  def run(params, batch, key):
    pre = exp.preprocess(batch, key)
    _, metrics = pix2pix.loss_fn(params, pre, key, net=net, train=False)
    task_key, drop_key = jax.random.split(key)
    x = pix2pix.task_inputs(net, pre['image'], task_key)
    out = pix2pix.translate(params, x, drop_key, net=net)
    other = pix2pix.translate(params, x, jax.random.key(9), net=net)
    images = pix2pix.sample(params, key, 45, net=net)
    rows = pix2pix.translation_rows(
        params, params['bank'][jnp.arange(45) % 40], key, net=net)
    return pre['image'], metrics, out, other, images, rows

  return final, run(final.params, batch, jax.random.key(5))


def test_loss_fn_metrics_match_numpy(evaluated):
  _, (target, m, out, other, _, _) = evaluated
  diff = (np.asarray(out, np.float64) - np.asarray(target, np.float64)) / 2
  np.testing.assert_allclose(m['l1'], np.abs(diff).mean((1, 2, 3)),
                             rtol=1e-4)
  np.testing.assert_allclose(
      m['psnr'], -10 * np.log10(np.square(diff).mean((1, 2, 3))), rtol=1e-4)
  # Dropout is G's noise: another key, another translation.
  assert np.abs(np.asarray(other) - np.asarray(out)).max() > 1e-4


def test_sample_translates_bank_rows(evaluated):
  final, (_, _, _, _, images, (shown, out, target)) = evaluated
  images = np.asarray(images)
  assert images.shape == (45, 8, 8, 1) and images.dtype == np.uint8
  np.testing.assert_array_equal(images, out)
  np.testing.assert_array_equal(
      target, np.asarray(final.params['bank'])[np.arange(45) % 40])
  # 'inpaint' shows the masked image: a grey 4x4 square per input.
  assert np.all((np.asarray(shown) == 128).reshape(45, -1).sum(1) >= 16)


@pytest.mark.parametrize('overrides,match', [
    (dict(model__task='deblur'), r"config.model.task='deblur'"),
    (dict(model__task='colorize'), r"config.model.task='colorize' needs RGB"),
    (dict(model__task='superres', model__factor=3),
     r'config.model.factor=3'),
    (dict(model__task='inpaint', model__hole=9), r'config.model.hole=9'),
    (dict(model__g_channels=(4, 4, 4, 4)), r'divisible by 2\^4'),
    (dict(model__d_strides=(1, 1)), r'config.model.d_channels=.*d_strides'),
    (dict(data__value_range='unit'), r"value_range='symmetric'"),
    (dict(model__bank_size=0), r'config.model.bank_size=0'),
])
def test_bad_configs_name_the_field(tmp_path, overrides, match):
  config = pix2pix_config.get_config('smoke')
  for dotted, value in overrides.items():
    section, field = dotted.split('__')
    config[section][field] = value
  with pytest.raises(ConfigError, match=match):
    train.Experiment(config, str(tmp_path))


@pytest.fixture(scope='module')
def colorized(tmp_path_factory):
  """'photos,colorize' with tiny nets on 8x8 crops: one jitted step and the
  translation rows of the stepped state."""
  config = pix2pix_config.get_config('photos,colorize')
  with config.unlocked():
    config.data.name = 'skimage_photos:8:32:8'
    config.data.splits.train = 'coffee'
    config.data.splits.test = 'chelsea'
    m = config.model
    m.image_shape = (8, 8, 3)
    m.g_channels, m.g_res_blocks = (8, 16), 0
    m.d_channels, m.d_strides, m.d_kernel = (8,), (1,), 3
    m.bank_size = 8
    config.train.batch_size = 8
  exp = train.Experiment(config, str(tmp_path_factory.mktemp('colour')))
  step, batch = helpers.train_step_and_batch(exp)

  @jax.jit
  def run(init_key, train_key, batch):
    state = exp._init_state(init_key)  # pylint: disable=protected-access
    final, metrics = step(state, batch, train_key)
    rows = pix2pix.translation_rows(final.params, batch['image'],
                                    jax.random.key(2), net=exp.net)
    return state, final, metrics, rows

  return batch, run(exp.init_key, exp.train_key, batch)


def test_colorize_maps_one_luminance_channel_to_rgb(colorized):
  batch, (state, final, metrics, (shown, out, target)) = colorized
  for values in jax.device_get(metrics).values():
    assert np.all(np.isfinite(values))
  g = state.params['generator']['params']
  d = state.params['discriminator']['params']
  assert g['enc_0']['kernel'].shape[2] == 1  # luminance in
  assert g['dec_0']['kernel'].shape[-1] == 3  # RGB out
  assert d['conv_0']['kernel'].shape[2] == 4  # D sees (x, y): 1 + 3
  for player in ('generator', 'discriminator'):
    moved = [np.abs(np.asarray(a) - np.asarray(b)).max() for a, b in zip(
        jax.tree.leaves(state.params[player]['params']),
        jax.tree.leaves(final.params[player]['params']))]
    assert max(moved) > 0, player
  raw = np.asarray(batch['image'])
  assert out.shape == target.shape == shown.shape == (8, 8, 8, 3)
  np.testing.assert_array_equal(target, raw)
  # The input row is the luminance as a grey RGB image.
  shown = np.asarray(shown)
  assert np.all(shown == shown[..., :1])
  y = (raw.astype(np.float64) / 127.5 - 1) @ np.array([0.299, 0.587, 0.114])
  expected = np.clip(np.round((y + 1) * 127.5), 0, 255)
  assert np.abs(shown[..., 0] - expected).max() <= 1


@pytest.mark.slow
def test_trainer_resumes_bitwise(tmp_path):
  """4 steps == 2 steps, checkpoint, restore, 2 more: weights, both
  optimizer states and the uint8 bank come back from the checkpoint."""
  config = pix2pix_config.get_config('smoke,superres')
  config.train.num_steps = 4
  config.train.image_every_steps = 0
  full = train.Experiment(config, str(tmp_path / 'full')).train()
  config.train.num_steps = 2
  exp = train.Experiment(config, str(tmp_path / 'half'))
  assert int(exp.train().step) == 2
  exp.config.train.num_steps = 4
  resumed = exp.train()
  assert int(resumed.step) == 4
  assert np.asarray(resumed.params['bank']).any()
  for a, b in ((full.params, resumed.params),
               (full.opt_state, resumed.opt_state)):
    helpers.assert_trees_equal(jax.device_get(a), jax.device_get(b))
