"""PatchMatch: convergence to brute-force nearest neighbours, the distances
it claims, agreement with the NumPy version, voting, hole filling (every
filled neighbourhood occurs in the known part of a tiled image), bad
input."""

import jax
import numpy as np
import pytest

from experiments.bench_classics import patchmatch_numpy
from jaxgen.classics import patchmatch
from jaxgen.errors import ConfigError
from jaxgen.errors import DataError

PATCH = 5


def _brute_force(a, b, patch):
  """float64 [H_A, W_A, H_B, W_B] SSD of every pair of reflect-padded
  patches."""
  r = patch // 2

  def windows(x):
    x = np.pad(x.astype(np.float64), ((r, r), (r, r), (0, 0)), mode='reflect')
    v = np.lib.stride_tricks.sliding_window_view(x, (patch, patch), axis=(0, 1))
    return v.reshape(v.shape[:2] + (-1,))

  pa, pb = windows(a), windows(b)
  return ((pa[:, :, None, None] - pb[None, None]) ** 2).sum(-1)


def _patches(image, patch=PATCH):
  """Every patch x patch window of `image` [H, W, C], as arrays."""
  v = np.lib.stride_tricks.sliding_window_view(image, (patch, patch),
                                               axis=(0, 1))
  return v.reshape((-1,) + v.shape[2:])


@pytest.fixture(scope='module')
def pair():
  """B: random colour pixels; A: B shifted (most patches of A occur in B)."""
  b = np.random.default_rng(0).integers(0, 256, (20, 22, 3)).astype(np.uint8)
  a = np.roll(b, (5, 7), axis=(0, 1))
  fields = {it: [np.asarray(x) for x in patchmatch.nearest_neighbour_field(
      jax.random.key(0), a, b, patch=PATCH, iterations=it)]
            for it in (0, 2, 12)}
  return a, b, _brute_force(a, b, PATCH), fields


def test_field_converges_to_brute_force_and_claims_true_distances(pair):
  a, b, dist, fields = pair
  best = dist.min(axis=(2, 3))
  ys, xs = np.arange(20)[:, None], np.arange(22)[None, :]
  shares = []
  for it, (nnf, d) in fields.items():
    assert nnf.shape == (20, 22, 2) and nnf.dtype == np.int32
    assert d.shape == (20, 22) and d.dtype == np.float32
    np.testing.assert_array_equal(d, dist[ys, xs, nnf[..., 0], nnf[..., 1]])
    shares.append((d == best).mean())
  assert shares[0] < 0.05 and shares[0] < shares[1] < shares[2]
  assert shares[2] >= 0.9, shares


def test_same_key_same_field_and_the_numpy_version_agrees(pair):
  a, b, _, fields = pair
  nnf, d = patchmatch.nearest_neighbour_field(jax.random.key(0), a, b,
                                              patch=PATCH, iterations=2)
  np.testing.assert_array_equal(nnf, fields[2][0])
  other, _ = patchmatch.nearest_neighbour_field(jax.random.key(1), a, b,
                                                patch=PATCH, iterations=2)
  assert (np.asarray(other) != fields[2][0]).any()
  ref_nnf, ref_d = patchmatch_numpy(jax.random.key(0), a, b, patch=PATCH,
                                    iterations=2)
  np.testing.assert_array_equal(fields[2][0], ref_nnf)
  np.testing.assert_array_equal(fields[2][1], ref_d)


def test_allowed_pixels_only(pair):
  a, b, _, _ = pair
  valid = np.zeros(b.shape[:2], bool)
  valid[3:9, 10:20] = True
  nnf, d = patchmatch.nearest_neighbour_field(jax.random.key(2), a, b,
                                              patch=PATCH, iterations=2,
                                              b_valid=valid)
  nnf = np.asarray(nnf)
  assert valid[nnf[..., 0], nnf[..., 1]].all() and np.isfinite(d).all()


def test_reconstruct_votes_the_matched_patches(pair):
  # The shapes and patch size of the hole-filling test (one compilation).
  _, b, _, _ = pair
  identity = np.stack(np.meshgrid(np.arange(20), np.arange(22),
                                  indexing='ij'), -1)
  np.testing.assert_allclose(patchmatch.reconstruct(identity, b, patch=PATCH),
                             b, atol=1e-4)
  # A constant offset: pixel (y, x) gets B's pixel (y + 1, x + 2) from every
  # patch covering it, where those patches' matches stay inside B.
  field = np.minimum(identity + [1, 2], [19, 21])
  out = np.asarray(patchmatch.reconstruct(field, b, patch=PATCH))
  assert out.shape == (20, 22, 3)
  np.testing.assert_allclose(out[2:-3, 2:-4], b[3:-2, 4:-2], atol=1e-4)


def test_fill_hole_continues_a_periodic_image():
  y, x = np.mgrid[:20, :22]  # the shapes of the pair (one compilation)
  image = (np.stack([(x % 6) * 40, (y % 4) * 60, ((x + y) % 3) * 80],
                    -1)).astype(np.uint8)
  mask = np.zeros((20, 22), bool)
  mask[7:13, 8:15] = True
  out = np.asarray(patchmatch.fill_hole(jax.random.key(0), image, mask,
                                        patch=5, iterations=4, em_steps=3,
                                        levels=1))
  assert out.shape == image.shape and out.dtype == np.float32
  np.testing.assert_array_equal(out[~mask], image[~mask])
  error = np.abs(out[mask] - image[mask]).mean()
  mean_fill = np.abs(image[~mask].mean(0) - image[mask]).mean()
  assert error < 0.1 * mean_fill
  # The image is built from tiles of its known part: every 5x5
  # neighbourhood of the output occurs among the known part's patches.
  known = {w.tobytes() for w, hit in zip(_patches(image),
                                         _patches(mask[..., None]))
           if not hit.any()}
  assert {w.tobytes() for w in _patches(np.round(out).astype(np.uint8))
          } <= known


@pytest.mark.parametrize('call, error, field', [
    (lambda a, b: patchmatch.nearest_neighbour_field(
        jax.random.key(0), a[..., None], b), DataError, 'a'),
    (lambda a, b: patchmatch.nearest_neighbour_field(
        jax.random.key(0), a, b[..., :2]), DataError, 'b'),
    (lambda a, b: patchmatch.nearest_neighbour_field(
        jax.random.key(0), a, b, patch=4), ConfigError, 'patch'),
    (lambda a, b: patchmatch.nearest_neighbour_field(
        jax.random.key(0), a, b, patch=21), ConfigError, 'patch'),
    (lambda a, b: patchmatch.nearest_neighbour_field(
        jax.random.key(0), a, b, iterations=-1), ConfigError, 'iterations'),
    (lambda a, b: patchmatch.nearest_neighbour_field(
        jax.random.key(0), a, b, b_valid=np.ones((3, 3), bool)), DataError,
     'b_valid'),
    (lambda a, b: patchmatch.reconstruct(np.zeros((4, 4)), b), DataError,
     'nnf'),
    (lambda a, b: patchmatch.fill_hole(jax.random.key(0), a,
                                       np.zeros((8, 9), bool)), DataError,
     'mask'),
    (lambda a, b: patchmatch.fill_hole(jax.random.key(0), a,
                                       np.zeros((8, 8), bool), levels=0),
     ConfigError, 'levels'),
])
def test_bad_input_is_named(call, error, field):
  a = np.zeros((8, 8, 3), np.uint8)
  with pytest.raises(error, match=field):
    call(a, a)
