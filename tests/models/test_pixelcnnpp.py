"""PixelCNN++: causality at pixel granularity, exact mixture, sampler, dropout.

"Causal" for whole-pixel conditioning means: the network output at pixel p
(mixture logits, means, log-scales, coefficients) has exactly zero
derivative w.r.t. every channel of every pixel at or after p in raster
order; within pixel p, the mean of channel c depends on channel c' of the
same pixel only through the coefficient path, d mu_c / d x_c' =
tanh(coefficient) for c' < c and exactly 0 for c' >= c.
"""

import math
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import special
from scipy import stats

from experiments.configs import pixelcnnpp as config_lib
from jaxgen.errors import ConfigError
from jaxgen.models import pixelcnnpp as ppp

H, W, C, K = 6, 6, 3, 2
NUM_CLASSES = 3

# Compiled once for the whole module.
_loss = jax.jit(ppp.loss_fn, static_argnames=('net', 'train'))
_log_likelihood = jax.jit(ppp.log_likelihood, static_argnames='net')
_apply = jax.jit(lambda net, p, x, y: net.apply({'params': p}, x, y),
                 static_argnums=0)


def _train_loss(params, image, batch, key, net):
  return ppp.loss_fn(params, dict(batch, image=image), key, net=net,
                     train=True)[0]


# (loss, (d/d params, d/d image)) of the training loss, dropout on.
_train_grad = jax.jit(jax.value_and_grad(_train_loss, argnums=(0, 1)),
                      static_argnames='net')


def numpy_params(net, batch, seed):
  """Random parameters with init's shapes, drawn in NumPy.

  Compiling Flax's `init` (one PRNG call per parameter) costs XLA:CPU far
  more than the forward pass; the tests only need generic weights.
  """
  shapes = jax.eval_shape(
      lambda: ppp.init(jax.random.key(0), batch, net=net))
  rng = np.random.default_rng(seed)
  def draw(path, leaf):
    name = jax.tree_util.keystr(path)
    if name.endswith("'bias']"):
      value = 0.1 * rng.normal(size=leaf.shape)
    else:
      value = rng.normal(size=leaf.shape) / np.sqrt(np.prod(leaf.shape[:-1]))
    return jnp.asarray(value, jnp.float32)
  return jax.tree_util.tree_map_with_path(draw, shapes)


@pytest.fixture(scope='module')
def model():
  """A tiny class-conditional RGB PixelCNN++ (6x6, 2 resolutions, full
  receptive field), a batch with edge levels, and its raw output."""
  net = ppp.Net(image_shape=(H, W, C), num_filters=8, num_resnet=1,
                num_scales=2, num_mixtures=K, dropout_rate=0.5,
                num_classes=NUM_CLASSES)
  rng = np.random.default_rng(0)
  levels = rng.integers(0, 256, size=(2, H, W, C))
  levels[0, :2] = 0  # edge levels present in the data
  levels[0, -2:] = 255
  x = jnp.asarray(levels / 127.5 - 1.0, jnp.float32)
  batch = {'image': x, 'label': jnp.array([0, 2], jnp.int32),
           'mask': jnp.ones((2,), bool)}
  params = numpy_params(net, batch, seed=0)
  # The output layer's bias gives varied, sharp-ish mixtures so the checks
  # below see coefficients of both signs and narrow scales.
  bias = np.asarray(rng.normal(size=ppp.num_outputs(C, K)), np.float32)
  bias[K + C * K:K + 2 * C * K] -= 2.5  # log-scales around -2.5
  bias[K + 2 * C * K:] *= 2.0  # coefficients well away from 0
  params['out'] = dict(params['out'], bias=jnp.asarray(bias))
  out = _apply(net, params, x, batch['label'])
  return net, params, batch, np.asarray(out)


def _raster_later_or_equal():
  """[H, W, H, W] bool: input pixel q is at or after output pixel p."""
  idx = np.arange(H * W).reshape(H, W)
  return idx[None, None, :, :] >= idx[:, :, None, None]


@pytest.fixture(scope='module')
def jacobians(model):
  """Jacobians w.r.t. the input image of (a random projection of the
  network output at every pixel [H, W], and the means after the coefficient
  path [H, W, C, K]), in one compilation."""
  net, params, batch, _ = model
  x, label = batch['image'][:1], batch['label'][:1]
  v = jax.random.normal(jax.random.key(1), (ppp.num_outputs(C, K),))

  def outputs(x):
    o = net.apply({'params': params}, x, label)[0]
    _, m, _, a = ppp.mixture_params(o, C, K)
    return o @ v, ppp.adjusted_means(m, a, x[0])

  jac_out, jac_means = jax.jit(jax.jacrev(outputs))(x)
  return np.asarray(jac_out)[:, :, 0], np.asarray(jac_means)[..., 0, :, :, :]


def test_network_output_is_causal_with_full_receptive_field(jacobians):
  jac = jacobians[0]  # [H, W, H, W, C]
  later = _raster_later_or_equal()
  assert np.all(jac[later] == 0.0)  # all channels of p and later pixels
  # No blind spot: every channel of every earlier pixel matters.
  assert np.all(jac[~later] != 0.0)


def test_channels_of_a_pixel_interact_only_through_coefficients(
    model, jacobians):
  out = model[3]
  jac = jacobians[1]  # [H, W, C, K, H, W, C]
  _, _, _, coeffs = ppp.mixture_params(jnp.asarray(out[0]), C, K)
  coeffs = np.asarray(coeffs)  # [H, W, 3, K]: (G<-R), (B<-R), (B<-G)
  ii, jj = np.meshgrid(np.arange(H), np.arange(W), indexing='ij')
  own = jac[ii, jj, :, :, ii, jj, :]  # [H, W, C, K, C'], the same pixel
  expected = np.zeros_like(own)
  expected[..., 1, :, 0] = coeffs[..., 0, :]
  expected[..., 2, :, 0] = coeffs[..., 1, :]
  expected[..., 2, :, 1] = coeffs[..., 2, :]
  path = np.zeros((C, C), bool)
  path[1, 0] = path[2, 0] = path[2, 1] = True  # c' < c
  # Exactly zero for c' >= c: no other path within the pixel.
  assert np.all(own.transpose(0, 1, 3, 2, 4)[..., ~path] == 0.0)
  np.testing.assert_allclose(own, expected, rtol=1e-5, atol=1e-7)
  assert np.all(np.abs(coeffs) > 1e-3)  # the path is really exercised
  later = _raster_later_or_equal() & ~np.eye(H * W, dtype=bool).reshape(
      H, W, H, W)
  assert np.all(jac.transpose(0, 1, 4, 5, 2, 3, 6)[later] == 0.0)


def _reference_log_prob(out, x, num_mixtures):
  """float64 NumPy log p(pixel) from raw outputs [P] and x [C] in [-1, 1]."""
  out = np.asarray(out, np.float64)
  x = np.asarray(x, np.float64)
  k, c = num_mixtures, len(x)
  logits = out[:k]
  means = out[k:k + c * k].reshape(c, k).copy()
  log_scales = np.maximum(out[k + c * k:k + 2 * c * k].reshape(c, k), -7.0)
  coeffs = np.tanh(out[k + 2 * c * k:].reshape(-1, k))
  pair = 0
  for ch in range(c):
    for earlier in range(ch):
      means[ch] += coeffs[pair] * x[earlier]
      pair += 1
  scales = np.exp(log_scales)
  upper = np.where(x > 0.999, np.inf, x + 1 / 255)[:, None]
  lower = np.where(x < -0.999, -np.inf, x - 1 / 255)[:, None]
  a, b = (upper - means) / scales, (lower - means) / scales  # [C, K]
  # F(a) - F(b), or (1 - F(b)) - (1 - F(a)) above the mean: no underflow
  # to 0 in the right tail.
  mass = np.where(a + b > 0, special.expit(-b) - special.expit(-a),
                  special.expit(a) - special.expit(b))
  log_w = logits - special.logsumexp(logits)
  with np.errstate(divide='ignore'):  # a mass that underflows: log 0
    return special.logsumexp(log_w + np.log(mass).sum(0))


def test_log_likelihood_matches_float64_reference(model):
  net, params, batch, out = model
  ll = np.asarray(_log_likelihood(params, batch, jax.random.key(0), net=net))
  x = np.asarray(batch['image'], np.float64)
  ref = np.array([
      sum(_reference_log_prob(out[b, i, j], x[b, i, j], K)
          for i in range(H) for j in range(W)) for b in range(2)])
  np.testing.assert_allclose(ll, ref, rtol=1e-5)
  loss, metrics = _loss(params, batch, jax.random.key(5), net=net,
                        train=False)
  np.testing.assert_allclose(metrics['nll'], -ll, rtol=1e-6)
  np.testing.assert_allclose(loss, -ll.mean(), rtol=1e-6)
  np.testing.assert_allclose(metrics['bits_per_dim'],
                             -ll / (H * W * C * math.log(2)), rtol=1e-6)


@pytest.fixture(scope='module')
def rgb_joint(model):
  """log P(R, G, B) of one model pixel over all 256^3 values: [256^3].

  Brute force over 16.7M values (about 5 s on one core): the check of
  the joint may assume nothing about how it factorises."""
  _, _, _, out = model
  pixel_out = jnp.asarray(out[1, 3, 2])
  centres = jnp.arange(256, dtype=jnp.float32) / 127.5 - 1.0
  gb = jnp.stack(jnp.meshgrid(centres, centres, indexing='ij'), -1).reshape(
      -1, 2)

  def joint(o):
    def slice_r(r):  # log P(r, g, b) for every g, b: [65536]
      x = jnp.concatenate([jnp.full((gb.shape[0], 1), r), gb], -1)
      return ppp.pixel_log_prob(jnp.broadcast_to(o, (gb.shape[0],) + o.shape),
                                x, K)
    return jax.lax.map(slice_r, centres).reshape(-1)

  # The suite compiles with the backend's optimisation off (conftest); this
  # one program runs far longer than it compiles, so it is optimised.
  compiled = jax.jit(joint).lower(pixel_out).compile(
      {'xla_backend_optimization_level': 3})
  return pixel_out, np.asarray(compiled(pixel_out))


def test_rgb_mixture_sums_to_one_over_all_pixel_values(rgb_joint):
  pixel_out, log_joint = rgb_joint
  total = special.logsumexp(log_joint.astype(np.float64))
  np.testing.assert_allclose(total, 0.0, atol=2e-5)
  # And the per-value masses agree with the float64 reference.
  rng = np.random.default_rng(3)
  for flat in rng.integers(0, 256 ** 3, size=30):
    levels = np.array(np.unravel_index(flat, (256,) * 3))
    ref = _reference_log_prob(np.asarray(pixel_out), levels / 127.5 - 1, K)
    np.testing.assert_allclose(log_joint[flat], ref, rtol=1e-4, atol=1e-5)
  most_likely = np.array(np.unravel_index(np.argmax(log_joint), (256,) * 3))
  ref = _reference_log_prob(np.asarray(pixel_out), most_likely / 127.5 - 1, K)
  np.testing.assert_allclose(log_joint.max(), ref, rtol=1e-5)


def test_grey_mixture_over_256_levels_matches_float64(model):
  _, _, _, out = model
  rng = np.random.default_rng(4)
  k = 3
  outs = rng.normal(size=(4, ppp.num_outputs(1, k)))
  outs[:, 2 * k:3 * k] += np.array([[0.0], [-3.0], [-6.0], [-9.0]])  # scales
  levels = np.arange(256)
  x = (levels / 127.5 - 1.0)[:, None]
  lp = np.asarray(jax.jit(ppp.pixel_log_prob, static_argnums=2)(
      jnp.asarray(outs[:, None], jnp.float32), jnp.asarray(x, jnp.float32),
      k))  # [4, 256]
  ref = np.array([[_reference_log_prob(o, xi, k) for xi in x] for o in outs])
  np.testing.assert_allclose(np.exp(lp), np.exp(ref), atol=2e-6)
  np.testing.assert_allclose(np.exp(lp).sum(-1), 1.0, atol=1e-5)
  np.testing.assert_allclose(np.exp(ref).sum(-1), 1.0, atol=1e-12)


def test_sample_pixel_draws_the_mixture_distribution(rgb_joint):
  pixel_out, log_joint = rgb_joint
  n = 200_000
  x = np.asarray(jax.jit(lambda key, o: ppp.sample_pixel(
      key, jnp.broadcast_to(o, (n,) + o.shape), C, K))(
          jax.random.key(0), pixel_out))
  levels = np.round((x + 1) * 127.5).astype(int)
  np.testing.assert_allclose(levels / 127.5 - 1, x, atol=1e-6)  # centres
  # Chi-square on cells of 8x8x8 levels (32^3 cells), cells expecting
  # fewer than 5 draws lumped into one.
  cells = levels // 8
  counts = np.bincount((cells[:, 0] * 32 + cells[:, 1]) * 32 + cells[:, 2],
                       minlength=32 ** 3)
  probs = np.exp(log_joint.astype(np.float64)).reshape(
      32, 8, 32, 8, 32, 8).sum((1, 3, 5)).reshape(-1)
  expected = probs * n
  big = expected >= 5
  assert big.sum() > 100  # a spread-out distribution, not a point mass
  observed = np.append(counts[big], counts[~big].sum())
  expected = np.append(expected[big], expected[~big].sum())
  _, p_value = stats.chisquare(observed, expected * n / expected.sum())
  assert p_value > 1e-4, p_value


def test_values_and_gradients_finite_at_levels_0_and_255(model):
  net, params, batch, _ = model
  checker = (jnp.arange(H)[:, None] + jnp.arange(W)) % 2 == 0
  x = jnp.stack([jnp.full((H, W, C), -1.0),  # every sub-pixel at level 0
                 jnp.where(checker[..., None], -1.0, 1.0) * jnp.ones(C)])
  value, (g_params, g_x) = _train_grad(params, x, batch, jax.random.key(0),
                                       net=net)
  assert np.isfinite(value)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(g_params))
  assert np.all(np.isfinite(g_x))
  assert np.any(np.asarray(g_params['out']['bias']) != 0)


def test_dropout_is_keyed_in_train_and_off_in_eval(model):
  net, params, batch, _ = model
  x = batch['image']
  k1, k2 = jax.random.key(1), jax.random.key(2)
  train1 = _train_grad(params, x, batch, k1, net=net)[0]
  train1b = _train_grad(params, x, batch, k1, net=net)[0]
  train2 = _train_grad(params, x, batch, k2, net=net)[0]
  eval1 = _loss(params, batch, k1, net=net, train=False)[0]
  eval2 = _loss(params, batch, k2, net=net, train=False)[0]
  assert float(train1) == float(train1b)
  assert float(train1) != float(train2)
  assert float(eval1) == float(eval2)
  assert float(train1) != float(eval1)
  ll = _log_likelihood(params, batch, k2, net=net)
  np.testing.assert_allclose(eval1, -np.mean(ll), rtol=1e-6)


def test_sample_is_keyed_per_position_and_consistent_with_the_net(model):
  net, params, _, _ = model
  fn = jax.jit(ppp.sample, static_argnames=('num', 'net'))
  key = jax.random.key(7)
  labels = jnp.array([1, 2])
  images = fn(params, key, num=2, net=net, labels=labels)
  again = fn(params, key, num=2, net=net, labels=labels)
  other = fn(params, jax.random.key(8), num=2, net=net, labels=labels)
  assert images.shape == (2, H, W, C) and images.dtype == jnp.uint8
  np.testing.assert_array_equal(images, again)
  assert np.any(np.asarray(images) != np.asarray(other))
  # Causality makes the output at p the same on the final image as on the
  # partial one the sampler saw, so re-drawing every pixel with its own key
  # fold_in(key, p) from one pass over the final image reproduces it.
  x = jnp.asarray(images, jnp.float32) / 127.5 - 1.0
  out = _apply(net, params, x, labels)  # [2, H, W, P]
  per_position = out.reshape(2, H * W, 1, 1, -1).transpose(1, 0, 2, 3, 4)
  redraw = jax.vmap(lambda t, o: ppp.sample_pixel(
      jax.random.fold_in(key, t), o, C, K))(jnp.arange(H * W), per_position)
  redraw = np.round((np.asarray(redraw) + 1) * 127.5)  # [H*W, 2, 1, 1, C]
  redraw = redraw[:, :, 0, 0].transpose(1, 0, 2).reshape(2, H, W, C)
  np.testing.assert_array_equal(redraw, images)


def _dataset(pixel_levels=256, num_classes=10):
  return types.SimpleNamespace(name='digits', pixel_levels=pixel_levels,
                               num_classes=num_classes)


def test_validate_names_the_field():
  config = config_lib.get_config('smoke')
  ppp.validate(config, _dataset())
  cases = [
      ('data', 'binarize', 'dynamic', 'config.data.binarize'),
      ('data', 'value_range', 'unit', 'config.data.value_range'),
      ('data', 'dequantize', True, 'config.data.dequantize'),
      ('model', 'num_scales', 5, 'config.model.num_scales=5'),
      ('model', 'dropout_rate', 1.0, 'config.model.dropout_rate'),
      ('model', 'num_mixtures', 0, 'config.model.num_mixtures'),
  ]
  for group, field, value, message in cases:
    bad = ml_collections.ConfigDict(config.to_dict())
    bad[group][field] = value
    with pytest.raises(ConfigError, match=message.replace('.', r'\.')):
      ppp.validate(bad, _dataset())
  with pytest.raises(ConfigError, match=r'config\.data\.binarize'):
    ppp.validate(config, _dataset(pixel_levels=2))
  cond = ml_collections.ConfigDict(config.to_dict())
  cond.model.num_classes = 10
  with pytest.raises(ConfigError, match='config.model.num_classes'):
    ppp.validate(cond, _dataset(num_classes=None))


def test_class_conditioning_reaches_the_output(model):
  net, params, batch, out = model
  other = np.asarray(_apply(net, params, batch['image'], jnp.array([1, 0])))
  assert np.all(np.abs(other - out).max(axis=(1, 2, 3)) > 1e-3)


def test_completion_keeps_observed_pixels_and_labels_steer_samples(model):
  net, params, _, _ = model
  fn = jax.jit(ppp.sample, static_argnames=('num', 'net'))
  key = jax.random.key(3)
  observed = jax.random.randint(jax.random.key(4), (2, H, W, C), 0, 256
                                ).astype(jnp.uint8)
  mask = np.zeros((H, W), bool)
  mask[:H // 2] = True  # the top half is given
  labels = jnp.array([0, 0])
  done = np.asarray(fn(params, key, num=2, net=net, labels=labels,
                       observed=observed, observed_mask=mask))
  np.testing.assert_array_equal(done[:, :H // 2],
                                np.asarray(observed)[:, :H // 2])
  assert np.any(done[:, H // 2:] != np.asarray(observed)[:, H // 2:])
  # The drawn half depends on the given one (the model conditions on it).
  other = np.asarray(fn(params, key, num=2, net=net, labels=labels,
                        observed=255 - observed, observed_mask=mask))
  assert np.any(other[:, H // 2:] != done[:, H // 2:])
  # With the same key, the label alone changes what is drawn.
  relabelled = np.asarray(fn(params, key, num=2, net=net,
                             labels=jnp.array([1, 2])))
  plain = np.asarray(fn(params, key, num=2, net=net, labels=labels))
  assert np.all(np.any(relabelled != plain, axis=(1, 2, 3)))
  with pytest.raises(ConfigError, match=r'observed_mask must have shape'):
    ppp.sample(params, key, 2, net=net, observed=observed,
               observed_mask=np.ones((H, W, C), bool))


def test_complete_keeps_a_raster_prefix_and_its_conditional_is_exact(model):
  """`complete` keeps the first half + 2 pixels (a prefix ending mid-row);
  log p(suffix | prefix) is log p(x) for an empty prefix, 0 for a full one,
  and the suffix pixels' share of log p(x) in between."""
  net, params, batch, _ = model
  num_known = H * W // 2 + 2
  observed = np.asarray(jnp.round((batch['image'] + 1.0) * 127.5),
                        np.uint8)
  done = np.asarray(ppp.complete(params, observed, num_known,
                                 jax.random.key(5), net=net,
                                 labels=batch['label']))
  flat, seen = done.reshape(2, H * W, C), observed.reshape(2, H * W, C)
  np.testing.assert_array_equal(flat[:, :num_known], seen[:, :num_known])
  assert np.any(flat[:, num_known:] != seen[:, num_known:])

  @jax.jit
  def run(params, batch):
    return ([ppp.conditional_log_likelihood(params, batch, k, net=net)
             for k in (0, num_known, H * W)],
            ppp.log_likelihood(params, batch, None, net=net),
            ppp.conditional_log_likelihood(params, batch, num_known - 1,
                                           net=net))

  (none_known, suffix, all_known), log_lik, longer = run(params, batch)
  np.testing.assert_allclose(none_known, log_lik, rtol=1e-6)
  np.testing.assert_array_equal(all_known, 0.0)
  assert np.all(longer < suffix)  # one more pixel's log-mass (< 0)
