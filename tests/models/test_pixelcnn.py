"""PixelCNN: parameter count, causality (Jacobian), the blind spot, samplers,
conditioning, completion, and the loss against float64 NumPy."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxgen.errors import ConfigError
from jaxgen.models import pixelcnn
from experiments.configs import pixelcnn as pixelcnn_config


# ----------------------------------------------------------------- helpers
def dependence(fn, x):
  """|d out / d in| summed over any logit axis: [H*W*C out, H*W*C in].

  Rows and columns are in raster order (i, j, c), so an autoregressive
  function gives a strictly lower-triangular matrix. Forward mode: the
  inputs (one small image) are fewer than the logits.
  """
  jac = jax.jit(jax.jacfwd(lambda v: fn(v[None])[0]))(x)
  d = x.size
  jac = np.abs(np.asarray(jac, np.float64)).reshape(d, -1, d).sum(1)
  return jac


def assert_causal(dep):
  """Zero on and above the diagonal: nothing at or after position p."""
  upper = np.triu(dep)
  bad = np.argwhere(upper != 0)
  assert not bad.size, f'non-causal (out, in) pairs: {bad[:5]}'


def random_params(init_fn, key, scale=0.5):
  """Re-draw every parameter (biases too) so no path is zero by init."""

  def draw():
    leaves, tree = jax.tree.flatten(init_fn())
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(tree, [
        scale * jax.random.normal(k, l.shape) for k, l in zip(keys, leaves)])

  return jax.jit(draw)()


def numpy_nll(likelihood, logits, x):
  """Float64 NumPy reference: -log p(x) per example, summed over pixels."""
  logits = np.asarray(logits, np.float64)
  x = np.asarray(x, np.float64)
  if likelihood == 'bernoulli':
    # log sigma(l) = -log(1 + e^-l); log(1 - sigma(l)) = -log(1 + e^l).
    lp = x * -np.logaddexp(0.0, -logits) + (1 - x) * -np.logaddexp(0.0, logits)
  else:
    m = logits.max(-1, keepdims=True)
    log_softmax = logits - m - np.log(np.exp(logits - m).sum(-1, keepdims=True))
    k = np.rint(x * 255).astype(int)
    lp = np.take_along_axis(log_softmax, k[..., None], -1)[..., 0]
  return -lp.reshape(lp.shape[0], -1).sum(-1)


def make(net, batch_size=2, seed=0):
  x = jnp.zeros((batch_size,) + tuple(net.image_shape))
  batch = {'image': x, 'label': jnp.zeros((batch_size,), jnp.int32)}
  return random_params(lambda: pixelcnn.init(jax.random.key(seed), batch,
                                             net=net),
                       jax.random.key(seed + 1))


GREY = pixelcnn.Net(image_shape=(5, 4, 1), likelihood='bernoulli', features=8,
                    num_blocks=2, input_kernel=5, block_kernel=3,
                    output_features=(6,), num_classes=3)
RGB = pixelcnn.Net(image_shape=(3, 3, 3), likelihood='categorical',
                   features=24, num_blocks=1, input_kernel=3, block_kernel=3,
                   output_features=(12,))


@pytest.fixture(scope='module')
def grey_params():
  return make(GREY)


@pytest.fixture(scope='module')
def rgb_params():
  return make(RGB)


# ------------------------------------------------------------------ tests
def test_reference_model_has_665089_parameters():
  net = pixelcnn.Net()  # 28x28x1, h=128, 12 blocks, 1x1 128 -> 128 -> 1
  batch = {'image': jnp.zeros((1, 28, 28, 1)),
           'label': jnp.zeros((1,), jnp.int32)}
  shapes = jax.eval_shape(lambda: pixelcnn.init(jax.random.key(0), batch,
                                                net=net))
  assert sum(s.size for s in jax.tree.leaves(shapes)) == 665_089
  assert shapes['input_conv']['kernel'].shape == (7, 7, 1, 128)
  assert shapes['block_mid_11']['kernel'].shape == (3, 3, 64, 64)


def test_causal_grey(grey_params):
  x = jax.random.bernoulli(jax.random.key(3), 0.5, (5, 4, 1)).astype(float)
  dep = dependence(lambda v: GREY.apply({'params': grey_params}, v,
                                        jnp.array([1])), x)
  assert_causal(dep)
  # ...and not trivially so: the pixel to the left and the one above count.
  p = 2 * 4 + 2
  assert dep[p, p - 1] > 0 and dep[p, p - 4] > 0


def test_causal_rgb_channel_order(rgb_params):
  """Logits of channel c at (i, j) see x[< (i, j)] and x[i, j, < c] only."""
  x = jax.random.uniform(jax.random.key(4), (3, 3, 3))
  dep = dependence(lambda v: RGB.apply({'params': rgb_params}, v), x)
  assert_causal(dep)
  centre = (1 * 3 + 1) * 3  # pixel (1, 1): R, G, B at centre, +1, +2
  r, g, b = centre, centre + 1, centre + 2
  assert dep[g, r] > 0  # G sees R of its pixel
  assert dep[b, r] > 0 and dep[b, g] > 0  # B sees R and G
  assert dep[r, r] == 0 and dep[r, g] == 0 and dep[g, g] == 0
  assert dep[g, b] == 0 and dep[r, b] == 0
  assert dep[r, centre - 1] > 0  # R sees B of the pixel to the left


def test_blind_spot():
  """Stacked 3x3 masked convolutions never see (i - 1, j + 2) though they see
  (i - 2, j + 2), which is farther away: the PixelCNN blind spot (van den
  Oord et al. 2016b, Fig. 1). `test_gated_pixelcnn` shows the gated stacks
  see it."""
  net = pixelcnn.Net(image_shape=(7, 7, 1), features=16, num_blocks=2,
                     input_kernel=3, block_kernel=3, output_features=(8,))
  params = make(net)
  x = jax.random.bernoulli(jax.random.key(5), 0.5, (7, 7, 1)).astype(float)
  dep = dependence(lambda v: net.apply({'params': params}, v), x)
  assert_causal(dep)
  i, j = 5, 3
  p = i * 7 + j
  assert dep[p, (i - 1) * 7 + j + 2] == 0  # in the blind spot
  assert dep[p, (i - 2) * 7 + j + 2] > 0  # seen, though farther
  assert dep[p, (i - 1) * 7 + j + 1] > 0


@pytest.mark.parametrize('which', ['grey', 'rgb'])
def test_cached_pass_matches_full_network(which, grey_params, rgb_params):
  net, params = (GREY, grey_params) if which == 'grey' else (RGB, rgb_params)
  x = jax.random.uniform(jax.random.key(6), (2,) + net.image_shape)
  if net.likelihood == 'bernoulli':
    x = jnp.round(x)
  labels = jnp.array([0, 2]) if net.num_classes else None
  full = net.apply({'params': params}, x, labels)
  inc = pixelcnn.incremental_logits(params, x, labels, net=net)
  assert inc.shape == full.shape
  np.testing.assert_allclose(inc, full, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope='module')
def grey_samples(grey_params):
  labels = jnp.array([0, 1, 2, 0])
  out = {m: pixelcnn.sample(grey_params, jax.random.key(7), 4, net=GREY,
                            labels=labels, method=m)
         for m in ('naive', 'cached')}
  out['again'] = pixelcnn.sample(grey_params, jax.random.key(7), 4, net=GREY,
                                 labels=labels)
  out['other_key'] = pixelcnn.sample(grey_params, jax.random.key(8), 4,
                                     net=GREY, labels=labels)
  return out


def test_naive_and_cached_samplers_agree_bitwise(grey_samples, rgb_params):
  np.testing.assert_array_equal(grey_samples['naive'], grey_samples['cached'])
  assert grey_samples['cached'].dtype == np.uint8
  assert grey_samples['cached'].shape == (4, 5, 4, 1)
  assert set(np.unique(grey_samples['cached'])) <= {0, 255}
  rgb = [pixelcnn.sample(rgb_params, jax.random.key(9), 3, net=RGB, method=m)
         for m in ('naive', 'cached')]
  np.testing.assert_array_equal(rgb[0], rgb[1])
  assert len(np.unique(rgb[1])) > 10  # 256-way draws, not a constant


def test_sampling_is_deterministic_in_the_key(grey_samples):
  np.testing.assert_array_equal(grey_samples['cached'], grey_samples['again'])
  assert not np.array_equal(grey_samples['cached'], grey_samples['other_key'])


def test_class_conditional_sampling_uses_the_label(grey_params):
  # The label enters the logits...
  x = jnp.zeros((2,) + GREY.image_shape)
  logits = GREY.apply({'params': grey_params}, x, jnp.array([0, 1]))
  assert float(jnp.abs(logits[0] - logits[1]).max()) > 1e-3
  # ...and drives the samples: a strong per-class bias on the output logit.
  params = jax.tree.map(lambda a: a, grey_params)
  last = max((k for k in params if k.startswith('class_bias_')),
             key=lambda k: int(k.rsplit('_', 1)[1]))
  params[last] = {'embedding': jnp.array([[20.0], [-20.0], [0.0]])}
  images = pixelcnn.sample(params, jax.random.key(10), 4, net=GREY,
                           labels=jnp.array([0, 1, 0, 1]))
  assert (images[0::2] == 255).all() and (images[1::2] == 0).all()


@pytest.mark.parametrize('method', ['naive', 'cached'])
def test_completion_keeps_observed_pixels(method, rgb_params):
  observed = jax.random.randint(jax.random.key(11), (3, 3, 3, 3), 0, 256,
                                jnp.int32).astype(jnp.uint8)
  mask = np.zeros((3, 3), bool)
  mask[:2] = True  # top two rows given; sample the last
  out = pixelcnn.sample(rgb_params, jax.random.key(12), 3, net=RGB,
                        observed=observed, observed_mask=mask, method=method)
  np.testing.assert_array_equal(out[:, :2], observed[:, :2])
  assert not np.array_equal(out[:, 2], observed[:, 2])
  # Conditioning changes the completion: other given rows, other samples.
  free = pixelcnn.sample(rgb_params, jax.random.key(12), 3, net=RGB,
                         method=method)
  assert not np.array_equal(out[:, 2], free[:, 2])


@pytest.mark.parametrize('which', ['grey', 'rgb'])
def test_loss_matches_float64_numpy(which, grey_params, rgb_params):
  net, params = (GREY, grey_params) if which == 'grey' else (RGB, rgb_params)
  key = jax.random.key(13)
  if net.likelihood == 'bernoulli':
    x = jax.random.bernoulli(key, 0.4, (3,) + net.image_shape).astype(float)
  else:
    x = jax.random.randint(key, (3,) + net.image_shape, 0, 256) / 255.0
  batch = {'image': x.astype(jnp.float32), 'label': jnp.array([0, 1, 2]),
           'mask': jnp.array([True, False, True])}
  loss, metrics = jax.jit(lambda p, b: pixelcnn.loss_fn(
      p, b, None, net=net, train=True))(params, batch)
  logits = net.apply({'params': params}, batch['image'],
                     batch['label'] if net.num_classes else None)
  ref = numpy_nll(net.likelihood, logits, x)
  np.testing.assert_allclose(metrics['nll'], ref, rtol=1e-5)
  np.testing.assert_allclose(loss, ref[[0, 2]].mean(), rtol=1e-5)
  np.testing.assert_allclose(metrics['bits_per_dim'],
                             ref / (x[0].size * np.log(2)), rtol=1e-5)
  ll = pixelcnn.log_likelihood(params, batch, None, net=net)
  np.testing.assert_allclose(ll, -ref, rtol=1e-5)


def test_validate_names_the_field():
  dataset = ml_collections.ConfigDict(dict(num_classes=10, name='digits',
                                           pixel_levels=256))
  config = pixelcnn_config.get_config('smoke')
  pixelcnn.validate(config, dataset)
  config = pixelcnn_config.get_config('smoke')
  config.data.binarize = 'none'
  with pytest.raises(ConfigError, match='config.data.binarize'):
    pixelcnn.validate(config, dataset)
  config = pixelcnn_config.get_config('smoke,categorical')
  config.model.features = 9
  with pytest.raises(ConfigError, match='config.model.features'):
    pixelcnn.validate(config, dataset)
  with pytest.raises(ConfigError, match='observed'):
    pixelcnn.sample(None, jax.random.key(0), 2, net=GREY,
                    observed_mask=np.ones((5, 4), bool))
