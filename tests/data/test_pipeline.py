"""Train stream (grain) and exact evaluation batches."""

import json
import math

import numpy as np
import pytest

from jaxgen import data
from jaxgen.errors import ConfigError


def _source(n):
  """Rows whose label is their index, and whose image encodes it too."""
  images = np.broadcast_to(
      (np.arange(n) % 256).astype(np.uint8)[:, None, None, None], (n, 2, 2, 1))
  return data.ArraySource(np.ascontiguousarray(images), np.arange(n))


def _labels(iterator, steps):
  return [next(iterator)['label'].tolist() for _ in range(steps)]


def test_train_batches_format_and_determinism():
  src = _source(103)
  it = data.train_iterator(src, batch_size=10, seed=0)
  batch = next(it)
  assert set(batch) == {'image', 'label', 'mask'}
  assert batch['image'].dtype == np.uint8
  assert batch['image'].shape == (10, 2, 2, 1)
  assert batch['label'].dtype == np.int32 and batch['label'].shape == (10,)
  assert batch['mask'].dtype == np.bool_ and batch['mask'].all()
  np.testing.assert_array_equal(batch['image'][:, 0, 0, 0],
                                batch['label'] % 256)
  a = _labels(data.train_iterator(src, batch_size=10, seed=0), 25)
  b = _labels(data.train_iterator(src, batch_size=10, seed=0, num_threads=0,
                                  prefetch_buffer_size=0), 25)
  c = _labels(data.train_iterator(src, batch_size=10, seed=1), 25)
  assert a == b
  assert a != c


def test_epochs_are_reshuffled_permutations():
  src = _source(103)  # 10 batches of 10 per epoch; 3 rows dropped per epoch.
  labels = np.array(_labels(data.train_iterator(src, batch_size=10, seed=3),
                            30)).reshape(3, 100)
  for epoch in labels:
    assert len(set(epoch.tolist())) == 100  # No repeats within an epoch.
  assert not np.array_equal(labels[0], labels[1])
  assert not np.array_equal(labels[1], labels[2])
  # Over many epochs every row is seen: the dropped rows change per epoch.
  many = _labels(data.train_iterator(src, batch_size=10, seed=3), 200)
  assert set(np.ravel(many)) == set(range(103))


def test_state_round_trip_across_epoch_boundary():
  src = _source(45)  # 4 batches of 10 per epoch.
  reference = data.train_iterator(src, batch_size=10, seed=7)
  expected = _labels(reference, 13)
  for consumed in (0, 3, 4, 5, 9):
    it = data.train_iterator(src, batch_size=10, seed=7)
    _labels(it, consumed)
    state = json.loads(json.dumps(it.get_state()))
    fresh = data.train_iterator(src, batch_size=10, seed=7)
    fresh.set_state(state)
    assert _labels(fresh, 13 - consumed) == expected[consumed:]
  assert json.loads(json.dumps(it.get_state())) == it.get_state()


def test_process_shards_are_disjoint_and_in_step():
  src = _source(103)
  count = 3
  iterators = [data.train_iterator(src, batch_size=8, seed=2,
                                   process_index=p, process_count=count)
               for p in range(count)]
  single = data.train_iterator(src, batch_size=8 * count, seed=2)
  # A global batch of 24 rows: 103 // 24 = 4 batches per epoch.
  for epoch in range(3):
    seen = [np.ravel(_labels(it, 4)) for it in iterators]
    union = np.concatenate(seen)
    assert len(set(union.tolist())) == len(union) == 96
  # The processes' blocks, concatenated, are the single-process batches.
  iterators = [data.train_iterator(src, batch_size=8, seed=2,
                                   process_index=p, process_count=count)
               for p in range(count)]
  for _ in range(9):  # across two epoch boundaries
    blocks = [next(it)['label'] for it in iterators]
    np.testing.assert_array_equal(np.concatenate(blocks),
                                  next(single)['label'])
  with pytest.raises(ConfigError, match='process_index'):
    data.train_iterator(src, batch_size=8, seed=2, process_index=3,
                        process_count=3)


def test_batch_larger_than_process_share():
  with pytest.raises(ConfigError, match=r'batch_size=40.*3 process.*120'):
    data.train_iterator(_source(103), batch_size=40, seed=0, process_count=3)
  with pytest.raises(ConfigError, match='batch_size'):
    data.train_iterator(_source(10), batch_size=0, seed=0)
  with pytest.raises(ConfigError, match='seed'):
    data.train_iterator(_source(10), batch_size=2, seed=-1)


@pytest.mark.parametrize('n', [1, 7, 30, 31, 103])
@pytest.mark.parametrize('process_count', [1, 2, 3])
def test_eval_batches_cover_split_exactly_once(n, process_count):
  src = _source(n)
  batch_size = 4
  expected = data.num_eval_batches(src, batch_size=batch_size,
                                   process_count=process_count)
  assert expected == math.ceil(math.ceil(n / process_count) / batch_size)
  seen = []
  for p in range(process_count):
    batches = list(data.eval_batches(src, batch_size=batch_size,
                                     process_index=p,
                                     process_count=process_count))
    assert len(batches) == expected
    for batch in batches:
      assert batch['image'].shape == (batch_size, 2, 2, 1)
      assert batch['image'].dtype == np.uint8
      assert batch['label'].dtype == np.int32
      assert batch['mask'].dtype == np.bool_
      # Real rows first, padding (copies of row 0) after.
      mask = batch['mask']
      assert not np.any(mask[1:] & ~mask[:-1])
      assert (batch['label'][~mask] == 0).all()
      seen.extend(batch['label'][mask].tolist())
  assert seen == list(range(n))  # Shares are contiguous and in order.


def test_eval_batches_generic_source_and_points():
  ds = data.load_dataset('toy:ring8', splits={'test': 'all'}, num_points=10)
  batches = list(data.eval_batches(ds.splits['test'], batch_size=4))
  assert [b['mask'].sum() for b in batches] == [4, 4, 2]
  assert batches[0]['point'].shape == (4, 2)

  class ListSource:  # Only the grain protocol: no `gather`.

    def __len__(self):
      return 5

    def __getitem__(self, i):
      return {'image': np.full((1, 1, 1), i, np.uint8), 'label': np.int32(i)}

  batches = list(data.eval_batches(ListSource(), batch_size=3,
                                   process_index=1, process_count=2))
  assert len(batches) == 1
  assert batches[0]['label'].tolist() == [3, 4, 0]
  assert batches[0]['mask'].tolist() == [True, True, False]


def test_eval_batches_checks_arguments_eagerly():
  with pytest.raises(ConfigError, match='process_index'):
    data.eval_batches(_source(5), batch_size=2, process_index=2,
                      process_count=2)
  with pytest.raises(ConfigError, match='batch_size'):
    data.eval_batches(_source(5), batch_size=0)
