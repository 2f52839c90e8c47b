"""metrics.jsonl and TensorBoard writing, including resume bookkeeping."""

import json

from jaxgen import writers


def _steps(path):
  return [json.loads(l)['step'] for l in path.read_text().splitlines()]


def test_resume_drops_records_after_the_checkpoint_step(tmp_path):
  w = writers.MetricWriter(str(tmp_path), enabled=True, tensorboard=False)
  for step in range(1, 6):
    w.write_scalars(step, {'loss': float(step)})
  w.write_scalars(4, {'nll': 1.0}, split='validation')
  w.close()
  path = tmp_path / writers.METRICS_FILE
  with open(path, 'a') as f:
    f.write('{"step": 6, "spl')  # a record cut short by a kill
  w = writers.MetricWriter(str(tmp_path), enabled=True, tensorboard=False,
                           resume_step=3)
  w.write_scalars(4, {'loss': 40.0})
  w.close()
  assert _steps(path) == [1, 2, 3, 4]
  assert json.loads(path.read_text().splitlines()[-1])['loss'] == 40.0


def test_fresh_run_and_resume_without_later_records_keep_everything(tmp_path):
  w = writers.MetricWriter(str(tmp_path), enabled=True, tensorboard=False)
  w.write_scalars(1, {'loss': 1.0})
  w.close()
  path = tmp_path / writers.METRICS_FILE
  before = path.stat().st_mtime_ns
  w = writers.MetricWriter(str(tmp_path), enabled=True, tensorboard=False,
                           resume_step=1)
  w.close()
  assert _steps(path) == [1] and path.stat().st_mtime_ns == before
  writers.MetricWriter(str(tmp_path / 'new'), enabled=True, tensorboard=False,
                       resume_step=None).close()
  assert (tmp_path / 'new' / writers.METRICS_FILE).read_text() == ''
