"""metrics.jsonl and TensorBoard writing, including resume bookkeeping."""

import json

import numpy as np
from PIL import Image

from jaxgen import images
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


def _record(step, split='train', **values):
  return json.dumps({'step': step, 'split': split, **values})


# A resumed run's metrics.jsonl: steps 3 and 4 logged again after the
# restart, a record cut short by a kill, non-finite values as the writer
# stores them, and a periodic evaluation.
_LINES = [
    _record(1, loss=8.0, kl=1.0, steps_per_sec=2.0),
    _record(2, loss=4.0, kl=2.0, steps_per_sec=2.0),
    _record(3, loss=3.0, kl=3.0, steps_per_sec=2.0),
    _record(4, loss=2.0, kl=4.0, steps_per_sec=2.0),
    '{"step": 5, "spl',
    _record(3, loss=1.5, kl='nan', steps_per_sec=1.0),
    _record(4, loss=1.0, kl='inf', steps_per_sec=1.0),
    _record(2, 'validation', loss=5.0, num_examples=64,
            **{'iwae/bits_per_dim': 0.5}),
    _record(4, 'validation', loss='-inf', num_examples=64,
            **{'iwae/bits_per_dim': 0.25, 'note': 'text'}),
]


def test_metric_series_keeps_the_last_value_of_each_step():
  series = writers.metric_series(_LINES)
  assert list(series) == ['train', 'validation']
  assert list(series['train']) == ['loss', 'kl', 'steps_per_sec']
  assert list(series['validation']) == ['loss', 'num_examples',
                                        'iwae/bits_per_dim']
  expected = {
      ('train', 'loss'): ([1, 2, 3, 4], [8.0, 4.0, 1.5, 1.0]),
      ('train', 'kl'): ([1, 2, 3, 4], [1.0, 2.0, np.nan, np.inf]),
      ('train', 'steps_per_sec'): ([1, 2, 3, 4], [2.0, 2.0, 1.0, 1.0]),
      ('validation', 'loss'): ([2, 4], [5.0, -np.inf]),
      ('validation', 'num_examples'): ([2, 4], [64.0, 64.0]),
      ('validation', 'iwae/bits_per_dim'): ([2, 4], [0.5, 0.25]),
  }
  for (split, name), (steps, values) in expected.items():
    got_steps, got_values = series[split][name]
    assert got_steps.dtype == np.int64 and got_values.dtype == np.float64
    np.testing.assert_array_equal(got_steps, steps)
    np.testing.assert_array_equal(got_values, values)


def test_write_curves_draws_one_panel_per_metric(tmp_path):
  (tmp_path / writers.METRICS_FILE).write_text('\n'.join(_LINES) + '\n')
  path = writers.write_curves(str(tmp_path), title='vae: run')
  assert path == str(tmp_path / 'images' / writers.CURVES_FILE)
  # loss and kl (train, validation points on loss's panel) and the bits per
  # dim of the evaluation alone; not steps_per_sec nor num_examples.
  panels = images.curves_panels(writers.metric_series(_LINES))
  assert [(name, list(by_split)) for name, by_split in panels] == [
      ('loss', ['train', 'validation']), ('kl', ['train']),
      ('iwae/bits_per_dim', ['validation'])]
  with Image.open(path) as png:
    assert png.format == 'PNG' and png.mode == 'RGB'
    assert png.size == (3 * images.CURVES_PANEL[0],
                        images.CURVES_PANEL[1] + images.CURVES_TITLE_HEIGHT)
  assert 5_000 < (tmp_path / 'images' / writers.CURVES_FILE).stat(
  ).st_size < 500_000
  # A rerun on the same file writes the same bytes.
  first = (tmp_path / 'images' / writers.CURVES_FILE).read_bytes()
  writers.write_curves(str(tmp_path), title='vae: run')
  assert (tmp_path / 'images' / writers.CURVES_FILE).read_bytes() == first


def test_write_curves_without_metrics_writes_nothing(tmp_path):
  assert writers.write_curves(str(tmp_path)) is None  # no metrics.jsonl
  (tmp_path / writers.METRICS_FILE).write_text('')
  assert writers.write_curves(str(tmp_path)) is None  # an empty one
  (tmp_path / writers.METRICS_FILE).write_text(
      _record(1, steps_per_sec=3.0) + '\n{"step": 2')
  assert writers.write_curves(str(tmp_path)) is None  # nothing to draw
  assert not (tmp_path / 'images').exists()
