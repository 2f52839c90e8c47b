"""The DBM's greedy pre-training: the doubled-input RBM sweeps and CD
updates against float64 NumPy, the phase switch, the frozen parameters,
the joint phase's fresh optimizer, the unchanged step without
pre-training, and a resume across the phase boundaries."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import dbm as dbm_config
from jaxgen import steps
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.models import dbm
from tests import helpers

LR = 0.05  # pretrain_learning_rate
PRE = (2, 2)
NUM_STEPS = 6
ROWS = 10  # the last two masked


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _config(pretrain_steps):
  config = dbm_config.get_config('smoke')
  config.unlock()
  config.model.pretrain_steps = pretrain_steps
  config.model.pretrain_learning_rate = LR
  config.model.init_scale = 0.3  # the updates are far from zero
  config.optimizer.schedule = 'constant'
  config.train.num_steps = NUM_STEPS
  return config


def _net(config):
  return train.make_net(dbm, config.model)


def _identity(batch, key):
  del key
  return batch


def _batch():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 2, (ROWS, 8, 8, 1)).astype(np.float32)
  mask = np.arange(ROWS) < ROWS - 2
  return {'image': jnp.asarray(image), 'mask': jnp.asarray(mask)}


def _initial_state(config, net, tx, batch):
  variables = dbm.init(jax.random.key(1), batch, net=net)
  variables = dbm.data_init(variables, batch, jax.random.key(2), net=net)
  return steps.TrainState(step=jnp.int32(0), params=variables,
                          opt_state=tx.init(variables))


def _run(step_fn, state, batch, num):
  states, metrics = [state], []
  for _ in range(num):
    state, m = step_fn(state, batch, jax.random.key(3))
    states.append(state)
    metrics.append(m)
  return jax.device_get(states), jax.device_get(metrics)


def _loss_key(step):
  return jax.random.split(jax.random.fold_in(jax.random.key(3), step), 3)[1]


@pytest.fixture(scope='module')
def runs():
  """The pre-training step for NUM_STEPS steps (one compile)."""
  batch = _batch()
  config = _config(PRE)
  net = _net(config)
  tx = dbm.make_optimizer(config)
  step_fn = jax.jit(dbm.make_train_step(net=net, tx=tx, preprocess=_identity,
                                        config=config))
  states, metrics = _run(step_fn, _initial_state(config, net, tx, batch),
                         batch, NUM_STEPS)
  return types.SimpleNamespace(batch=jax.device_get(batch), states=states,
                               metrics=metrics, config=config)


def _params(state):
  return {k: np.asarray(v, np.float64) for k, v in state.params['params'
                                                                ].items()}


def test_the_phase_follows_the_step(runs):
  assert [float(m['phase']) for m in runs.metrics] == [0, 0, 1, 1, 2, 2]
  assert int(runs.states[-1].step) == NUM_STEPS


def test_layer1_step_is_the_doubled_input_cd_update_in_float64(runs):
  p0, p1 = _params(runs.states[0]), _params(runs.states[1])
  v = runs.batch['image'].reshape(ROWS, -1).astype(np.float64)
  # The step's negative samples (its key), then the update in NumPy.
  v_neg = np.asarray(dbm.layer1_negatives(
      runs.states[0].params['params'], jnp.float32(v), _loss_key(0), 1),
                     np.float64)
  keep = runs.batch['mask']
  v, v_neg = v[keep], v_neg[keep]
  n = keep.sum()
  h = _sigmoid(2 * v @ p0['w1'] + p0['c1'])
  h_neg = _sigmoid(2 * v_neg @ p0['w1'] + p0['c1'])
  # SGD with momentum, first step: -lr times the gradient.
  np.testing.assert_allclose(p1['w1'] - p0['w1'],
                             LR * (v.T @ h - v_neg.T @ h_neg) / n, atol=2e-6)
  np.testing.assert_allclose(p1['b'] - p0['b'],
                             LR * (v - v_neg).sum(0) / n, atol=2e-6)
  np.testing.assert_allclose(p1['c1'] - p0['c1'],
                             LR * (h - h_neg).sum(0) / n, atol=2e-6)
  assert np.abs(p1['w1'] - p0['w1']).max() > 1e-3
  for name in ('w2', 'c2'):  # layer 2 waits
    np.testing.assert_array_equal(p1[name], p0[name])
  for name in ('v', 'h1', 'h2'):  # so do the persistent chains
    np.testing.assert_array_equal(runs.states[2].params[dbm.STATE][name],
                                  runs.states[0].params[dbm.STATE][name])


def test_layer2_step_is_the_top_down_doubled_cd_update_in_float64(runs):
  p2, p3 = _params(runs.states[2]), _params(runs.states[3])
  v = runs.batch['image'].reshape(ROWS, -1).astype(np.float64)
  h1 = _sigmoid(2 * v @ p2['w1'] + p2['c1'])  # the bottom RBM's posterior
  h1_neg = np.asarray(dbm.layer2_negatives(
      runs.states[2].params['params'], jnp.float32(h1), _loss_key(2), 1),
                      np.float64)
  keep = runs.batch['mask']
  h1, h1_neg = h1[keep], h1_neg[keep]
  n = keep.sum()
  h2 = _sigmoid(h1 @ p2['w2'] + p2['c2'])
  h2_neg = _sigmoid(h1_neg @ p2['w2'] + p2['c2'])
  # Layer 1 left no momentum on (W2, c2): their gradients were zero.
  np.testing.assert_allclose(p3['w2'] - p2['w2'],
                             LR * (h1.T @ h2 - h1_neg.T @ h2_neg) / n,
                             atol=2e-6)
  np.testing.assert_allclose(p3['c2'] - p2['c2'],
                             LR * (h2 - h2_neg).sum(0) / n, atol=2e-6)
  assert np.abs(p3['w2'] - p2['w2']).max() > 1e-3
  # Layer 1's parameters stay bitwise through phase 2, though the
  # optimizer still carries their momentum.
  for name in ('w1', 'b', 'c1'):
    np.testing.assert_array_equal(_params(runs.states[4])[name], p2[name])


def test_sweeps_sample_the_doubled_conditionals():
  rng = np.random.default_rng(4)
  p = {'w1': rng.standard_normal((5, 4)), 'w2': rng.standard_normal((4, 3)),
       'b': rng.standard_normal(5), 'c1': rng.standard_normal(4),
       'c2': rng.standard_normal(3)}
  v = rng.integers(0, 2, (6, 5)).astype(np.float64)
  u1, u2 = rng.random((6, 4 + 5)), rng.random((6, 3 + 4))
  h1 = (u1[:, :4] < _sigmoid(2 * v @ p['w1'] + p['c1'])).astype(float)
  v_new = (u1[:, 4:] < _sigmoid(h1 @ p['w1'].T + p['b'])).astype(float)
  h2 = (u2[:, :3] < _sigmoid(h1 @ p['w2'] + p['c2'])).astype(float)
  h1_new = (u2[:, 3:] < _sigmoid(2 * h2 @ p['w2'].T + p['c1'])).astype(float)
  f32 = jax.tree.map(jnp.float32, p)
  got_v, got_h1 = jax.jit(lambda p, v, h1, u1, u2: (
      dbm.layer1_sweep(p, v, u1), dbm.layer2_sweep(p, h1, u2)))(
          f32, jnp.float32(v), jnp.float32(h1), jnp.float32(u1),
          jnp.float32(u2))
  np.testing.assert_array_equal(got_v, v_new)
  np.testing.assert_array_equal(got_h1, h1_new)


def test_joint_phase_is_the_sa_update_with_a_fresh_optimizer(runs):
  """Step 4, the first joint step: mean field on the data minus the
  advanced chains, times the configured rate (no momentum carried over)."""
  p4, p5 = _params(runs.states[4]), _params(runs.states[5])
  chains = {k: np.asarray(runs.states[5].params[dbm.STATE][k], np.float64)
            for k in ('v', 'h1', 'h2')}
  for k in chains:  # the chains moved
    assert not np.array_equal(chains[k],
                              runs.states[4].params[dbm.STATE][k])
  keep = runs.batch['mask']
  v = runs.batch['image'].reshape(ROWS, -1).astype(np.float64)[keep]
  mu1 = _sigmoid(v @ p4['w1'] + p4['c1'])
  mu2 = _sigmoid(mu1 @ p4['w2'] + p4['c2'])
  for _ in range(runs.config.model.mean_field_steps):
    mu1 = _sigmoid(v @ p4['w1'] + p4['c1'] + mu2 @ p4['w2'].T)
    mu2 = _sigmoid(mu1 @ p4['w2'] + p4['c2'])
  n, m = keep.sum(), len(chains['v'])
  vs, h1s, h2s = chains['v'], chains['h1'], chains['h2']
  want = {'w1': v.T @ mu1 / n - vs.T @ h1s / m,
          'w2': mu1.T @ mu2 / n - h1s.T @ h2s / m,
          'b': v.mean(0) - vs.mean(0), 'c1': mu1.mean(0) - h1s.mean(0),
          'c2': mu2.mean(0) - h2s.mean(0)}
  lr = runs.config.optimizer.learning_rate
  for name, value in want.items():
    np.testing.assert_allclose(p5[name] - p4[name], lr * value, atol=2e-6,
                               err_msg=name)


def test_no_pretraining_is_the_joint_step_unchanged():
  """With (0, 0) the step traces to the generic variables step on
  `sa_objective` with the generic optimizer: the same program, so the
  same bits."""
  batch = _batch()
  config = _config((0, 0))
  net = _net(config)
  tx = dbm.make_optimizer(config)

  def store(variables, chains, batch, key):
    del batch, key
    v, h1, h2 = chains
    return {**variables, dbm.STATE: {**variables[dbm.STATE], 'v': v,
                                     'h1': h1, 'h2': h2}}, {}

  hand_tx = steps.params_optimizer(steps.make_optimizer(
      config.optimizer, config.train.num_steps))
  hand = steps.make_variables_step(
      lambda v, b, k: dbm.sa_objective(v, b, k, net), hand_tx, _identity,
      update_state=store)
  step = dbm.make_train_step(net=net, tx=tx, preprocess=_identity,
                             config=config)
  state = _initial_state(config, net, tx, batch)
  hand_state = _initial_state(config, net, hand_tx, batch)
  helpers.assert_trees_equal(state.opt_state, hand_state.opt_state)
  key = jax.random.key(3)
  got = str(jax.make_jaxpr(step)(state, batch, key))
  assert got == str(jax.make_jaxpr(hand)(hand_state, batch, key))
  # The pre-training step is another program.
  pre = _config(PRE)
  pre_tx = dbm.make_optimizer(pre)
  pre_step = dbm.make_train_step(net=_net(pre), tx=pre_tx,
                                 preprocess=_identity, config=pre)
  assert got != str(jax.make_jaxpr(pre_step)(
      _initial_state(pre, _net(pre), pre_tx, batch), batch, key))


@pytest.mark.parametrize('value', [(3,), (1, -1), (1.5, 2)])
def test_bad_pretrain_steps_name_the_field(value):
  config = _config(PRE)
  config.model.pretrain_steps = value
  dataset = types.SimpleNamespace(pixel_levels=256, num_classes=10,
                                  name='digits')
  with pytest.raises(ConfigError, match='config.model.pretrain_steps'):
    dbm.validate(config, dataset)


@pytest.mark.slow
def test_resume_across_the_phase_boundaries_is_bitwise(tmp_path):
  """6 steps == 3 steps (phase 2), restore, 3 more (through the joint
  phase's start): parameters, chains and optimizer state alike."""

  def run(workdir, num_steps):
    config = _config(PRE)
    config.train.num_steps = num_steps
    config.train.image_every_steps = 0
    exp = train.Experiment(config, str(workdir))
    return exp, exp.train()

  _, full = run(tmp_path / 'full', NUM_STEPS)
  _, half = run(tmp_path / 'half', 3)
  exp, resumed = run(tmp_path / 'half', NUM_STEPS)
  assert int(resumed.step) == NUM_STEPS
  restored, _ = exp.restore(step=3)
  helpers.assert_trees_equal(helpers.params_of(restored),
                             helpers.params_of(half))
  helpers.assert_trees_equal(helpers.params_of(full),
                             helpers.params_of(resumed))
  helpers.assert_trees_equal(jax.device_get(full.opt_state),
                             jax.device_get(resumed.opt_state))
