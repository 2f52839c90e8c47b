"""Every adversarial variant trains; BEGAN's balance; D's optimum in 1-D.

Each variant compiles one function: init, then its own two-player step
twice under `jax.lax.scan`, on a smoke batch of 8x8 digits.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

from experiments.configs import began as began_config
from experiments.configs import gan as gan_config
from jaxgen import parallel
from jaxgen import train
from jaxgen.models import began
from jaxgen.models import gan
from tests import helpers


def _init_and_steps(exp, num_steps=2):
  """Jitted (state_0, state_n, metrics [n]) for the Experiment's family."""
  step, batch = helpers.train_step_and_batch(exp)

  @jax.jit
  def run(init_key, train_key, batch):
    state = exp._init_state(init_key)  # pylint: disable=protected-access
    final, metrics = jax.lax.scan(
        lambda s, _: step(s, batch, train_key), state, None, length=num_steps)
    return state, final, metrics

  return run(exp.init_key, exp.train_key, batch)


@pytest.mark.parametrize('arg', ['smoke,minimax', 'smoke,wgan', 'smoke,wgan-gp',
                                 'smoke,lsgan', 'smoke,cond'])
def test_every_variant_trains_with_its_smoke_config(arg, tmp_path):
  exp = train.Experiment(gan_config.get_config(arg), str(tmp_path))
  state, final, metrics = _init_and_steps(exp)
  assert int(final.step) == 2
  for name, values in jax.device_get(metrics).items():
    assert np.all(np.isfinite(values)), (arg, name)
  if exp.config.d_optimizer.name == 'adam':  # k updates per step
    assert int(final.opt_state['discriminator'][0].count) == 2 * exp.net.d_steps
  for player in ('generator', 'discriminator'):
    moved = [np.abs(np.asarray(a) - np.asarray(b)).max() for a, b in zip(
        jax.tree.leaves(state.params[player]['params']),
        jax.tree.leaves(final.params[player]['params']))]
    assert max(moved) > 0, (arg, player)
  if exp.net.objective == 'wgan':
    assert all(np.abs(np.asarray(x)).max() <= exp.net.clip_value for x in
               jax.tree.leaves(final.params['discriminator']['params']))
  if exp.net.objective == 'wgan-gp':
    assert 'batch_stats' not in final.params['discriminator']
    # Per step, L_D = -(f(x) - f(G(z))) + lambda GP (means of [B] terms).
    np.testing.assert_allclose(
        metrics['d_loss'], -metrics['wasserstein'] +
        exp.net.gp_weight * metrics['gradient_penalty'], rtol=1e-5,
        atol=1e-5)
  if exp.net.num_classes:
    samples = jax.jit(functools.partial(gan.sample, num=10, net=exp.net))(
        final.params, jax.random.key(0))
    assert samples.shape == (10, 8, 8, 1) and samples.dtype == jnp.uint8


def test_dropout_variant_trains_and_is_deterministic(tmp_path):
  config = gan_config.get_config('smoke,wgan-gp')
  config.model.d_dropout = 0.3
  exp = train.Experiment(config, str(tmp_path))
  _, final, metrics = _init_and_steps(exp)
  _, again, _ = _init_and_steps(exp)
  for values in jax.device_get(metrics).values():
    assert np.all(np.isfinite(values))
  helpers.assert_trees_equal(jax.device_get(final.params),
                             jax.device_get(again.params))


def test_began_step_is_simultaneous_and_updates_k(tmp_path):
  config = began_config.get_config('smoke')
  config.model.k_init = 0.3
  config.model.lambda_k = 0.1
  config.model.gamma = 0.5  # < 1, so the test sees gamma's factor
  exp = train.Experiment(config, str(tmp_path))
  state, final, metrics = _init_and_steps(exp, num_steps=1)
  net = exp.net
  m = jax.device_get(metrics)
  k0 = 0.3
  assert m['k'][0] == pytest.approx(k0)
  # k_1 = clip(k_0 + lambda_k (gamma L(x) - L(G(z_G))), 0, 1).
  expected = np.clip(k0 + 0.1 * (0.5 * m['real_loss'][0] - m['g_loss'][0]),
                     0, 1)
  assert float(final.params['balance']['k']) == pytest.approx(expected,
                                                              rel=1e-6)
  assert m['convergence'][0] == pytest.approx(
      m['real_loss'][0] + abs(0.5 * m['real_loss'][0] - m['g_loss'][0]),
      rel=1e-6)
  # Simultaneous: the generator's loss is L(G(z_G)) under the *old* D, and
  # L_D = L(x) - k_0 L(G(z_D)) under the old G, with the documented keys.
  key = jax.random.fold_in(exp.train_key, 0)
  pre_key, zd_key, zg_key = jax.random.split(key, 3)
  batch = parallel.global_batch(next(exp.train_iterator()), exp.mesh)
  x = exp.preprocess(batch, pre_key)['image']

  @jax.jit
  def by_hand(p, x):
    ae = functools.partial(began.autoencoder_loss, p['discriminator'],
                           net=net)
    gen = lambda z: began.generator_module(net).apply(p['generator'], z)
    z_g = began.sample_latent(zg_key, x.shape[0], net=net)
    z_d = began.sample_latent(zd_key, x.shape[0], net=net)
    return ae(gen(z_g)).mean(), (ae(x) - k0 * ae(gen(z_d))).mean()

  g_loss, d_loss = by_hand(state.params, x)
  assert m['g_loss'][0] == pytest.approx(float(g_loss), rel=1e-5)
  assert m['d_loss'][0] == pytest.approx(float(d_loss), rel=1e-5)
  samples = jax.jit(functools.partial(began.sample, num=3, net=net))(
      final.params, jax.random.key(0))
  assert samples.shape == (3, 8, 8, 1) and samples.dtype == jnp.uint8


def test_discriminator_steps_approach_the_optimal_discriminator():
  """With G fixed (linear: G(z) = 0.5 z + 1, so p_g = N(1, 0.25)) and data
  N(0, 1), repeated `discriminator_step`s drive sigmoid(D(x)) towards
  p_data / (p_data + p_g) (Goodfellow et al. 2014, Prop. 1)."""
  net = gan.Net(image_shape=(1,), architecture='mlp', latent_dim=1,
                g_hidden=(), d_hidden=(32, 32), g_norm='none', d_norm='none',
                use_bias=True, objective='nonsaturating')
  tx = gan.TwoPlayerOptimizer(optax.adam(1e-3), optax.adam(3e-3))
  m = 512

  @jax.jit
  def fit(key):
    init_key, key = jax.random.split(key)
    params = gan.init(init_key, {'point': jnp.zeros((1, 1)),
                                 'label': jnp.zeros((1,), jnp.int32)}, net=net)
    g_vars = {'params': {'dense_0': {'kernel': jnp.full((1, 1), 0.5),
                                     'bias': jnp.ones((1,))}}}
    d_step = functools.partial(gan.discriminator_step, net=net, tx=tx)

    def body(carry, key):
      d_vars, opt = carry
      data_key, step_key = jax.random.split(key)
      real = jax.random.normal(data_key, (m, 1))
      d_vars, opt, _ = d_step(g_vars, d_vars, opt, real,
                              jnp.zeros((m,), jnp.int32), jnp.ones((m,), bool),
                              step_key)
      return (d_vars, opt), None

    d_vars = params['discriminator']
    (d_vars, _), _ = jax.lax.scan(
        body, (d_vars, tx.discriminator.init(d_vars['params'])),
        jax.random.split(key, 3000))
    grid = jnp.linspace(-1.5, 2.0, 36)[:, None]
    logits = gan.discriminator_module(net).apply(d_vars, grid)
    return jax.nn.sigmoid(logits)

  d = np.asarray(fit(jax.random.key(0)), np.float64)
  # Where both densities have mass (p_data >= 0.05): beyond x = 2 the data
  # hold 2% of the samples, too few to pin D down within the tolerance
  # against float rounding (the error there depends on the CPU's kernels).
  x = np.linspace(-1.5, 2.0, 36)
  p_data, p_g = stats.norm.pdf(x, 0, 1), stats.norm.pdf(x, 1, 0.5)
  np.testing.assert_allclose(d, p_data / (p_data + p_g), atol=0.03)
