"""The command line: train, then evaluate and sample from the workdir alone."""

import json

import pytest

from tests import helpers

# They train through the trainer or start processes.
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('cli')
  proc = helpers.run_main(workdir)
  return workdir, proc


def test_train_leaves_a_complete_workdir(trained):
  workdir, proc = trained
  assert 'vae on digits (8, 8, 1)' in proc.stdout
  assert (workdir / 'config.json').is_file()
  assert (workdir / 'checkpoints' / '4').is_dir()
  assert (workdir / 'images' / 'samples_0000004.png').is_file()
  assert (workdir / 'images' / 'reconstructions_0000004.png').is_file()
  assert (workdir / 'eval' / 'test_step0000004.json').is_file()
  lines = (workdir / 'metrics.jsonl').read_text().splitlines()
  assert json.loads(lines[-1])['step'] == 4
  assert 'step/s' in proc.stderr  # the progress bar


def test_evaluate_from_workdir_reproduces_training_eval(trained):
  workdir, _ = trained
  at_train = json.loads((workdir / 'eval' / 'test_step0000004.json')
                        .read_text())
  (workdir / 'eval' / 'test_step0000004.json').unlink()
  proc = helpers.run_main(workdir, '--mode=evaluate', config=None)
  again = json.loads((workdir / 'eval' / 'test_step0000004.json')
                     .read_text())
  assert again == at_train  # same key, same params: the same numbers
  assert 'iwae/bits_per_dim' in proc.stdout


def test_sample_from_workdir(trained):
  workdir, _ = trained
  png = workdir / 'images' / 'samples_0000004.png'
  before = png.read_bytes()
  png.unlink()
  helpers.run_main(workdir, '--mode=sample', config=None)
  assert png.read_bytes() == before  # fold_in(sample_key, step)


def test_mistyped_override_is_an_error(tmp_path):
  proc = helpers.run_main(tmp_path, '--config.train.num_stepz=3', check=False)
  assert proc.returncode != 0
  assert 'num_stepz' in proc.stderr
  assert not (tmp_path / 'checkpoints').exists()


def test_evaluate_without_checkpoint_is_a_clear_error(tmp_path):
  proc = helpers.run_main(tmp_path, '--mode=evaluate', check=False)
  assert proc.returncode == 2
  assert 'No checkpoint in' in proc.stderr
  assert 'Traceback' not in proc.stderr


def test_bad_config_value_is_one_line_not_a_traceback(tmp_path):
  proc = helpers.run_main(tmp_path, '--config.data.name=nosuch', check=False)
  assert proc.returncode == 2
  assert 'Traceback' not in proc.stderr
  assert "error: data.name='nosuch' is not a known dataset" in proc.stderr
  assert not (tmp_path / 'checkpoints').exists()
