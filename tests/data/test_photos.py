"""Colour crops of scikit-image's bundled photos (`jaxgen.data.photos`)."""

import numpy as np
import pytest
import skimage.data

from jaxgen import data
from jaxgen.data import photos
from jaxgen.errors import ConfigError
from jaxgen.errors import DataError

# Chelsea is 300x451: with SIDE = 300 it is not resized, so its crops are
# plain windows of skimage.data.chelsea(), on a grid of 6 x 9 corners.
UNSCALED = 'skimage_photos:8:300:50'


@pytest.fixture(scope='module')
def loaded():
  splits = {'train': 'coffee', 'test': 'chelsea'}
  return (data.load_dataset(UNSCALED, splits=splits),
          data.load_dataset(UNSCALED, splits=splits))


def test_splits_are_whole_photos_and_deterministic(loaded):
  ds, again = loaded
  assert ds.image_shape == (8, 8, 3) and ds.pixel_levels == 256
  for split, photo in (('train', 'coffee'), ('test', 'chelsea')):
    rows = ds.splits[split].gather(np.arange(len(ds.splits[split])))
    assert rows['image'].dtype == np.uint8
    assert rows['image'].shape[1:] == (8, 8, 3)
    assert rows['label'].dtype == np.int32
    assert set(rows['label']) == {photos.NAMES.index(photo)}
    np.testing.assert_array_equal(rows['image'],
                                  again.splits[split].images)
  assert ds.info['photo_splits'] == {'coffee': 'train', 'chelsea': 'test'}
  # coffee 400x600 -> 300x450: 6 x 9 corners, as chelsea's 300x451.
  assert len(ds.splits['train']) == len(ds.splits['test']) == 54


def test_crops_are_the_grid_windows_in_a_fixed_shuffled_order(loaded):
  ds, _ = loaded
  photo = skimage.data.chelsea()
  corners = [(t, l) for t in range(0, 293, 50) for l in range(0, 444, 50)]
  windows = np.stack([photo[t:t + 8, l:l + 8] for t, l in corners])
  crops = ds.splits['test'].images
  order = [next(i for i, w in enumerate(windows) if np.array_equal(w, c))
           for c in crops]
  assert sorted(order) == list(range(54))  # each window once
  assert order != list(range(54))  # shuffled, so a slice spreads out
  np.testing.assert_array_equal(order, photos.crop_order('chelsea', 54))


def test_default_side_and_stride_downscale_each_photo():
  ds = data.load_dataset('skimage_photos:32',
                         splits={'train': 'chelsea[:10]'})
  # 300x451 -> 128x192 (SIDE = 4 * 32), 13 x 21 corners of step 8.
  assert ds.info['photo_crops'] == {'chelsea': 13 * 21}
  assert len(ds.splits['train']) == 10
  assert ds.splits['train'].images.shape == (10, 32, 32, 3)


@pytest.mark.parametrize('name,splits,error,match', [
    ('skimage_photos:32', {'train': 'chelsea[:10]', 'test': 'chelsea[10:]'},
     DataError, r"both take crops of the photo 'chelsea'"),
    ('skimage_photos:32', {'train': 'cat'}, ConfigError,
     r"data.splits.train='cat' names a split that .* 'chelsea'"),
    ('skimage_photos:2', {'train': 'chelsea'}, ConfigError,
     r'CROP=2 is below 4'),
    ('skimage_photos:32:16', {'train': 'chelsea'}, ConfigError,
     r'SIDE=16 is smaller than CROP=32'),
    ('skimage_photos:32:x', {'train': 'chelsea'}, ConfigError,
     r'must be decimal integers'),
    ('skimage_photos:32:400', {'train': 'chelsea'}, DataError,
     r"SIDE=400 is larger than the shorter side 300 of the photo 'chelsea'"),
])
def test_bad_names_and_splits_name_the_field(name, splits, error, match):
  with pytest.raises(error, match=match):
    data.load_dataset(name, splits=splits)


def test_a_missing_file_is_an_error_not_a_download(monkeypatch, tmp_path):
  monkeypatch.setattr(photos, 'photo_path',
                      lambda photo: str(tmp_path / 'absent.png'))
  with pytest.raises(DataError, match=r"'chelsea' .* is never downloaded"):
    data.load_dataset('skimage_photos:32', splits={'train': 'chelsea'})
  with pytest.raises(ConfigError, match='shuffle_before_split'):
    data.load_dataset('skimage_photos:32', splits={'train': 'chelsea'},
                      shuffle_before_split=True)
