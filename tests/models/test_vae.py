"""VAE family: bounds on a model with a closed-form likelihood, contract, tools.

The linear-Gaussian latent model p(z) = N(0, I), p(x | z) = N(W z + b, s^2 I)
has log p(x) = log N(x; b, W W^T + s^2 I) in closed form. A VAE with no
hidden layers and a Gaussian decoder *is* this model once its weights are set
by hand, so the family's own `log_likelihood` (ELBO and chunked IWAE) can be
checked against the exact value computed in float64 NumPy.
"""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import stats

from jaxgen import losses
from jaxgen.errors import ConfigError
from jaxgen.models import pixels
from jaxgen.models import vae

D, L = 6, 2  # data and latent dimensions of the linear-Gaussian model
SIGMA = 0.5


def _inverse_soft_floor(log_scale):
  """raw such that pixels.split_params maps it to `log_scale`."""
  lo = pixels.GAUSSIAN_LOG_SCALE_MIN
  return np.log(np.expm1(log_scale - lo)) + lo


@pytest.fixture(scope='module')
def linear_gaussian():
  """A VAE set to the linear-Gaussian model, with the exact posterior."""
  rng = np.random.default_rng(0)
  # Orthogonal columns make W^T W diagonal, so the exact posterior is a
  # diagonal Gaussian that the VAE's encoder can represent.
  q, _ = np.linalg.qr(rng.normal(size=(D, L)))
  w = q * np.array([2.0, 0.7])
  b = rng.normal(size=D) * 0.3
  s2 = SIGMA ** 2
  post_cov = np.linalg.inv(np.eye(L) + w.T @ w / s2)  # diagonal
  post_var = np.diag(post_cov)
  enc = post_cov @ w.T / s2  # posterior mean = enc @ (x - b)

  net = vae.Net(image_shape=(1, D, 1), architecture='mlp', hidden_dims=(),
                latent_dim=L, likelihood='gaussian')
  x0 = jnp.zeros((1, 1, D, 1))
  params = vae.init(jax.random.key(0), {'image': x0}, net=net)
  params = jax.tree.map(np.asarray, params)
  # posterior Dense: x -> [mean, log_var]
  kernel = np.zeros((D, 2 * L))
  kernel[:, :L] = enc.T
  bias = np.concatenate([-enc @ b, np.log(post_var)])
  params['posterior'] = {'kernel': kernel, 'bias': bias}
  # decoder Dense: z -> per pixel (mean, raw log-scale), interleaved as the
  # decoder reshapes [.., H*W*C*2] to [.., H, W, C*2]; constant scale.
  dk = np.zeros((L, 2 * D))
  dk[:, 0::2] = w.T
  db = np.zeros(2 * D)
  db[0::2] = b
  db[1::2] = _inverse_soft_floor(np.log(SIGMA))
  params['decoder'] = {'dense_0': {'kernel': dk, 'bias': db}}
  params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)

  x = rng.multivariate_normal(b, w @ w.T + s2 * np.eye(D), size=256)
  exact = stats.multivariate_normal(b, w @ w.T + s2 * np.eye(D)).logpdf(x)
  return net, params, x, exact, (w, b, enc, post_var)


def _batch(x):
  return {'image': jnp.asarray(x, jnp.float32).reshape(-1, 1, D, 1),
          'label': jnp.zeros((len(x),), jnp.int32)}


def _perturbed(params):
  """The same model with a worse encoder: shifted means, narrower."""
  p = jax.tree.map(lambda a: a, params)
  post = dict(p['posterior'])
  post['bias'] = post['bias'] + jnp.array([0.3, -0.4, -0.5, -0.5])
  p['posterior'] = post
  return p


def test_exact_posterior_makes_elbo_equal_log_px(linear_gaussian):
  net, params, x, exact, _ = linear_gaussian
  fn = jax.jit(vae.log_likelihood, static_argnames=(
      'net', 'bound', 'num_samples', 'chunk_size'))
  # With q = p(z|x) every importance weight equals p(x): IWAE is exact for
  # any k, sample by sample.
  ll = fn(params, _batch(x), jax.random.key(1), net=net,
          bound='iwae', num_samples=8, chunk_size=4)
  np.testing.assert_allclose(np.asarray(ll), exact, rtol=0, atol=2e-4)
  # The analytic-KL ELBO equals log p(x) in expectation (KL(q||p(z|x)) = 0);
  # its reconstruction term is a Monte Carlo mean over 4,000 samples.
  ll = fn(params, _batch(x), jax.random.key(1), net=net,
          bound='elbo', num_samples=4000, chunk_size=1000)
  np.testing.assert_allclose(np.asarray(ll), exact, rtol=0, atol=0.15)
  np.testing.assert_allclose(np.mean(ll), np.mean(exact), rtol=0, atol=0.01)


def test_bounds_order_elbo_iwae_exact(linear_gaussian):
  net, params, x, exact, _ = linear_gaussian
  params = _perturbed(params)
  batch = _batch(x)
  fn = jax.jit(vae.log_likelihood, static_argnames=(
      'net', 'bound', 'num_samples', 'chunk_size'))
  elbo = fn(params, batch, jax.random.key(2), net=net, bound='elbo',
            num_samples=2000, chunk_size=500)
  values = {k: np.asarray(fn(params, batch, jax.random.key(3), net=net,
                             bound='iwae', num_samples=k,
                             chunk_size=min(k, 250)), np.float64)
            for k in (1, 10, 100, 1000)}
  values['elbo'] = np.asarray(elbo, np.float64)
  values['exact'] = exact

  def gap(a, b):
    """Mean of b - a over examples and 3 standard errors of that mean."""
    d = values[b] - values[a]
    return d.mean(), 3 * d.std() / np.sqrt(len(d))

  # ELBO < IWAE_10 < IWAE_100 < IWAE_1000 <= log p(x): each paired gap is
  # larger than three standard errors of its Monte Carlo mean.
  for a, b in (('elbo', 10), (10, 100), (100, 1000)):
    mean, err = gap(a, b)
    assert mean > err > 0, (a, b, mean, err)
  mean, err = gap(1000, 'exact')
  assert mean > -err
  # IWAE with k = 1 is an unbiased estimate of the ELBO.
  mean, err = gap(1, 'elbo')
  assert abs(mean) < err
  # The gap closes as k grows.
  assert gap(1000, 'exact')[0] < 0.1 * gap(1, 'exact')[0]


def test_chunking_does_not_change_the_estimate(linear_gaussian):
  net, params, x, _, _ = linear_gaussian
  params = _perturbed(params)
  batch = _batch(x[:8])
  key = jax.random.key(4)
  a = vae.log_likelihood(params, batch, key, net=net, num_samples=64,
                         chunk_size=64)
  # A single chunk equals iwae_bound over the same samples.
  z_key = jax.random.fold_in(key, 0)
  mean, log_var = net.apply({'params': params}, batch['image'], None,
                            method=vae.Net.encode)
  lw = vae._log_weights(params, batch['image'], None, mean, log_var, z_key,
                        64, net=net)
  np.testing.assert_allclose(a, losses.iwae_bound(lw), rtol=1e-6)
  with pytest.raises(ConfigError, match='multiple of chunk_size'):
    vae.log_likelihood(params, batch, key, net=net, num_samples=10,
                       chunk_size=4)


def test_kl_and_loss_reference(linear_gaussian):
  """loss_fn = mean(-log p(x|z) + beta KL) with z from the same key (NumPy)."""
  net, params, x, _, (w, b, enc, post_var) = linear_gaussian
  params = _perturbed(params)
  batch = _batch(x[:5])
  key = jax.random.key(5)
  loss, metrics = vae.loss_fn(params, batch, key, net=net)
  mean, log_var = net.apply({'params': params}, batch['image'], None,
                            method=vae.Net.encode)
  mean, log_var = np.asarray(mean, np.float64), np.asarray(log_var, np.float64)
  z = np.asarray(losses.gaussian_reparameterize(key, jnp.asarray(mean),
                                                jnp.asarray(log_var)))
  kl = 0.5 * np.sum(np.exp(log_var) + mean ** 2 - 1 - log_var, -1)
  log_px = stats.norm(z @ w.T + b, SIGMA).logpdf(x[:5]).sum(-1)
  np.testing.assert_allclose(metrics['kl'], kl, rtol=1e-5)
  np.testing.assert_allclose(metrics['log_px_z'], log_px, rtol=1e-5)
  np.testing.assert_allclose(loss, np.mean(kl - log_px), rtol=1e-5)


def test_mask_excludes_padding(linear_gaussian):
  net, params, x, _, _ = linear_gaussian
  batch = _batch(x[:4])
  key = jax.random.key(6)
  loss_fn = jax.jit(lambda p, b, k: vae.loss_fn(p, b, k, net=net))
  batch['mask'] = jnp.array([True, True, False, False])
  masked, _ = loss_fn(params, batch, key)
  # Rows are independent given the key's per-row noise only if the noise
  # for the first rows is the same: compare with the unmasked per-example.
  _, per = loss_fn(params, _batch(x[:4]), key)
  expect = np.mean(-(np.asarray(per['log_px_z'][:2]) - np.asarray(
      per['kl'][:2])))
  np.testing.assert_allclose(masked, expect, rtol=1e-6)


@pytest.fixture(scope='module')
def mnist_mlp():
  net = vae.Net(image_shape=(28, 28, 1), architecture='mlp',
                hidden_dims=(512, 512), latent_dim=32, likelihood='bernoulli')
  x = jnp.zeros((2, 28, 28, 1))
  params = jax.jit(lambda k: vae.init(k, {'image': x}, net=net))(
      jax.random.key(0))
  return net, params


def test_reference_mlp_parameter_count(mnist_mlp):
  _, params = mnist_mlp
  count = sum(p.size for p in jax.tree.leaves(params))
  assert count == 1_379_152


def test_gradients_finite_at_extreme_pixels(mnist_mlp):
  net, params = mnist_mlp
  x = jnp.concatenate([jnp.zeros((1, 28, 28, 1)), jnp.ones((1, 28, 28, 1))])
  grads = jax.jit(jax.grad(lambda p: vae.loss_fn(
      p, {'image': x}, jax.random.key(0), net=net)[0]))(params)
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


@pytest.mark.parametrize('likelihood', ['bernoulli', 'gaussian', 'logistic'])
@pytest.mark.parametrize('architecture', ['mlp', 'conv'])
def test_sample_and_reconstruct_shapes(likelihood, architecture):
  net = vae.Net(image_shape=(8, 8, 1), architecture=architecture,
                hidden_dims=(16,), conv_channels=(4, 4, 8, 8),
                conv_strides=(2, 1, 2, 1), kernel_size=3, latent_dim=3,
                likelihood=likelihood, sample_mode='draw')
  x = jnp.full((3, 8, 8, 1), 0.5)

  @jax.jit
  def run(key):
    params = vae.init(key, {'image': x}, net=net)
    images = vae.sample(params, jax.random.key(1), 5, net=net)
    again = vae.sample(params, jax.random.key(1), 5, net=net)
    rec = vae.reconstruct(params, {'image': x}, None, net=net)
    loss, metrics = vae.loss_fn(params, {'image': x}, jax.random.key(2),
                                net=net)
    return images, again, rec, loss, metrics

  images, again, rec, loss, metrics = run(jax.random.key(0))
  assert images.shape == (5, 8, 8, 1) and images.dtype == jnp.uint8
  np.testing.assert_array_equal(images, again)
  assert rec.shape == (3, 8, 8, 1) and rec.dtype == jnp.uint8
  assert np.isfinite(loss) and metrics['kl'].shape == (3,)


def test_conditional_vae_uses_labels():
  net = vae.Net(image_shape=(8, 8, 1), hidden_dims=(16,), latent_dim=2,
                num_classes=10)
  x = jnp.zeros((2, 8, 8, 1))
  params = vae.init(jax.random.key(0), {'image': x,
                                        'label': jnp.zeros(2, jnp.int32)},
                    net=net)
  key = jax.random.key(1)
  a = vae.sample(params, key, 4, net=net, labels=jnp.array([0, 0, 0, 0]))
  b = vae.sample(params, key, 4, net=net, labels=jnp.array([3, 3, 3, 3]))
  assert not np.array_equal(a, b)
  with pytest.raises(ConfigError, match='labels must have shape'):
    vae.sample(params, key, 4, net=net, labels=jnp.array([1, 2]))


def test_latent_tools():
  net = vae.Net(image_shape=(8, 8, 1), hidden_dims=(16,), latent_dim=2)
  x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))

  @jax.jit
  def run(key):
    params = vae.init(key, {'image': x}, net=net)
    return dict(
        path=vae.interpolate(params, x[0], x[1], net=net, num_steps=5),
        rec=vae.reconstruct(params, {'image': x}, None, net=net),
        sph=vae.interpolate(params, x[0], x[1], net=net, num_steps=5,
                            spherical=True),
        grid=vae.traverse(params, x[0], net=net, dims=[0, 1],
                          values=[-2.0, 0.0, 2.0]),
        manifold=vae.manifold(params, net=net, grid_size=4))

  out = run(jax.random.key(0))
  assert out['path'].shape == (5, 8, 8, 1)
  np.testing.assert_array_equal(out['path'][0], out['rec'][0])
  np.testing.assert_array_equal(out['path'][-1], out['rec'][1])
  np.testing.assert_array_equal(out['sph'][0], out['rec'][0])
  assert out['grid'].shape == (2, 3, 8, 8, 1)
  assert out['manifold'].shape == (4, 4, 8, 8, 1)


def test_slerp_endpoints_and_norm():
  a, b = jnp.array([1.0, 0.0]), jnp.array([0.0, 2.0])
  path = vae.slerp(a, b, jnp.linspace(0, 1, 5))
  np.testing.assert_allclose(path[0], a, atol=1e-6)
  np.testing.assert_allclose(path[-1], b, atol=1e-6)
  parallel = vae.slerp(a, a, jnp.linspace(0, 1, 3))
  assert np.all(np.isfinite(parallel))


def _config(likelihood, binarize, dequantize, value_range):
  c = ml_collections.ConfigDict()
  c.model = dict(architecture='mlp', sample_mode='mean', latent_dim=2,
                 conv_channels=(1,), conv_strides=(1,), num_classes=0,
                 likelihood=likelihood)
  c.data = dict(binarize=binarize, dequantize=dequantize,
                value_range=value_range)
  return c


class _Data:
  name = 'digits'
  num_classes = 10
  pixel_levels = 256


@pytest.mark.parametrize('args,match', [
    (('bernoulli', 'none', False, 'unit'), 'config.data.binarize'),
    (('gaussian', 'none', False, 'unit'), 'config.data.dequantize'),
    (('logistic', 'none', False, 'unit'), 'config.data.value_range'),
    (('poisson', 'none', False, 'unit'), 'config.model.likelihood'),
])
def test_validate_names_the_field(args, match):
  with pytest.raises(ConfigError, match=match):
    vae.validate(_config(*args), _Data())


def test_validate_accepts_consistent_configs():
  vae.validate(_config('bernoulli', 'dynamic', False, 'unit'), _Data())
  vae.validate(_config('gaussian', 'none', True, 'unit'), _Data())
  vae.validate(_config('logistic', 'none', False, 'symmetric'), _Data())


def test_iwae_helper_matches_log_mean_exp():
  lw = jax.random.normal(jax.random.key(0), (7, 3)) * 10
  expect = jax.nn.logsumexp(lw, 0) - math.log(7)
  np.testing.assert_allclose(losses.iwae_bound(lw), expect, rtol=1e-6)
