"""Sources from arrays: digits, npz files, the shared MNIST subset, toy data."""

import json
import os

import grain
import ml_collections
import numpy as np
import pytest
from sklearn import datasets as sk_datasets

from jaxgen import data

THREE = {'train': 'all[:70%]', 'validation': 'all[70%:80%]',
         'test': 'all[80%:]'}


def _rows(source):
  return source.gather(np.arange(len(source)))


def test_digits_shapes_dtypes_and_rescaling():
  ds = data.load_dataset('digits', splits={'train': 'all'})
  train = ds.splits['train']
  assert len(train) == 1797
  assert ds.image_shape == (8, 8, 1) and ds.num_classes == 10
  assert ds.pixel_levels == 256 and ds.point_dim is None
  record = train[0]
  assert record['image'].dtype == np.uint8
  assert record['image'].shape == (8, 8, 1)
  assert record['label'].dtype == np.int32 and record['label'].shape == ()
  reference = sk_datasets.load_digits()
  rows = _rows(train)
  np.testing.assert_array_equal(
      rows['image'][..., 0],
      np.round(reference.images * 255 / 16).astype(np.uint8))
  np.testing.assert_array_equal(rows['label'], reference.target)
  # The 17 levels 0..16 map to 0..255 with both ends hit exactly.
  assert sorted(np.unique(rows['image']))[0] == 0
  assert rows['image'].max() == 255
  assert len(np.unique(rows['image'])) == 17


def test_array_source_and_grain_protocol():
  images = np.arange(4 * 2 * 2, dtype=np.uint8).reshape(4, 2, 2, 1)
  src = data.ArraySource(images, np.array([3, 1, 2, 0]))
  assert isinstance(src, grain.sources.RandomAccessDataSource)
  assert isinstance(src, data.Source)
  assert len(src) == 4
  np.testing.assert_array_equal(src[-1]['image'], images[3])
  sub = src.take(np.array([2, 0]))
  assert len(sub) == 2 and int(sub[0]['label']) == 2
  assert list(grain.MapDataset.source(src).map(lambda r: int(r['label']))) == [
      3, 1, 2, 0]
  with pytest.raises(IndexError):
    src[4]
  unlabeled = data.ArraySource(images)
  assert int(unlabeled[0]['label']) == -1


def test_npz_source(small_npz):
  path, images, labels = small_npz
  ds = data.load_dataset(f'npz:{path}', splits={'train': 'all[:40]',
                                                'test': 'all[40:]'})
  assert ds.image_shape == (6, 5, 1)
  assert ds.num_classes == 5
  assert ds.info['path'] == str(path) and len(ds.info['sha256']) == 64
  rows = _rows(ds.splits['test'])
  np.testing.assert_array_equal(rows['image'][..., 0], images[40:])
  np.testing.assert_array_equal(rows['label'], labels[40:])
  assert rows['label'].dtype == np.int32


def test_npz_rgb_without_labels(tmp_path):
  images = np.random.default_rng(1).integers(
      0, 256, (12, 4, 4, 3), dtype=np.uint8)
  path = tmp_path / 'rgb.npz'
  np.savez(path, images=images)
  ds = data.load_dataset(f'npz:{path}', splits={'train': 'all'})
  assert ds.image_shape == (4, 4, 3) and ds.num_classes is None
  rows = _rows(ds.splits['train'])
  np.testing.assert_array_equal(rows['image'], images)
  assert (rows['label'] == -1).all()


def test_npz_relative_path_resolves_against_cwd(small_npz, monkeypatch):
  path, images, _ = small_npz
  monkeypatch.chdir(path.parent)
  ds = data.load_dataset('npz:small.npz', splits={'train': 'all'})
  assert ds.info['path'] == str(path)
  np.testing.assert_array_equal(ds.splits['train'][7]['image'][..., 0],
                                images[7])


def test_mnist8k_canonical_split(mnist8k_name):
  ds = data.load_dataset(
      mnist8k_name,
      splits={'train': 'all[0:6500]', 'validation': 'all[6500:7000]',
              'test': 'all[7000:8000]'},
      shuffle_before_split=False)
  assert {k: len(v) for k, v in ds.splits.items()} == {
      'train': 6500, 'validation': 500, 'test': 1000}
  assert ds.image_shape == (28, 28, 1) and ds.num_classes == 10
  with np.load(os.path.abspath(mnist8k_name[4:]), allow_pickle=False) as raw:
    images, labels = raw['images'], raw['labels']
  for split, start in (('train', 0), ('validation', 6500), ('test', 7000)):
    rows = _rows(ds.splits[split])
    n = len(ds.splits[split])
    assert rows['image'].dtype == np.uint8
    np.testing.assert_array_equal(rows['image'][..., 0],
                                  images[start:start + n])
    np.testing.assert_array_equal(rows['label'], labels[start:start + n])
  assert 0 <= _rows(ds.splits['test'])['image'].min()
  assert _rows(ds.splits['test'])['image'].max() == 255


def test_mnist8k_fixed_binarization_is_stable(mnist8k_name):
  kwargs = dict(splits={'train': 'all[0:100]', 'test': 'all[7000:7100]'},
                binarize='fixed', binarize_seed=3)
  a = data.load_dataset(mnist8k_name, **kwargs)
  b = data.load_dataset(mnist8k_name, **kwargs)
  assert a.pixel_levels == 2
  train = _rows(a.splits['train'])['image']
  assert set(np.unique(train)) <= {0, 255}
  np.testing.assert_array_equal(train, _rows(b.splits['train'])['image'])
  # A row keeps its binarization whatever split selects it.
  c = data.load_dataset(mnist8k_name, splits={'train': 'all[50:60]'},
                        binarize='fixed', binarize_seed=3)
  np.testing.assert_array_equal(_rows(c.splits['train'])['image'],
                                train[50:60])
  d = data.load_dataset(mnist8k_name, splits={'train': 'all[0:100]'},
                        binarize='fixed', binarize_seed=4)
  assert not np.array_equal(_rows(d.splits['train'])['image'], train)


def test_splits_deterministic_and_disjoint():
  def train_test(seed):
    ds = data.load_dataset('digits', splits=THREE, shuffle_before_split=True,
                           split_seed=seed)
    return {k: _rows(v) for k, v in ds.splits.items()}

  a, b, c = train_test(0), train_test(0), train_test(1)
  for split in THREE:
    np.testing.assert_array_equal(a[split]['image'], b[split]['image'])
    np.testing.assert_array_equal(a[split]['label'], b[split]['label'])
  assert not np.array_equal(a['train']['image'], c['train']['image'])
  # Disjoint and complete: use the row bytes as identities (digits has a few
  # duplicate images, so compare multisets of (image, label) rows).
  def keys(rows):
    return [r.tobytes() + bytes([l]) for r, l in zip(rows['image'],
                                                     rows['label'])]
  everything = sorted(keys(a['train']) + keys(a['validation'])
                      + keys(a['test']))
  full = data.load_dataset('digits', splits={'train': 'all'})
  assert everything == sorted(keys(_rows(full.splits['train'])))
  assert [len(a[s]['label']) for s in THREE] == [1258, 180, 359]


def test_split_rows_disjoint_by_index(small_npz):
  # Labels encode nothing unique, so check indices via a unique-label file.
  path, images, _ = small_npz
  np.savez(path, images=images, labels=np.arange(50))
  for shuffle in (False, True):
    ds = data.load_dataset(f'npz:{path}', splits=THREE,
                           shuffle_before_split=shuffle, split_seed=7)
    ids = [set(_rows(ds.splits[s])['label'].tolist()) for s in THREE]
    assert ids[0] | ids[1] | ids[2] == set(range(50))
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    ordered = _rows(ds.splits['train'])['label'].tolist()
    assert (ordered == list(range(35))) == (not shuffle)


def test_split_spec_syntax(small_npz):
  path, _, _ = small_npz
  name = f'npz:{path}'
  np.savez(path, images=np.zeros((50, 2, 2), np.uint8), labels=np.arange(50))
  ds = data.load_dataset(name, splits={'train': 'all[:10%]+all[-5:]',
                                       'test': 'all[20:22]'})
  assert _rows(ds.splits['train'])['label'].tolist() == [
      0, 1, 2, 3, 4, 45, 46, 47, 48, 49]
  assert _rows(ds.splits['test'])['label'].tolist() == [20, 21]
  # Empty strings and None drop a split; ConfigDicts are accepted.
  ds = data.load_dataset(name, splits=ml_collections.ConfigDict(
      {'train': 'all', 'validation': '', 'test': None}))
  assert list(ds.splits) == ['train']
  json.dumps(ds.info)


@pytest.mark.parametrize('name,classes', [
    ('toy:moons', 2), ('toy:ring8', 8), ('toy:grid25', 25),
    ('toy:checkerboard', None), ('toy:swissroll', None)])
def test_toy_sources(name, classes):
  ds = data.load_dataset(name, splits={'train': 'all[:90%]',
                                       'test': 'all[90%:]'},
                         split_seed=5, num_points=2048)
  assert ds.image_shape is None and ds.point_dim == 2
  assert ds.num_classes == classes and ds.pixel_levels is None
  assert [len(s) for s in ds.splits.values()] == [1843, 205]
  record = ds.splits['train'][0]
  assert record['point'].dtype == np.float32 and record['point'].shape == (2,)
  assert record['label'].dtype == np.int32
  rows = _rows(ds.splits['train'])
  assert np.isfinite(rows['point']).all()
  assert np.abs(rows['point']).max() < 6.0
  if classes is None:
    assert (rows['label'] == 0).all()
  else:
    assert set(np.unique(rows['label'])) == set(range(classes))
  again = data.load_dataset(name, splits={'train': 'all[:90%]'},
                            split_seed=5, num_points=2048)
  np.testing.assert_array_equal(_rows(again.splits['train'])['point'],
                                rows['point'])
  other = data.load_dataset(name, splits={'train': 'all[:90%]'},
                            split_seed=6, num_points=2048)
  assert not np.array_equal(_rows(other.splits['train'])['point'],
                            rows['point'])


def test_relative_npz_resolves_against_the_checkout_root(
    small_npz, tmp_path, monkeypatch):
  """A relative path is looked up under the working directory first, then
  under the checkout root, so presets run from any working directory."""
  path, images, _ = small_npz
  root = tmp_path / 'checkout'
  (root / 'sub').mkdir(parents=True)
  (root / 'sub' / 'a.npz').write_bytes(path.read_bytes())
  elsewhere = tmp_path / 'elsewhere'
  elsewhere.mkdir()
  monkeypatch.setattr(data.sources, 'PROJECT_ROOT', str(root))
  monkeypatch.chdir(elsewhere)
  assert data.resolve_npz_path('sub/a.npz') == str(root / 'sub' / 'a.npz')
  ds = data.load_dataset('npz:sub/a.npz', splits={'train': 'all'})
  np.testing.assert_array_equal(ds.splits['train'].images[..., 0], images)
  assert ds.info['path'] == str(root / 'sub' / 'a.npz')
  # The working directory wins when it holds the file.
  (elsewhere / 'sub').mkdir()
  (elsewhere / 'sub' / 'a.npz').write_bytes(path.read_bytes())
  assert data.resolve_npz_path('sub/a.npz') == str(elsewhere / 'sub' / 'a.npz')
  assert data.resolve_npz_path('sub/none.npz') is None


def test_project_root_is_the_checkout():
  assert os.path.isfile(os.path.join(data.PROJECT_ROOT, 'jaxgen', 'data',
                                     'sources.py'))
