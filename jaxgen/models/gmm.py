r"""Gaussian mixture models fitted by EM, with diagonal or full covariances.

Dempster, Laird & Rubin, "Maximum Likelihood from Incomplete Data via the EM
Algorithm", JRSS B 1977; Bishop, *Pattern Recognition and Machine Learning*,
2006, section 9.2; stepwise (online) EM: Cappé & Moulines, JRSS B 2009, and
Liang & Klein, NAACL 2009; k-means++ seeding: Arthur & Vassilvitskii, SODA
2007.

Model on dequantized pixels y in [0, 1)^D (D = H W C, ``y = (x + u) / 256``
for 8-bit x and u ~ U[0, 1)^D, `jaxgen.data.dequantize`):

    p(y) = sum_k pi_k N(y; mu_k, Sigma_k),

with Sigma_k diagonal (``log_vars`` [K, D]) or full (its lower Cholesky
factor ``scale_trils`` [K, D, D]). `log_likelihood` is the exact density of
the dequantized data; the evaluator adds D ln 256 nats, so the reported
bits/dim bound the discrete NLL of the 8-bit images (`LIKELIHOOD = 'exact'`
in that sense: no estimator is involved).

Training is EM, not gradient descent: one trainer step is one closed-form EM
iteration over its batch (`make_train_step`). With the batch set to the whole
training split it is exact batch EM, and the objective never decreases.

**The EM objective and the covariance floor.** Pixel data have dimensions
that never vary (MNIST's border is always 0), and a component fitted to
fewer than D images has a singular sample covariance: maximum likelihood
sends some variances to 0 and the density to infinity. Two things keep the
covariances away from 0, and both are *in the objective*, so the iteration
stays an exact EM:

1. The step takes the dequantization noise in expectation instead of drawing
   it: image i enters as its bin midpoint ``ybar_i = (x_i + 1/2) / 256``,
   and the noise ``u/256 - 1/512`` (mean 0, covariance ``I / (12 * 256^2)``)
   is integrated out in closed form.
2. ``covariance_floor`` f adds the expectation over a further N(0, f I)
   blur of the data (the regulariser scikit-learn calls ``reg_covar``).

With the total smoothing ``S = s I``, ``s = 1 / (12 * 256^2) + f``, and
``E_e[log N(ybar + e; mu, Sigma)] = log N(ybar; mu, Sigma) - tr(Sigma^-1 S)/2``
for any zero-mean e of covariance S, EM maximises

    Ltilde(theta) = sum_i logsumexp_k [log pi_k + log N(ybar_i; mu_k, Sigma_k)
                                       - s tr(Sigma_k^-1) / 2]
                  <= sum_i E_e[log p(ybar_i + e)]       (Jensen)

E-step: ``r_ik = softmax_k`` of the bracket (`e_step`, vmapped over data in
chunks). M-step, the exact maximiser of the E-step's bound:

    N_k = sum_i r_ik,   pi_k = N_k / N,   mu_k = sum_i r_ik ybar_i / N_k,
    Sigma_k = sum_i r_ik (ybar_i - mu_k)(ybar_i - mu_k)^T / N_k + s I

(its diagonal for 'diag'). So ``Sigma_k >= s I``: the floor is the smallest
variance any direction can have. Its effect on the likelihood: a pixel that
is constant within a component (all its mass in one bin of width 1/256) gets
variance s there, and an expected log-density over the bin of
``-log(2 pi s) / 2 - 1 / (24 * 256^2 * s)`` nats, where a uniform density
over the bin would give ln 256 = 5.55. That is 5.37 nats for f = 0 (0.25
bits below the bin's share), 3.67 for f = 1e-4 (2.7 bits below) and 2.53
for f = 1e-3 (4.3 bits below). A larger floor costs likelihood on the
constant pixels and buys it back on held-out images whose pixels vary where
the training images of their component did not (for a full covariance from
fewer images than D, most directions). scikit-learn adds ``reg_covar`` in
the M-step only; here the E-step's ``- s tr(Sigma_k^-1) / 2`` term makes each
step an exact EM step of Ltilde, hence monotone.

A component that receives no responsibility (``N_k`` ~ 0) keeps its mean and
covariance (its weight goes to 0); the objective cannot decrease by that.

**Stepwise EM.** With ``online_decay`` kappa in (0.5, 1], batches smaller
than the split update running moments ``s_t = (1 - rho_t) s_{t-1} +
rho_t shat_t``, ``rho_t = (t + 1)^-kappa`` (rho_0 = 1), and the M-step reads
them. The moments (weights, means, centred covariances) live in the
trainer's ``opt_state`` (`make_optimizer`) and are merged with the pooled
formula (Chan, Golub & LeVeque 1979), which equals the running average of
raw moments without its cancellation.

**Initialisation.** `init` seeds the means with k-means++ (or distinct random
data points) drawn from its batch with ``key``; covariances start at the
batch's covariance plus the floor, weights uniform. The trainer's `init`
only sees a one-image placeholder, so the trained model's first EM step
(step 0) re-seeds from its own batch with ``fold_in(train_key, 0)`` before
iterating.

The family contract (`jaxgen.models`): `Net`, `init`, `loss_fn`,
`log_likelihood`, `sample`, `reconstruct`, `validate`, `make_optimizer`,
`make_train_step`. Extra: `e_step`, `m_step`, `em_step`, `objective`,
`batch_moments`, `merge_moments`, `kmeans_plus_plus`, `encode`, `codebook`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgen import losses
from jaxgen import steps
from jaxgen.models import base
from jaxgen.errors import ConfigError

# Why config.train.compute_dtype must stay 'float32' (the trainer refuses
# 'bfloat16' with this reason).
FLOAT32_ONLY = (
    'EM updates the mixture in closed form from sufficient statistics '
    '(responsibility-weighted counts, sums and squared sums over the '
    'batch), with no network whose activations could run in bfloat16, and '
    'those sums need float32')
LIKELIHOOD = 'exact'  # density of the dequantized data (+ D ln 256 by eval)
COVARIANCES = ('diag', 'full')
INITIALIZATIONS = ('kmeans++', 'random')

# Variance of the uniform dequantization noise u / 256 on the [0, 1) scale.
DEQUANTIZATION_VARIANCE = 1.0 / (12.0 * 256.0 ** 2)
# Components whose responsibility mass (a fraction of the batch) is at or
# below this keep their mean and covariance.
_MIN_WEIGHT = 1e-12
# Smallest mixture weight kept in the log-weights (log(1e-30) = -69).
_MIN_LOG_WEIGHT = math.log(1e-30)
_LOG_256 = math.log(256.0)


class Net(nn.Module):
  """The mixture's parameters; fields are ``config.model``.

  `__call__` gives log p(y) per example (the exact density); fitting is done
  by `em_step`, not by gradients.

  Attributes:
    image_shape: (H, W, C) of the data; D = H W C.
    num_components: K.
    covariance: 'diag' (per-dimension variances) or 'full' (Cholesky
      factors; K D^2 parameters).
    covariance_floor: f >= 0, variance added to every covariance's diagonal
      on top of the dequantization noise's 1 / (12 * 256^2) (see the module
      docstring: it is part of the EM objective).
    initialization: 'kmeans++' or 'random' (distinct data points).
    online_decay: 0 for batch EM (each step fits its batch; set the batch
      to the whole split); kappa in (0.5, 1] for stepwise EM with
      rho_t = (t + 1)^-kappa.
    chunk_size: data points per vmapped chunk of the E-step (memory only:
      a full-covariance E-step holds K * D * chunk_size floats).
  """
  image_shape: Sequence[int] = (28, 28, 1)
  num_components: int = 10
  covariance: str = 'diag'
  covariance_floor: float = 1e-3
  initialization: str = 'kmeans++'
  online_decay: float = 0.0
  chunk_size: int = 1024

  @nn.compact
  def __call__(self, y: jax.Array) -> jax.Array:
    """y [B, H, W, C] -> log p(y) [B] in nats (a density)."""
    k, d = self.num_components, math.prod(self.image_shape)
    self.param('logits', nn.initializers.zeros, (k,))
    self.param('means', nn.initializers.zeros, (k, d))
    if self.covariance == 'diag':
      self.param('log_vars', nn.initializers.zeros, (k, d))
    else:
      self.param('scale_trils',
                 lambda key, shape: jnp.broadcast_to(jnp.eye(d), shape),
                 (k, d, d))
    return mixture_log_prob(self.variables['params'], _flat(y), net=self)


class Moments(NamedTuple):
  """Responsibility-weighted moments per component: what the M-step reads.

  Attributes:
    weight: [K], the fraction of the data's responsibility mass (sums to 1).
    mean: [K, D], weighted means (0 where the weight is 0).
    cov: centred weighted covariances, [K, D] ('diag') or [K, D, D]
      ('full'); None when only means are needed (K-means).
  """
  weight: jax.Array
  mean: jax.Array
  cov: jax.Array | None


def _flat(images: jax.Array) -> jax.Array:
  return images.reshape(images.shape[0], -1)


def smoothing_variance(net: Net) -> float:
  """s: the dequantization noise's variance plus the covariance floor."""
  return DEQUANTIZATION_VARIANCE + float(net.covariance_floor)


def midpoints(images: jax.Array) -> jax.Array:
  """Bin midpoints (x + 1/2) / 256 of 8-bit images: float32, same shape."""
  return (images.astype(jnp.float32) + 0.5) / 256.0


# ------------------------------------------------------------- validation
def validate_em_config(config, dataset, *, num_components: int,
                       field: str) -> None:
  """Checks shared by the EM families (this one and K-means).

  Args:
    config: the experiment config.
    dataset: the loaded `jaxgen.data.Dataset`.
    num_components: K.
    field: the config field that holds K, for the messages.
  """
  m, t = config.model, config.train
  if isinstance(num_components, bool) or not isinstance(num_components, int) \
      or num_components < 1:
    raise ConfigError(f'{field}={num_components!r} must be an integer >= 1.')
  if m.initialization not in INITIALIZATIONS:
    raise ConfigError(f'config.model.initialization={m.initialization!r} is '
                      f'not one of {INITIALIZATIONS}.')
  kappa = m.online_decay
  if not (kappa == 0 or 0.5 < kappa <= 1.0):
    raise ConfigError(
        f'config.model.online_decay={kappa} must be 0 (batch EM) or lie in '
        '(0.5, 1] (stepwise EM, rho_t = (t + 1)^-kappa).')
  if t.ema_decay:
    raise ConfigError(
        f'config.train.ema_decay={t.ema_decay}: EM families are fitted in '
        'closed form and keep no EMA; set it to 0.')
  num_train = len(dataset.splits['train'])
  if kappa == 0 and t.batch_size != num_train:
    raise ConfigError(
        f'config.train.batch_size={t.batch_size}: batch EM fits each step to '
        f'its batch, so the batch must be the whole training split '
        f'({num_train} examples); or set config.model.online_decay in '
        '(0.5, 1] for stepwise EM over smaller batches.')
  if t.batch_size < num_components:
    raise ConfigError(
        f'config.train.batch_size={t.batch_size} is smaller than '
        f'{field}={num_components}: the first step seeds the components '
        'with distinct points of its batch.')


def validate(config, dataset) -> None:
  """Raises `ConfigError` naming the field that does not fit EM on the data."""
  m = config.model
  if m.covariance not in COVARIANCES:
    raise ConfigError(f'config.model.covariance={m.covariance!r} is not one '
                      f'of {COVARIANCES}.')
  if not m.covariance_floor >= 0:
    raise ConfigError(
        f'config.model.covariance_floor={m.covariance_floor} must be >= 0.')
  if isinstance(m.chunk_size, bool) or not isinstance(m.chunk_size, int) or (
      m.chunk_size < 1):
    raise ConfigError(
        f'config.model.chunk_size={m.chunk_size!r} must be an integer >= 1.')
  base.check_dequantized_8bit(config, dataset, 'a Gaussian mixture')
  validate_em_config(config, dataset, num_components=m.num_components,
                     field='config.model.num_components')


# ------------------------------------------------------------ densities
def component_log_probs(params, y: jax.Array, *, net: Net,
                        inverse_scale_trils: jax.Array | None = None):
  """log N(y_i; mu_k, Sigma_k): [N, K], vmapped over data in chunks.

  Args:
    params: the mixture's parameters.
    y: [N, D] flat data.
    net: the Net (covariance type, chunk size).
    inverse_scale_trils: optional precomputed ``L_k^-1`` ('full').
  """
  means = params['means']
  if net.covariance == 'full':
    return losses.gaussian_tril_component_log_probs(
        y, means, params['scale_trils'], chunk_size=net.chunk_size,
        inverse_scale_trils=inverse_scale_trils)
  log_vars = params['log_vars']
  one = lambda x: losses.gaussian_component_log_probs(x, means, log_vars)
  return jax.lax.map(one, y, batch_size=min(net.chunk_size, y.shape[0]))


def mixture_log_prob(params, y: jax.Array, *, net: Net) -> jax.Array:
  """log p(y) [N] for flat y [N, D]: the exact mixture density, in nats."""
  comp = component_log_probs(params, y, net=net)
  return losses.mixture_log_posterior(params['logits'], comp)[1]


def precision_traces(params, *, net: Net,
                     inverse_scale_trils: jax.Array | None = None):
  """tr(Sigma_k^-1) per component: [K] (``||L_k^-1||_F^2`` when full)."""
  if net.covariance == 'diag':
    return jnp.sum(jnp.exp(-params['log_vars']), axis=-1)
  inv = (losses.tril_inverse(params['scale_trils'])
         if inverse_scale_trils is None else inverse_scale_trils)
  return jnp.sum(jnp.square(inv), axis=(-2, -1))


# ------------------------------------------------------------------- EM
def e_step(params, y: jax.Array, *, net: Net):
  """E-step: log-responsibilities and the per-example EM objective.

  Args:
    params: the mixture's parameters.
    y: [N, D] data (bin midpoints in training).
    net: the Net.

  Returns:
    (log_resp [N, K], objective [N]): ``log r_ik`` and
    ``logsumexp_k [log pi_k + log N(y_i; mu_k, Sigma_k) - s tr(Sigma_k^-1)/2]``
    (nats), whose sum is the Ltilde of the module docstring.
  """
  inv = (losses.tril_inverse(params['scale_trils'])
         if net.covariance == 'full' else None)
  comp = component_log_probs(params, y, net=net, inverse_scale_trils=inv)
  penalty = 0.5 * smoothing_variance(net) * precision_traces(
      params, net=net, inverse_scale_trils=inv)
  return losses.mixture_log_posterior(params['logits'], comp - penalty)


def objective(params, y: jax.Array, *, net: Net) -> jax.Array:
  """The EM objective per example, [N] nats (sum it for Ltilde)."""
  return e_step(params, y, net=net)[1]


def batch_moments(resp: jax.Array, y: jax.Array,
                  covariance: str | None) -> Moments:
  """Responsibility-weighted moments of a batch, centred in two passes.

  Args:
    resp: [N, K] responsibilities (rows of padding masked to 0 by the
      caller).
    y: [N, D] data.
    covariance: 'diag', 'full', or None (means only).

  Returns:
    `Moments`: weight_k = N_k / sum_k N_k, mean_k = sum_i r_ik y_i / N_k,
    cov_k = sum_i r_ik (y_i - mean_k)(y_i - mean_k)^T / N_k (or its
    diagonal). Components with N_k = 0 get mean and cov 0.
  """
  counts = resp.sum(0)  # [K]
  total = jnp.maximum(counts.sum(), jnp.finfo(resp.dtype).tiny)
  safe = jnp.where(counts > 0, counts, 1.0)
  mean = (resp.T @ y) / safe[:, None]
  if covariance is None:
    cov = None
  elif covariance == 'diag':
    cov = jax.lax.map(lambda a: (a[0][:, None] * jnp.square(y - a[1])).sum(0),
                      (resp.T, mean)) / safe[:, None]
  else:
    def scatter(a):
      centred = y - a[1]
      return (centred * a[0][:, None]).T @ centred
    cov = jax.lax.map(scatter, (resp.T, mean)) / safe[:, None, None]
    cov = 0.5 * (cov + jnp.swapaxes(cov, -1, -2))
  return Moments(weight=counts / total, mean=mean, cov=cov)


def merge_moments(old: Moments, new: Moments, rho) -> Moments:
  """Stepwise-EM update ``(1 - rho) old + rho new`` of the moments.

  The weights mix linearly; means and centred covariances by the pooled
  formula ``C = sum_j f_j (C_j + (m_j - m)(m_j - m)^T)`` with
  ``f = ((1 - rho) w_old, rho w_new) / w``: the same as mixing raw second
  moments, without their cancellation. rho = 1 returns `new`.
  """
  a = (1.0 - rho) * old.weight
  b = rho * new.weight
  w = a + b
  safe = jnp.where(w > 0, w, 1.0)
  fa, fb = a / safe, b / safe
  mean = fa[:, None] * old.mean + fb[:, None] * new.mean
  cov = None
  if new.cov is not None:
    da, db = old.mean - mean, new.mean - mean
    if new.cov.ndim == 2:
      spread_a, spread_b = jnp.square(da), jnp.square(db)
      fa_, fb_ = fa[:, None], fb[:, None]
    else:
      spread_a = da[:, :, None] * da[:, None, :]
      spread_b = db[:, :, None] * db[:, None, :]
      fa_, fb_ = fa[:, None, None], fb[:, None, None]
    cov = fa_ * (old.cov + spread_a) + fb_ * (new.cov + spread_b)
  return Moments(weight=w, mean=mean, cov=cov)


def params_from_moments(moments: Moments, old_params, *, net: Net):
  """M-step: the parameters that maximise the E-step's bound (see module).

  Components with weight <= 1e-12 keep their old mean and covariance.
  """
  alive = moments.weight > _MIN_WEIGHT
  s = smoothing_variance(net)
  logits = jnp.maximum(jnp.log(moments.weight), _MIN_LOG_WEIGHT)
  means = jnp.where(alive[:, None], moments.mean, old_params['means'])
  if net.covariance == 'diag':
    log_vars = jnp.log(moments.cov + s)
    return {'logits': logits, 'means': means,
            'log_vars': jnp.where(alive[:, None], log_vars,
                                  old_params['log_vars'])}
  d = moments.cov.shape[-1]
  trils = jnp.linalg.cholesky(moments.cov + s * jnp.eye(d, dtype=means.dtype))
  return {'logits': logits, 'means': means,
          'scale_trils': jnp.where(alive[:, None, None], trils,
                                   old_params['scale_trils'])}


def m_step(params, log_resp: jax.Array, y: jax.Array,
           mask: jax.Array | None = None, *, net: Net,
           stats: Moments | None = None, rho=1.0):
  """M-step from the E-step's responsibilities.

  Args:
    params: the parameters the E-step used (kept for empty components).
    log_resp: [N, K] log-responsibilities.
    y: [N, D] data.
    mask: optional bool [N]; False rows do not count.
    net: the Net.
    stats: running `Moments` for stepwise EM (None: batch EM).
    rho: the stepwise step size (ignored without `stats`).

  Returns:
    (new params, the moments they were computed from).
  """
  resp = jnp.exp(log_resp)
  if mask is not None:
    resp = resp * mask.astype(resp.dtype)[:, None]
  moments = batch_moments(resp, y, net.covariance)
  if stats is not None:
    moments = merge_moments(stats, moments, rho)
  return params_from_moments(moments, params, net=net), moments


def em_step(params, y: jax.Array, mask: jax.Array | None = None, *, net: Net,
            stats: Moments | None = None, rho=1.0):
  """One EM iteration on flat data y [N, D].

  Returns:
    (new params, moments, log_resp [N, K], objective [N]): the objective
    and responsibilities are those of the *incoming* params (the E-step);
    in batch EM the next call's objective is never smaller.
  """
  log_resp, obj = e_step(params, y, net=net)
  new_params, moments = m_step(params, log_resp, y, mask, net=net,
                               stats=stats, rho=rho)
  return new_params, moments, log_resp, obj


# ------------------------------------------------------- initialisation
def kmeans_plus_plus(key: jax.Array, x: jax.Array, num: int,
                     mask: jax.Array | None = None) -> jax.Array:
  """k-means++ seeding (Arthur & Vassilvitskii 2007): [num] row indices.

  The first centre is a uniform unmasked row; each next one is row i with
  probability proportional to D(x_i)^2, its squared distance to the nearest
  centre chosen so far (masked rows: 0). When every remaining distance is 0
  (fewer distinct rows than `num`), the draw is uniform over unmasked rows.
  """
  n = x.shape[0]
  valid = (jnp.ones((n,), bool) if mask is None else mask.astype(bool))
  uniform = jnp.where(valid, 0.0, -jnp.inf)
  keys = jax.random.split(key, num)
  sq = lambda c: jnp.sum(jnp.square(x - c), axis=-1)
  first = jax.random.categorical(keys[0], uniform).astype(jnp.int32)
  d2 = jnp.where(valid, sq(x[first]), 0.0)

  def body(i, carry):
    idx, d2 = carry
    logits = jnp.where(d2 > 0, jnp.log(jnp.where(d2 > 0, d2, 1.0)), -jnp.inf)
    logits = jnp.where(jnp.any(d2 > 0), logits, uniform)
    nxt = jax.random.categorical(keys[i], logits).astype(jnp.int32)
    d2 = jnp.where(valid, jnp.minimum(d2, sq(x[nxt])), 0.0)
    return idx.at[i].set(nxt), d2

  idx = jnp.zeros((num,), jnp.int32).at[0].set(first)
  idx, _ = jax.lax.fori_loop(1, num, body, (idx, d2))
  return idx


def random_points(key: jax.Array, num: int,
                  mask: jax.Array) -> jax.Array:
  """[num] distinct unmasked row indices, uniformly (Forgy initialisation).

  A batch with fewer rows than `num` (the trainer's one-image placeholder
  batch for `init`; step 0 re-seeds from its real batch) gets indices drawn
  with replacement instead of an error.
  """
  p = mask.astype(jnp.float32)
  return jax.random.choice(key, mask.shape[0], (num,),
                           replace=mask.shape[0] < num, p=p / p.sum())


def seed_indices(key: jax.Array, x: jax.Array, num: int, mask: jax.Array,
                 initialization: str) -> jax.Array:
  """Seed rows by `initialization` ('kmeans++' or 'random')."""
  if initialization == 'kmeans++':
    return kmeans_plus_plus(key, x, num, mask)
  return random_points(key, num, mask)


def initialize(key: jax.Array, y: jax.Array, mask: jax.Array | None = None,
               *, net: Net):
  """Data-dependent initial parameters from flat y [N, D].

  Means: seeded rows (`net.initialization`); covariances: the data's
  (masked) covariance plus s I; weights uniform.
  """
  mask = jnp.ones(y.shape[:1], bool) if mask is None else mask.astype(bool)
  idx = seed_indices(key, y, net.num_components, mask, net.initialization)
  ones = mask.astype(y.dtype)[:, None]
  whole = batch_moments(ones, y, net.covariance)
  k = net.num_components
  moments = Moments(
      weight=jnp.full((k,), 1.0 / k, y.dtype), mean=y[idx],
      cov=jnp.broadcast_to(whole.cov, (k,) + whole.cov.shape[1:]))
  placeholder = jax.eval_shape(
      net.init, jax.random.key(0), jnp.zeros((1,) + tuple(net.image_shape)))
  old = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                     placeholder['params'])
  return params_from_moments(moments, old, net=net)


# ------------------------------------------------------------- contract
def init(key: jax.Array, batch, *, net: Net) -> Any:
  """Parameters seeded from a preprocessed batch (see `initialize`)."""
  return initialize(key, _flat(batch['image']), batch.get('mask'), net=net)


def log_likelihood(params, batch, key, *, net: Net) -> jax.Array:
  """Exact log-density of the (dequantized) batch: [B] nats.

  The evaluator adds D ln 256 to the NLL for the discrete 8-bit data.
  """
  del key
  return mixture_log_prob(params, _flat(batch['image']), net=net)


def _map_component_means(params, y: jax.Array, *, net: Net):
  comp = component_log_probs(params, y, net=net)
  log_resp, log_p = losses.mixture_log_posterior(params['logits'], comp)
  return params['means'][jnp.argmax(log_resp, -1)], log_p


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """NLL of the dequantized batch (evaluation; training is `make_train_step`).

  Returns:
    (mean 'nll' over unmasked rows, {'nll': -log p(y) + D ln 256 [B] (nats
    per image; its mean over the dequantization noise bounds the 8-bit NLL),
    'log_density': log p(y) [B], 'recon_error': [B] per-pixel mean squared
    error between y and the mean of its most responsible component}).
  """
  del key, train
  y = _flat(batch['image'])
  recon, log_p = _map_component_means(params, y, net=net)
  nll = -log_p + y.shape[-1] * _LOG_256
  metrics = {'nll': nll, 'log_density': log_p,
             'recon_error': jnp.mean(jnp.square(y - recon), -1)}
  return steps.masked_mean(nll, batch.get('mask')), metrics


def _to_uint8(y: jax.Array, image_shape) -> jax.Array:
  """Dequantized values y in [0, 1) -> pixels floor(256 y), clipped."""
  pixels = jnp.floor(jnp.clip(y * 256.0, 0.0, 255.0)).astype(jnp.uint8)
  return pixels.reshape((y.shape[0],) + tuple(image_shape))


def sample(params, key, num: int, *, net: Net):
  """Ancestral samples: k ~ Cat(pi), y ~ N(mu_k, Sigma_k), x = floor(256 y).

  Returns uint8 [num, H, W, C].
  """
  k_key, e_key = jax.random.split(key)
  comp = jax.random.categorical(k_key, params['logits'], shape=(num,))
  d = params['means'].shape[-1]
  eps = jax.random.normal(e_key, (num, d))
  if net.covariance == 'diag':
    noise = jnp.exp(0.5 * params['log_vars'][comp]) * eps
  else:
    noise = jnp.einsum('nde,ne->nd', params['scale_trils'][comp], eps)
  return _to_uint8(params['means'][comp] + noise, net.image_shape)


def reconstruct(params, batch, key, *, net: Net):
  """The mean of each image's most responsible component: uint8 [B, H, W, C]."""
  del key
  recon, _ = _map_component_means(params, _flat(batch['image']), net=net)
  return _to_uint8(recon, net.image_shape)


def encode(params, batch, *, net: Net) -> jax.Array:
  """Responsibilities p(z = k | y) of a preprocessed batch: [B, K]."""
  comp = component_log_probs(params, _flat(batch['image']), net=net)
  return losses.mixture_responsibilities(params['logits'], comp)


def codebook(params, *, net: Net):
  """The K component means as images: uint8 [K, H, W, C]."""
  return _to_uint8(params['means'], net.image_shape)


# -------------------------------------------------------------- training
def moments_optimizer(online: bool, covariance: str | None,
                      means_key: str = 'means') -> optax.GradientTransformation:
  """The trainer's ``tx`` for an EM family: state = stepwise-EM moments.

  Batch EM keeps no state (``optax.EmptyState``); stepwise EM keeps the
  running `Moments` (zeros at first: rho_0 = 1 replaces them), shaped after
  ``params[means_key]`` [K, D]. ``update`` is the identity; the EM step
  never calls it.
  """
  if not online:
    return optax.identity()

  def init_fn(params):
    k, d = params[means_key].shape
    cov = {'diag': jnp.zeros((k, d), jnp.float32),
           'full': jnp.zeros((k, d, d), jnp.float32)}.get(covariance)
    return Moments(weight=jnp.zeros((k,), jnp.float32),
                   mean=jnp.zeros((k, d), jnp.float32), cov=cov)

  def update_fn(updates, state, params=None):
    del params
    return updates, state

  return optax.GradientTransformation(init_fn, update_fn)


def make_optimizer(config) -> optax.GradientTransformation:
  """No optimizer: the running moments of stepwise EM (or nothing)."""
  return moments_optimizer(bool(config.model.online_decay),
                           config.model.covariance)


def step_size(net, step: jax.Array) -> jax.Array:
  """rho_t = (t + 1)^-kappa for stepwise EM (1 at t = 0); 1 for batch EM."""
  if not net.online_decay:
    return jnp.ones((), jnp.float32)
  return (step.astype(jnp.float32) + 1.0) ** (-float(net.online_decay))


def make_train_step(*, net: Net, tx, preprocess, config):
  """``step(state, batch, train_key) -> (state, metrics)``: one EM iteration.

  The step reads the uint8 pixels and takes the dequantization noise in
  expectation (bin midpoints, noise variance in the floor; module
  docstring) rather than drawing it with `preprocess`, so batch EM sees the
  same data every step and is exactly monotone. Step 0 first seeds the
  components from its batch with ``fold_in(train_key, 0)``.

  Metrics (scalars, at the parameters *before* this step's M-step, i.e. the
  previous step's result): 'loss' = -Ltilde / N (nats; never increases in
  batch EM), 'nll' = loss + D ln 256, 'bits_per_dim', 'recon_error' (per
  pixel, to the most responsible mean) and 'empty_components'.
  """
  del tx, preprocess, config
  online = bool(net.online_decay)

  def train_step(state, batch, train_key):
    key = jax.random.fold_in(train_key, state.step)
    y = _flat(midpoints(batch['image']))
    mask = batch['mask']
    params = jax.lax.cond(
        state.step == 0,
        lambda: initialize(jax.random.fold_in(key, 1), y, mask, net=net),
        lambda: state.params)
    stats = state.opt_state if online else None
    new_params, moments, log_resp, obj = em_step(
        params, y, mask, net=net, stats=stats,
        rho=step_size(net, state.step))
    loss = -steps.masked_mean(obj, mask)
    nll = loss + y.shape[-1] * _LOG_256
    recon = params['means'][jnp.argmax(log_resp, -1)]
    metrics = {
        'loss': loss,
        'nll': nll,
        'bits_per_dim': losses.nats_to_bits_per_dim(nll, y.shape[-1]),
        'recon_error': steps.masked_mean(
            jnp.mean(jnp.square(y - recon), -1), mask),
        'empty_components': jnp.sum(moments.weight <= _MIN_WEIGHT).astype(
            jnp.float32),
    }
    new_state = state.replace(step=state.step + 1, params=new_params,
                              opt_state=moments if online else state.opt_state)
    return new_state, metrics

  return train_step
