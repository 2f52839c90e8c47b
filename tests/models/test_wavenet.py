"""WaveNet: causality and receptive field by Jacobian, normalisation, cached
sampler == naive sampler, conditioning, 8-bit values, training on signals."""

import itertools
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import wavenet as wavenet_config
from jaxgen import parallel
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.models import wavenet
from jaxgen.nn import causal1d

TINY = dict(residual_channels=6, gate_channels=5, skip_channels=7)


def _params(net, seed=0, scale=0.3):
  """Random normal parameters of the net's shapes (no init compilation)."""
  x = jnp.zeros((2,) + tuple(net.image_shape))
  batch = {'image': x, 'label': jnp.zeros((2,), jnp.int32)}
  shapes = jax.eval_shape(
      lambda: wavenet.init(jax.random.key(0), batch, net=net))
  rng = np.random.default_rng(seed)
  return jax.tree.map(
      lambda s: jnp.asarray(scale * rng.standard_normal(s.shape), s.dtype),
      shapes)


def _dependence(net, params, num_inputs):
  """dep[t, j]: does output t depend on input position j? (Jacobian != 0).

  The T x O outputs are projected on a random vector over O first (T
  reverse-mode passes instead of T * O): an output that does not depend on
  an input has an exactly zero projected derivative, and one that does has
  a nonzero one unless the random weights cancel exactly.
  """
  values = jax.random.randint(jax.random.key(7), (1, net.length), 0,
                              num_inputs)
  onehot = jax.nn.one_hot(values, num_inputs)
  labels = jnp.zeros((1,), jnp.int32) if net.num_classes else None
  weights = jax.random.normal(jax.random.key(8), (net.num_outputs,))

  @jax.jit
  def jac(params, onehot):
    out = lambda o: net.apply({'params': params}, o, labels)[0] @ weights
    return jax.jacrev(out)(onehot)  # [T, 1, T, L]

  return np.abs(np.asarray(jac(params, onehot))).sum(axis=(1, 3)) > 0


@pytest.mark.parametrize('likelihood, shape, kernel, layers, stacks, cond', [
    ('categorical', (3, 4, 2), 2, 2, 2, 3),
    ('bernoulli', (1, 24, 1), 3, 2, 1, 0),
])
def test_output_t_reads_exactly_the_receptive_field_before_t(
    likelihood, shape, kernel, layers, stacks, cond):
  net = wavenet.Net(image_shape=shape, likelihood=likelihood,
                    kernel_size=kernel, layers_per_stack=layers,
                    num_stacks=stacks, num_classes=cond, **TINY)
  # R = 1 + (k - 1) (1 + stacks (2^layers - 1)), and the same from the
  # layer list.
  r = 1 + (kernel - 1) * (1 + stacks * (2 ** layers - 1))
  assert net.receptive_field == r
  assert net.receptive_field == causal1d.receptive_field(
      (1,) + net.dilations, kernel)
  assert r < net.length  # so the window's far edge is inside the sequence
  dep = _dependence(net, _params(net), net.num_inputs)
  t, j = np.meshgrid(np.arange(net.length), np.arange(net.length),
                     indexing='ij')
  window = (j < t) & (j >= t - r)  # x_{t-R}, ..., x_{t-1}
  np.testing.assert_array_equal(dep, window)
  if shape[-1] > 1:
    # In image coordinates: output (i, j, c) never reads a sub-pixel at or
    # after (i, j, c) in raster order, channels included (NumPy's index).
    coords = list(itertools.product(*(range(n) for n in shape)))
    for out in coords:
      for inp in coords:
        a = np.ravel_multi_index(out, shape)
        b = np.ravel_multi_index(inp, shape)
        if b >= a:
          assert not dep[a, b], (out, inp)
    # Within a pixel, the second channel reads the first.
    assert dep[np.ravel_multi_index((1, 1, 1), shape),
               np.ravel_multi_index((1, 1, 0), shape)]


@pytest.mark.parametrize('likelihood, length', [('bernoulli', 10),
                                                ('categorical', 2)])
def test_probabilities_sum_to_one_over_every_sequence(likelihood, length):
  """2^10 binary sequences, or all 256^2 8-bit pairs, in float64."""
  net = wavenet.Net(image_shape=(1, length, 1), likelihood=likelihood,
                    layers_per_stack=2, num_classes=2, **TINY)
  params = _params(net)
  levels = net.num_inputs
  values = np.array(list(itertools.product(range(levels), repeat=length)))
  scale = 255.0 if likelihood == 'categorical' else 1.0
  with jax.enable_x64(True):
    p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    images = jnp.asarray(values / scale).reshape(-1, 1, length, 1)

    @jax.jit
    def total(params, label):
      batch = {'image': images, 'label': jnp.full((len(values),), label)}
      ll = wavenet.log_likelihood(params, batch, None, net=net)
      return jax.scipy.special.logsumexp(ll)

    for label in (0, 1):
      log_total = total(p64, label)
      assert log_total.dtype == jnp.float64
      assert abs(float(log_total)) < 1e-12


def test_eight_bit_values_are_recovered_exactly():
  net = wavenet.Net(likelihood='categorical')
  levels = np.arange(256)
  images = jnp.asarray(levels / 255.0, jnp.float32).reshape(4, 8, 8, 1)
  values = jax.jit(lambda x: wavenet.to_values(net, x))(images)
  np.testing.assert_array_equal(values.reshape(-1), levels)


@pytest.fixture(scope='module')
def conditional_net():
  net = wavenet.Net(image_shape=(1, 16, 1), likelihood='categorical',
                    layers_per_stack=3, num_classes=3, **TINY)
  return net, _params(net, 1)


@pytest.mark.parametrize('likelihood', ['categorical', 'bernoulli'])
def test_cached_sampler_equals_naive_sampler(likelihood, conditional_net):
  """Same key -> the same samples, and logits equal to 1e-5.

  The two samplers compute each logit with the same products in a different
  arrangement (a [B, R] step vs a [B, T, R] sequence), so logits may differ
  in the last float32 bits; a draw could only flip if a uniform fell within
  that distance of a decision boundary (probability ~1e-6 per draw). With
  these fixed keys none does, and the samples agree exactly.
  """
  net, params = conditional_net
  if likelihood == 'bernoulli':
    net = net.clone(likelihood='bernoulli')
    params = _params(net, 2)
  labels = jnp.array([0, 1, 2, 1, 0])

  @jax.jit
  def run(params, key):
    cached = wavenet.sample_sequences(params, key, 5, net=net, labels=labels)
    naive = wavenet.sample_sequences(params, key, 5, net=net, labels=labels,
                                     method='naive')
    forced = net.apply({'params': params}, cached[0], labels)
    return cached, naive, forced

  (xc, lc), (xn, ln), forced = run(params, jax.random.key(11))
  np.testing.assert_array_equal(xc, xn)
  np.testing.assert_allclose(lc, ln, rtol=0, atol=1e-5)
  # Teacher forcing on the drawn sequence reproduces the sampler's logits.
  np.testing.assert_allclose(lc, forced, rtol=0, atol=1e-5)
  assert len(np.unique(xc)) > 1


def test_conditional_sampling_uses_its_label(conditional_net):
  net, params = conditional_net
  key = jax.random.key(12)

  @jax.jit
  def run(params):
    out = {}
    for label in range(3):
      labels = jnp.full((4,), label)
      x, logits = wavenet.sample_sequences(params, key, 4, net=net,
                                           labels=labels)
      out[label] = (x, logits, net.apply({'params': params}, x, labels),
                    net.apply({'params': params}, x, (labels + 1) % 3))
    return out

  out = run(params)
  for label, (x, logits, own, other) in out.items():
    np.testing.assert_allclose(logits, own, rtol=0, atol=1e-5)
    assert np.abs(np.asarray(logits - other)).max() > 1e-2, label
  assert not np.array_equal(out[0][0], out[1][0])
  assert not np.array_equal(out[1][0], out[2][0])
  with pytest.raises(ConfigError, match='labels must have shape'):
    wavenet.sample(params, key, 4, net=net, labels=jnp.zeros((3,), int))


def test_loss_is_masked_mean_of_exact_nll(conditional_net):
  net, params = conditional_net
  rng = np.random.default_rng(0)
  values = rng.integers(0, 256, size=(4, 16))
  batch = {'image': jnp.asarray(values / 255.0, jnp.float32).reshape(
      4, 1, 16, 1), 'label': jnp.array([0, 1, 2, 0]),
           'mask': jnp.array([True, True, False, True])}

  @jax.jit
  def run(params):
    logits = net.apply({'params': params}, jnp.asarray(values),
                       batch['label'])
    return logits, wavenet.loss_fn(params, batch, None, net=net)

  logits, (loss, metrics) = run(params)
  logits = np.asarray(logits, np.float64)
  log_softmax = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
  nll = -np.take_along_axis(log_softmax, values[..., None], -1)[..., 0].sum(-1)
  np.testing.assert_allclose(metrics['nll'], nll, rtol=1e-5)
  np.testing.assert_allclose(loss, nll[[0, 1, 3]].mean(), rtol=1e-5)


def test_trains_on_the_synthetic_signal_source(tmp_path):
  """The shared train step on 'signal:sines:32:96': 2 steps, exact test NLL.

  (Checkpointing and the loop are the trainer's and are exercised by the
  families test with the smoke config.)
  """
  config = wavenet_config.get_config('smoke')
  with config.unlocked():
    config.data.name = 'signal:sines:32:96'
    config.data.binarize = 'none'
    config.model.image_shape = (1, 32, 1)
    config.model.likelihood = 'categorical'
    config.model.num_classes = 4
    config.data.splits.train = 'all[:64]'
    config.data.splits.validation = ''
    config.data.splits.test = 'all[64:]'
    config.eval.periodic_split = ''
    config.train.num_steps = 2
  exp = train.Experiment(config, str(tmp_path))
  assert exp.dataset.image_shape == (1, 32, 1)
  state, stream = exp.init_state(), exp.train_iterator()
  for _ in range(2):
    batch = parallel.global_batch(next(stream), exp.mesh)
    state, metrics = exp.train_step(state, batch, exp.train_key)
  assert int(state.step) == 2 and np.isfinite(float(metrics['loss']))
  results = exp.evaluate(state)
  assert results['num_examples'] == 32
  # Near the uniform 8 bits per sample after two steps, and exact: the
  # estimator equals the training metric.
  assert 6.0 < results['exact/bits_per_dim'] < 8.5
  np.testing.assert_allclose(results['exact/nll_nats'], results['nll'],
                             rtol=1e-6)


def test_validate_names_the_field():
  digits = types.SimpleNamespace(pixel_levels=256, num_classes=10,
                                 name='digits')
  config = wavenet_config.get_config('digits,categorical')
  wavenet.validate(config, digits)
  with config.unlocked():
    config.data.binarize = 'dynamic'
  with pytest.raises(ConfigError, match='config.data.binarize'):
    wavenet.validate(config, digits)
  config = wavenet_config.get_config('digits')  # bernoulli
  with config.unlocked():
    config.data.binarize = 'none'
  with pytest.raises(ConfigError, match='config.data.binarize'):
    wavenet.validate(config, digits)
  config = wavenet_config.get_config('sines,cond')
  wavenet.validate(config, types.SimpleNamespace(
      pixel_levels=256, num_classes=4, name='signal:sines:256'))
  with pytest.raises(ConfigError, match='config.model.num_classes'):
    wavenet.validate(config, digits)
  with config.unlocked():
    config.model.likelihood = 'logistic'
  with pytest.raises(ConfigError, match='config.model.likelihood'):
    wavenet.validate(config, digits)
