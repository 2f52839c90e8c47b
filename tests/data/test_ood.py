"""Out-of-distribution sets: shapes, dtype, determinism, difference."""

from __future__ import annotations

import numpy as np
import pytest

from jaxgen.data import ood
from jaxgen.errors import ConfigError
from jaxgen.errors import DataError
from tests.data.conftest import MNIST8K_REL
from tests.data.conftest import REPO_ROOT

NUM = 64


@pytest.fixture(scope='module')
def reference():
  """The first 200 mnist8k test digits (rows 7000..7199), uint8 [200,28,28,1]."""
  path = REPO_ROOT / MNIST8K_REL
  if not path.is_file():
    pytest.skip(f'{path.resolve()} is absent (the shared MNIST subset lives '
                'outside the repository).')
  with np.load(path, allow_pickle=False) as f:
    return f['images'][7000:7200, :, :, None]


@pytest.fixture(scope='module')
def sets(reference):
  return ood.make_sets(reference, ood.available_sets(), num=NUM, seed=3)


def test_every_available_set_has_the_reference_shape(sets):
  assert tuple(sets) == ood.available_sets()
  for name, images in sets.items():
    assert images.dtype == np.uint8, name
    assert images.shape == (NUM, 28, 28, 1), name


def test_photos_are_listed_with_scikit_image_only():
  if not ood.have_scikit_image():
    assert 'photos' not in ood.available_sets()
    pytest.skip('scikit-image cannot be imported: no photos set.')
  assert 'photos' in ood.available_sets()


def test_sets_are_deterministic_in_the_seed(reference, sets):
  again = ood.make_sets(reference, ood.available_sets(), num=NUM, seed=3)
  other = ood.make_sets(reference, ood.available_sets(), num=NUM, seed=4)
  for name in sets:
    np.testing.assert_array_equal(again[name], sets[name], err_msg=name)
  for name in ('noise', 'constant', 'digits', 'photos'):
    if name in sets:
      assert not np.array_equal(other[name], sets[name]), name


def test_each_set_differs_from_the_in_distribution_images(reference, sets):
  x = reference[:NUM].astype(np.int32)
  for name, images in sets.items():
    diff = np.abs(images.astype(np.int32) - x).mean()
    assert diff > 10, (name, diff)  # grey levels per pixel, out of 255
  np.testing.assert_array_equal(sets['flip'], reference[:NUM, :, ::-1])
  np.testing.assert_array_equal(sets['invert'], 255 - reference[:NUM])
  np.testing.assert_array_equal(np.rot90(sets['rot90'], -1, axes=(1, 2)),
                                reference[:NUM])
  assert all(len(np.unique(im)) == 1 for im in sets['constant'])
  # MNIST digits are white on black; inverted and constant grey ones are not.
  assert sets['invert'].mean() > 3 * reference.mean()


def test_bad_requests_are_named(reference):
  with pytest.raises(ConfigError, match='unknown.*svhn'):
    ood.make_sets(reference, ['flip', 'svhn'])
  with pytest.raises(ConfigError, match='num=201'):
    ood.make_set('flip', reference, num=201)
  with pytest.raises(DataError, match='uint8'):
    ood.make_set('noise', reference.astype(np.float32))


def test_perturbation_rate_range_and_determinism():
  # 400 black 28x28 images: a substituted value is visible unless it draws
  # 0 again, so the changed fraction estimates rate * 255 / 256.
  rate, n, dims = 0.2, 400, 28 * 28
  x = np.zeros((n, 28, 28, 1), np.uint8)
  y = ood.perturb(x, rate, seed=5)
  assert y.shape == x.shape and y.dtype == np.uint8 and not x.any()
  count = round(rate * dims)  # 157 values substituted in every image
  changed = (y.reshape(n, -1) != 0).sum(1)
  assert changed.max() <= count
  expected = np.float64(count) / dims * 255.0 / 256.0
  # Binomial standard error of the mean over n * count substitutions.
  se = np.sqrt(count * (255 / 256) * (1 / 256) * n) / (n * dims)
  assert abs(changed.mean() / dims - expected) < 5 * se
  # The substituted values are uniform on 0..255: mean 127.5, both ends hit.
  values = y[y != 0].astype(np.float64)
  assert abs(values.mean() - 127.5) < 5 * np.sqrt((256 ** 2 - 1) / 12 /
                                                   len(values))
  assert values.min() == 1 and values.max() == 255
  # Deterministic in the seed; row i depends on (seed, start + i) alone.
  np.testing.assert_array_equal(ood.perturb(x, rate, seed=5), y)
  assert not np.array_equal(ood.perturb(x, rate, seed=6), y)
  np.testing.assert_array_equal(ood.perturb(x[7:9], rate, seed=5, start=7),
                                y[7:9])
  copies = ood.perturbed_copies(x[:3], rate, copies=2, seed=5)
  np.testing.assert_array_equal(copies[:3], y[:3])
  np.testing.assert_array_equal(copies[3:], ood.perturb(x[:3], rate, 5, 3))
  # The ends: nothing changes at 0; at 1 every value is a fresh draw.
  np.testing.assert_array_equal(ood.perturb(x, 0.0), x)
  full = ood.perturb(np.full((50, 8, 8, 1), 9, np.uint8), 1.0, seed=1)
  assert abs((full != 9).mean() - 255 / 256) < 0.01


def test_perturbation_refuses_bad_arguments():
  x = np.zeros((2, 4, 4, 1), np.uint8)
  with pytest.raises(ConfigError, match='rate'):
    ood.perturb(x, 1.5)
  with pytest.raises(ConfigError, match='seed'):
    ood.perturb(x, 0.1, seed=-1)
  with pytest.raises(DataError, match='uint8'):
    ood.perturb(x.astype(np.float32), 0.1)
  with pytest.raises(ConfigError, match='copies'):
    ood.perturbed_copies(x, 0.1, copies=0)
