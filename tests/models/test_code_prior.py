"""Code prior: frozen VQ-VAE-2 from a workdir, uniform-prior sanity check,
causality by Jacobian, two-stage sampler, config checks."""

import math
import os
import shutil
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import code_prior as prior_config
from experiments.configs import vqvae as vqvae_config
from experiments.configs import vqvae2 as vqvae2_config
from jaxgen import steps
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.models import code_prior
from jaxgen.models import vqvae2

# Every test stands on a VQ-VAE-2 trained through the trainer (vq_workdir).
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def vq_workdir(tmp_path_factory):
  """A tiny VQ-VAE-2 (8x8 digits: 2x2 top, 4x4 bottom, K=8) trained 2 steps."""
  workdir = str(tmp_path_factory.mktemp('vqvae2'))
  config = vqvae2_config.get_config('smoke')
  config.train.num_steps = 2
  exp = train.Experiment(config, workdir)
  state = exp.train()
  return workdir, jax.device_get(exp.eval_params(state))


@pytest.fixture(scope='module')
def prior(vq_workdir):
  workdir, vq_variables = vq_workdir
  config = prior_config.get_config('smoke,cond')
  config.model.vqvae_workdir = workdir
  config.model.vqvae_family = 'vqvae2'
  net = train.make_net(code_prior, config.model)
  x = jax.random.bernoulli(jax.random.key(0), 0.4, (5, 8, 8, 1))
  batch = {'image': x.astype(jnp.float32), 'label': jnp.arange(5) % 3,
           'mask': jnp.arange(5) < 4}
  variables = jax.jit(lambda k, b: code_prior.init(k, b, net=net))(
      jax.random.key(1), batch)
  return config, net, variables, batch, vq_variables


@pytest.fixture(scope='module')
def codes_and_logits(prior):
  """The batch's code maps (top first), and the priors' logits of code maps
  (both levels) as one jitted function, shared by the tests below."""
  _, net, variables, batch, _ = prior
  codes = jax.jit(lambda v, b: code_prior.encode(v, b, net=net))(variables,
                                                                  batch)
  logits = jax.jit(lambda c: net.apply({'params': variables['params']}, c,
                                       batch['label']))
  return codes, logits


def test_frozen_model_comes_from_the_workdir(prior):
  config, net, variables, _, vq_variables = prior
  assert code_prior.code_shapes(net) == ((2, 2), (4, 4))
  assert code_prior.num_codes(net) == 8
  for a, b in zip(jax.tree.leaves(variables[code_prior.FROZEN]),
                  jax.tree.leaves(vq_variables), strict=True):
    np.testing.assert_array_equal(a, b)
  assert set(variables['params']) == {'priors_0', 'priors_1',
                                      'conditioners_0'}


def test_training_moves_the_prior_only(prior):
  config, net, variables, batch, _ = prior
  tx = code_prior.make_optimizer(config)
  step = jax.jit(code_prior.make_train_step(
      net=net, tx=tx, preprocess=lambda b, k: b, config=config))
  state = steps.TrainState(step=jnp.zeros((), jnp.int32), params=variables,
                           opt_state=tx.init(variables))
  for _ in range(2):
    state, metrics = step(state, batch, jax.random.key(2))
  for a, b in zip(jax.tree.leaves(state.params[code_prior.FROZEN]),
                  jax.tree.leaves(variables[code_prior.FROZEN])):
    np.testing.assert_array_equal(a, b)
  for name in ('priors_0', 'priors_1', 'conditioners_0'):  # every network
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)),
                         state.params['params'][name],
                         variables['params'][name])
    assert any(jax.tree.leaves(moved)), name
  assert {'prior_nll', 'prior_nll_top', 'prior_nll_bottom'} <= set(metrics)
  np.testing.assert_allclose(
      metrics['prior_nll'], metrics['prior_nll_top'] + metrics['prior_nll_bottom'],
      rtol=1e-5)


def _uniform_prior(params, k):
  """Output layer of every level: zero weights, logits 0 below K, -1e30 above."""
  params = jax.tree.map(lambda a: a, params)
  for level in ('priors_0', 'priors_1'):
    names = sorted((n for n in params[level] if n.startswith('output_convs')),
                   key=lambda n: int(n.rsplit('_', 1)[1]))
    last = dict(params[level][names[-1]])
    last['kernel'] = jnp.zeros_like(last['kernel'])
    last['bias'] = jnp.where(jnp.arange(256) < k, 0.0, -1e30)
    params[level] = {**params[level], names[-1]: last}
  return params


def test_uniform_prior_bound_equals_the_vq_bound(prior):
  _, net, variables, batch, vq_variables = prior
  uniform = {**variables, 'params': _uniform_prior(variables['params'], 8)}
  vq_net = code_prior.frozen_model(net)[1]

  @jax.jit
  def run(v):
    return (code_prior.log_likelihood(v, batch, None, net=net),
            code_prior.log_likelihood(v, batch, None, net=net,
                                      prior='uniform'),
            vqvae2.log_likelihood(vq_variables, batch, None, net=vq_net),
            code_prior.loss_fn(v, batch, None, net=net, train=False)[1])

  learned, flat, vq_bound, metrics = run(uniform)
  n_log_k = (4 + 16) * math.log(8)  # float64
  np.testing.assert_allclose(metrics['prior_nll'], n_log_k, rtol=1e-6)
  np.testing.assert_allclose(learned, flat, rtol=1e-6)
  np.testing.assert_allclose(flat, vq_bound, rtol=1e-6)
  np.testing.assert_allclose(learned, -metrics['recon_nll'] - n_log_k,
                             rtol=1e-6)
  np.testing.assert_allclose(metrics['nll'], -learned, rtol=1e-6)
  np.testing.assert_allclose(metrics['bits_per_dim'],
                             -np.asarray(learned, np.float64) / (64 * np.log(2)),
                             rtol=1e-5)


def test_prior_causality_by_jacobian(prior, codes_and_logits):
  _, net, variables, batch, _ = prior
  codes, _ = codes_and_logits
  params = {'params': variables['params']}
  for level, (h, w) in enumerate(code_prior.code_shapes(net)):
    fn = lambda x, above, labels, level=level: net.apply(
        params, level, x, above, labels, method=code_prior.Net.level_logits)
    jac_fn = jax.jit(jax.jacrev(fn))
    # Summed over the batch's images: a ReLU of the random output layer that
    # happens to be off at one position for one image hides nothing.
    jac = 0.0
    for b in range(len(batch['label'])):
      image = code_prior.code_image(codes[level][b:b + 1])
      above = tuple(c[b:b + 1] for c in codes[:level])
      one = np.asarray(jac_fn(image, above, batch['label'][b:b + 1]))
      jac = jac + np.abs(one[0, :, :, 0, :, 0, :, :, 0]).max(axis=2)
    jac = jac.reshape(h * w, h * w)  # output position x input position
    for p in range(h * w):
      assert np.all(jac[p, p:] == 0), (level, p)  # on and after p: zero
      i, j = divmod(p, w)
      if j:
        assert jac[p, p - 1] > 0, (level, p)  # the code on the left matters
      if i:
        assert jac[p, p - w] > 0, (level, p)  # and the one above


def test_bottom_prior_sees_the_top_codes_and_not_vice_versa(
    codes_and_logits):
  codes, logits = codes_and_logits
  base = logits(codes)
  other_top = (codes[0] + 1) % 8
  changed = logits((other_top, codes[1]))
  assert float(jnp.abs(changed[1] - base[1]).max()) > 0
  other_bottom = (codes[1] + 3) % 8
  same = logits((codes[0], other_bottom))
  np.testing.assert_array_equal(same[0], base[0])


def test_two_stage_sampler(prior):
  _, net, variables, _, _ = prior
  labels = jnp.array([0, 2, 1])
  run = jax.jit(lambda v, k, method: code_prior.sample_codes(
      v, k, 3, net=net, labels=labels, method=method),
                static_argnames='method')
  cached = run(variables, jax.random.key(3), 'cached')
  naive = run(variables, jax.random.key(3), 'naive')
  for c, n, shape in zip(cached, naive, ((2, 2), (4, 4))):
    np.testing.assert_array_equal(c, n)
    assert c.shape == (3,) + shape and c.dtype == jnp.int32
    assert int(c.min()) >= 0 and int(c.max()) < 8
  images = jax.jit(lambda v, k: code_prior.sample(v, k, 3, net=net,
                                                  labels=labels))(
                                                      variables,
                                                      jax.random.key(3))
  assert images.shape == (3, 8, 8, 1) and images.dtype == jnp.uint8
  code_key = jax.random.split(jax.random.key(3))[0]  # as `sample` splits
  decoded = jax.jit(lambda v, c: code_prior.decode(v, c, net=net))(
      variables, run(variables, code_key, 'cached'))
  np.testing.assert_allclose(images, decoded, atol=1)  # same codes, mean


def test_validate_names_the_field(prior, vq_workdir):
  config, _, _, _, _ = prior
  dataset = types.SimpleNamespace(pixel_levels=256, num_classes=10,
                                  name='digits')
  code_prior.validate(config, dataset)
  bad = prior_config.get_config('smoke')
  bad.model.vqvae_workdir = vq_workdir[0]
  bad.model.vqvae_family = 'vqvae'
  with pytest.raises(ConfigError, match='config.model.vqvae_family'):
    code_prior.validate(bad, dataset)
  bad = prior_config.get_config('smoke')
  bad.model.vqvae_workdir = vq_workdir[0]
  bad.model.vqvae_family = 'vqvae2'
  bad.data.binarize = 'none'
  with pytest.raises(ConfigError, match='config.data.binarize'):
    code_prior.validate(bad, dataset)
  bad = prior_config.get_config('smoke')
  bad.model.vqvae_workdir = '/nonexistent/vq'
  with pytest.raises(ConfigError, match='config.model.vqvae_workdir'):
    code_prior.validate(bad, dataset)


def test_smoke_config_builds_the_vq_families_smoke_model():
  """Without a workdir the smoke config's random VQ model is the VQ family's
  own smoke model (not its default size); a pair naming no field of that
  family's Net is a ConfigError naming the field."""
  dataset = types.SimpleNamespace(pixel_levels=256, num_classes=10,
                                  name='digits')
  for levels, vq_module in (('vqvae2', vqvae2_config),
                            ('vqvae', vqvae_config)):
    config = prior_config.get_config(f'smoke,{levels}')
    assert config.model.vqvae_workdir == ''
    code_prior.validate(config, dataset)
    _, vq_net = code_prior.frozen_model(
        train.make_net(code_prior, config.model))
    smoke = vq_module.get_config('smoke').model
    assert config.model.random_vqvae_fields
    for name, value in config.model.random_vqvae_fields:
      assert getattr(vq_net, name) == value == smoke[name], name
    assert tuple(vq_net.image_shape) == tuple(smoke.image_shape)
  bad = prior_config.get_config('smoke')  # vqvae2: no num_downsamples field
  bad.model.random_vqvae_fields = (('num_downsamples', 1),)
  with pytest.raises(ConfigError, match='config.model.random_vqvae_fields'):
    code_prior.validate(bad, dataset)


def test_a_vq_workdir_without_checkpoints_is_named(prior, vq_workdir,
                                                    tmp_path):
  """config.json but no checkpoint (training never saved): a ConfigError
  naming the field, from `validate`, before anything is compiled."""
  config, _, _, _, _ = prior
  shutil.copy(os.path.join(vq_workdir[0], 'config.json'), tmp_path)
  bad = config.copy_and_resolve_references()
  bad.model.vqvae_workdir = str(tmp_path)
  dataset = types.SimpleNamespace(pixel_levels=256, num_classes=10,
                                  name='digits')
  with pytest.raises(ConfigError, match=r'config.model.vqvae_workdir=.*No '
                     r'checkpoint'):
    code_prior.validate(bad, dataset)


def test_bottom_prior_is_conditioned_spatially(codes_and_logits):
  """The top code at (1, 1) sits above bottom rows/columns 2-3: changing it
  changes the bottom logits there but not at bottom (0, 0), whose
  conditioning (a 3x3 convolution over the resized top map) and earlier
  positions lie under top (0, 0) only. A per-image vector would reach
  every position."""
  codes, logits = codes_and_logits
  base = logits(codes)[1]
  top = codes[0].at[:, 1, 1].set((codes[0][:, 1, 1] + 1) % 8)
  changed = logits((top, codes[1]))[1]
  np.testing.assert_array_equal(changed[:, 0, 0], base[:, 0, 0])
  assert float(jnp.abs(changed[:, 3, 3] - base[:, 3, 3]).max()) > 0


def test_mask_unused_codes_gives_each_level_k_levels(prior):
  config, net, _, _, _ = prior
  k = code_prior.num_codes(net)
  assert k < 256
  assert [n.num_levels for n in code_prior.level_nets(net)] == [256, 256]
  masked = net.clone(mask_unused_codes=True)
  assert [n.num_levels for n in code_prior.level_nets(masked)] == [k, k]
  assert config.model.mask_unused_codes is False  # the presets' default
