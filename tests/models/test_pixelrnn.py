"""PixelRNN: causality and receptive fields by Jacobian, float64 recurrences.

Order: sub-pixel (i, j, c) comes after every sub-pixel of the pixels before
(i, j) in raster order and after channels < c of pixel (i, j). The logits of
(i, j, c) must have exactly zero derivative w.r.t. (i, j, c) and everything
after it.
"""

import math
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import special

from experiments.configs import pixelrnn as config_lib
from jaxgen import train
from jaxgen.data import transforms
from jaxgen.errors import ConfigError
from jaxgen.models import pixelrnn
from jaxgen.nn import masked
from jaxgen.nn import recurrent

H, W, C = 6, 6, 3
HIDDEN = 6  # two units per colour group
VARIANTS = ('row_lstm', 'diagonal_bilstm')

_apply = jax.jit(lambda net, p, x: net.apply({'params': p}, x),
                 static_argnums=0)


def random_params(module, x, seed, bias=0.0):
  """Parameters with init's shapes drawn in NumPy: weights N(0, 1/fan_in),
  biases `bias` + N(0, 0.1^2) (compiling Flax's init costs XLA:CPU far more
  than the forward pass)."""
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), x))['params']
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    if jax.tree_util.keystr(path).endswith("'bias']"):
      value = bias + 0.1 * rng.normal(size=leaf.shape)
    else:
      value = rng.normal(size=leaf.shape) / np.sqrt(np.prod(leaf.shape[:-1]))
    return jnp.asarray(value, jnp.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def _sub_pixel_order():
  return np.arange(H * W * C).reshape(H, W, C)


@pytest.fixture(scope='module', params=VARIANTS)
def rgb_jacobian(request):
  """Jacobian [H, W, C, H, W, C] of a random projection of the 256 logits
  of every sub-pixel w.r.t. the image, for a 2-layer RGB net."""
  net = pixelrnn.Net(image_shape=(H, W, C), variant=request.param,
                     num_layers=2, hidden=HIDDEN, output_features=12,
                     likelihood='categorical')
  x = jax.random.uniform(jax.random.key(1), (1, H, W, C))
  # Positive biases keep the ReLUs alive, so a zero is structural.
  params = random_params(net, x, seed=0, bias=1.0)
  v = jax.random.normal(jax.random.key(2), (pixelrnn.NUM_LEVELS,))
  jac = jax.jit(jax.jacrev(
      lambda x: net.apply({'params': params}, x)[0] @ v))(x)
  return request.param, np.asarray(jac)[:, :, :, 0]


def test_logits_are_causal_in_raster_and_channel_order(rgb_jacobian):
  _, jac = rgb_jacobian
  order = _sub_pixel_order()
  later = order[None, None, None] >= order[:, :, :, None, None, None]
  assert np.all(jac[later] == 0.0)
  # Within a pixel, channel c sees the channels before it.
  for i, j in [(0, 0), (2, 3), (5, 5)]:
    assert np.all(jac[i, j, 1, i, j, 0] != 0)  # G <- R
    assert np.all(jac[i, j, 2, i, j, :2] != 0)  # B <- R, G


def test_receptive_field(rgb_jacobian):
  variant, jac = rgb_jacobian
  order = _sub_pixel_order()
  earlier = order[None, None, None] < order[:, :, :, None, None, None]
  seen = jac != 0
  if variant == 'row_lstm':
    # Triangular: the three pixels to the left (mask-A input layer) and a
    # cone above that widens by one column per row (1 x 3 state-to-state).
    for i, j in [(1, 1), (3, 2), (5, 5), (4, 0)]:
      for i2 in range(i + 1):
        for j2 in range(W):
          if (i2 == i and j - 3 <= j2 < j) or (i2 < i and
                                               abs(j2 - j) <= i - i2):
            assert np.all(seen[i, j, :, i2, j2]), (i, j, i2, j2)
    # ... and it is not global: two layers do not reach far to the right.
    assert not np.any(seen[5, 0, :, 4, 5])
  else:
    # Global, except for one sub-pixel: the last channel of the last pixel
    # of the row above, (i-1, W-1, C-1), is visible only to features at
    # later positions (mask A), i.e. row i from column W-4 on (7x7 window),
    # which outputs at (i, j < W-4) never read. The paper's architecture
    # has this small blind spot at any depth.
    blind = np.zeros_like(seen)
    for i in range(1, H):
      blind[i, :W - 4, :, i - 1, W - 1, C - 1] = True
    np.testing.assert_array_equal(seen, earlier & ~blind)


@pytest.mark.parametrize('variant', VARIANTS)
def test_layer_sees_only_positions_up_to_its_own(variant):
  """The recurrent layers alone (mask-B: position p may read p itself):
  zero derivative w.r.t. every later position. Fails for the Diagonal
  BiLSTM if the right-to-left output is not shifted down one row (then
  (i, j) reads (i, j + 1))."""
  f = 4
  if variant == 'row_lstm':
    layer = recurrent.RowLSTM(HIDDEN, 3, 1)
  else:
    layer = recurrent.DiagonalBiLSTM(HIDDEN, 1)
  x = jax.random.normal(jax.random.key(3), (1, H, W, f))
  params = random_params(layer, x, seed=1)
  v = jax.random.normal(jax.random.key(4), (HIDDEN,))
  jac = np.asarray(jax.jit(jax.jacrev(
      lambda x: layer.apply({'params': params}, x)[0] @ v))(x))[:, :, 0]
  seen = np.any(jac != 0, axis=-1)  # [H, W, H, W]
  idx = np.arange(H * W).reshape(H, W)
  assert not np.any(seen[idx[None, None] > idx[:, :, None, None]])
  for i, j in [(2, 2), (5, 0), (3, 5)]:
    assert seen[i, j, i, j]  # mask B: its own position
    if j + 1 < W:
      assert seen[i, j, i - 1, j + 1]  # the row above, to the right
  if variant == 'diagonal_bilstm':
    assert seen[3, 0, 2, W - 1]  # the right-to-left direction, shifted


def _sigmoid_tanh_gates(pre, groups):
  """NumPy: pre [..., 4h] in [C, 4, h/C] layout -> o, f, i, g [..., h]."""
  *batch, four_h = pre.shape
  pre = pre.reshape(*batch, groups, 4, four_h // (4 * groups))
  gate = lambda t: pre[..., t, :].reshape(*batch, four_h // 4)
  return (special.expit(gate(0)), special.expit(gate(1)),
          special.expit(gate(2)), np.tanh(gate(3)))


def _masked_kernel(p, kernel_size, mask_type, groups):
  kernel = np.asarray(p['kernel'], np.float64)
  mask = masked.make_mask(kernel_size, kernel.shape[2], kernel.shape[3],
                          mask_type, groups)
  return kernel * mask, np.asarray(p['bias'], np.float64)


def _row_lstm_reference(params, x, k, groups):
  """float64 Row LSTM, row by row, as written in the paper (eqs. 3-4)."""
  x = np.asarray(x, np.float64)
  b, rows, w, _ = x.shape
  kernel, bias = _masked_kernel(params['input_to_state'], (1, k), 'B', groups)
  k_ss = np.asarray(params['state_to_state'], np.float64)
  hidden = k_ss.shape[1]
  half = k // 2
  xp = np.pad(x, ((0, 0), (0, 0), (half, half), (0, 0)))
  x_is = bias + sum(xp[:, :, d:d + w] @ kernel[0, d] for d in range(k))
  h = np.zeros((b, w, hidden))
  c = np.zeros((b, w, hidden))
  out = []
  for r in range(rows):
    hp = np.pad(h, ((0, 0), (half, half), (0, 0)))
    pre = x_is[:, r] + sum(hp[:, d:d + w] @ k_ss[d] for d in range(k))
    o, f, i, g = _sigmoid_tanh_gates(pre, groups)
    c = f * c + i * g
    h = o * np.tanh(c)
    out.append(h)
  return np.stack(out, axis=1)


def _diagonal_lstm_reference(params, x, groups):
  """float64 diagonal LSTM in image coordinates: (r, j) from (r - 1, j)
  and (r, j - 1), pixel by pixel, with no skewing."""
  x = np.asarray(x, np.float64)
  b, rows, w, _ = x.shape
  kernel, bias = _masked_kernel(params['input_to_state'], 1, 'B', groups)
  k_ss = np.asarray(params['state_to_state'], np.float64)
  hidden = k_ss.shape[1]
  x_is = bias + x @ kernel[0, 0]
  h = np.zeros((b, rows + 1, w + 1, hidden))  # a zero row above, column left
  c = np.zeros_like(h)
  for r in range(rows):
    for j in range(w):
      pre = x_is[:, r, j] + h[:, r, j + 1] @ k_ss[0] + h[:, r + 1, j] @ k_ss[1]
      o, f, i, g = _sigmoid_tanh_gates(pre, groups)
      c[:, r + 1, j + 1] = f * c[:, r + 1, j] + i * g
      h[:, r + 1, j + 1] = o * np.tanh(c[:, r + 1, j + 1])
  return h[:, 1:, 1:]


@pytest.mark.parametrize('variant', VARIANTS)
def test_recurrences_match_float64_numpy(variant):
  groups, f = 3, 6
  x = jax.random.normal(jax.random.key(5), (2, 5, 4, f))
  if variant == 'row_lstm':
    layer = recurrent.RowLSTM(HIDDEN, 3, groups)
  else:
    layer = recurrent.DiagonalBiLSTM(HIDDEN, groups)
  params = random_params(layer, x, seed=2, bias=0.3)
  out = np.asarray(jax.jit(lambda p, x: layer.apply({'params': p}, x))(
      params, x))
  if variant == 'row_lstm':
    ref = _row_lstm_reference(params, x, 3, groups)
  else:
    left = _diagonal_lstm_reference(params['left_to_right'], x, groups)
    right = _diagonal_lstm_reference(params['right_to_left'],
                                     np.asarray(x)[:, :, ::-1], groups)
    right = np.pad(right[:, :, ::-1], ((0, 0), (1, 0), (0, 0), (0, 0)))
    ref = left + right[:, :-1]
  np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
  assert np.abs(ref).mean() > 0.05  # the states are not trivially small


def test_skew_and_unskew():
  x = np.arange(2 * 3 * 4 * 2, dtype=np.float32).reshape(2, 3, 4, 2) + 1
  skewed = np.asarray(recurrent.skew(jnp.asarray(x)))
  expected = np.zeros((2, 3, 4 + 3 - 1, 2), np.float32)
  for r in range(3):
    expected[:, r, r:r + 4] = x[:, r]
  np.testing.assert_array_equal(skewed, expected)
  np.testing.assert_array_equal(
      recurrent.unskew(jnp.asarray(skewed), 4), x)


@pytest.mark.parametrize('likelihood', ['bernoulli', 'categorical'])
def test_log_likelihood_matches_float64_reference(likelihood):
  net = pixelrnn.Net(image_shape=(4, 4, 1), variant='row_lstm',
                     num_layers=1, hidden=4, output_features=8,
                     likelihood=likelihood)
  rng = np.random.default_rng(6)
  if likelihood == 'bernoulli':
    x = rng.integers(0, 2, size=(3, 4, 4, 1)).astype(np.float32)
  else:  # exactly what the data pipeline feeds: level / 255 in float32
    pixels_uint8 = rng.integers(0, 256, size=(3, 4, 4, 1)).astype(np.uint8)
    pixels_uint8[0, 0, :2, 0] = (0, 255)
    x = np.asarray(transforms.to_float(pixels_uint8, 'unit'))
  batch = {'image': jnp.asarray(x), 'mask': jnp.array([True, True, False])}
  params = random_params(net, batch['image'], seed=3)
  logits = np.asarray(_apply(net, params, batch['image']), np.float64)
  if likelihood == 'bernoulli':
    ref = x * logits - np.logaddexp(0.0, logits)
  else:
    lev = np.rint(x * 255).astype(int)
    np.testing.assert_array_equal(np.asarray(pixelrnn.levels(x)), lev)
    log_p = logits - special.logsumexp(logits, axis=-1, keepdims=True)
    ref = np.take_along_axis(log_p, lev[..., None], -1)[..., 0]
  ref = ref.reshape(3, -1).sum(-1)
  loss, metrics = jax.jit(pixelrnn.loss_fn, static_argnames=('net', 'train'))(
      params, batch, jax.random.key(0), net=net, train=True)
  np.testing.assert_allclose(metrics['nll'], -ref, rtol=1e-5)
  np.testing.assert_allclose(loss, -ref[:2].mean(), rtol=1e-5)  # masked


def test_levels_recover_every_8bit_value():
  values = np.arange(256, dtype=np.uint8)
  x = transforms.to_float(values, 'unit')
  np.testing.assert_array_equal(pixelrnn.levels(x), values)


@pytest.mark.parametrize('likelihood', ['bernoulli', 'categorical'])
def test_sample_is_keyed_per_step_and_consistent_with_the_net(likelihood):
  c = 3 if likelihood == 'categorical' else 1
  net = pixelrnn.Net(image_shape=(4, 4, c), variant='diagonal_bilstm',
                     num_layers=1, hidden=6, output_features=6,
                     likelihood=likelihood)
  params = random_params(net, jnp.zeros((1, 4, 4, c)), seed=4, bias=0.5)
  fn = jax.jit(pixelrnn.sample, static_argnames=('num', 'net'))
  key = jax.random.key(9)
  images = np.asarray(fn(params, key, num=3, net=net))
  assert images.shape == (3, 4, 4, c) and images.dtype == np.uint8
  np.testing.assert_array_equal(images, fn(params, key, num=3, net=net))
  assert np.any(images != np.asarray(fn(params, jax.random.key(1), num=3,
                                        net=net)))
  if likelihood == 'bernoulli':
    assert set(np.unique(images)) <= {0, 255}
  # By causality the logits of step t are the same on the finished image,
  # so redrawing every sub-pixel with fold_in(key, t) reproduces it.
  x = jnp.asarray(images, jnp.float32) / 255.0
  logits = _apply(net, params, x)
  for t in range(4 * 4 * c):
    (i, j), ch = divmod(t // c, 4), t % c
    k = jax.random.fold_in(key, t)
    if likelihood == 'bernoulli':
      value = jax.random.bernoulli(k, jax.nn.sigmoid(logits[:, i, j, ch]))
      value = np.asarray(value) * 255
    else:
      value = jax.random.categorical(k, logits[:, i, j, ch], axis=-1)
    np.testing.assert_array_equal(np.asarray(value), images[:, i, j, ch])


def _dataset(pixel_levels=2):
  return types.SimpleNamespace(name='digits', pixel_levels=pixel_levels,
                               num_classes=10)


def test_validate_names_the_field():
  config = config_lib.get_config('smoke')
  pixelrnn.validate(config, _dataset())
  cases = [
      ('model', 'variant', 'grid_lstm', 'config.model.variant'),
      ('model', 'likelihood', 'logistic', 'config.model.likelihood'),
      ('model', 'first_kernel_size', 4, 'config.model.first_kernel_size'),
      ('model', 'num_layers', 0, 'config.model.num_layers'),
      ('data', 'binarize', 'none', 'config.data.binarize'),
  ]
  for group, field, value, message in cases:
    bad = ml_collections.ConfigDict(config.to_dict())
    bad[group][field] = value
    with pytest.raises(ConfigError, match=message.replace('.', r'\.')):
      pixelrnn.validate(bad, _dataset(256 if field == 'binarize' else 2))
  rgb = ml_collections.ConfigDict(config.to_dict())
  rgb.model.image_shape = (8, 8, 3)
  with pytest.raises(ConfigError, match=r'config\.model\.hidden'):
    pixelrnn.validate(rgb, _dataset())
  categorical = config_lib.get_config('smoke,categorical')
  pixelrnn.validate(categorical, _dataset(256))
  bad = ml_collections.ConfigDict(categorical.to_dict())
  bad.data.value_range = 'symmetric'
  with pytest.raises(ConfigError, match=r'config\.data\.value_range'):
    pixelrnn.validate(bad, _dataset(256))


@pytest.mark.slow
def test_row_lstm_trains_through_the_shared_trainer(tmp_path):
  """The registry test trains the default (Diagonal BiLSTM, Bernoulli)
  smoke config; this one the Row LSTM with the 256-way softmax."""
  config = config_lib.get_config('smoke,row,categorical')
  config.train.num_steps = 2
  exp = train.Experiment(config, str(tmp_path))
  state = exp.train()
  results = exp.evaluate(state)
  assert results['num_examples'] == len(exp.dataset.splits['test'])
  # A 256-way model starts near the uniform 8 bits/dim.
  assert 6.0 < results['exact/bits_per_dim'] < 9.0
  np.testing.assert_allclose(results['exact/nll_nats'], results['nll'],
                             rtol=1e-6)
  assert math.isfinite(results['exact/log_likelihood'])
