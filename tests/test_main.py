"""The command line: train, then evaluate and sample from the workdir alone.

One trained smoke workdir (a subprocess, as a user runs it) is shared by the
module; everything else calls the command line in this process
(`experiments.main.cli`), which parses flags into a fresh FlagValues.
"""

import hashlib
import json
import os
import re
import shutil

import numpy as np
import pytest

from experiments import main as main_lib
from jaxgen import images
from tests import helpers

# They train through the trainer or start processes.
pytestmark = pytest.mark.slow

SMOKE = '--config=experiments/configs/vae.py:smoke'


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('cli')
  proc = helpers.run_main(workdir)
  return workdir, proc


def _cli(capsys, *args):
  """(exit status, stdout, stderr lines) of the command line in-process."""
  capsys.readouterr()
  status = main_lib.cli(['main'] + list(args))
  out, err = capsys.readouterr()
  # Progress bars redraw with carriage returns; keep what a terminal shows.
  lines = [line.rsplit('\r', 1)[-1] for line in err.splitlines()]
  return status, out, [line for line in lines if line.strip()]


def _snapshot(folder):
  """{relative path: sha256} of every file under `folder`."""
  out = {}
  for root, _, files in os.walk(folder):
    for name in files:
      path = os.path.join(root, name)
      with open(path, 'rb') as f:
        out[os.path.relpath(path, folder)] = hashlib.sha256(
            f.read()).hexdigest()
  return out


def _one_error(status, err, *needles):
  assert status == 2, err
  assert len(err) == 1 and err[0].startswith('error: '), err
  for needle in needles:
    assert needle in err[0], err[0]


# ------------------------------------------------------------------ train
def test_train_leaves_a_complete_workdir(trained):
  workdir, proc = trained
  assert 'vae on digits (8, 8, 1)' in proc.stdout
  assert (workdir / 'config.json').is_file()
  assert (workdir / 'checkpoints' / '4').is_dir()
  assert (workdir / 'images' / 'samples_0000004.png').is_file()
  assert (workdir / 'images' / 'reconstructions_0000004.png').is_file()
  assert (workdir / 'images' / 'curves.png').is_file()
  assert (workdir / 'eval' / 'test_step0000004.json').is_file()
  assert not (workdir / 'profile').exists()  # config.train.profile_steps=0
  lines = (workdir / 'metrics.jsonl').read_text().splitlines()
  assert json.loads(lines[-1])['step'] == 4
  assert 'step/s' in proc.stderr  # the progress bar
  assert 'resuming' not in proc.stdout
  # The one-sample loss metric and each estimator are told apart.
  assert "loss_fn metrics (the training loss's terms" in proc.stdout
  assert 'estimator iwae[bound=iwae, num_samples=8]: iwae/log_likelihood=' \
      in proc.stdout
  # stderr holds the progress bars alone: no library's log lines (orbax's
  # checkpoint messages, absl, JAX).
  others = [line for line in re.split(r'[\r\n]', proc.stderr)
            if line.strip() and not re.match(r'(vae train|eval test):',
                                             line.strip())]
  assert not others, others


def test_resuming_says_so(trained, tmp_path, capsys, repo_cwd):
  workdir = tmp_path / 'more'
  shutil.copytree(trained[0], workdir)
  status, out, _ = _cli(capsys, f'--workdir={workdir}', SMOKE,
                        '--config.train.num_steps=6')
  assert status == 0
  assert f'resuming from step 4 of 6 in {workdir}\n' in out
  assert (workdir / 'eval' / 'test_step0000006.json').is_file()


def test_divergence_is_one_line_and_exit_status_3(tmp_path, capsys,
                                                  repo_cwd):
  status, _, err = _cli(capsys, f'--workdir={tmp_path}', SMOKE,
                        '--config.optimizer.learning_rate=1e30')
  assert status == main_lib.EXIT_DIVERGED == 3
  errors = [line for line in err if line.startswith('error:')]
  assert len(errors) == 1 and errors[0] == err[-1], err
  assert 'Traceback' not in '\n'.join(err)
  assert "Non-finite metric 'elbo'" in errors[0]
  assert 'at step ' in errors[0] and 'checkpoint' in errors[0]


# --------------------------------------------------------- evaluate, sample
def test_evaluate_reproduces_training_and_restores_the_given_step(
    trained, capsys):
  workdir, _ = trained
  at_train = json.loads((workdir / 'eval' / 'test_step0000004.json')
                        .read_text())
  before = _snapshot(workdir)
  status, out, err = _cli(capsys, f'--workdir={workdir}', '--mode=evaluate')
  assert status == 0
  # The progress bar's last state alone: no library's log lines.
  assert all(line.startswith('eval test:') for line in err), err
  path = workdir / 'eval' / 'test_step0000004_seed0.json'
  # The newest step, the config's seed: the numbers training wrote.
  assert json.loads(path.read_text()) == at_train
  assert 'iwae/bits_per_dim' in out and f'wrote {path}' in out
  # The training curves are redrawn from the same metrics.jsonl: the same
  # bytes as training wrote in its own process (the snapshot below).
  assert f'wrote {workdir / "images" / "curves.png"}' in out

  status, _, _ = _cli(capsys, f'--workdir={workdir}', '--mode=evaluate',
                      '--step=2', '--seed=1')
  assert status == 0
  at_2 = json.loads((workdir / 'eval' / 'test_step0000002_seed1.json')
                    .read_text())
  assert at_2['step'] == 2
  assert at_2['iwae/log_likelihood'] != at_train['iwae/log_likelihood']
  # Only the two new files; every file training wrote is unchanged.
  after = _snapshot(workdir)
  assert sorted(set(after) - set(before)) == [
      os.path.join('eval', 'test_step0000002_seed1.json'),
      os.path.join('eval', 'test_step0000004_seed0.json')]
  assert {k: after[k] for k in before} == before
  # With --out, evaluate writes there alone: no curves in the workdir.
  other = workdir.parent / f'{workdir.name}_out'
  status, out, _ = _cli(capsys, f'--workdir={workdir}', '--mode=evaluate',
                        f'--out={other}')
  assert status == 0 and 'curves.png' not in out
  assert os.listdir(other) == ['test_step0000004_seed0.json']
  assert _snapshot(workdir) == after


def test_profile_steps_is_not_compared_by_evaluate(tmp_path):
  """A trace changes nothing trained: evaluate accepts a --config that
  differs from config.json in config.train.profile_steps alone, and a
  config.json written before the field existed."""
  config = helpers.smoke_config()
  saved = json.loads(config.to_json_best_effort())
  del saved['train']['profile_steps']
  (tmp_path / 'config.json').write_text(json.dumps(saved))
  main_lib.check_same_config(config, str(tmp_path), 'evaluate')
  config.train.profile_steps = 3
  main_lib.check_same_config(config, str(tmp_path), 'evaluate')
  config.train.num_steps = 5
  with pytest.raises(main_lib.UsageError, match='config.train.num_steps'):
    main_lib.check_same_config(config, str(tmp_path), 'evaluate')


def test_sample_seeds_names_and_no_overwrite(trained, tmp_path, capsys,
                                             repo_cwd):
  workdir, _ = trained
  before = _snapshot(workdir)
  out_dir = tmp_path / 'grids'
  paths = {}
  for seed in (0, 1):
    status, out, _ = _cli(capsys, f'--workdir={workdir}', '--mode=sample',
                          f'--seed={seed}', f'--out={out_dir}')
    assert status == 0
    paths[seed] = out_dir / f'samples_step0000004_seed{seed}_num4.png'
    assert f'wrote {paths[seed]}' in out
    assert (out_dir / f'reconstructions_step0000004_seed{seed}.png').is_file()
  assert paths[0].read_bytes() != paths[1].read_bytes()
  # The config's seed and step give exactly training's own grid.
  assert paths[0].read_bytes() == (
      workdir / 'images' / 'samples_0000004.png').read_bytes()
  assert _snapshot(workdir) == before  # --out: the workdir is untouched

  # An identical rerun (here with the run's own config passed again) writes
  # identical bytes; a different result under an existing name is refused
  # and nothing is written.
  grids = _snapshot(out_dir)
  assert _cli(capsys, f'--workdir={workdir}', SMOKE, '--mode=sample',
              '--seed=1', f'--out={out_dir}')[0] == 0
  assert _snapshot(out_dir) == grids
  paths[1].write_bytes(b'another result')
  grids = _snapshot(out_dir)
  status, _, err = _cli(capsys, f'--workdir={workdir}', '--mode=sample',
                        '--seed=1', f'--out={out_dir}')
  _one_error(status, err, str(paths[1]), 'refusing to overwrite')
  assert _snapshot(out_dir) == grids

  status, _, _ = _cli(capsys, f'--workdir={workdir}', '--mode=sample',
                      '--step=2', '--num=9', f'--out={out_dir}')
  assert status == 0
  assert (out_dir / 'samples_step0000002_seed0_num9.png').is_file()


# -------------------------------------------------------------- bad input
@pytest.mark.parametrize('args, needles', [
    (('--config.train.num_stpes=10',),
     ("--config.train.num_stpes", "did you mean 'num_steps'")),
    (('--config.trian.num_steps=10',), ("'trian'", "did you mean 'train'")),
    (('--config.train.num_steps=ten',),
     ('--config.train.num_steps=ten', 'expected an integer')),
    (('--config.optimizer.learning_rate=nan',),
     ('config.optimizer.learning_rate=nan', 'finite')),
    (('--config.optimizer.learning_rate=inf',),
     ('config.optimizer.learning_rate=inf', 'finite')),
    (('--config.optimizer.learning_rate=0',),
     ('config.optimizer.learning_rate=0', '> 0')),
    (('--config.train.batch_size=-32',), ('config.train.batch_size=-32',)),
    (('--config.eval.batch_size=0',), ('config.eval.batch_size=0',)),
    (('--config.train.num_steps=0',), ('config.train.num_steps=0',)),
    (('--config.optimizer.b2=1.5',), ('config.optimizer.b2=1.5', '[0, 1)')),
    (('--config.data.name=nosuch',), ("data.name='nosuch'",)),
    (('--config.model.hidden_dims=(3,x)',),
     ('--config.model.hidden_dims', 'expected a tuple of numbers',
      '(256, 256)')),
    (('--config.seed=-1',), ('config.seed=-1', '>= 0')),
    (('--seed=1',), ('--seed', '--mode=evaluate')),
    (('--modee=sample',), ("'modee'", 'mode')),
])
def test_bad_train_input_is_one_error_line(args, needles, tmp_path, capsys,
                                           repo_cwd):
  workdir = tmp_path / 'run'
  status, _, err = _cli(capsys, f'--workdir={workdir}', SMOKE, *args)
  _one_error(status, err, *needles)
  assert not workdir.exists()  # nothing compiled, nothing written


def test_unknown_config_option_is_one_error_line(tmp_path, capsys, repo_cwd):
  status, _, err = _cli(capsys, f'--workdir={tmp_path}',
                        '--config=experiments/configs/vae.py:digts')
  _one_error(status, err, "'digts' is not known", 'dataset: digits')
  status, _, err = _cli(capsys, f'--workdir={tmp_path}',
                        '--config=experiments/configs/nosuch.py')
  _one_error(status, err, 'nosuch.py', 'No such file')


def test_bad_workdir_is_one_error_line(tmp_path, capsys, repo_cwd,
                                       monkeypatch):
  afile = tmp_path / 'afile'
  afile.write_text('x')
  for workdir in (afile, afile / 'run'):
    status, _, err = _cli(capsys, f'--workdir={workdir}', SMOKE)
    _one_error(status, err, f'--workdir={workdir}', 'regular file')
  status, _, err = _cli(capsys, '--workdir=', SMOKE)
  _one_error(status, err, '--workdir is empty')
  readonly = tmp_path / 'readonly'
  readonly.mkdir()
  real_access = os.access
  monkeypatch.setattr(os, 'access', lambda path, mode: (
      False if str(path) == str(readonly) else real_access(path, mode)))
  status, _, err = _cli(capsys, f'--workdir={readonly / "run"}', SMOKE)
  _one_error(status, err, str(readonly), 'not writable')


def test_bad_data_files_are_one_error_line(tmp_path, capsys, repo_cwd):
  notzip = tmp_path / 'notzip.npz'
  notzip.write_text('hello')
  status, _, err = _cli(capsys, f'--workdir={tmp_path / "a"}', SMOKE,
                        f'--config.data.name=npz:{notzip}')
  _one_error(status, err, str(notzip), 'is not an .npz archive')
  empty = tmp_path / 'tfds'
  empty.mkdir()
  status, _, err = _cli(capsys, f'--workdir={tmp_path / "b"}', SMOKE,
                        '--config.data.name=mnist',
                        '--config.data.splits.train=train',
                        '--config.data.splits.validation=',
                        '--config.data.splits.test=test',
                        '--config.data.shuffle_before_split=false',
                        f'--config.data.data_dir={empty}')
  _one_error(status, err, "TFDS dataset 'mnist'", 'not prepared', str(empty))


def test_bad_evaluate_and_sample_input_is_one_error_line(trained, tmp_path,
                                                         capsys, repo_cwd):
  workdir, _ = trained
  before = _snapshot(workdir)
  status, _, err = _cli(capsys, f'--workdir={tmp_path / "none"}',
                        '--mode=evaluate')
  _one_error(status, err, 'config.json', 'train there first')
  status, _, err = _cli(capsys, f'--workdir={tmp_path}', SMOKE,
                        '--mode=evaluate')
  _one_error(status, err, 'config.json')
  status, _, err = _cli(capsys, f'--workdir={workdir}', '--mode=sample',
                        '--step=3')
  _one_error(status, err, '--step=3', 'the saved steps are [2, 4]')
  status, _, err = _cli(capsys, f'--workdir={workdir}', '--mode=sample',
                        SMOKE, '--config.seed=1')
  _one_error(status, err, 'config.seed (0 in config.json, 1 here)',
             '--seed')
  status, _, err = _cli(capsys, f'--workdir={workdir}', '--mode=evaluate',
                        '--num=3')
  _one_error(status, err, '--num', '--mode=sample')
  status, _, err = _cli(capsys, f'--workdir={workdir}', '--mode=sample',
                        '--num=0')
  _one_error(status, err, '--num')
  assert _snapshot(workdir) == before


def test_evaluate_without_checkpoint_is_a_clear_error(tmp_path, capsys,
                                                      repo_cwd):
  (tmp_path / 'config.json').write_text(
      helpers.smoke_config().to_json_best_effort(indent=2, sort_keys=True))
  status, _, err = _cli(capsys, f'--workdir={tmp_path}', '--mode=evaluate')
  _one_error(status, err, 'no checkpoint in', 'train first')


def test_reconstruction_grid_labels_its_rows(trained):
  workdir, _ = trained
  from PIL import Image  # pylint: disable=g-import-not-at-top
  grid = np.asarray(Image.open(workdir / 'images' /
                               'reconstructions_0000004.png'))
  labels = images.label_rows(np.zeros((19, 10, 1), np.uint8),
                             images.RECONSTRUCTION_LABELS, scale=8)
  margin = labels.shape[1] - 80
  np.testing.assert_array_equal(grid[:, :margin], labels[:, :margin, 0])
  assert (grid[:, :margin] < 128).any()  # ink: the labels


def test_exit_statuses_are_documented():
  doc = main_lib.__doc__
  for status in ('0 ', '2 ', '3 ', '143 '):
    assert f'\n  {status}' in doc
  assert (main_lib.EXIT_OK, main_lib.EXIT_BAD_INPUT, main_lib.EXIT_DIVERGED,
          main_lib.EXIT_SIGTERM) == (0, 2, 3, 143)
