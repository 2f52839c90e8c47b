"""The synthetic 1-D signal source: names, shapes, determinism, content, errors."""

import numpy as np
import pytest

from jaxgen import data
from jaxgen.data import signals
from jaxgen.errors import ConfigError

SPLITS = {'train': 'all[:75%]', 'test': 'all[75%:]'}


def _all(ds, split):
  src = ds.splits[split]
  return src.gather(np.arange(len(src)))


def test_shapes_dtypes_splits_and_labels():
  ds = data.load_dataset('signal:sines:64:200', splits=SPLITS)
  assert ds.image_shape == (1, 64, 1)
  assert ds.pixel_levels == 256 and ds.point_dim is None
  assert ds.num_classes == signals.NUM_BANDS
  assert {s: len(src) for s, src in ds.splits.items()} == {'train': 150,
                                                           'test': 50}
  rows = _all(ds, 'train')
  assert rows['image'].dtype == np.uint8 and rows['image'].shape == (150, 1,
                                                                     64, 1)
  assert rows['label'].dtype == np.int32
  assert set(np.unique(rows['label'])) <= set(range(signals.NUM_BANDS))
  assert ds.info['source'] == 'signal' and ds.info['rows'] == 200
  # Default row count, and the AR kind.
  ds = data.load_dataset('signal:ar:16', splits={'train': 'all'})
  assert len(ds.splits['train']) == signals.DEFAULT_ROWS
  assert ds.image_shape == (1, 16, 1)


def test_deterministic_in_the_seed_and_split_like_any_array_source():
  a = data.load_dataset('signal:ar:32:100', splits=SPLITS, split_seed=3)
  b = data.load_dataset('signal:ar:32:100', splits=SPLITS, split_seed=3)
  c = data.load_dataset('signal:ar:32:100', splits=SPLITS, split_seed=4)
  for split in SPLITS:
    np.testing.assert_array_equal(_all(a, split)['image'],
                                  _all(b, split)['image'])
  assert not np.array_equal(_all(a, 'train')['image'],
                            _all(c, 'train')['image'])
  # Without shuffling, the splits are consecutive rows of the same draw.
  whole = data.load_dataset('signal:ar:32:100', splits={'train': 'all'},
                            split_seed=3)
  images, labels = signals.make_signals('ar', 32, 100, 3)
  np.testing.assert_array_equal(_all(whole, 'train')['image'], images)
  np.testing.assert_array_equal(_all(a, 'test')['image'], images[75:])
  np.testing.assert_array_equal(_all(a, 'test')['label'], labels[75:])
  shuffled = data.load_dataset('signal:ar:32:100', splits=SPLITS,
                               split_seed=3, shuffle_before_split=True)
  order = np.random.default_rng(3).permutation(100)
  np.testing.assert_array_equal(_all(shuffled, 'test')['image'],
                                images[order[75:]])


def test_quantization_inverts_the_symmetric_scaling():
  levels = np.arange(256)
  np.testing.assert_array_equal(signals.quantize(levels / 127.5 - 1.0),
                                levels)
  assert signals.quantize(np.array([-3.0, 3.0])).tolist() == [0, 255]


def _spectrum(images):
  x = images[:, 0, :, 0] / 127.5 - 1.0
  x = x - x.mean(-1, keepdims=True)
  return np.abs(np.fft.rfft(x, axis=-1)) ** 2


def test_sines_peak_frequency_lies_in_the_labelled_band():
  length = 512
  images, labels = signals.make_signals('sines', length, 64, seed=0)
  peak = _spectrum(images)[:, 1:].argmax(-1) + 1  # bins of 1 / length
  low = signals.LOWEST_FREQUENCY * 2.0 ** labels * length
  # One bin of slack each side for spectral leakage.
  assert np.all((peak >= low - 1) & (peak <= 2 * low + 1)), (peak, low)
  assert len(np.unique(labels)) == signals.NUM_BANDS
  # Noise on top of the sinusoids: not a pure tone, no clipping.
  assert 0 < images.min() and images.max() < 255


def test_ar_spectrum_peaks_in_its_band_and_scale():
  length = 1024
  images, labels = signals.make_signals('ar', length, 200, seed=1)
  spec = _spectrum(images)
  for band in range(signals.NUM_BANDS):
    mean = spec[labels == band].mean(0)
    peak = mean[1:].argmax() + 1
    low = signals.LOWEST_FREQUENCY * 2.0 ** band * length
    assert low - 2 <= peak <= 2 * low + 2, (band, peak, low)
  x = images / 127.5 - 1.0
  assert abs(x.std() - signals.AR_STD) < 0.03
  assert np.mean((images == 0) | (images == 255)) < 1e-3


@pytest.mark.parametrize('name, match', [
    ('signal:', 'not a signal name'),
    ('signal:sines', 'not a signal name'),
    ('signal:noise:64', 'unknown signal kind'),
    ('signal:sines:64x', 'decimal integers'),
    ('signal:sines:-4', 'decimal integers'),
    ('signal:sines:1', 'T >= 2'),
    ('signal:sines:64:0', 'N >= 1'),
    ('signal:sines:64:1:2', 'not a signal name'),
    ('signal:sines:65536:4096', 'more than'),
])
def test_bad_names_are_config_errors_naming_the_field(name, match):
  with pytest.raises(ConfigError, match=match) as info:
    data.load_dataset(name, splits={'train': 'all'})
  assert 'data.name' in str(info.value)


def test_bad_split_spec_is_still_caught():
  with pytest.raises(ConfigError, match='data.splits.train'):
    data.load_dataset('signal:sines:8:10', splits={'train': 'train[:5]'})
