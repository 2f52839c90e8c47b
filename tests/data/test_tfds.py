"""The TFDS path, offline, through ``tfds.testing.mock_data``."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxgen import data
from jaxgen.errors import ConfigError
from jaxgen.errors import DataError

N = 24


@pytest.fixture
def mock():
  with tfds.testing.mock_data(num_examples=N):
    yield


def _rows(source):
  return source.gather(np.arange(len(source)))


@pytest.mark.parametrize('name,shape', [
    ('mnist', (28, 28, 1)), ('fashion_mnist', (28, 28, 1)),
    ('cifar10', (32, 32, 3))])
def test_shapes_dtypes_labels(mock, name, shape):
  ds = data.load_dataset(name, splits={'train': 'train', 'test': 'test'})
  assert ds.image_shape == shape and ds.num_classes == 10
  assert ds.pixel_levels == 256 and ds.point_dim is None
  assert ds.info['source'] == 'tfds'
  for split in ('train', 'test'):
    source = ds.splits[split]
    assert len(source) == N
    record = source[0]
    assert set(record) == {'image', 'label'}  # cifar10's 'id' is dropped.
    assert record['image'].dtype == np.uint8 and record['image'].shape == shape
    assert record['label'].dtype == np.int32 and record['label'].shape == ()
    rows = _rows(source)
    assert rows['image'].shape == (N,) + shape
    assert rows['label'].dtype == np.int32
    assert ((rows['label'] >= 0) & (rows['label'] < 10)).all()


@pytest.mark.parametrize('name', ['mnist', 'cifar10'])
def test_split_slicing(mock, name):
  full = _rows(data.load_dataset(name, splits={'train': 'train'})
               .splits['train'])
  ds = data.load_dataset(name, splits={'train': 'train[:75%]',
                                       'validation': 'train[75%:]',
                                       'test': 'test[5:9]'})
  assert [len(s) for s in ds.splits.values()] == [18, 6, 4]
  train, validation = _rows(ds.splits['train']), _rows(ds.splits['validation'])
  np.testing.assert_array_equal(train['image'], full['image'][:18])
  np.testing.assert_array_equal(validation['image'], full['image'][18:])
  np.testing.assert_array_equal(validation['label'], full['label'][18:])
  ds = data.load_dataset(name, splits={'train': 'train[:2]+test[-3:]'})
  assert len(ds.splits['train']) == 5


def test_binarized_mnist(mock):
  ds = data.load_dataset('binarized_mnist', splits={
      'train': 'train', 'validation': 'validation', 'test': 'test'})
  assert ds.num_classes is None and ds.pixel_levels == 2
  rows = _rows(ds.splits['validation'])
  assert (rows['label'] == -1).all()
  assert rows['image'].dtype == np.uint8


def test_binarized_mnist_pixels_scaled_to_255():
  # mock_data fills images with 0..255; give binarized_mnist real 0/1 pixels.
  bits = np.random.default_rng(0).integers(0, 2, (28, 28, 1), dtype=np.uint8)

  def as_data_source(self, split, **kwargs):
    del self, kwargs
    return [{'image': bits}] * 5

  with tfds.testing.mock_data(num_examples=5,
                              as_data_source_fn=as_data_source):
    ds = data.load_dataset('binarized_mnist', splits={'train': 'train'})
    image = ds.splits['train'][3]['image']
  np.testing.assert_array_equal(image, bits * 255)


def test_fixed_binarization_of_tfds(mock):
  kwargs = dict(splits={'train': 'train[:10]', 'test': 'test[:10]'},
                binarize='fixed', binarize_seed=1)
  a = data.load_dataset('mnist', **kwargs)
  b = data.load_dataset('mnist', **kwargs)
  assert a.pixel_levels == 2
  rows = _rows(a.splits['train'])['image']
  assert set(np.unique(rows)) == {0, 255}
  np.testing.assert_array_equal(rows, _rows(b.splits['train'])['image'])
  tail = data.load_dataset('mnist', splits={'train': 'train[5:10]'},
                           binarize='fixed', binarize_seed=1)
  np.testing.assert_array_equal(_rows(tail.splits['train'])['image'],
                                rows[5:])


def test_tfds_split_errors(mock):
  with pytest.raises(ConfigError,
                     match=r"splits\.validation.*'mnist'.*'train', 'test'"):
    data.load_dataset('mnist', splits={'train': 'train',
                                       'validation': 'validation'})
  with pytest.raises(DataError, match=r'splits\.test.*test\[30:\]'):
    data.load_dataset('mnist', splits={'test': 'test[30:]'})
  with pytest.raises(DataError,
                     match=r'train\[:10\].*splits\.validation.*share 5 rows'):
    data.load_dataset('mnist', splits={'train': 'train[:10]',
                                       'validation': 'train[5:]'})
  with pytest.raises(ConfigError, match='shuffle_before_split'):
    data.load_dataset('mnist', splits={'train': 'train'},
                      shuffle_before_split=True)


def test_tfds_not_prepared(tmp_path):
  with pytest.raises(DataError) as info:
    data.load_dataset('mnist', data_dir=str(tmp_path),
                      splits={'train': 'train'})
  message = str(info.value)
  assert "'mnist'" in message and str(tmp_path) in message
  assert 'prepare' in message.lower() and 'data_dir' in message
  assert not list(tmp_path.rglob('*.array_record*'))  # Nothing downloaded.


def test_tfds_not_prepared_in_the_default_data_dir(tmp_path, monkeypatch):
  # TFDS raises KeyError (no splits) for a default data_dir without data.
  monkeypatch.setenv('TFDS_DATA_DIR', str(tmp_path / 'none'))
  with pytest.raises(DataError, match=r"'mnist'.*is not prepared") as info:
    data.load_dataset('mnist', splits={'train': 'train'},
                      shuffle_before_split=False)
  assert '\n' not in str(info.value)


def test_tfds_source_through_the_pipelines(mock):
  ds = data.load_dataset('cifar10', splits={'train': 'train', 'test': 'test'},
                         data_dir='')
  it = data.train_iterator(ds.splits['train'], batch_size=8, seed=0)
  batch = next(it)
  assert batch['image'].shape == (8, 32, 32, 3)
  assert batch['image'].dtype == np.uint8
  assert batch['label'].dtype == np.int32 and batch['mask'].all()
  batches = list(data.eval_batches(ds.splits['test'], batch_size=10))
  assert [int(b['mask'].sum()) for b in batches] == [10, 10, 4]
