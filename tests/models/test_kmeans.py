"""K-means: Lloyd vs float64 reference, monotone objective, autoencoder, generator."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from sklearn import datasets

from experiments import kmeans_codebook
from experiments.configs import kmeans as kmeans_config
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.models import gmm
from jaxgen.models import kmeans


def _reference_lloyd(x, centres):
  """float64 NumPy: (objective, codes, new centres; empty ones stay)."""
  d2 = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
  codes = d2.argmin(1)
  new = centres.copy()
  for k in range(len(centres)):
    if (codes == k).any():
      new[k] = x[codes == k].mean(0)
  return d2.min(1).sum(), codes, new


def _blobs(rng, n, d, k, spread=2.0):
  centres = rng.normal(size=(k, d)) * spread
  return centres[rng.integers(0, k, size=n)] + rng.normal(size=(n, d))


def test_lloyd_matches_float64_reference_and_never_increases():
  rng = np.random.default_rng(0)
  x = _blobs(rng, 150, 4, 4)
  # One far-away centre receives no point: it must stay put.
  start = np.concatenate([x[:4], np.full((1, 4), 100.0)])
  with jax.enable_x64(True):
    step = jax.jit(lambda c: kmeans.lloyd_step(c, jnp.asarray(x),
                                               chunk_size=64))
    centres, ref = jnp.asarray(start), start
    objectives = []
    for _ in range(12):
      new, _, codes, d2 = step(centres)
      ref_obj, ref_codes, ref = _reference_lloyd(x, ref)
      np.testing.assert_array_equal(codes, ref_codes)
      np.testing.assert_allclose(float(d2.sum()), ref_obj, rtol=1e-12)
      np.testing.assert_allclose(new, ref, rtol=1e-12, atol=1e-12)
      objectives.append(ref_obj)
      centres = new
  np.testing.assert_array_equal(np.asarray(centres)[4], 100.0)
  assert np.diff(objectives).max() <= 1e-12 * objectives[-1]
  assert objectives[-1] < 0.9 * objectives[0]


def test_float32_objective_never_increases_on_pixels():
  rng = np.random.default_rng(1)
  x = jnp.asarray(datasets.load_digits().data[:800] / 16.0, jnp.float32)
  net = kmeans.Net(image_shape=(8, 8, 1), num_clusters=10)
  centres = kmeans.seed_centres(jax.random.key(int(rng.integers(100))), x,
                                net=net)
  step = jax.jit(lambda c: kmeans.lloyd_step(c, x)[::3])
  objectives = []
  for _ in range(25):
    centres, d2 = step(centres)
    objectives.append(float(np.asarray(d2, np.float64).sum()))
  assert np.diff(objectives).max() <= 1e-6 * objectives[-1]
  assert objectives[-1] < objectives[0]


def test_autoencoder_reconstruction_is_the_nearest_centre():
  rng = np.random.default_rng(2)
  net = kmeans.Net(image_shape=(4, 4, 1), num_clusters=7, chunk_size=16)
  centres = rng.uniform(size=(7, 16))
  x = rng.uniform(size=(50, 16))
  params = {'centres': jnp.asarray(centres, jnp.float32)}
  batch = {'image': jnp.asarray(x.reshape(50, 4, 4, 1), jnp.float32),
           'mask': jnp.ones((50,), bool)}
  c32, x32 = (a.astype(np.float32).astype(np.float64) for a in (centres, x))
  d2 = ((x32[:, None] - c32[None]) ** 2).sum(-1)
  nearest = d2.argmin(1)
  margin = np.sort(d2, 1)[:, 1] - d2.min(1)
  assert margin.min() > 1e-4  # no near-ties: the index is well defined
  codes = jax.jit(lambda p, b: kmeans.encode(p, b, net=net))(params, batch)
  assert codes.shape == (50, 7)
  np.testing.assert_array_equal(codes, np.eye(7)[nearest])
  recon = jax.jit(lambda p, b: kmeans.reconstruct(p, b, None, net=net))(
      params, batch)
  expected = np.round(c32[nearest] * 255).astype(np.uint8).reshape(50, 4, 4, 1)
  np.testing.assert_array_equal(recon, expected)
  np.testing.assert_array_equal(
      kmeans.decode(params, codes, net=net), recon)
  _, metrics = jax.jit(lambda p, b: kmeans.loss_fn(p, b, None, net=net))(
      params, batch)
  np.testing.assert_allclose(metrics['objective'], d2.min(1), rtol=1e-5)
  np.testing.assert_allclose(metrics['recon_error'], d2.min(1) / 16,
                             rtol=1e-5)
  book = kmeans.codebook(params, net=net)
  np.testing.assert_array_equal(
      book, np.round(c32 * 255).astype(np.uint8).reshape(7, 4, 4, 1))


def test_kmeans_is_the_hard_limit_of_the_mixture_em_step():
  """Equal weights, shared variance sigma^2 -> 0: EM step == Lloyd step."""
  rng = np.random.default_rng(3)
  x = jnp.asarray(_blobs(rng, 200, 3, 5) * 0.05 + 0.5, jnp.float32)
  centres = x[:5]
  net = gmm.Net(image_shape=(1, 3, 1), num_components=5, covariance='diag',
                covariance_floor=0.0)
  params = {'logits': jnp.zeros(5), 'means': centres,
            'log_vars': jnp.full((5, 3), math.log(1e-6))}
  log_resp, _ = gmm.e_step(params, x, net=net)
  new_centres, _, codes, _ = kmeans.lloyd_step(centres, x)
  # Responsibilities are one-hot up to float32 denormals (~1e-45).
  np.testing.assert_allclose(np.exp(log_resp), np.eye(5)[codes], atol=1e-30)
  new_params, _ = gmm.m_step(params, log_resp, x, net=net)
  np.testing.assert_allclose(new_params['means'], new_centres, rtol=1e-6)


def test_generator_samples_centres_uniformly():
  rng = np.random.default_rng(4)
  net = kmeans.Net(image_shape=(2, 2, 1), num_clusters=5)
  centres = rng.uniform(size=(5, 4))
  params = {'centres': jnp.asarray(centres, jnp.float32)}
  n = 20_000
  images = jax.jit(lambda p, k: kmeans.sample(p, k, n, net=net))(
      params, jax.random.key(5))
  assert images.shape == (n, 2, 2, 1) and images.dtype == jnp.uint8
  book = np.asarray(kmeans.codebook(params, net=net)).reshape(5, 4)
  flat = np.asarray(images).reshape(n, 1, 4)
  match = (flat == book[None]).all(-1)  # [n, 5]
  assert (match.sum(1) == 1).all()  # every sample is exactly one centre
  freq = match.mean(0)
  np.testing.assert_allclose(freq, 0.2, atol=4 * math.sqrt(0.16 / n))


def test_seeding_kmeans_plus_plus_and_random_points():
  rng = np.random.default_rng(6)
  blob_centres = rng.normal(size=(6, 2)) * 20
  labels = np.repeat(np.arange(6), 40)
  x = jnp.asarray(blob_centres[labels] + rng.normal(size=(240, 2)) * 0.01)
  mask = jnp.asarray(rng.uniform(size=240) < 0.7)
  seed = jax.jit(gmm.kmeans_plus_plus, static_argnums=2)
  for i in range(5):
    idx = np.asarray(seed(jax.random.key(i), x, 6, mask))
    assert np.asarray(mask)[idx].all()
    # D^2 sampling picks one point in each of the 6 tight, distant blobs.
    assert sorted(labels[idx]) == list(range(6))
    rand = np.asarray(gmm.random_points(jax.random.key(i), 20, mask))
    assert len(set(rand)) == 20 and np.asarray(mask)[rand].all()
  # Fewer distinct points than seeds: no NaN, all seeds are data points.
  dup = jnp.zeros((10, 2)).at[:3, 0].set(jnp.arange(3.0))
  idx = seed(jax.random.key(0), dup, 6, None)
  assert set(np.asarray(idx)) <= set(range(10))


def test_minibatch_kmeans_with_decay_one_is_the_running_mean():
  """rho_t = 1 / (t + 1), equal batches: centre = mean of points assigned so far."""
  rng = np.random.default_rng(7)
  batches = [_blobs(np.random.default_rng(8), 40, 2, 3) + rng.normal(
      size=(1, 2)) * 0.1 for _ in range(4)]
  centres = batches[0][:3].copy()
  with jax.enable_x64(True):
    stats = kmeans.make_optimizer(
        kmeans_config.get_config('smoke')).init(
            {'centres': jnp.zeros((3, 2), jnp.float64)})
    stats = jax.tree.map(lambda a: a.astype(jnp.float64), stats)
    assigned = [[] for _ in range(3)]
    ref, cur = centres.copy(), jnp.asarray(centres)
    for t, xb in enumerate(batches):
      cur, stats, codes, _ = kmeans.lloyd_step(
          cur, jnp.asarray(xb), stats=stats, rho=1.0 / (t + 1))
      ref_codes = ((xb[:, None] - ref[None]) ** 2).sum(-1).argmin(1)
      np.testing.assert_array_equal(codes, ref_codes)
      for k in range(3):
        assigned[k].extend(xb[ref_codes == k])
        if assigned[k]:
          ref[k] = np.mean(assigned[k], 0)
      np.testing.assert_allclose(cur, ref, rtol=1e-12, atol=1e-12)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """Lloyd on the smoke split through the shared trainer (whole split)."""
  workdir = tmp_path_factory.mktemp('kmeans')
  config = kmeans_config.get_config('smoke')
  config.train.batch_size = 256
  config.model.online_decay = 0.0
  config.train.num_steps = 5
  config.train.log_every_steps = 1
  exp = train.Experiment(config, str(workdir))
  return exp, exp.train(), workdir, config


@pytest.mark.slow
def test_lloyd_through_the_trainer(trained):
  exp, state, workdir, _ = trained
  with open(workdir / 'metrics.jsonl') as f:
    loss = [json.loads(line)['loss'] for line in f
            if json.loads(line)['split'] == 'train']
  assert len(loss) == 5
  assert np.diff(loss).max() <= 1e-6 * loss[-1], loss
  results = exp.evaluate(state)
  np.testing.assert_allclose(results['recon_error'],
                             results['objective'] / 64, rtol=1e-6)


@pytest.mark.slow
def test_codebook_figure(trained):
  _, _, workdir, config = trained
  path, sizes = kmeans_codebook.write_codebook(config, str(workdir),
                                               columns=2, scale=1)
  assert sizes.sum() == 256 and np.all(np.diff(sizes) <= 0)
  grid = np.asarray(Image.open(path))
  assert grid.shape == (2 * 9 + 1, 2 * 9 + 1)  # 4 centres of 8x8, padding 1


@pytest.mark.slow
def test_random_initialization_through_the_trainer(tmp_path):
  """'random' seeding trains: the trainer's init sees a one-image batch."""
  np.testing.assert_array_equal(  # fewer rows than seeds: with replacement
      gmm.random_points(jax.random.key(0), 4, jnp.ones((1,), bool)),
      np.zeros(4))
  config = kmeans_config.get_config('smoke')
  config.train.batch_size = 256
  config.model.online_decay = 0.0
  config.model.initialization = 'random'
  config.train.num_steps = 2
  state = train.Experiment(config, str(tmp_path)).train()
  centres = np.asarray(state.params['centres'])
  assert centres.shape == (4, 64) and np.isfinite(centres).all()
  assert len(np.unique(centres, axis=0)) == 4  # 4 distinct centres


@pytest.mark.parametrize('field,value,config_field', [
    ('data.dequantize', True, 'config.data'),
    ('train.batch_size', 100, 'config.train.batch_size'),
    ('model.num_clusters', 0, 'config.model.num_clusters'),
])
def test_validate_names_the_field(field, value, config_field, tmp_path):
  config = kmeans_config.get_config('smoke')
  config.train.batch_size = 256
  config.model.online_decay = 0.0
  node, leaf = field.split('.')
  config[node][leaf] = value
  with pytest.raises(ConfigError, match=config_field.replace('.', r'\.')):
    train.Experiment(config, str(tmp_path))
