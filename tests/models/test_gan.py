"""GAN family: reference DCGAN sizes, two-player step invariants, trainer.

Tiny nets on 8x8 images; each test compiles at most a few functions.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.configs import gan as gan_config
from jaxgen import steps
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.models import gan
from tests import helpers


def _batch(n, seed=0, shape=(8, 8, 1)):
  rng = np.random.default_rng(seed)
  return {'image': jnp.asarray(rng.uniform(-1, 1, (n,) + shape), jnp.float32),
          'label': jnp.asarray(rng.integers(0, 10, n), jnp.int32),
          'mask': jnp.ones((n,), bool)}


def _tx(lr=1e-2):
  return gan.TwoPlayerOptimizer(optax.adam(lr, b1=0.5), optax.adam(lr, b1=0.5))


TINY = dict(image_shape=(8, 8, 1), architecture='dcgan', latent_dim=4,
            g_channels=(8, 4), d_channels=(4, 8), g_norm='batch',
            d_norm='batch')


def _state(net, tx, batch, key=jax.random.key(0)):
  @jax.jit  # eager Flax init of conv nets costs seconds of op compilation
  def fresh(key, batch):
    params = gan.init(key, batch, net=net)
    return steps.TrainState(step=jnp.zeros((), jnp.int32), params=params,
                            opt_state=tx.init(params))
  return fresh(key, batch)


def _config():
  return gan_config.get_config('smoke')  # make_train_step reads config.train


def test_reference_dcgan_32x32_parameter_counts():
  net = gan.Net(image_shape=(32, 32, 1), architecture='dcgan',
                latent_dim=100, g_channels=(256, 128, 64),
                d_channels=(64, 128, 256), kernel_size=4, use_bias=False)
  batch = jax.eval_shape(lambda: _batch(2, shape=(32, 32, 1)))
  shapes = jax.eval_shape(functools.partial(gan.init, net=net),
                          jax.random.key(0), batch)
  g, d = shapes['generator'], shapes['discriminator']
  assert train.count_params(g['params']) == 1_066_880
  assert train.count_params(d['params']) == 661_248
  kernels = lambda p: {k: v['kernel'].shape for k, v in p.items()
                       if 'kernel' in v}
  assert kernels(g['params']) == {
      'deconv_0': (4, 4, 100, 256), 'deconv_1': (4, 4, 256, 128),
      'deconv_2': (4, 4, 128, 64), 'deconv_3': (4, 4, 64, 1)}
  assert kernels(d['params']) == {
      'conv_0': (4, 4, 1, 64), 'conv_1': (4, 4, 64, 128),
      'conv_2': (4, 4, 128, 256), 'conv_3': (4, 4, 256, 1)}
  # No biases; batch norm everywhere but G's output and D's input layer.
  assert not any('bias' in v for k, v in g['params'].items()
                 if k.startswith(('deconv', 'conv')))
  assert sorted(g['batch_stats']) == ['norm_0', 'norm_1', 'norm_2']
  assert sorted(d['batch_stats']) == ['norm_1', 'norm_2']
  out = jax.eval_shape(lambda p, z: gan.generate(p, z, net=net), shapes,
                       jax.ShapeDtypeStruct((3, 100), jnp.float32))
  assert out.shape == (3, 32, 32, 1) and out.dtype == jnp.uint8


def _one_step(net):
  """(tx, batch of 12, state, train key, new state, metrics) of one jitted
  train step of `net` from `_state`."""
  tx = _tx()
  batch = _batch(12)
  state = _state(net, tx, batch)
  train_key = jax.random.key(7)
  step = gan.make_train_step(net=net, tx=tx, preprocess=lambda b, key: b,
                             config=_config())
  new, metrics = jax.jit(step)(state, batch, train_key)
  return tx, batch, state, train_key, new, metrics


def test_step_is_k_discriminator_updates_then_one_generator_update():
  """The step == k discriminator_step calls on dealt minibatches, then one
  generator_step against the updated D: so G's variables (weights and
  batch-norm statistics) do not change during D's updates and D's do not
  change during G's. Optimizer counts: k for D, 1 for G."""
  k = 2  # > 1 is all it takes; each unrolled D update compiles anew
  net = gan.Net(**TINY, d_steps=k)
  tx, batch, state, train_key, new, metrics = _one_step(net)

  @jax.jit  # one program: the k D updates and the G update inlined
  def by_hand(state):
    d_step = functools.partial(gan.discriminator_step, net=net, tx=tx)
    g_step = functools.partial(gan.generator_step, net=net, tx=tx)
    key = jax.random.fold_in(train_key, state.step)
    _, d_key, g_key = jax.random.split(key, 3)
    g_vars, d_vars = state.params['generator'], state.params['discriminator']
    d_opt = state.opt_state['discriminator']
    d_keys = jax.random.split(d_key, k)
    for i in range(k):  # minibatch i: rows i, i + k, i + 2k, ...
      rows = np.arange(i, 12, k)
      d_vars, d_opt, _ = d_step(
          g_vars, d_vars, d_opt, batch['image'][rows], batch['label'][rows],
          batch['mask'][rows], d_keys[i])
    g_vars, g_opt, _ = g_step(
        g_vars, d_vars, state.opt_state['generator'],
        batch['label'][np.arange(k - 1, 12, k)], g_key)
    return g_vars, d_vars, g_opt, d_opt

  g_vars, d_vars, g_opt, d_opt = by_hand(state)
  helpers.assert_trees_close(new.params['discriminator'], d_vars, atol=1e-6)
  helpers.assert_trees_close(new.params['generator'], g_vars, atol=1e-6)
  assert int(new.opt_state['discriminator'][0].count) == k
  assert int(new.opt_state['generator'][0].count) == 1
  assert int(g_opt[0].count) == 1 and int(d_opt[0].count) == k
  assert int(new.step) == 1
  # Both players moved, weights and running statistics.
  for name in ('generator', 'discriminator'):
    for collection in ('params', 'batch_stats'):
      before = jax.tree.leaves(state.params[name][collection])
      after = jax.tree.leaves(new.params[name][collection])
      assert any(np.abs(np.asarray(a) - np.asarray(b)).max() > 0
                 for a, b in zip(before, after)), (name, collection)
  assert set(metrics) >= {'loss', 'd_loss', 'g_loss', 'd_real', 'd_fake',
                          'd_grad_norm', 'g_grad_norm'}
  assert all(np.isfinite(v) for v in jax.device_get(metrics).values())


def test_deal_spreads_rows():
  x = jnp.arange(12).reshape(6, 2)
  np.testing.assert_array_equal(gan.deal(x, 3)[:, :, 0],
                                [[0, 6], [2, 8], [4, 10]])


def test_loss_fn_matches_the_objectives_from_the_nets_outputs():
  """Per-example metrics == the objective applied to D's raw outputs,
  recomputed from the nets (float64 NumPy formulas)."""
  net = gan.Net(image_shape=(8, 8, 1), architecture='mlp', latent_dim=3,
                g_hidden=(8,), d_hidden=(8, 8), g_norm='none', d_norm='none',
                use_bias=True)
  batch = _batch(6, seed=1)
  batch['mask'] = jnp.array([True] * 5 + [False])
  params = jax.jit(functools.partial(gan.init, net=net))(jax.random.key(1),
                                                         batch)
  key = jax.random.key(2)
  z = gan.sample_latent(jax.random.split(key)[0], 6, net=net)
  fake = gan.generator_module(net).apply(params['generator'], z)
  disc = gan.discriminator_module(net)
  r = np.asarray(disc.apply(params['discriminator'], batch['image']),
                 np.float64)
  f = np.asarray(disc.apply(params['discriminator'], fake), np.float64)
  sig = lambda v: 1 / (1 + np.exp(-v))
  expected = {
      'minimax': (-np.log(sig(r)) - np.log(1 - sig(f)), np.log(1 - sig(f))),
      'nonsaturating': (-np.log(sig(r)) - np.log(1 - sig(f)),
                        -np.log(sig(f))),
      'wgan': (f - r, -f),
      'lsgan': (0.5 * (r - 1) ** 2 + 0.5 * f ** 2, 0.5 * (f - 1) ** 2),
  }
  for objective, (d_loss, g_loss) in expected.items():
    n = net.clone(objective=objective)
    loss, m = jax.jit(functools.partial(gan.loss_fn, net=n, train=False))(
        params, batch, key)
    np.testing.assert_allclose(m['d_real'], r, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m['d_fake'], f, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m['d_loss'], d_loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m['g_loss'], g_loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss, d_loss[:5].mean(), rtol=1e-5)


def test_discriminator_dropout_is_keyed_and_only_in_training():
  net = gan.Net(image_shape=(8, 8, 1), architecture='mlp', latent_dim=3,
                g_hidden=(8,), d_hidden=(32, 32), g_norm='none',
                d_norm='none', use_bias=True, d_dropout=0.5)
  plain = net.clone(d_dropout=0.0)
  batch = _batch(6, seed=7)
  params = gan.init(jax.random.key(1), batch, net=net)
  # Dropout has no parameters: the same init with or without it.
  helpers.assert_trees_equal(params, gan.init(jax.random.key(1), batch,
                                              net=plain))
  x = batch['image']

  @functools.partial(jax.jit, static_argnames='train')
  def d_out(key, train):
    n = net if key is not None else plain
    rng = gan.dropout_key(n, key, 0) if key is not None else None
    return gan.apply(gan.discriminator_module(n), params['discriminator'], x,
                     None, train=train, dropout_rng=rng)[0]

  k1, k2 = jax.random.key(2), jax.random.key(3)
  a, b, c = d_out(k1, True), d_out(k1, True), d_out(k2, True)
  np.testing.assert_array_equal(a, b)  # the key decides the masks
  assert np.abs(np.asarray(a) - np.asarray(c)).max() > 1e-3
  no_dropout = d_out(None, True)
  assert np.abs(np.asarray(a) - np.asarray(no_dropout)).max() > 1e-3
  # Evaluation mode ignores it: the net without dropout, bitwise.
  np.testing.assert_array_equal(d_out(k1, False), d_out(None, False))
  assert gan.dropout_key(plain, k1, 0) is None


def test_wgan_gp_loss_adds_the_penalty_at_the_interpolates():
  """L_D = f(G(z)) - f(x) + lambda (||grad f(x_hat)|| - 1)^2 per example,
  with x_hat = e x + (1 - e) G(z), e ~ U[0, 1] from the loss's own key
  split; the gradient recomputed per example (vmap of grad), the norm and
  the sum in float64."""
  net = gan.Net(image_shape=(8, 8, 1), architecture='mlp', latent_dim=3,
                g_hidden=(8,), d_hidden=(8, 8), g_norm='none', d_norm='none',
                use_bias=True, objective='wgan-gp', gp_weight=10.0)
  batch = _batch(6, seed=3)
  params = jax.jit(functools.partial(gan.init, net=net))(jax.random.key(4),
                                                         batch)
  key = jax.random.key(5)
  z_key, gp_key = jax.random.split(key)
  fake = gan.generator_module(net).apply(
      params['generator'], gan.sample_latent(z_key, 6, net=net))
  disc = gan.discriminator_module(net)
  real = batch['image']
  e = jax.random.uniform(gp_key, (6, 1, 1, 1), jnp.float32)
  x_hat = e * real + (1.0 - e) * fake
  grads = jax.vmap(jax.grad(
      lambda v: disc.apply(params['discriminator'], v[None])[0]))(x_hat)
  norms = np.linalg.norm(np.asarray(grads, np.float64).reshape(6, -1), axis=1)
  penalty = (norms - 1.0) ** 2
  r = np.asarray(disc.apply(params['discriminator'], real), np.float64)
  f = np.asarray(disc.apply(params['discriminator'], fake), np.float64)
  _, m = jax.jit(functools.partial(gan.loss_fn, net=net, train=False))(
      params, batch, key)
  assert penalty.min() > 1e-3  # the penalty term is really exercised
  np.testing.assert_allclose(m['gradient_penalty'], penalty, rtol=1e-4,
                             atol=1e-6)
  np.testing.assert_allclose(m['d_loss'], f - r + 10.0 * penalty, rtol=1e-4,
                             atol=1e-5)
  np.testing.assert_allclose(m['g_loss'], -f, rtol=1e-5, atol=1e-6)


def test_wgan_clips_the_critic_and_gp_reports_its_penalty():
  net = gan.Net(image_shape=(8, 8, 1), architecture='mlp', latent_dim=3,
                g_hidden=(8,), d_hidden=(8,), g_norm='none', d_norm='none',
                use_bias=True, objective='wgan', clip_value=0.05)
  tx = gan.TwoPlayerOptimizer(optax.rmsprop(0.5), optax.rmsprop(0.5))
  batch = _batch(8)
  state = _state(net, tx, batch)
  step = jax.jit(gan.make_train_step(net=net, tx=tx,
                                     preprocess=lambda b, key: b,
                                     config=_config()))
  new, metrics = step(state, batch, jax.random.key(0))
  leaves = np.concatenate([np.ravel(x) for x in jax.tree.leaves(
      new.params['discriminator']['params'])])
  assert np.abs(leaves).max() == pytest.approx(0.05)  # some hit the bound
  assert np.all(np.abs(leaves) <= 0.05)
  # The generator is not clipped.
  g = np.concatenate([np.ravel(x) for x in jax.tree.leaves(
      new.params['generator']['params'])])
  assert np.abs(g).max() > 0.05
  assert np.isfinite(metrics['wasserstein'])


@pytest.mark.slow
def test_trainer_is_deterministic_and_resumes_bitwise(tmp_path):
  """Smoke DCGAN (batch norm in both nets, EMA on): 4 steps == 2 steps,
  checkpoint, restore into a fresh state, 2 more; the batch statistics,
  both optimizer states and the EMA are in the checkpoint."""
  config = gan_config.get_config('smoke')
  config.train.num_steps = 4
  config.train.ema_decay = 0.5
  config.train.image_every_steps = 0
  full = train.Experiment(config, str(tmp_path / 'full')).train()
  config.train.num_steps = 2
  exp = train.Experiment(config, str(tmp_path / 'half'))
  half = exp.train()
  assert int(half.step) == 2
  exp.config.train.num_steps = 4
  resumed = exp.train()  # restores step 2 from disk, then 2 steps
  assert int(resumed.step) == 4
  assert 'batch_stats' in resumed.params['generator']
  for a, b in ((full.params, resumed.params),
               (full.opt_state, resumed.opt_state),
               (full.ema_params, resumed.ema_params)):
    helpers.assert_trees_equal(jax.device_get(a), jax.device_get(b))


def test_reuse_fakes_updates_g_through_the_last_d_updates_latents():
  """net.reuse_fakes: the D updates are unchanged, and the G update equals
  generator_step drawing the latents of the last D update (its z key),
  computed without running G a second time."""
  k = 2
  net = gan.Net(**TINY, d_steps=k, reuse_fakes=True)
  tx, batch, state, train_key, new, metrics = _one_step(net)
  fresh = _one_step(gan.Net(**TINY, d_steps=k))[4]

  @jax.jit
  def by_hand(state):
    key = jax.random.fold_in(train_key, state.step)
    _, d_key, _ = jax.random.split(key, 3)
    d_keys = jax.random.split(d_key, k)
    d_vars = new.params['discriminator']
    g_vars, g_opt, _ = gan.generator_step(
        state.params['generator'], d_vars, state.opt_state['generator'],
        batch['label'][np.arange(k - 1, 12, k)],
        jax.random.split(d_keys[k - 1])[0], net=net, tx=tx)
    return g_vars, g_opt

  g_vars, g_opt = by_hand(state)
  helpers.assert_trees_close(new.params['discriminator'],
                             fresh.params['discriminator'], atol=1e-6)
  helpers.assert_trees_close(new.params['generator'], g_vars, atol=1e-6)
  helpers.assert_trees_close(new.opt_state['generator'], g_opt, atol=1e-6)
  # Fresh latents give another generator update.
  assert max(np.abs(np.asarray(a) - np.asarray(b)).max() for a, b in zip(
      jax.tree.leaves(new.params['generator']['params']),
      jax.tree.leaves(fresh.params['generator']['params']))) > 1e-4
  assert all(np.isfinite(v) for v in jax.device_get(metrics).values())


@pytest.mark.parametrize('overrides,match', [
    (dict(model__objective='wgan-gp', model__d_norm='batch'),
     r"config.model.d_norm='batch'.*wgan-gp"),
    (dict(model__d_steps=3), r'config.train.batch_size=32.*d_steps=3'),
    (dict(model__objective='hinge'), r'config.model.objective'),
    (dict(data__value_range='unit'), r"config.data.value_range='symmetric'"),
    (dict(model__g_channels=(8, 8, 4, 4)),
     r'config.model.image_shape=\(8, 8, 1\).*divisible by 2\^4'),
    (dict(model__num_classes=3), r'num_classes=3 is smaller than the 10'),
    (dict(model__d_dropout=1.0), r'config.model.d_dropout=1.0 must be a rate'),
])
def test_bad_configs_name_the_field(tmp_path, overrides, match):
  config = gan_config.get_config('smoke')
  for dotted, value in overrides.items():
    section, field = dotted.split('__')
    config[section][field] = value
  with pytest.raises(ConfigError, match=match):
    train.Experiment(config, str(tmp_path))


def test_conditional_samples_follow_labels_and_latent_tools():
  net = gan.Net(image_shape=(8, 8, 1), architecture='mlp', latent_dim=4,
                g_hidden=(16,), d_hidden=(16,), g_norm='batch', d_norm='none',
                use_bias=True, num_classes=10)
  params = jax.jit(functools.partial(gan.init, net=net))(jax.random.key(3),
                                                         _batch(2))
  key = jax.random.key(4)
  sample = jax.jit(functools.partial(gan.sample, net=net, num=4))
  a = sample(params, key, labels=jnp.array([0, 1, 2, 3]))
  b = sample(params, key, labels=jnp.array([5, 1, 2, 3]))
  assert a.shape == (4, 8, 8, 1) and a.dtype == jnp.uint8
  assert np.any(a[0] != b[0]) and np.all(a[1:] == b[1:])
  np.testing.assert_array_equal(sample(params, key),
                                sample(params, key, labels=jnp.arange(4)))
  with pytest.raises(ConfigError, match=r'labels must have shape \(4,\)'):
    gan.sample(params, key, 4, net=net, labels=jnp.zeros(3, jnp.int32))
  # Interpolation paths start and end at G of the drawn end points.
  paths = gan.interpolate(params, key, net=net, num_paths=2, num_steps=5,
                          spherical=False, labels=[7, 8])
  assert paths.shape == (2, 5, 8, 8, 1)
  ends = gan.sample_latent(key, 4, net=net)
  np.testing.assert_array_equal(
      paths[:, 0], gan.generate(params, ends[0::2], net=net, labels=[7, 8]))
  np.testing.assert_array_equal(
      paths[:, -1], gan.generate(params, ends[1::2], net=net, labels=[7, 8]))
