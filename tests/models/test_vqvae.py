"""VQ-VAE family: straight-through, loss and bound vs NumPy, EMA step, codes."""

import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from experiments.configs import vqvae as vqvae_config
from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.models import vqvae
from jaxgen.nn import quantizers

K = 8


def _net(**overrides):
  fields = dict(image_shape=(8, 8, 1), hidden_channels=8, res_channels=4,
                num_res_blocks=1, num_downsamples=1, code_dim=4, num_codes=K,
                quantizer='ema', dead_code_threshold=0.0, ema_decay=0.9)
  fields.update(overrides)
  return vqvae.Net(**fields)


def _batch(n=6, seed=0):
  x = jax.random.bernoulli(jax.random.key(seed), 0.4, (n, 8, 8, 1))
  return {'image': x.astype(jnp.float32), 'label': jnp.zeros(n, jnp.int32),
          'mask': jnp.arange(n) < n - 1}  # the last row is padding


@pytest.fixture(scope='module')
def model():
  net = _net()
  batch = _batch()
  variables = jax.jit(lambda k, b: vqvae.init(k, b, net=net))(
      jax.random.key(1), batch)
  return net, variables, batch


def test_decoder_gradient_reaches_encoder_unchanged(model):
  net, variables, batch = model
  x = batch['image']

  def recon(decoded):
    return -vqvae.pixels.log_prob(net.likelihood, decoded, x).sum()

  @jax.jit
  def grads(variables):
    z_e = net.apply(variables, x, method=vqvae.Net.encode)
    z_q = net.apply(variables, z_e, method=vqvae.Net.quantize)['z_q']
    via_zq = jax.grad(lambda zq: recon(net.apply(
        variables, zq, method=vqvae.Net.decode)))(z_q)
    via_ze = jax.grad(lambda ze: recon(net.apply(
        variables, net.apply(variables, ze, method=vqvae.Net.quantize)['z_q'],
        method=vqvae.Net.decode)))(z_e)
    return via_zq, via_ze

  via_zq, via_ze = grads(variables)
  assert float(jnp.abs(via_zq).max()) > 0
  np.testing.assert_allclose(via_ze, via_zq, rtol=1e-6, atol=1e-7)


def _np_bernoulli_nll(logits, x):
  logits, x = np.asarray(logits, np.float64), np.asarray(x, np.float64)
  p = 1 / (1 + np.exp(-logits))
  return -(x * np.log(p) + (1 - x) * np.log1p(-p)).reshape(len(x), -1).sum(-1)


def test_loss_and_uniform_bound_match_float64_numpy(model):
  net, variables, batch = model

  @jax.jit
  def run(variables, batch):
    out = net.apply(variables, batch['image'])
    loss, metrics = vqvae.loss_fn(variables, batch, None, net=net)
    ll = vqvae.log_likelihood(variables, batch, None, net=net)
    return out, loss, metrics, ll

  out, loss, metrics, ll = run(variables, batch)
  level = out['levels']['vq']
  recon = _np_bernoulli_nll(out['decoder']['logits'], batch['image'])
  codebook = np.asarray(variables[quantizers.STATE]['vq']['codebook'],
                        np.float64)
  z_e = np.asarray(level['z_e'], np.float64)
  sq = ((z_e - codebook[np.asarray(level['indices'])]) ** 2).sum(-1)
  per_example = recon + 0.25 * sq.reshape(len(sq), -1).sum(-1)  # EMA: no
  mask = np.asarray(batch['mask'])                        # codebook term
  np.testing.assert_allclose(loss, per_example[mask].mean(), rtol=1e-5)
  np.testing.assert_allclose(metrics['recon_nll'], recon, rtol=1e-5)
  bound = -recon - 16 * np.log(K)  # 4 x 4 code map, uniform prior
  np.testing.assert_allclose(ll, bound, rtol=1e-5)
  np.testing.assert_allclose(metrics['nll'], -bound, rtol=1e-5)
  np.testing.assert_allclose(metrics['bits_per_dim'],
                             -bound / (64 * np.log(2)), rtol=1e-5)


def _step_config(ema_decay=0.0):
  return ml_collections.ConfigDict({'train': {'ema_decay': ema_decay}})


def test_train_step_ema_codebook_equals_numpy_and_is_deterministic(model):
  net, variables, batch = model
  inner = optax.adam(1e-3)
  tx = steps.params_optimizer(inner)
  opt_state = tx.init(variables)
  assert (jax.tree.structure(opt_state)
          == jax.tree.structure(inner.init(variables['params'])))
  step = jax.jit(vqvae.make_train_step(
      net=net, tx=tx, preprocess=lambda b, k: b, config=_step_config()))
  state = steps.TrainState(step=jnp.zeros((), jnp.int32), params=variables,
                           opt_state=opt_state)
  new, metrics = step(state, batch, jax.random.key(2))

  level = jax.jit(net.apply)(variables, batch['image'])['levels']['vq']
  old = {k: np.asarray(v, np.float64)
         for k, v in variables[quantizers.STATE]['vq'].items()}
  w = np.repeat(np.asarray(batch['mask'], np.float64), 16)
  z = np.asarray(level['z_e'], np.float64).reshape(-1, 4)
  idx = np.asarray(level['indices']).reshape(-1)
  n = np.bincount(idx, weights=w, minlength=K)
  s = np.zeros((K, 4))
  np.add.at(s, idx, w[:, None] * z)
  size = 0.9 * old['cluster_size'] + 0.1 * n
  embed = 0.9 * old['embed_sum'] + 0.1 * s
  smoothed = (size + 1e-5) / (size.sum() + K * 1e-5) * size.sum()
  got = new.params[quantizers.STATE]['vq']
  np.testing.assert_allclose(got['cluster_size'], size, rtol=1e-5)
  np.testing.assert_allclose(got['embed_sum'], embed, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got['codebook'], embed / smoothed[:, None],
                             rtol=1e-4, atol=1e-6)
  # The batch's codebook usage metrics.
  usage = n / n.sum()
  nz = usage[usage > 0]
  np.testing.assert_allclose(metrics['perplexity'],
                             np.exp(-(nz * np.log(nz)).sum()), rtol=1e-5)
  assert float(metrics['codes_used']) == (n > 0).sum()
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)),
                         new.params['params'], variables['params'])
  assert all(jax.tree.leaves(changed))  # every parameter got an Adam update

  again, _ = step(state, batch, jax.random.key(2))
  for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(new)):
    np.testing.assert_array_equal(a, b)


def test_gradient_codebook_and_gumbel_quantizers_train():
  batch = _batch(4, seed=3)
  tx = steps.params_optimizer(optax.adam(1e-2))
  for quantizer in ('vq', 'gumbel'):
    net = _net(quantizer=quantizer, dead_code_threshold=0.5)
    variables = jax.jit(lambda k, b: vqvae.init(k, b, net=net))(
        jax.random.key(4), batch)
    assert quantizers.STATE in variables or quantizer == 'gumbel'
    step = jax.jit(vqvae.make_train_step(
        net=net, tx=tx, preprocess=lambda b, k: b, config=_step_config()))
    state = steps.TrainState(step=jnp.zeros((), jnp.int32), params=variables,
                             opt_state=tx.init(variables))
    for _ in range(3):
      state, metrics = step(state, batch, jax.random.key(5))
    assert np.isfinite(float(metrics['loss']))
    codebook = state.params['params']['vq']['codebook']
    assert bool(jnp.any(codebook != variables['params']['vq']['codebook']))
    if quantizer == 'gumbel':
      # Evaluation takes the mode: the key does not matter.
      ll = jax.jit(lambda v, b, k: vqvae.log_likelihood(v, b, k, net=net))
      np.testing.assert_array_equal(ll(state.params, batch, jax.random.key(0)),
                                    ll(state.params, batch, jax.random.key(1)))
      assert 'kl' in metrics
    else:
      assert 'restarts' in metrics


def test_codes_samples_reconstructions(model):
  net, variables, batch = model

  @jax.jit
  def run(variables, batch):
    codes = vqvae.encode_codes(variables, batch, net=net)
    counts = vqvae.code_counts(variables, batch, family=vqvae, net=net)
    return (codes, counts, vqvae.sample(variables, jax.random.key(0), 3,
                                        net=net),
            vqvae.reconstruct(variables, batch, None, net=net))

  (codes,), (counts,), samples, recon = run(variables, batch)
  assert codes.shape == (6, 4, 4) and codes.dtype == jnp.int32
  assert int(codes.min()) >= 0 and int(codes.max()) < K
  want = np.bincount(np.asarray(codes)[:5].ravel(), minlength=K)  # unmasked
  np.testing.assert_array_equal(counts, want)
  assert samples.shape == (3, 8, 8, 1) and samples.dtype == jnp.uint8
  assert recon.shape == (6, 8, 8, 1) and recon.dtype == jnp.uint8
  assert vqvae.code_shapes(net) == ((4, 4),)


def test_validate_names_the_field():
  dataset = types.SimpleNamespace(pixel_levels=256, num_classes=10)
  config = vqvae_config.get_config('smoke')
  vqvae.validate(config, dataset)
  bad = vqvae_config.get_config('smoke')
  bad.model.quantizer = 'kmeans'
  with pytest.raises(ConfigError, match='config.model.quantizer'):
    vqvae.validate(bad, dataset)
  bad = vqvae_config.get_config('smoke')
  bad.data.binarize = 'none'
  with pytest.raises(ConfigError, match='config.data.binarize'):
    vqvae.validate(bad, dataset)
  bad = vqvae_config.get_config('smoke')
  bad.model.ema_decay = 1.0
  with pytest.raises(ConfigError, match='config.model.ema_decay'):
    vqvae.validate(bad, dataset)
