"""Gated PixelCNN: causality and no blind spot (Jacobian), the gate against
NumPy, samplers, class and vector conditioning, completion, the loss."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from experiments.configs import gated_pixelcnn as gated_config
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.models import gated_pixelcnn as gated
from tests.models.test_pixelcnn import assert_causal
from tests.models.test_pixelcnn import dependence
from tests.models.test_pixelcnn import numpy_nll
from tests.models.test_pixelcnn import random_params

GREY = gated.Net(image_shape=(7, 7, 1), likelihood='bernoulli', features=16,
                 num_layers=3, input_kernel=3, kernel_size=3,
                 output_features=(8,), num_classes=3)
RGB = gated.Net(image_shape=(3, 3, 3), likelihood='categorical', features=12,
                num_layers=2, input_kernel=3, kernel_size=3,
                output_features=(12,), use_skip=False, cond_dim=2)


# Spatial conditioning: a map [B, H, W, 2] (as the code prior's bottom level
# gets from the top codes), together with class labels.
SPATIAL = gated.Net(image_shape=(5, 5, 1), likelihood='categorical',
                    features=8, num_layers=2, input_kernel=3, kernel_size=3,
                    output_features=(8,), num_classes=2, cond_dim=2,
                    cond_spatial=True)
COND_MAP = jax.random.normal(jax.random.key(21), (3, 5, 5, 2))


def make(net, seed=0):
  batch = {'image': jnp.zeros((2,) + net.image_shape),
           'label': jnp.zeros((2,), jnp.int32)}
  return random_params(lambda: gated.init(jax.random.key(seed), batch,
                                          net=net), jax.random.key(seed + 1))


@pytest.fixture(scope='module')
def grey_params():
  return make(GREY)


@pytest.fixture(scope='module')
def rgb_params():
  return make(RGB)


COND = jnp.array([[1.0, -1.0], [0.5, 2.0], [-2.0, 0.0]])


def test_gate_matches_numpy():
  x = np.random.default_rng(0).normal(size=(2, 12))
  out = gated.gate(jnp.asarray(x, jnp.float32), groups=3)
  blocks = x.reshape(2, 3, 2, 2)  # groups, (f, g), 2 features
  ref = np.tanh(blocks[:, :, 0]) / (1 + np.exp(-blocks[:, :, 1]))
  np.testing.assert_allclose(out, ref.reshape(2, 6), rtol=1e-6)


def test_causal_and_no_blind_spot(grey_params):
  """Output (i, j) depends on nothing at or after (i, j) and on every earlier
  position in its receptive field: rows i - 1 - R .. i - 1 at columns
  j - R .. j + R (R = k0//2 + (L-1) k//2 = 3 here) through the shifted
  vertical stack, and row i left of j through the horizontal one. Pixel
  (i - 1, j + 2), PixelCNN's blind spot in `test_pixelcnn.test_blind_spot`,
  is seen."""
  x = jax.random.bernoulli(jax.random.key(3), 0.5, (7, 7, 1)).astype(float)
  dep = dependence(lambda v: GREY.apply({'params': grey_params}, v,
                                        jnp.array([1])), x)
  assert_causal(dep)
  r = 3
  # Every output pixel, edges included, except one whose 1x1 output head is
  # dead (all ReLUs off) for these random parameters: then it depends on
  # nothing at all, which says nothing of the stacks' reach. (Pixel (0, 1),
  # which sees only (0, 0), is one here; other parameter draws see it.)
  dead = [p for p in range(1, 49) if dep[p].sum() == 0]  # (0, 0): none
  assert dead == [1], dead
  for i in range(7):
    for j in range(7):
      p = i * 7 + j
      if p in dead:
        continue
      for i2 in range(max(0, i - 1 - r), i):
        for j2 in range(max(0, j - r), min(7, j + r + 1)):
          assert dep[p, i2 * 7 + j2] > 0, ((i, j), (i2, j2))
      for j2 in range(max(0, j - r), j):
        assert dep[p, i * 7 + j2] > 0, ((i, j), (i, j2))
  i, j = 5, 3
  assert dep[i * 7 + j, (i - 1) * 7 + j + 2] > 0  # no blind spot


def test_causal_rgb_channel_order(rgb_params):
  x = jax.random.uniform(jax.random.key(4), (3, 3, 3))
  dep = dependence(lambda v: RGB.apply({'params': rgb_params}, v,
                                       cond=COND[:1]), x)
  assert_causal(dep)
  centre = (1 * 3 + 1) * 3
  r, g, b = centre, centre + 1, centre + 2
  assert dep[g, r] > 0 and dep[b, r] > 0 and dep[b, g] > 0
  assert dep[r, g] == 0 and dep[g, g] == 0 and dep[g, b] == 0
  assert dep[r, centre - 1] > 0  # B of the pixel to the left
  assert dep[r, 2 * 3] > 0  # R of the pixel above-right (row 0, column 2)


@pytest.mark.parametrize('which', ['grey', 'rgb'])
def test_cached_pass_matches_full_network(which, grey_params, rgb_params):
  net, params = (GREY, grey_params) if which == 'grey' else (RGB, rgb_params)
  x = jax.random.uniform(jax.random.key(6), (3,) + net.image_shape)
  labels = jnp.array([0, 2, 1]) if net.num_classes else None
  cond = COND if net.cond_dim else None
  full = jax.jit(net.apply)({'params': params}, x, labels, cond)
  inc = gated.incremental_logits(params, x, labels, cond, net=net)
  assert inc.shape == full.shape
  np.testing.assert_allclose(inc, full, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope='module')
def grey_samples(grey_params):
  out = {}
  for name, labels, method in [('naive', [0, 1, 2, 0], 'naive'),
                               ('cached', [0, 1, 2, 0], 'cached'),
                               ('relabelled', [1, 2, 0, 1], 'cached')]:
    out[name] = gated.sample(grey_params, jax.random.key(7), 4, net=GREY,
                             labels=jnp.array(labels), method=method)
  return out


def test_naive_and_cached_samplers_agree_bitwise(grey_samples, rgb_params):
  np.testing.assert_array_equal(grey_samples['naive'], grey_samples['cached'])
  assert grey_samples['cached'].shape == (4, 7, 7, 1)
  assert grey_samples['cached'].dtype == np.uint8
  rgb = [gated.sample(rgb_params, jax.random.key(9), 3, net=RGB, cond=COND,
                      method=m) for m in ('naive', 'cached')]
  np.testing.assert_array_equal(rgb[0], rgb[1])
  assert len(np.unique(rgb[1])) > 10


def test_class_label_changes_logits_and_samples(grey_params, grey_samples):
  x = jnp.zeros((2,) + GREY.image_shape)
  logits = jax.jit(GREY.apply)({'params': grey_params}, x, jnp.array([0, 1]))
  assert float(jnp.abs(logits[0] - logits[1]).max()) > 1e-2
  # Same key, other labels: other images.
  for n in range(4):
    assert not np.array_equal(grey_samples['cached'][n],
                              grey_samples['relabelled'][n])


def test_vector_conditioning_changes_samples(rgb_params):
  same = [gated.sample(rgb_params, jax.random.key(10), 3, net=RGB,
                       cond=c) for c in (COND, COND, COND[::-1])]
  np.testing.assert_array_equal(same[0], same[1])
  assert not np.array_equal(same[0], same[2])
  with pytest.raises(ConfigError, match='cond'):
    gated.sample(rgb_params, jax.random.key(10), 3, net=RGB)


@pytest.mark.parametrize('method', ['naive', 'cached'])
def test_completion_keeps_observed_pixels(method, grey_params):
  observed = (jax.random.bernoulli(jax.random.key(11), 0.5, (4, 7, 7, 1))
              * 255).astype(jnp.uint8)
  mask = np.zeros((7, 7), bool)
  mask[:4] = True  # top half given
  mask[4, :2] = True
  labels = jnp.array([0, 1, 2, 0])
  out = gated.sample(grey_params, jax.random.key(12), 4, net=GREY,
                     labels=labels, observed=observed, observed_mask=mask,
                     method=method)
  np.testing.assert_array_equal(np.asarray(out)[:, mask],
                                np.asarray(observed)[:, mask])
  free = gated.sample(grey_params, jax.random.key(12), 4, net=GREY,
                      labels=labels, method=method)
  assert not np.array_equal(out[:, 5:], free[:, 5:])


@pytest.mark.parametrize('which', ['grey', 'rgb'])
def test_loss_matches_float64_numpy(which, grey_params, rgb_params):
  net, params = (GREY, grey_params) if which == 'grey' else (RGB, rgb_params)
  key = jax.random.key(13)
  if net.likelihood == 'bernoulli':
    x = jax.random.bernoulli(key, 0.4, (3,) + net.image_shape).astype(float)
  else:
    x = jax.random.randint(key, (3,) + net.image_shape, 0, 256) / 255.0
  batch = {'image': x.astype(jnp.float32), 'label': jnp.array([0, 1, 2]),
           'mask': jnp.array([True, True, False]), 'cond': COND}
  loss, metrics = jax.jit(lambda p, b: gated.loss_fn(
      p, b, None, net=net, train=True))(params, batch)
  logits = jax.jit(net.apply)({'params': params}, batch['image'],
                              batch['label'] if net.num_classes else None,
                              COND if net.cond_dim else None)
  ref = numpy_nll(net.likelihood, logits, x)
  np.testing.assert_allclose(metrics['nll'], ref, rtol=1e-5)
  np.testing.assert_allclose(loss, ref[:2].mean(), rtol=1e-5)
  ll = jax.jit(lambda p, b: gated.log_likelihood(p, b, None, net=net))(
      params, batch)
  np.testing.assert_allclose(ll, -ref, rtol=1e-5)


def test_reference_model_size_and_config_checks():
  batch = {'image': jnp.zeros((1, 28, 28, 1)),
           'label': jnp.zeros((1,), jnp.int32)}
  shapes = jax.eval_shape(lambda: gated.init(jax.random.key(0), batch,
                                             net=gated.Net()))
  assert sum(s.size for s in jax.tree.leaves(shapes)) == 853_249
  assert shapes['vconv_0']['kernel'].shape == (4, 7, 1, 128)
  assert shapes['hconv_1']['kernel'].shape == (1, 2, 64, 128)
  dataset = ml_collections.ConfigDict(dict(num_classes=10, name='digits',
                                           pixel_levels=256))
  gated.validate(gated_config.get_config('smoke,cond'), dataset)
  config = gated_config.get_config('smoke')
  config.model.cond_dim = 4
  with pytest.raises(ConfigError, match='config.model.cond_dim'):
    gated.validate(config, dataset)
  config = gated_config.get_config('smoke,categorical')
  config.data.binarize = 'dynamic'
  with pytest.raises(ConfigError, match='config.data.binarize'):
    gated.validate(config, dataset)


@pytest.fixture(scope='module')
def spatial_params():
  return make(SPATIAL, seed=4)


def test_spatial_conditioning_is_causal_in_the_image_and_local_in_the_map(
    spatial_params):
  """The map enters at every position without a mask: the logits at p still
  depend on no pixel at or after p, and on the map only at positions <= p
  (its own and the earlier ones the stacks carry forward)."""
  labels = jnp.array([1])
  x = jax.random.uniform(jax.random.key(22), (5, 5, 1))
  dep = dependence(lambda v: SPATIAL.apply({'params': spatial_params}, v,
                                           labels, COND_MAP[:1]), x)
  assert_causal(dep)
  jac = jax.jit(jax.jacfwd(lambda m: SPATIAL.apply(
      {'params': spatial_params}, x[None], labels, m[None])[0]))(
          COND_MAP[0])
  dep_map = np.abs(np.asarray(jac)).reshape(25, -1, 25, 2).sum((1, 3))
  assert np.all(np.diag(dep_map) > 0)  # each position sees its map entry
  assert np.all(np.triu(dep_map, 1) == 0)  # and none after it
  assert dep_map[2 * 5 + 2, 1 * 5 + 2] > 0  # the one above, via the stacks


def test_spatial_conditioning_samplers_agree_and_follow_the_map(
    spatial_params):
  labels = jnp.array([0, 1, 0])
  x = jax.random.uniform(jax.random.key(23), (3, 5, 5, 1))
  full = jax.jit(SPATIAL.apply)({'params': spatial_params}, x, labels,
                                COND_MAP)
  inc = gated.incremental_logits(spatial_params, x, labels, COND_MAP,
                                 net=SPATIAL)
  np.testing.assert_allclose(inc, full, rtol=1e-5, atol=1e-5)
  out = [gated.sample(spatial_params, jax.random.key(24), 3, net=SPATIAL,
                      labels=labels, cond=c, method=m)
         for c, m in ((COND_MAP, 'naive'), (COND_MAP, 'cached'),
                      (-COND_MAP, 'cached'))]
  np.testing.assert_array_equal(out[0], out[1])
  assert np.all(np.any(out[1] != out[2], axis=(1, 2, 3)))
  with pytest.raises(ConfigError, match=r'cond must have shape \(3, 5, 5, 2\)'):
    gated.sample(spatial_params, jax.random.key(24), 3, net=SPATIAL,
                 labels=labels, cond=COND_MAP[:, 0, 0])


def test_num_levels_masks_the_softmax_in_both_samplers(rgb_params):
  """num_levels = K: the 256 - K other levels get probability exactly 0 in
  the full pass (float64 softmax of its logits) and are never drawn by
  either sampler, which still agree bitwise; without it, these random
  parameters draw levels >= K all the time."""
  masked = RGB.clone(num_levels=5)
  x = jax.random.uniform(jax.random.key(4), (2, 3, 3, 3))
  logits = np.asarray(jax.jit(masked.apply)({'params': rgb_params}, x,
                                            cond=COND[:2]),
                      np.float64)
  logits -= logits.max(-1, keepdims=True)
  probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  assert probs[..., 5:].max() == 0.0
  np.testing.assert_allclose(probs[..., :5].sum(-1), 1.0, rtol=1e-12)
  draws = [gated.sample(rgb_params, jax.random.key(9), 3, net=masked,
                        cond=COND, method=m) for m in ('naive', 'cached')]
  np.testing.assert_array_equal(draws[0], draws[1])
  assert draws[1].max() < 5 and len(np.unique(draws[1])) == 5
  whole = gated.sample(rgb_params, jax.random.key(9), 3, net=RGB, cond=COND)
  assert whole.max() >= 5


# The peer's layout on a small image: first layer cropped (k0 = 5), no skip.
CROPPED = gated.Net(image_shape=(7, 7, 1), likelihood='bernoulli', features=8,
                    num_layers=2, input_kernel=5, kernel_size=3,
                    output_features=(8,), use_skip=False, crop_input=True)


def test_peer_layout_size_and_checks():
  """`gated_pixelcnn.py:mnist8k,peer` has the peer's 806,401 parameters
  (../shared/bench/README.md, (c)) and its first-layer kernel shapes."""
  config = gated_config.get_config('mnist8k,peer')
  net = train.make_net(gated, config.model)
  batch = {'image': jnp.zeros((1, 28, 28, 1))}
  shapes = jax.eval_shape(lambda: gated.init(jax.random.key(0), batch,
                                             net=net))
  assert sum(s.size for s in jax.tree.leaves(shapes)) == 806_401
  assert shapes['vconv_0']['kernel'].shape == (3, 7, 1, 128)
  assert shapes['hconv_0']['kernel'].shape == (1, 3, 1, 128)
  assert shapes['vconv_1']['kernel'].shape == (2, 3, 64, 128)
  assert 'skip_0' not in shapes
  dataset = ml_collections.ConfigDict(dict(num_classes=10, name='digits',
                                           pixel_levels=256))
  gated.validate(config, dataset)
  rgb = gated_config.get_config('smoke,categorical')
  rgb.model.image_shape, rgb.model.crop_input = (8, 8, 3), True
  rgb.model.features, rgb.model.output_features = 6, (6,)
  with pytest.raises(ConfigError, match='config.model.crop_input'):
    gated.validate(rgb, dataset)


def test_cropped_input_is_causal_one_row_shorter_and_cached():
  """With crop_input the output at (i, j) sees exactly rows i - R .. i - 1
  (R = k0//2 + (L-1) k//2 = 3 here; one row fewer than the default layout),
  columns j -+ R, and row i left of j; nothing at or after (i, j). The
  cached sampler's passes compute the same logits."""
  batch = {'image': jnp.zeros((1,) + CROPPED.image_shape)}
  shapes = jax.eval_shape(lambda: gated.init(jax.random.key(0), batch,
                                             net=CROPPED))
  rng = np.random.default_rng(8)  # every parameter non-zero, no compile
  params = jax.tree.map(
      lambda s: jnp.asarray(0.5 * rng.standard_normal(s.shape), jnp.float32),
      shapes)
  x = jax.random.bernoulli(jax.random.key(9), 0.5, (7, 7, 1)).astype(float)
  dep = dependence(lambda v: CROPPED.apply({'params': params}, v), x)
  assert_causal(dep)
  r = 3
  for i, j in ((6, 3), (5, 5), (4, 1)):
    p = i * 7 + j
    seen = {(i2, j2) for i2 in range(7) for j2 in range(7)
            if dep[p, i2 * 7 + j2] > 0}
    want = {(i2, j2) for i2 in range(max(0, i - r), i)
            for j2 in range(max(0, j - r), min(7, j + r + 1))}
    want |= {(i, j2) for j2 in range(max(0, j - r), j)}
    assert seen == want, (i, j, sorted(seen ^ want))
  xs = jax.random.uniform(jax.random.key(10), (2, 7, 7, 1))
  full = CROPPED.apply({'params': params}, xs)
  inc = gated.incremental_logits(params, xs, net=CROPPED)
  np.testing.assert_allclose(inc, full, rtol=1e-5, atol=1e-5)
