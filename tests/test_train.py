"""The trainer: determinism, resume, signals, non-finite stops, no retracing.

All runs use the VAE 'smoke' config (8x8 digits, MLP, batch 32).
"""

import json
import os
import pathlib
import signal
import subprocess
import time
import types

import chex
import functools
import jax
import ml_collections
import numpy as np
import pytest

from jaxgen import checkpoint as ckpt_lib
from jaxgen import parallel
from jaxgen import steps
from jaxgen import train
from jaxgen import workdir as workdir_lib
from jaxgen.errors import ConfigError
from jaxgen.errors import DataError
from tests import helpers


def _train(workdir, **overrides):
  exp = train.Experiment(helpers.smoke_config(**overrides), str(workdir))
  return exp, exp.train()


@pytest.mark.slow
def test_same_seed_is_bitwise_and_seed_matters(tmp_path):
  _, a = _train(tmp_path / 'a', train__num_steps=3)
  _, b = _train(tmp_path / 'b', train__num_steps=3)
  helpers.assert_trees_equal(helpers.params_of(a), helpers.params_of(b))
  _, c = _train(tmp_path / 'c', train__num_steps=3, seed=1)
  diff = jax.tree.leaves(jax.tree.map(
      lambda x, y: np.abs(x - y).max(), helpers.params_of(a),
      helpers.params_of(c)))
  assert max(diff) > 0


@pytest.mark.slow
def test_resume_in_a_new_process_is_bitwise(tmp_path):
  """2N steps == N steps, checkpoint, restore in a new process, N steps."""
  _, full = _train(tmp_path / 'full', train__num_steps=6)
  half_dir = tmp_path / 'half'
  exp, half = _train(half_dir, train__num_steps=3)
  assert int(half.step) == 3
  # The second half runs in a fresh interpreter: params, optimizer state
  # and the data iterator position all come from the checkpoint.
  helpers.run_main(half_dir, '--config.train.num_steps=6')
  resumed, step = exp.restore()
  assert step == 6
  helpers.assert_trees_equal(helpers.params_of(full),
                             helpers.params_of(resumed))
  helpers.assert_trees_equal(jax.device_get(full.opt_state),
                             jax.device_get(resumed.opt_state))
  records = [json.loads(l) for l in open(half_dir / 'metrics.jsonl')]
  assert [r['step'] for r in records if r['split'] == 'train'] == [2, 3, 4, 6]


@pytest.mark.slow
def test_data_position_is_restored(tmp_path):
  """The iterator in the checkpoint continues where training stopped."""
  exp, _ = _train(tmp_path / 'run', train__num_steps=3)
  it = exp.train_iterator()
  exp.restore(data_iterator=it)
  fresh = exp.train_iterator()
  expected = [next(fresh)['label'] for _ in range(4)][3]
  np.testing.assert_array_equal(next(it)['label'], expected)


@pytest.mark.slow
def test_no_recompilation_after_warmup(tmp_path):
  exp, _ = _train(tmp_path / 'run', train__num_steps=5)
  assert exp.train_step._cache_size() == 1  # pylint: disable=protected-access
  # The raw step traced once under chex's guard, for several batches.
  loss = functools.partial(exp.family.loss_fn, net=exp.net, train=True)
  step = steps.make_train_step(loss, exp.tx, preprocess=exp.preprocess)
  step = jax.jit(chex.assert_max_traces(step, n=1))
  state = exp.init_state()
  it = exp.train_iterator()
  for _ in range(3):
    state, _ = step(state, parallel.global_batch(next(it), exp.mesh),
                    exp.train_key)
  assert int(state.step) == 3


@pytest.mark.slow
def test_non_finite_loss_stops_without_checkpoint(tmp_path):
  workdir = tmp_path / 'nan'
  with pytest.raises(train.NonFiniteError,
                     match=r"Non-finite metric '\w+' = (nan|inf).* at step \d+"):
    _train(workdir, train__num_steps=8, optimizer__learning_rate=1e30)
  ckpt = ckpt_lib.Checkpointer(str(workdir / 'checkpoints'))
  # Nothing was saved from a state whose metrics were not finite.
  assert ckpt.latest_step() is None
  ckpt.close()


@pytest.mark.slow
def test_non_finite_parameters_are_never_checkpointed(tmp_path):
  """Step 1's metrics (loss and gradients at the initial parameters) are
  finite, but its update is not: the state must not be saved."""
  workdir = tmp_path / 'inf'
  with pytest.raises(train.NonFiniteError,
                     match=r'Non-finite parameters after step 1 \(.*kernel'):
    _train(workdir, train__num_steps=4, train__checkpoint_every_steps=1,
           optimizer__name='sgd', optimizer__learning_rate=1e39)
  ckpt = ckpt_lib.Checkpointer(str(workdir / 'checkpoints'))
  assert ckpt.latest_step() is None
  ckpt.close()


@pytest.mark.slow
def test_keeps_the_newest_checkpoints_and_never_overwrites_one(tmp_path):
  workdir = tmp_path / 'run'
  exp, state = _train(workdir, train__num_steps=5,
                      train__checkpoint_every_steps=1, train__max_to_keep=2)
  ckpt = exp.checkpointer()
  try:
    assert ckpt.all_steps() == [4, 5]
    for step in (4, 5):  # synchronous saves: digested as they complete
      assert ckpt_lib.verify_digest(str(workdir / 'checkpoints' / str(step)))
    # Saving another state under an existing step is refused; the stored
    # one is untouched.
    other = state.replace(params=jax.tree.map(lambda x: x + 1.0,
                                              state.params))
    assert ckpt.save(5, other, force=True) is False
    ckpt.wait_until_finished()
    restored = ckpt.restore(5, exp.abstract_state())
  finally:
    ckpt.close()
  helpers.assert_trees_equal(helpers.params_of(state),
                             helpers.params_of(restored))


@pytest.mark.slow
def test_partial_checkpoint_is_ignored_and_resume_continues(tmp_path):
  workdir = tmp_path / 'run'
  exp, _ = _train(workdir, train__num_steps=2)
  ckpts = workdir / 'checkpoints'
  saved = sorted(os.listdir(ckpts))
  # A save killed mid-way leaves a temporary directory with no commit mark.
  partial = ckpts / '9.orbax-checkpoint-tmp-123456'
  partial.mkdir()
  (partial / 'state').mkdir()
  (partial / 'state' / 'garbage').write_text('half-written')
  state, step = exp.restore()
  assert step == 2
  exp2, state2 = _train(workdir, train__num_steps=4)
  assert int(state2.step) == 4
  assert '2' in saved and (ckpts / '4').is_dir()


@pytest.mark.slow
def test_changed_model_config_names_the_leaf(tmp_path):
  workdir = tmp_path / 'run'
  _train(workdir, train__num_steps=2)
  exp = train.Experiment(helpers.smoke_config(model__latent_dim=5),
                         str(workdir))
  with pytest.raises(ConfigError, match=r'posterior/kernel'):
    exp.restore()


def _wait_for(predicate, timeout=120, proc=None):
  start = time.time()
  while time.time() - start < timeout:
    if predicate():
      return
    if proc is not None and proc.poll() is not None:
      raise AssertionError(f'process ended early: {proc.communicate()}')
    time.sleep(0.2)
  raise AssertionError('timed out')


def _long_run(workdir, *extra):
  cmd = helpers.main_command(
      workdir, '--config.train.num_steps=1000000',
      '--config.train.log_every_steps=1', *extra)
  return subprocess.Popen(cmd, cwd=helpers.REPO_ROOT,
                          env=helpers.subprocess_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


def _latest(workdir):
  """The newest complete step in `workdir`, or None. Polled while a trainer
  writes there: a step it deletes (max_to_keep) while orbax lists the
  steps is a FileNotFoundError, and the poll tries again."""
  try:
    ckpt = ckpt_lib.Checkpointer(str(pathlib.Path(workdir) / 'checkpoints'),
                                 create=False)
  except FileNotFoundError:
    return None
  try:
    return ckpt.latest_step()
  except FileNotFoundError:
    return None
  finally:
    ckpt.close()


def _train_steps(workdir):
  path = pathlib.Path(workdir) / 'metrics.jsonl'
  if not path.exists():
    return []
  return [json.loads(l)['step'] for l in path.read_text().splitlines()
          if l.strip() and json.loads(l)['split'] == 'train']


@pytest.mark.slow
def test_sigterm_saves_the_current_step(tmp_path):
  workdir = tmp_path / 'term'
  proc = _long_run(workdir, '--config.train.checkpoint_every_steps=1000000')
  _wait_for(lambda: len(_train_steps(workdir)) >= 5, proc=proc)
  proc.send_signal(signal.SIGTERM)
  out, err = proc.communicate(timeout=120)
  # 128 + SIGTERM: saved, then exited without the final evaluation.
  assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
  latest = _latest(workdir)
  assert latest is not None and latest >= 5
  assert latest == _train_steps(workdir)[-1]
  assert f'checkpoint saved at step {latest}' in out + err
  assert f'stopped at step {latest} of 1000000' in out
  assert not (workdir / 'eval').exists()


@pytest.mark.slow
def test_sigkill_resumes_from_last_complete_checkpoint(tmp_path):
  workdir = tmp_path / 'kill'
  proc = _long_run(workdir, '--config.train.checkpoint_every_steps=3',
                   '--config.train.async_checkpointing=True')
  _wait_for(lambda: (_latest(workdir) or 0) >= 6, proc=proc)
  proc.kill()
  proc.communicate(timeout=60)
  latest = _latest(workdir)
  assert latest >= 6 and latest % 3 == 0
  exp = train.Experiment(helpers.smoke_config(), str(workdir))
  restored, step = exp.restore()
  assert step == latest == int(restored.step)
  exp = train.Experiment(helpers.smoke_config(train__num_steps=latest + 2,
                                              train__log_every_steps=1),
                         str(workdir))
  state = exp.train()
  assert int(state.step) == latest + 2
  # The killed run may have logged steps past its last checkpoint; the
  # resumed run's records replace them, so each step is in metrics.jsonl
  # once, in order.
  assert _train_steps(workdir) == list(range(1, latest + 3))


@pytest.mark.parametrize('overrides,error,match', [
    (dict(family='gan9'), ConfigError, r"config.family='gan9'.*known"),
    (dict(model__image_shape=(28, 28, 1)), ConfigError,
     r'config.model.image_shape=\(28, 28, 1\).*\(8, 8, 1\)'),
    (dict(train__batch_size=0), ConfigError, r'config.train.batch_size=0'),
    (dict(data__name='npz:/nonexistent/x.npz'), DataError, 'nonexistent'),
    (dict(data__name='cifar100'), ConfigError, 'cifar100'),
    (dict(data__binarize='none'), ConfigError, 'config.data.binarize'),
    (dict(optimizer__name='adagrad'), ConfigError, 'config.optimizer.name'),
    (dict(eval__split='holdout'), ConfigError, 'holdout'),
    (dict(train__log_every_steps=0), ConfigError,
     'config.train.log_every_steps=0'),
    (dict(train__ema_decay=1.0), ConfigError, 'config.train.ema_decay'),
    (dict(train__profile_steps=-1), ConfigError,
     r'config.train.profile_steps=-1 must be an integer >= 0'),
    (dict(eval__estimators__iwae__chunk_size=3), ConfigError,
     r'config.eval.estimators.iwae.num_samples=8 must be a multiple of '
     r'config.eval.estimators.iwae.chunk_size=3'),
    (dict(eval__estimators__elbo__bound='iwea'), ConfigError,
     r"config.eval.estimators.elbo.bound='iwea'"),
])
def test_bad_config_is_one_clear_error_before_compiling(
    tmp_path, overrides, error, match):
  with pytest.raises(error, match=match):
    train.Experiment(helpers.smoke_config(**overrides), str(tmp_path))


def test_unknown_estimator_argument_is_named_before_compiling(tmp_path):
  config = helpers.smoke_config()
  with config.unlocked():  # a hand-written config file, not a CLI override
    config.eval.estimators.iwae.num_sample = 8
  with pytest.raises(ConfigError, match=(
      r"config.eval.estimators.iwae.num_sample: vae.log_likelihood takes no "
      r"argument 'num_sample'; its estimator arguments are \['bound', "
      r"'chunk_size', 'num_samples'\]")):
    train.Experiment(config, str(tmp_path))


@pytest.mark.parametrize('value', [1.5, True, '2', None])
def test_profile_steps_must_be_a_count(value):
  fields = helpers.smoke_config().train.to_dict()
  with pytest.raises(ConfigError, match=(
      rf'^config.train.profile_steps={value!r} must be an integer >= 0.$')):
    train.check_train_config(ml_collections.ConfigDict(
        dict(fields, profile_steps=value)))
  del fields['profile_steps']
  with pytest.raises(ConfigError, match=(
      r'^config.train.profile_steps is missing \(a config.json read without '
      r'jaxgen.workdir.load_config')):
    train.check_train_config(ml_collections.ConfigDict(fields))


def test_a_config_json_from_before_an_added_field_loads(tmp_path):
  """A config.json written before config.train.profile_steps existed loads
  through `workdir.load_config` with the neutral value (no trace), and the
  trainer takes it."""
  saved = json.loads(helpers.smoke_config().to_json_best_effort())
  del saved['train']['profile_steps']
  (tmp_path / 'config.json').write_text(json.dumps(saved))
  config = workdir_lib.load_config(str(tmp_path))
  assert config.train.profile_steps == 0
  train.check_train_config(config.train)


def test_only_process_0_draws_the_curves(tmp_path):
  # The method alone, on what it reads of an Experiment.
  exp = types.SimpleNamespace(config=helpers.smoke_config(),
                              workdir=str(tmp_path), is_main=False)
  exp.write_curves = functools.partial(train.Experiment.write_curves, exp)
  (tmp_path / 'metrics.jsonl').write_text(
      '{"step": 1, "split": "train", "loss": 2.0}\n'
      '{"step": 2, "split": "train", "loss": 1.0}\n')
  exp.is_main = False
  assert exp.write_curves() is None
  assert not (tmp_path / 'images').exists()
  exp.is_main = True
  assert exp.write_curves() == str(tmp_path / 'images' / 'curves.png')


def test_config_is_locked():
  config = helpers.smoke_config()
  with pytest.raises(AttributeError):
    config.train.num_stepz = 3


@pytest.mark.slow
def test_workdir_contents(tmp_path):
  workdir = tmp_path / 'run'
  _train(workdir, train__num_steps=2, train__image_every_steps=2,
         train__profile_steps=1)
  assert (workdir / 'config.json').is_file()
  assert list((workdir / 'tensorboard').iterdir())
  images = sorted(os.listdir(workdir / 'images'))
  # The curves are experiments.main's (tests/test_main.py).
  assert images == ['reconstructions_0000002.png', 'samples_0000002.png']
  # The trace of step 2 (after the compiling step 1): one run's folder.
  runs = list((workdir / 'profile' / 'plugins' / 'profile').iterdir())
  assert len(runs) == 1
  names = sorted(p.name for p in runs[0].iterdir())
  assert 'perfetto_trace.json.gz' in names, names
  assert any(n.endswith('.xplane.pb') for n in names), names
  # Training again with a changed config keeps the first config file.
  _train(workdir, train__num_steps=3)
  configs = sorted(p.name for p in workdir.glob('config*.json'))
  assert configs[0] == 'config.json' and len(configs) == 2


@pytest.mark.slow
def test_trains_on_a_tfds_dataset(tmp_path):
  """The TFDS path end to end, offline, through tfds.testing.mock_data."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  config = helpers.smoke_config(
      data__name='mnist', data__shuffle_before_split=False,
      data__splits__train='train', data__splits__validation='',
      data__splits__test='test[:40]', model__image_shape=(28, 28, 1),
      eval__periodic_split='', train__num_steps=2)
  config.data.splits.validation = ''
  with tfds.testing.mock_data(num_examples=64):
    exp = train.Experiment(config, str(tmp_path))
    state = exp.train()
    results = exp.evaluate(state, estimators=('elbo',))
  assert int(state.step) == 2
  assert results['num_examples'] == 40
  assert np.isfinite(results['elbo/bits_per_dim'])


@pytest.mark.slow
def test_ema_follows_its_recursion_and_is_evaluated(tmp_path):
  exp, state = _train(tmp_path / 'ema', train__num_steps=1,
                      train__ema_decay=0.75)
  init = exp.init_state()
  expected = jax.tree.map(lambda i, p: 0.75 * i + 0.25 * p,
                          helpers.params_of(init), helpers.params_of(state))
  helpers.assert_trees_close(jax.device_get(state.ema_params), expected,
                             atol=1e-7)
  assert exp.eval_params(state) is state.ema_params
  exp.config.unlock()
  exp.config.eval.use_ema = False
  assert exp.eval_params(state) is state.params


def test_count_trainable_leaves_out_non_trained_collections():
  """Only leaves under a 'params' key count when the tree has one."""
  plain = {'dense': {'kernel': np.zeros((3, 4)), 'bias': np.zeros(4)}}
  assert train.count_trainable(plain) == 16
  variables = {'params': plain, 'state': {'chains': np.zeros((100, 64))}}
  assert train.count_trainable(variables) == 16
  players = {'generator': {'params': plain, 'batch_stats': {'m': np.zeros(7)}},
             'discriminator': {'params': {'w': np.zeros((2, 5))}},
             'bank': np.zeros((50, 8, 8, 1))}
  assert train.count_trainable(players) == 26


def test_profile_stops_mid_loop_and_when_training_fails(tmp_path):
  """`train._Profile` closes its trace after its steps while the loop goes
  on, and when an error leaves the loop with the trace open: each time a
  trace is written and none stays open (a new one can start)."""
  state = jax.numpy.zeros(3)

  def traces(directory):
    return list((directory / 'plugins' / 'profile').iterdir())

  # 2 steps traced from the end of step 1, in a loop of 5 steps.
  profile = train._Profile(str(tmp_path / 'mid'), 2, first_step=1)
  with profile:
    for step in range(5):
      profile.before_step(step, state)
      assert profile.active == (step in (1, 2))
  assert len(traces(tmp_path / 'mid')) == 1
  # An error while the trace is open (NonFiniteError, a failed save).
  profile = train._Profile(str(tmp_path / 'error'), 10, first_step=1)
  with pytest.raises(RuntimeError, match='boom'):
    with profile:
      for step in range(5):
        profile.before_step(step, state)
        if step == 2:
          raise RuntimeError('boom')
  assert not profile.active
  assert len(traces(tmp_path / 'error')) == 1
  jax.profiler.start_trace(str(tmp_path / 'after'))  # none left running
  jax.profiler.stop_trace()
