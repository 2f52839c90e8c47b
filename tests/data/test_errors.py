"""Every bad input to ``load_dataset`` gets one clear, typed error.

Each test checks the exception type and that the message names the config
field (or file path) and what was expected.
"""

import os
import re

import numpy as np
import pytest

from jaxgen import data
from jaxgen.errors import ConfigError
from jaxgen.errors import DataError

TRAIN = {'train': 'all'}


def _npz(tmp_path, **arrays):
  path = tmp_path / 'bad.npz'
  np.savez(path, **arrays)
  return f'npz:{path}', str(path)


def test_unknown_dataset_name():
  with pytest.raises(ConfigError) as info:
    data.load_dataset('mnsit', splits=TRAIN)
  message = str(info.value)
  assert "data.name='mnsit'" in message
  for expected in ("'digits'", "'mnist'", "'cifar10'", "'toy:ring8'",
                   "'npz:PATH'", "'toy:NAME'"):
    assert expected in message
  with pytest.raises(ConfigError, match=r"data.name='toy:spiral'.*toy:moons"):
    data.load_dataset('toy:spiral', splits=TRAIN)
  with pytest.raises(ConfigError, match='data.name'):
    data.load_dataset('', splits=TRAIN)
  with pytest.raises(ConfigError, match=r"'npz:' must be followed by a file"):
    data.load_dataset('npz:', splits=TRAIN)


def test_missing_npz_names_absolute_path(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(DataError) as info:
    data.load_dataset('npz:nowhere/x.npz', splits=TRAIN)
  assert os.path.join(str(tmp_path), 'nowhere', 'x.npz') in str(info.value)
  assert os.path.join(data.PROJECT_ROOT, 'nowhere', 'x.npz') in str(info.value)
  assert 'not found' in str(info.value)


def test_missing_mnist8k_says_where_it_was_looked_for_and_how_to_get_it(
    tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  monkeypatch.setattr(data.sources, 'PROJECT_ROOT', str(tmp_path / 'checkout'))
  with pytest.raises(DataError) as info:
    data.load_dataset('npz:../shared/data/mnist/mnist8k.npz', splits=TRAIN)
  message = str(info.value)
  for path in (tmp_path.parent / 'shared', tmp_path / 'shared'):
    assert str(path / 'data' / 'mnist' / 'mnist8k.npz') in message
  assert '8,000 real MNIST digits' in message and 'README.md' in message


def test_npz_without_images(tmp_path):
  name, path = _npz(tmp_path, pixels=np.zeros((3, 2, 2), np.uint8))
  with pytest.raises(DataError) as info:
    data.load_dataset(name, splits=TRAIN)
  assert "no 'images' array" in str(info.value) and path in str(info.value)
  assert "'pixels'" in str(info.value)


def test_npz_wrong_dtype_says_convert(tmp_path):
  name, path = _npz(tmp_path, images=np.zeros((3, 2, 2), np.float32))
  with pytest.raises(DataError) as info:
    data.load_dataset(name, splits=TRAIN)
  message = str(info.value)
  assert "'images'" in message and path in message
  assert 'float32' in message and 'uint8' in message
  assert 'Convert' in message


@pytest.mark.parametrize('shape', [(3, 4), (3, 2, 2, 2), (3, 2, 2, 4),
                                   (3, 1, 2, 2, 1)])
def test_npz_wrong_ndim_or_channels(tmp_path, shape):
  name, _ = _npz(tmp_path, images=np.zeros(shape, np.uint8))
  with pytest.raises(DataError,
                     match=rf"'images'.*shape {re.escape(str(shape))}.*"
                           r"C in \{1, 3\}"):
    data.load_dataset(name, splits=TRAIN)


def test_npz_labels_mismatch(tmp_path):
  name, _ = _npz(tmp_path, images=np.zeros((3, 2, 2), np.uint8),
                 labels=np.zeros(4, np.int64))
  with pytest.raises(DataError, match=r"'labels'.*\(4,\).*expected \[3\]"):
    data.load_dataset(name, splits=TRAIN)
  name, _ = _npz(tmp_path, images=np.zeros((3, 2, 2), np.uint8),
                 labels=np.zeros(3, np.float32))
  with pytest.raises(DataError, match=r"'labels'.*float32.*integers"):
    data.load_dataset(name, splits=TRAIN)


def test_npz_label_range_and_empty_images(tmp_path):
  name, _ = _npz(tmp_path, images=np.zeros((3, 2, 2), np.uint8),
                 labels=np.array([0, -1, 2]))
  with pytest.raises(DataError, match=r"'labels'.*\[0, 2\^31\), got \[-1, 2\]"):
    data.load_dataset(name, splits=TRAIN)
  name, _ = _npz(tmp_path, images=np.zeros((0, 2, 2), np.uint8))
  with pytest.raises(DataError, match=r"'images'.*has no rows"):
    data.load_dataset(name, splits=TRAIN)


def test_npz_binary_values_on_the_wrong_scale(tmp_path):
  images = np.zeros((3, 2, 2), np.uint8)
  images[0, 0, 0] = 1
  name, path = _npz(tmp_path, images=images)
  with pytest.raises(DataError) as info:
    data.load_dataset(name, splits=TRAIN)
  message = str(info.value)
  assert path in message and 'only the values 0 and 1' in message
  assert 'images * 255' in message
  data.load_dataset(_npz(tmp_path, images=images * 255)[0], splits=TRAIN)


def test_npz_never_unpickles(tmp_path):
  name, _ = _npz(tmp_path, images=np.array([{'a': 1}], dtype=object))
  with pytest.raises(DataError, match='without pickles'):
    data.load_dataset(name, splits=TRAIN)
  path = tmp_path / 'single.npy'
  np.save(path, np.zeros((3, 2, 2), np.uint8))
  with pytest.raises(DataError, match=r"single \.npy array"):
    data.load_dataset(f'npz:{path}', splits=TRAIN)


def test_npz_that_is_not_a_zip_file_says_so(tmp_path):
  path = tmp_path / 'text.npz'
  path.write_text('images,labels\n')
  with pytest.raises(DataError) as info:
    data.load_dataset(f'npz:{path}', splits=TRAIN)
  message = str(info.value)
  assert str(path) in message and 'is not an .npz archive' in message
  assert 'pickle' not in message


def test_empty_split_names_split_and_spec():
  with pytest.raises(DataError,
                     match=r"data.splits.validation='all\[100:100\]'.*no rows"):
    data.load_dataset('digits', splits={'train': 'all[:100]',
                                        'validation': 'all[100:100]'})


def test_slice_out_of_range():
  with pytest.raises(DataError) as info:
    data.load_dataset('digits', splits={'train': 'all[0:6500]'})
  message = str(info.value)
  assert "data.splits.train='all[0:6500]'" in message
  assert "'all' with 1797 rows" in message


@pytest.mark.parametrize('spec', ['all[', 'all[1:2:3]', 'all[5]',
                                  'all[200%:]', 'al l'])
def test_malformed_split_spec(spec):
  with pytest.raises(ConfigError) as info:
    data.load_dataset('digits', splits={'train': 'all', 'test': spec})
  assert f'data.splits.test={spec!r}' in str(info.value)
  assert "'all[:80%]'" in str(info.value)  # Shows the expected forms.


def test_wrong_split_name_for_array_source():
  with pytest.raises(ConfigError,
                     match=r"splits.train='train\[:80%\]'.*'digits'.*'all'"):
    data.load_dataset('digits', splits={'train': 'train[:80%]'})
  with pytest.raises(ConfigError, match=r"splits.test='all\+rows'"):
    data.load_dataset('digits', splits={'test': 'all+rows'})


def test_splits_field_errors():
  with pytest.raises(ConfigError, match=r"unknown split 'valid'.*validation"):
    data.load_dataset('digits', splits={'train': 'all', 'valid': 'all'})
  with pytest.raises(ConfigError, match='data.splits names no split'):
    data.load_dataset('digits', splits={'train': '', 'test': None})
  with pytest.raises(ConfigError, match='data.splits must be a dict'):
    data.load_dataset('digits', splits='all')
  with pytest.raises(ConfigError, match=r'data.splits.train must be a split'):
    data.load_dataset('digits', splits={'train': 3})


def test_overlapping_train_and_test():
  with pytest.raises(DataError) as info:
    data.load_dataset('digits', splits={'train': 'all[:80%]',
                                        'test': 'all[70%:]'})
  message = str(info.value)
  assert "data.splits.train='all[:80%]'" in message
  assert "data.splits.test='all[70%:]'" in message and 'share' in message
  # Validation and test may coincide (no training rows among them).
  ds = data.load_dataset('digits', splits={'train': 'all[:80%]',
                                           'validation': 'all[80%:]',
                                           'test': 'all[80%:]'})
  assert len(ds.splits['validation']) == len(ds.splits['test'])


@pytest.mark.parametrize('value', ['stochastic', 'Fixed', None, True])
def test_bad_binarize(value):
  with pytest.raises(ConfigError, match=r"data.binarize.*'none', 'dynamic', "
                     r"'fixed'"):
    data.load_dataset('digits', splits=TRAIN, binarize=value)


def test_other_field_errors():
  with pytest.raises(ConfigError, match='data.split_seed'):
    data.load_dataset('digits', splits=TRAIN, split_seed=-1)
  with pytest.raises(ConfigError, match='data.binarize_seed'):
    data.load_dataset('digits', splits=TRAIN, binarize_seed=1.5)
  with pytest.raises(ConfigError, match='data.shuffle_before_split'):
    data.load_dataset('digits', splits=TRAIN, shuffle_before_split='yes')
  with pytest.raises(ConfigError, match='data.num_points'):
    data.load_dataset('toy:moons', splits=TRAIN, num_points=0)
  with pytest.raises(ConfigError, match=r"data.binarize='fixed'.*toy:moons"):
    data.load_dataset('toy:moons', splits=TRAIN, binarize='fixed')
