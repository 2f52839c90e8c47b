"""jaxgen.steps: optimizers from the config, the generic and variables steps,
the EMA and the masked mean, against hand computations."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxgen import steps
from jaxgen.errors import ConfigError


def _opt(**overrides):
  opt = ml_collections.ConfigDict(dict(
      name='sgd', learning_rate=0.1, schedule='constant', warmup_steps=0,
      b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, momentum=0.0,
      grad_clip_norm=0.0))
  opt.update(overrides)
  return opt


@pytest.mark.parametrize('overrides, match', [
    (dict(name='adagrad'), r"config.optimizer.name='adagrad' is not one of"),
    (dict(schedule='linear'),
     r"config.optimizer.schedule='linear' is not one of"),
    (dict(learning_rate=0.0), r'config.optimizer.learning_rate=0.0 must be'),
    (dict(learning_rate=-1e-3), r'config.optimizer.learning_rate=-0.001'),
])
def test_make_optimizer_names_the_bad_field(overrides, match):
  with pytest.raises(ConfigError, match=match):
    steps.make_optimizer(_opt(**overrides), num_steps=10)


def _gan_like_config():
  from experiments.configs import gan  # pylint: disable=g-import-not-at-top
  return gan.get_config('digits')


@pytest.mark.parametrize('path, value, match', [
    ('optimizer.learning_rate', float('nan'),
     r'config\.optimizer\.learning_rate=nan must be a finite number'),
    ('optimizer.learning_rate', float('inf'), 'finite'),
    ('optimizer.learning_rate', -1e-3, r'learning_rate=-0\.001 must be .*> 0'),
    ('d_optimizer.learning_rate', 0.0, r'config\.d_optimizer\.learning_rate'),
    ('d_optimizer.b1', 1.0, r'config\.d_optimizer\.b1=1\.0 must lie in'),
    ('optimizer.eps', -1.0, r'config\.optimizer\.eps=-1\.0 must be >= 0'),
    ('optimizer.warmup_steps', -5, r'warmup_steps=-5 must be an integer'),
    ('train.batch_size', 0, r'config\.train\.batch_size=0 must be an int'),
    ('eval.batch_size', -2, r'config\.eval\.batch_size=-2'),
    ('train.num_steps', 0, r'config\.train\.num_steps=0'),
    ('train.ema_decay', float('nan'), r'config\.train\.ema_decay=nan'),
    ('eval.num_grid_samples', 0, r'config\.eval\.num_grid_samples=0'),
    ('seed', -1, r'config\.seed=-1 must be an integer >= 0'),
    ('data.split_seed', -3, r'config\.data\.split_seed=-3'),
    ('model.g_hidden', (3, 'x'), r'config\.model\.g_hidden=\(3, .x.\) mixes'),
])
def test_check_hyperparameters_names_the_field(path, value, match):
  config = _gan_like_config()
  node = config
  *parents, leaf = path.split('.')
  for p in parents:
    node = node[p]
  steps.check_hyperparameters(config)  # the preset itself is fine
  node[leaf] = value
  with pytest.raises(ConfigError, match=match):
    steps.check_hyperparameters(config)


def test_check_hyperparameters_accepts_every_preset():
  from experiments.configs import common  # pylint: disable=g-import-not-at-top
  from experiments.configs import vae  # pylint: disable=g-import-not-at-top
  for arg in common.DATASETS:
    steps.check_hyperparameters(vae.get_config(arg))


def test_make_optimizer_warmup_cosine_and_clipping():
  """SGD updates are -lr(t) * g: 0 at t=0 (warm-up from 0), the full rate at
  the end of the warm-up, 0 after the cosine decay; clipping rescales g."""
  tx = steps.make_optimizer(
      _opt(schedule='cosine', warmup_steps=2, grad_clip_norm=1.0),
      num_steps=6)
  params = {'w': jnp.zeros(2)}
  grads = {'w': jnp.array([3.0, 4.0])}  # norm 5, clipped to norm 1
  state = tx.init(params)
  seen = []
  for _ in range(7):
    updates, state = tx.update(grads, state, params)
    seen.append(np.asarray(updates['w']))
  clipped = np.array([0.6, 0.8])
  np.testing.assert_allclose(seen[0], 0.0, atol=0)
  np.testing.assert_allclose(seen[1], -0.05 * clipped, rtol=1e-6)
  np.testing.assert_allclose(seen[2], -0.1 * clipped, rtol=1e-6)
  np.testing.assert_allclose(seen[6], 0.0, atol=1e-9)
  assert 0 < -seen[4][0] < -seen[3][0] < -seen[2][0]


def test_masked_mean_ignores_masked_rows():
  values = jnp.array([1.0, 2.0, 3.0, 100.0])
  mask = jnp.array([True, True, True, False])
  assert float(steps.masked_mean(values, mask)) == 2.0
  assert float(steps.masked_mean(values, None)) == 26.5
  # A batch of padding only averages to 0, not NaN.
  assert float(steps.masked_mean(values, jnp.zeros(4, bool))) == 0.0
  jitted = jax.jit(steps.masked_mean)(values, mask)
  assert float(jitted) == 2.0


def test_ema_update_is_the_recursion_leaf_by_leaf():
  ema = {'a': jnp.array([1.0, 2.0]), 'b': {'c': jnp.array(4.0)}}
  params = {'a': jnp.array([3.0, 6.0]), 'b': {'c': jnp.array(0.0)}}
  out = steps.ema_update(ema, params, 0.75)
  np.testing.assert_allclose(out['a'], [1.5, 3.0], rtol=1e-7)
  np.testing.assert_allclose(out['b']['c'], 3.0, rtol=1e-7)


def _linear_loss(params, batch, key):
  """Per-example squared error of x @ w + b; 'noise' reports the key's draw."""
  pred = batch['x'] @ params['w'] + params['b']
  err = (pred - batch['y']) ** 2
  noise = jax.random.uniform(key, err.shape)
  return steps.masked_mean(err, batch['mask']), {'err': err, 'noise': noise}


def _batch():
  return {'x': jnp.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0], [9.0, 9.0]]),
          'y': jnp.array([1.0, 0.0, 2.0, 50.0]),
          'mask': jnp.array([True, True, True, False])}


def test_generic_step_update_metrics_and_ema_by_hand():
  lr, decay = 0.1, 0.5
  params = {'w': jnp.array([0.5, -0.25]), 'b': jnp.array(0.1)}
  tx = optax.sgd(lr)
  scale = 2.0
  preprocess = lambda b, k: {**b, 'x': b['x'] * scale}
  step = jax.jit(steps.make_train_step(_linear_loss, tx,
                                       preprocess=preprocess,
                                       ema_decay=decay))
  ema0 = {'w': jnp.array([1.0, 1.0]), 'b': jnp.array(-1.0)}
  state = steps.TrainState(step=jnp.array(3, jnp.int32), params=params,
                           opt_state=tx.init(params), ema_params=ema0)
  train_key = jax.random.key(7)
  new, metrics = step(state, _batch(), train_key)

  # By hand, in float64 over the 3 unmasked rows.
  x = np.asarray(_batch()['x'], np.float64)[:3] * scale
  y = np.asarray(_batch()['y'], np.float64)[:3]
  w, b = np.array([0.5, -0.25]), 0.1
  r = x @ w + b - y
  grad_w, grad_b = 2 * x.T @ r / 3, 2 * r.mean()
  new_w, new_b = w - lr * grad_w, b - lr * grad_b
  np.testing.assert_allclose(new.params['w'], new_w, rtol=1e-5)
  np.testing.assert_allclose(new.params['b'], new_b, rtol=1e-5)
  np.testing.assert_allclose(new.ema_params['w'],
                             decay * 1.0 + (1 - decay) * new_w, rtol=1e-5)
  np.testing.assert_allclose(new.ema_params['b'],
                             decay * -1.0 + (1 - decay) * new_b, rtol=1e-5)
  assert int(new.step) == 4
  np.testing.assert_allclose(metrics['loss'], (r ** 2).mean(), rtol=1e-5)
  np.testing.assert_allclose(metrics['err'], (r ** 2).mean(), rtol=1e-5)
  np.testing.assert_allclose(metrics['grad_norm'],
                             np.sqrt((grad_w ** 2).sum() + grad_b ** 2),
                             rtol=1e-5)
  # The loss key is the second half of fold_in(train_key, step).
  loss_key = jax.random.split(jax.random.fold_in(train_key, 3))[1]
  noise = np.asarray(jax.random.uniform(loss_key, (4,)))
  np.testing.assert_allclose(metrics['noise'], noise[:3].mean(), rtol=1e-6)


def test_generic_step_without_ema_keeps_none():
  params = {'w': jnp.zeros(2), 'b': jnp.zeros(())}
  tx = optax.sgd(0.1)
  step = steps.make_train_step(_linear_loss, tx, preprocess=lambda b, k: b)
  state = steps.TrainState(step=jnp.zeros((), jnp.int32), params=params,
                           opt_state=tx.init(params))
  new, _ = jax.jit(step)(state, _batch(), jax.random.key(0))
  assert new.ema_params is None


def _stats_objective(variables, batch, key):
  """A loss of 'params' that reads a non-param collection 'stats'."""
  del key
  scale = variables['stats']['scale']
  per = (batch['x'] @ variables['params']['w'] * scale - batch['y']) ** 2
  loss = steps.masked_mean(per, batch['mask'])
  return loss, ({'err': per}, {'batch_mean': batch['x'].mean()})


def test_variables_step_moves_params_only_and_leaves_the_rest_to_the_family():
  variables = {'params': {'w': jnp.array([0.5, -0.25])},
               'stats': {'scale': jnp.array(2.0)}}
  tx = steps.params_optimizer(optax.sgd(0.1))
  opt_state = tx.init(variables)
  # The optimizer state covers 'params' only.
  assert (jax.tree.structure(opt_state) ==
          jax.tree.structure(optax.sgd(0.1).init(variables['params'])))
  state = steps.TrainState(step=jnp.zeros((), jnp.int32), params=variables,
                           opt_state=opt_state)
  plain = jax.jit(steps.make_variables_step(_stats_objective, tx,
                                            lambda b, k: b))
  new, metrics = plain(state, _batch(), jax.random.key(0))
  np.testing.assert_array_equal(new.params['stats']['scale'], 2.0)
  assert np.any(np.asarray(new.params['params']['w']) != [0.5, -0.25])
  assert set(metrics) == {'err', 'loss', 'grad_norm'}

  def update_state(v, aux, batch, key):
    del batch, key
    stats = {'scale': v['stats']['scale'] + aux['batch_mean']}
    return {**v, 'stats': stats}, {'scale': stats['scale']}

  with_update = jax.jit(steps.make_variables_step(
      _stats_objective, tx, lambda b, k: b, update_state=update_state))
  moved, metrics = with_update(state, _batch(), jax.random.key(0))
  # The gradient step is the same; the family's update acts after it.
  same = jax.tree.map(np.array_equal, moved.params['params'],
                      new.params['params'])
  assert all(jax.tree.leaves(same))
  expected = 2.0 + float(_batch()['x'].mean())
  np.testing.assert_allclose(moved.params['stats']['scale'], expected,
                             rtol=1e-6)
  np.testing.assert_allclose(metrics['scale'], expected, rtol=1e-6)
  assert set(metrics) == {'err', 'scale', 'loss', 'grad_norm'}


def test_variables_step_ema_covers_every_collection():
  variables = {'params': {'w': jnp.array([0.5, -0.25])},
               'stats': {'scale': jnp.array(2.0)}}
  tx = steps.params_optimizer(optax.sgd(0.1))
  state = steps.TrainState(step=jnp.zeros((), jnp.int32), params=variables,
                           opt_state=tx.init(variables), ema_params=variables)
  update = lambda v, aux, b, k: ({**v, 'stats': {'scale': jnp.array(4.0)}},
                                 {})
  step = jax.jit(steps.make_variables_step(
      _stats_objective, tx, lambda b, k: b, ema_decay=0.75,
      update_state=update))
  new, _ = step(state, _batch(), jax.random.key(0))
  np.testing.assert_allclose(new.ema_params['stats']['scale'],
                             0.75 * 2.0 + 0.25 * 4.0, rtol=1e-7)
  w = np.asarray(new.params['params']['w'])
  np.testing.assert_allclose(new.ema_params['params']['w'],
                             0.75 * np.array([0.5, -0.25]) + 0.25 * w,
                             rtol=1e-6)
