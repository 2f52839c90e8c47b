r"""K-means: hard-assignment EM, as an autoencoder and as a generator.

Lloyd, "Least squares quantization in PCM", IEEE Trans. IT 1982 (1957
report); MacQueen 1967; k-means++ seeding: Arthur & Vassilvitskii, SODA
2007; mini-batch K-means: Sculley, WWW 2010; the hard-assignment limit of
EM: Bishop, *Pattern Recognition and Machine Learning*, 2006, section 9.3.2.

On images x in [0, 1]^D (pixel / 255, D = H W C) with centres C = (c_1 ..
c_K), K-means minimises the objective (distortion)

    J(C) = sum_i min_k ||x_i - c_k||^2.

One Lloyd step (one trainer step, `make_train_step`) assigns each point to
its nearest centre, ``z_i = argmin_k ||x_i - c_k||^2`` (vmapped over data),
then moves every centre to the mean of its points. Neither half can raise J
(the first minimises over z with C fixed, the second over C with z fixed),
so with the whole training split as the batch J never increases. A centre
that receives no point stays where it is.

This is the Gaussian mixture's EM (`jaxgen.models.gmm`) with the
responsibilities replaced by one-hot assignments: the E-step of a mixture
with equal weights and a shared covariance sigma^2 I gives
``r_ik = softmax_k(-||x_i - mu_k||^2 / (2 sigma^2))``, which tends to
``one_hot(z_i)`` as sigma -> 0, and the M-step means are then the Lloyd
update. The code below uses the mixture's `gmm.batch_moments` and, for
mini-batches, its stepwise `gmm.merge_moments`: with ``online_decay`` 1
(rho_t = 1 / (t + 1)) each centre is the mean of every point ever assigned
to it, Sculley's mini-batch K-means with per-centre rates 1 / count.

**As an autoencoder** (the lectures' view): the encoder maps x to the
one-hot code ``h = one_hot(z(x))`` in {0, 1}^K (log2 K bits), the decoder is
linear, ``xhat = C^T h``, so a reconstruction is the nearest centre and J is
the summed squared reconstruction error. **As a generator**: draw
``h`` uniformly among the K one-hot codes and decode: a sample is a centre.

K-means defines no density (`LIKELIHOOD` = None): it is evaluated by the
objective per image and the per-pixel reconstruction error.

The family contract (`jaxgen.models`): `Net`, `init`, `loss_fn`, `sample`,
`reconstruct`, `validate`, `make_optimizer`, `make_train_step`. Extra:
`assign`, `lloyd_step`, `encode`, `decode`, `codebook`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.models import gmm

# Why config.train.compute_dtype must stay 'float32' (the trainer refuses
# 'bfloat16' with this reason).
FLOAT32_ONLY = (
    "Lloyd's updates are closed-form means of the assigned examples, with "
    'no network whose activations could run in bfloat16, and the distances '
    'and sums need float32')
LIKELIHOOD = None  # no density: evaluated by the objective / reconstruction
log_likelihood = None

_MIN_WEIGHT = 1e-12  # a centre with no points (weight 0) stays put


class Net(nn.Module):
  """The centres; fields are ``config.model``.

  `__call__` assigns images to their nearest centre; fitting is `lloyd_step`.

  Attributes:
    image_shape: (H, W, C) of the data; D = H W C.
    num_clusters: K, the number of centres (codes).
    initialization: 'kmeans++' or 'random' (distinct data points).
    online_decay: 0 for Lloyd's batch algorithm (set the batch to the whole
      split); kappa in (0.5, 1] for mini-batch K-means with
      rho_t = (t + 1)^-kappa (1: Sculley's per-centre 1 / count rates).
    chunk_size: data points per vmapped chunk of the assignment (memory).
  """
  image_shape: Sequence[int] = (28, 28, 1)
  num_clusters: int = 10
  initialization: str = 'kmeans++'
  online_decay: float = 0.0
  chunk_size: int = 1024

  @nn.compact
  def __call__(self, x: jax.Array):
    """x [B, H, W, C] -> (codes int32 [B], squared distances [B])."""
    centres = self.param('centres', nn.initializers.zeros,
                         (self.num_clusters, math.prod(self.image_shape)))
    return assign(centres, _flat(x), chunk_size=self.chunk_size)


def _flat(images: jax.Array) -> jax.Array:
  return images.reshape(images.shape[0], -1)


def validate(config, dataset) -> None:
  """Raises `ConfigError` naming the field that does not fit K-means."""
  m, d = config.model, config.data
  if d.binarize != 'none' or d.dequantize or d.value_range != 'unit':
    raise ConfigError(
        "K-means clusters pixel intensities x / 255 in [0, 1]: set "
        "config.data.binarize='none' (got {!r}), config.data.dequantize="
        "False (got {!r}) and config.data.value_range='unit' (got {!r}); "
        'binarization or dequantization would change the data every step.'
        .format(d.binarize, d.dequantize, d.value_range))
  if isinstance(m.chunk_size, bool) or not isinstance(m.chunk_size, int) or (
      m.chunk_size < 1):
    raise ConfigError(
        f'config.model.chunk_size={m.chunk_size!r} must be an integer >= 1.')
  gmm.validate_em_config(config, dataset, num_components=m.num_clusters,
                         field='config.model.num_clusters')


def assign(centres: jax.Array, x: jax.Array, *, chunk_size: int = 1024):
  """Nearest centre of each point, vmapped over data in chunks.

  Args:
    centres: [K, D].
    x: [N, D].
    chunk_size: points per vmapped chunk (memory only).

  Returns:
    (codes int32 [N], squared distances ||x_i - c_{z_i}||^2 [N]). The
    distances are computed directly (no ||x||^2 - 2 x.c + ||c||^2
    cancellation); ties go to the lowest index.
  """
  def one(xi):
    d2 = jnp.sum(jnp.square(xi - centres), axis=-1)
    k = jnp.argmin(d2).astype(jnp.int32)
    return k, d2[k]

  return jax.lax.map(one, x, batch_size=min(chunk_size, x.shape[0]))


def lloyd_step(centres: jax.Array, x: jax.Array,
               mask: jax.Array | None = None, *, chunk_size: int = 1024,
               stats: gmm.Moments | None = None, rho=1.0):
  """One Lloyd iteration (or a mini-batch step with `stats` and `rho`).

  Args:
    centres: [K, D] current centres.
    x: [N, D] data.
    mask: optional bool [N]; False rows do not count.
    chunk_size: as for `assign`.
    stats: running `gmm.Moments` (means only) for mini-batch K-means.
    rho: the stepwise step size (ignored without `stats`).

  Returns:
    (new centres [K, D], moments, codes [N], squared distances [N]); the
    codes and distances are those of the incoming centres, so
    ``distances.sum()`` is J(centres).
  """
  codes, d2 = assign(centres, x, chunk_size=chunk_size)
  resp = jax.nn.one_hot(codes, centres.shape[0], dtype=x.dtype)
  if mask is not None:
    resp = resp * mask.astype(x.dtype)[:, None]
  moments = gmm.batch_moments(resp, x, None)
  if stats is not None:
    moments = gmm.merge_moments(stats, moments, rho)
  alive = moments.weight > _MIN_WEIGHT
  return (jnp.where(alive[:, None], moments.mean, centres), moments, codes,
          d2)


def seed_centres(key: jax.Array, x: jax.Array, mask: jax.Array | None = None,
                 *, net: Net) -> jax.Array:
  """[K, D] initial centres: rows of x chosen by `net.initialization`."""
  mask = jnp.ones(x.shape[:1], bool) if mask is None else mask.astype(bool)
  idx = gmm.seed_indices(key, x, net.num_clusters, mask, net.initialization)
  return x[idx]


def init(key: jax.Array, batch, *, net: Net) -> Any:
  """Centres seeded from a preprocessed batch: {'centres': [K, D]}."""
  return {'centres': seed_centres(key, _flat(batch['image']),
                                  batch.get('mask'), net=net)}


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """The K-means objective of a batch (evaluation; training is Lloyd's).

  Returns:
    (mean objective over unmasked rows, {'objective': ||x - c_z(x)||^2 [B]
    (summed over pixels, x in [0, 1]), 'recon_error': [B] per-pixel mean
    squared error of the autoencoder, objective / D}).
  """
  del key, train
  x = _flat(batch['image'])
  _, d2 = assign(params['centres'], x, chunk_size=net.chunk_size)
  metrics = {'objective': d2, 'recon_error': d2 / x.shape[-1]}
  return steps.masked_mean(d2, batch.get('mask')), metrics


def encode(params, batch, *, net: Net) -> jax.Array:
  """The autoencoder's code: one-hot nearest centre, float32 [B, K]."""
  codes, _ = assign(params['centres'], _flat(batch['image']),
                    chunk_size=net.chunk_size)
  return jax.nn.one_hot(codes, net.num_clusters, dtype=jnp.float32)


def decode(params, codes: jax.Array, *, net: Net) -> jax.Array:
  """The linear decoder C^T h: codes [N, K] -> uint8 images [N, H, W, C].

  One-hot codes give centres; a soft code gives the convex combination.
  Pixels are round(255 * value), clipped to [0, 255].
  """
  values = codes @ params['centres']
  pixels = jnp.round(jnp.clip(values, 0.0, 1.0) * 255.0).astype(jnp.uint8)
  return pixels.reshape((codes.shape[0],) + tuple(net.image_shape))


def reconstruct(params, batch, key, *, net: Net):
  """decode(encode(x)): each image's nearest centre, uint8 [B, H, W, C]."""
  del key
  return decode(params, encode(params, batch, net=net), net=net)


def sample(params, key, num: int, *, net: Net):
  """The generator: a code uniform over the K one-hots, decoded (a centre).

  Returns uint8 [num, H, W, C].
  """
  codes = jax.random.randint(key, (num,), 0, net.num_clusters)
  return decode(params, jax.nn.one_hot(codes, net.num_clusters), net=net)


def codebook(params, *, net: Net):
  """All K centres as images, in index order: uint8 [K, H, W, C]."""
  return decode(params, jnp.eye(net.num_clusters), net=net)


def make_optimizer(config):
  """No optimizer: mini-batch K-means' running moments (or nothing)."""
  return gmm.moments_optimizer(bool(config.model.online_decay), None,
                               means_key='centres')


def make_train_step(*, net: Net, tx, preprocess, config):
  """``step(state, batch, train_key) -> (state, metrics)``: one Lloyd step.

  The batch is preprocessed as the data config says (x / 255, no noise).
  Step 0 first seeds the centres from its batch with
  ``fold_in(train_key, 0)``. Metrics are at the centres *before* the update
  (the previous step's result): 'loss' = J / N (never increases in batch
  mode), 'recon_error' = loss / D, 'empty_clusters'.
  """
  del tx, config
  online = bool(net.online_decay)

  def train_step(state, batch, train_key):
    key = jax.random.fold_in(train_key, state.step)
    pre_key, seed_key = jax.random.split(key)
    batch = preprocess(batch, pre_key)
    x, mask = _flat(batch['image']), batch['mask']
    centres = jax.lax.cond(
        state.step == 0,
        lambda: seed_centres(seed_key, x, mask, net=net),
        lambda: state.params['centres'])
    rho = gmm.step_size(net, state.step)
    new, moments, _, d2 = lloyd_step(
        centres, x, mask, chunk_size=net.chunk_size,
        stats=state.opt_state if online else None, rho=rho)
    loss = steps.masked_mean(d2, mask)
    metrics = {
        'loss': loss,
        'recon_error': loss / x.shape[-1],
        'empty_clusters': jnp.sum(moments.weight <= _MIN_WEIGHT).astype(
            jnp.float32),
    }
    new_state = state.replace(step=state.step + 1, params={'centres': new},
                              opt_state=moments if online else state.opt_state)
    return new_state, metrics

  return train_step
