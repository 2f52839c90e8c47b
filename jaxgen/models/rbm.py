"""Restricted Boltzmann machines, trained by contrastive divergence.

Hinton, "Training Products of Experts by Minimizing Contrastive
Divergence", Neural Computation 2002 (CD-k); Tieleman, "Training
Restricted Boltzmann Machines using Approximations to the Likelihood
Gradient", ICML 2008 (persistent CD); Salakhutdinov & Murray, "On the
Quantitative Analysis of Deep Belief Networks", ICML 2008 (the base-rate
model and annealed importance sampling, AIS, for log Z); Neal, "Annealed
Importance Sampling", Statistics and Computing 2001.

Visible units v [D] (the flattened image), hidden units h in {0, 1}^H,
weights W [D, H], visible biases b [D], hidden biases c [H].

Bernoulli visibles (``visible='bernoulli'``, binarized images):

    E(v, h) = -v.b - h.c - v W h
    F(v)    = -log sum_h exp(-E(v, h)) = -v.b - sum_j softplus(c_j + v W_j)
    p(h_j = 1 | v) = sigmoid(c_j + v W_j)
    p(v_i = 1 | h) = sigmoid(b_i + W_i h)

Gaussian visibles with unit variance (``visible='gaussian'``, dequantized
8-bit pixels y in [0, 1) standardized per pixel, v = (y - mean) / std):

    E(v, h) = |v - b|^2 / 2 - h.c - v W h
    F(v)    = |v - b|^2 / 2 - sum_j softplus(c_j + v W_j)
    p(v | h) = N(b + W h, I)

and log p(y) = log p(v) - sum_i log std_i. The per-pixel mean and std
(floored at ``min_std``) come from the first training batch (`data_init`).

p(v) = exp(-F(v)) / Z. Training follows the gradient of the negative
log-likelihood, E_data[dF/dtheta] - E_model[dF/dtheta], with the model
term taken at samples of k block-Gibbs sweeps (h ~ p(h | v), then
v ~ p(v | h)) started at the data (CD-k) or at persistent chains carried
from step to step (PCD-k). The step differentiates the free-energy gap

    mean_data F(v) - mean_neg F(stop_gradient(v_neg)),

whose value is the 'loss' in the training log. The persistent chains live
in the non-trainable collection 'state' of the variables dict kept in
``TrainState.params``, beside the 'params', so checkpoints carry them and a
resumed run continues bitwise.

**The likelihood is an estimate** (`LIKELIHOOD` = 'estimate'):
``log_likelihood`` is -F(v) - log Z_hat with log Z_hat from AIS
(`ais_log_partition`): chains start at a base-rate model p_0 (W = 0,
hidden biases 0, visible biases b_A: the logits of the first training
batch's pixel marginals, ``base='data'``, or zeros, ``base='zeros'``) and
move through the intermediate distributions

    f_beta(v) = exp((1 - beta) v.b_A + beta v.b)
                prod_j (1 + exp(beta (c_j + v W_j)))

(Gaussian: exp(-|v|^2/2 + v.((1 - beta) b_A + beta b) - const_beta) times
the same product) at ``num_betas`` linearly spaced inverse temperatures,
one Gibbs sweep at each. The importance weights are unbiased for Z, so
by Jensen log Z_hat is biased low on average and log p(x) tends to be
over-estimated (the NLL under-estimated) when the chains do not mix.
Salakhutdinov & Murray 2008 used 14,500 betas and 100 chains; the configs
use fewer for CPU. The standard error of log Z_hat is the delta-method
std(w) / (sqrt(M) mean(w)) over the M chains. One evaluation estimates
log Z once (`prepare_estimator`, called by the evaluator) and uses it for
every batch; ``log_likelihood`` called alone (no ``log_z``) runs AIS with
its own key. `log_partition_exact` enumerates 2^min(D, H) states for tiny
models.

`sample` runs ``sample_sweeps`` block-Gibbs sweeps from the base-rate
model (Bernoulli) or N(0, I) (Gaussian) and returns the MEAN of p(v | h)
at the final sweep (probabilities scaled to 0..255 for Bernoulli
visibles; the Gaussian means mapped back to pixels), not a binary draw.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.models import base as base_lib
from jaxgen.models import pixels
from jaxgen.nn import initializers as inits

# log_likelihood is a stochastic estimate (AIS), neither exact nor a bound.
# Why config.train.compute_dtype must stay 'float32' (the trainer refuses
# 'bfloat16' with this reason).
FLOAT32_ONLY = (
    "the step's matmuls are the model's own conditionals p(h | v) and "
    'p(v | h) in the Gibbs sweeps, not activations of a network: in '
    'bfloat16 (8 significant bits) the chains would sample a rounded model, '
    'not the one whose free energy the gradient and the AIS evaluation use')
LIKELIHOOD = 'estimate'
VISIBLE = ('bernoulli', 'gaussian')
TRAIN_MODES = ('cd', 'pcd')
BASES = ('data', 'zeros')
ESTIMATOR_CHOICES = {'base': BASES}
# The non-trainable collection: persistent chains and data statistics.
STATE = 'state'
# Estimator arguments that `prepare_estimator` supplies, not the config.
PREPARED = ('log_z', 'log_z_stderr')


class Net(nn.Module):
  """The RBM's parameters; fields are ``config.model``.

  Attributes:
    image_shape: (H, W, C); D = H * W * C visible units.
    hidden_dim: number of binary hidden units H.
    visible: 'bernoulli' (binarized data) or 'gaussian' (unit-variance
      visibles on standardized dequantized 8-bit data).
    init_scale: std of the normal initialisation of W (biases start at 0;
      `data_init` sets the visible biases to the data's base rates).
    train_mode: 'cd' (chains start at the data) or 'pcd' (persistent).
    cd_steps: k, Gibbs sweeps per training step.
    num_chains: persistent chains (PCD); unused by CD.
    sample_sweeps: Gibbs sweeps of `sample`.
    min_std: floor of the per-pixel std used to standardize (Gaussian).
  """
  image_shape: Sequence[int] = (8, 8, 1)
  hidden_dim: int = 100
  visible: str = 'bernoulli'
  init_scale: float = 0.01
  train_mode: str = 'pcd'
  cd_steps: int = 1
  num_chains: int = 100
  sample_sweeps: int = 1000
  min_std: float = 0.05

  @property
  def num_dims(self) -> int:
    return math.prod(self.image_shape)

  def setup(self):
    d, h = self.num_dims, self.hidden_dim
    self.w = self.param('w', inits.normal(self.init_scale), (d, h))
    self.b = self.param('b', nn.initializers.zeros, (d,))
    self.c = self.param('c', nn.initializers.zeros, (h,))

  def __call__(self, v: jax.Array) -> jax.Array:
    """F(v) [B] for visible vectors v [B, D]."""
    return free_energy({'w': self.w, 'b': self.b, 'c': self.c}, v,
                       self.visible)


# ---------------------------------------------------------------- the math
def free_energy(p, v: jax.Array, visible: str) -> jax.Array:
  """F(v) [B] for v [B, D] and parameters {'w', 'b', 'c'} (plus 'k', the
  constant of a tempered Gaussian model, `tempered`)."""
  hidden = jax.nn.softplus(v @ p['w'] + p['c']).sum(-1)
  if visible == 'bernoulli':
    return -v @ p['b'] - hidden
  k = p['k'] if 'k' in p else 0.5 * jnp.sum(p['b'] ** 2)
  return 0.5 * jnp.sum(v ** 2, -1) - v @ p['b'] + k - hidden


def hidden_probs(p, v: jax.Array) -> jax.Array:
  """p(h_j = 1 | v) [B, H]."""
  return jax.nn.sigmoid(v @ p['w'] + p['c'])


def visible_mean(p, h: jax.Array, visible: str) -> jax.Array:
  """E[v | h] [B, D]: sigmoid(b + W h) (Bernoulli) or b + W h (Gaussian)."""
  a = h @ p['w'].T + p['b']
  return jax.nn.sigmoid(a) if visible == 'bernoulli' else a


def gibbs_sweep(p, v: jax.Array, key: jax.Array, visible: str):
  """One block-Gibbs sweep v -> h -> v'; returns (v', E[v' | h]).

  Bernoulli: one block of uniforms [B, H + D] per sweep (u < p is a
  Bernoulli draw), so a compiled chain holds one random-bit generator per
  sweep; Gaussian: uniforms for h and normals for v.
  """
  num, hidden_dim = v.shape[0], p['w'].shape[1]
  if visible == 'bernoulli':
    u = jax.random.uniform(key, (num, hidden_dim + v.shape[1]))
    h = (u[:, :hidden_dim] < hidden_probs(p, v)).astype(v.dtype)
    mean = visible_mean(p, h, visible)
    return (u[:, hidden_dim:] < mean).astype(v.dtype), mean
  h_key, v_key = jax.random.split(key)
  h = (jax.random.uniform(h_key, (num, hidden_dim)) < hidden_probs(p, v)
       ).astype(v.dtype)
  mean = visible_mean(p, h, visible)
  return mean + jax.random.normal(v_key, mean.shape, v.dtype), mean


def gibbs_chain(p, v: jax.Array, key: jax.Array, num_sweeps: int,
                visible: str):
  """`num_sweeps` sweeps from v; sweep i uses ``jax.random.split(key,
  num_sweeps)[i]``.

  Returns (v after the last sweep, E[v | h] of the last sweep).
  """

  def body(carry, sweep_key):
    return gibbs_sweep(p, carry[0], sweep_key, visible), None

  out, _ = jax.lax.scan(body, (v, jnp.zeros_like(v)),
                        jax.random.split(key, num_sweeps))
  return out


def tempered(p, beta, base_b: jax.Array, visible: str):
  """The parameters of f_beta, the AIS intermediate model at `beta`.

  Visible biases (1 - beta) b_A + beta b, weights beta W, hidden biases
  beta c (the base model's hidden units have zero weights and biases, so
  they add the constant H ln 2, the same at every beta). For Gaussian
  visibles also 'k', the constant making f_beta the mixture of energies.
  """
  out = {'w': beta * p['w'], 'b': (1 - beta) * base_b + beta * p['b'],
         'c': beta * p['c']}
  if visible == 'gaussian':
    out['k'] = 0.5 * ((1 - beta) * jnp.sum(base_b ** 2)
                      + beta * jnp.sum(p['b'] ** 2))
  return out


def base_log_partition(base_b: jax.Array, hidden_dim: int,
                       visible: str) -> jax.Array:
  """log Z_0 of the base-rate model f_0 (beta = 0)."""
  if visible == 'bernoulli':
    visible_part = jax.nn.softplus(base_b).sum()
  else:
    visible_part = 0.5 * base_b.shape[-1] * math.log(2 * math.pi)
  return visible_part + hidden_dim * math.log(2.0)


def base_visible_biases(variables, base: str) -> jax.Array:
  """b_A: the stored data base rates (``base='data'``) or zeros."""
  rates = variables[STATE]['base_rate']
  return rates if base == 'data' else jnp.zeros_like(rates)


def ais_log_partition(p, key: jax.Array, *, base_b: jax.Array,
                      visible: str, num_betas: int, num_chains: int):
  """AIS estimate of log Z and its standard error (delta method).

  Betas linearly spaced from 0 to 1 (``num_betas`` values, one Gibbs
  sweep at each but the last); chain m's log weight is
  sum_k [log f_{beta_k}(v_{k-1}) - log f_{beta_{k-1}}(v_{k-1})].

  Returns:
    (log Z_0 + log mean_m w_m, std_m(w) / (sqrt(M) mean_m(w))), scalars.
  """
  d, hidden_dim = p['w'].shape
  init_key, run_key = jax.random.split(key)
  if visible == 'bernoulli':
    v = jax.random.bernoulli(init_key, jax.nn.sigmoid(base_b),
                             (num_chains, d)).astype(jnp.float32)
  else:
    v = base_b + jax.random.normal(init_key, (num_chains, d))
  betas = jnp.linspace(0.0, 1.0, num_betas)

  def body(carry, inputs):
    v, log_w = carry
    lo, hi, sweep_key = inputs
    p_lo = tempered(p, lo, base_b, visible)
    p_hi = tempered(p, hi, base_b, visible)
    log_w = log_w + free_energy(p_lo, v, visible) - free_energy(
        p_hi, v, visible)
    v, _ = gibbs_sweep(p_hi, v, sweep_key, visible)
    return (v, log_w), None

  (_, log_w), _ = jax.lax.scan(
      body, (v, jnp.zeros((num_chains,))),
      (betas[:-1], betas[1:], jax.random.split(run_key, num_betas - 1)))
  log_z = (base_log_partition(base_b, hidden_dim, visible)
           + jax.nn.logsumexp(log_w) - math.log(num_chains))
  w = jnp.exp(log_w - log_w.max())
  stderr = jnp.std(w, ddof=1) / (math.sqrt(num_chains) * w.mean())
  return log_z, stderr


def log_partition_exact(p, *, visible: str = 'bernoulli') -> jax.Array:
  """log Z by enumerating 2^min(D, H) states (the other layer summed out).

  Gaussian visibles always enumerate h (v is integrated analytically:
  log Z = logsumexp_h [c.h + b.Wh + |Wh|^2 / 2] + (D / 2) ln 2 pi). For
  tiny models only: memory and time grow as 2^min(D, H).
  """
  d, hidden_dim = p['w'].shape
  if visible == 'gaussian' or hidden_dim <= d:
    n = hidden_dim
  else:
    n = d
  states = ((jnp.arange(2 ** n)[:, None] >> jnp.arange(n)) & 1).astype(
      jnp.float32)
  if visible == 'gaussian':
    wh = states @ p['w'].T
    terms = states @ p['c'] + wh @ p['b'] + 0.5 * jnp.sum(wh ** 2, -1)
    return jax.nn.logsumexp(terms) + 0.5 * d * math.log(2 * math.pi)
  if n == hidden_dim:  # sum out v: prod_i (1 + exp(b_i + W_i h))
    terms = states @ p['c'] + jax.nn.softplus(states @ p['w'].T
                                              + p['b']).sum(-1)
    return jax.nn.logsumexp(terms)
  return jax.nn.logsumexp(-free_energy(p, states, visible))


# ------------------------------------------------------------ data views
def _flat(batch) -> jax.Array:
  x = batch['image']
  return x.reshape(x.shape[0], -1).astype(jnp.float32)


def visible_units(variables, batch, net: Net) -> jax.Array:
  """v [B, D]: the binary pixels, or the standardized dequantized ones."""
  x = _flat(batch)
  if net.visible == 'bernoulli':
    return x
  s = variables[STATE]
  return (x - s['mean']) / s['std']


def _log_jacobian(variables, net: Net) -> jax.Array:
  """log |dv/dy| per example: -sum_i log std_i (0 for Bernoulli)."""
  if net.visible == 'bernoulli':
    return jnp.zeros(())
  return -jnp.log(variables[STATE]['std']).sum()


# ----------------------------------------------------------- the contract
def validate(config, dataset) -> None:
  """Checks ``config.model``, the data and the AIS estimators."""
  m = config.model
  if m.visible not in VISIBLE:
    raise ConfigError(f'config.model.visible={m.visible!r} is not one of '
                      f'{VISIBLE}.')
  if m.train_mode not in TRAIN_MODES:
    raise ConfigError(f'config.model.train_mode={m.train_mode!r} is not one '
                      f'of {TRAIN_MODES} (contrastive divergence from the '
                      'data, or persistent chains).')
  for field in ('hidden_dim', 'cd_steps', 'num_chains', 'sample_sweeps'):
    if m[field] < 1:
      raise ConfigError(f'config.model.{field}={m[field]} must be >= 1.')
  if m.init_scale <= 0:
    raise ConfigError(f'config.model.init_scale={m.init_scale} must be > 0.')
  if m.min_std <= 0:
    raise ConfigError(f'config.model.min_std={m.min_std} must be > 0.')
  if m.visible == 'bernoulli':
    pixels.check_data_config('bernoulli', config.data, dataset.pixel_levels)
  else:
    base_lib.check_dequantized_8bit(config, dataset, 'a Gaussian RBM')
  for name, args in config.eval.estimators.items():
    for arg in PREPARED:
      if arg in args:
        raise ConfigError(
            f'config.eval.estimators.{name}.{arg} is computed once per '
            'evaluation by rbm.prepare_estimator; do not set it.')
    for arg in ('num_betas', 'num_chains'):
      if arg in args and args[arg] < 2:
        raise ConfigError(f'config.eval.estimators.{name}.{arg}='
                          f'{args[arg]} must be >= 2.')


def _initial_chains(key, net: Net, base_b: jax.Array,
                    num: int | None = None) -> jax.Array:
  """[num (default net.num_chains), D] draws of the base-rate model
  (Bernoulli) or N(0, I) (Gaussian)."""
  shape = (net.num_chains if num is None else num, net.num_dims)
  if net.visible == 'bernoulli':
    return jax.random.bernoulli(key, jax.nn.sigmoid(base_b),
                                shape).astype(jnp.float32)
  return jax.random.normal(key, shape)


def init(key: jax.Array, batch, *, net: Net) -> dict[str, Any]:
  """{'params': {w, b, c}, 'state': {chains, base_rate, mean, std}}.

  Chains start from Bernoulli(1/2) (Gaussian: N(0, I)); the data
  statistics are neutral (zero base rates, mean 0, std 1) until
  `data_init` sets them from the first training batch.
  """
  param_key, chain_key = jax.random.split(key)
  params = net.init(param_key, _flat(batch))['params']
  d = net.num_dims
  state = {'chains': _initial_chains(chain_key, net, jnp.zeros((d,))),
           'base_rate': jnp.zeros((d,)), 'mean': jnp.zeros((d,)),
           'std': jnp.ones((d,))}
  return {'params': params, STATE: state}


def data_init(variables, batch, key, *, net: Net) -> dict[str, Any]:
  """Data statistics from the first (preprocessed) training batch.

  Bernoulli: the base rates b_A = logit((n_1 + 1) / (n + 2)) per pixel
  (add-one smoothed marginals), kept for AIS and used as the initial
  visible biases (Hinton's practical guide); chains start from them.
  Gaussian: per-pixel mean and std (floored at ``net.min_std``) for the
  standardization; the base rates stay 0 (the standardized mean).
  """
  x = _flat(batch)
  mask = batch['mask'].astype(jnp.float32)[:, None]
  n = mask.sum()
  state = dict(variables[STATE])
  params = dict(variables['params'])
  if net.visible == 'bernoulli':
    rate = ((x * mask).sum(0) + 1.0) / (n + 2.0)
    state['base_rate'] = jnp.log(rate) - jnp.log1p(-rate)
    params['b'] = state['base_rate']
  else:
    mean = (x * mask).sum(0) / n
    var = (((x - mean) ** 2) * mask).sum(0) / n
    state['mean'] = mean
    state['std'] = jnp.maximum(jnp.sqrt(var), net.min_std)
  state['chains'] = _initial_chains(key, net, state['base_rate'])
  return {**variables, 'params': params, STATE: state}


def _metrics(variables, batch, key, net: Net):
  """Per-example free energy, CD-k free-energy gap and reconstruction."""
  p = variables['params']
  v = visible_units(variables, batch, net)
  f = free_energy(p, v, net.visible)
  v_k, _ = gibbs_chain(jax.lax.stop_gradient(p), v, key, net.cd_steps,
                       net.visible)
  gap = f - free_energy(p, jax.lax.stop_gradient(v_k), net.visible)
  mean = visible_mean(p, hidden_probs(p, v), net.visible)
  if net.visible == 'bernoulli':
    eps = 1e-6
    recon = -(v * jnp.log(mean + eps) + (1 - v) * jnp.log1p(eps - mean))
  else:
    recon = 0.5 * (v - mean) ** 2
  return {'free_energy': f, 'fe_gap': gap, 'recon_error': recon.sum(-1)}


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """Monitoring: the CD-k free-energy gap F(v) - F(v_k) from the data.

  Returns (its mean over unmasked rows, {'free_energy', 'fe_gap',
  'recon_error'}: [B]); 'recon_error' is the cross-entropy (Bernoulli) or
  half squared error (Gaussian) of the mean-field reconstruction
  E[v | E[h | v]]. `params` is the variables dict.
  """
  del train
  metrics = _metrics(params, batch, key, net)
  return steps.masked_mean(metrics['fe_gap'], batch.get('mask')), metrics


def make_optimizer(config) -> optax.GradientTransformation:
  """``config.optimizer`` on 'params' (not the chains)."""
  return steps.params_optimizer(steps.make_optimizer(config.optimizer,
                                                     config.train.num_steps))


def negative_samples(variables, v_data: jax.Array, key: jax.Array,
                     net: Net) -> jax.Array:
  """The model term's samples: k sweeps from the data (CD) or from the
  persistent chains (PCD), with the parameters held fixed."""
  p = jax.lax.stop_gradient(variables['params'])
  start = v_data if net.train_mode == 'cd' else variables[STATE]['chains']
  v_neg, _ = gibbs_chain(p, start, key, net.cd_steps, net.visible)
  return jax.lax.stop_gradient(v_neg)


def cd_objective(variables, batch, key, net: Net):
  """(free-energy gap, ({'free_energy': [B]}, negative samples)).

  Its gradient in 'params' is E_data[dF] - E_neg[dF], the CD-k (PCD-k)
  estimate of the negative log-likelihood's gradient.
  """
  p = variables['params']
  mask = batch.get('mask')
  v = visible_units(variables, batch, net)
  v_neg = negative_samples(variables, v, key, net)
  f_data = free_energy(p, v, net.visible)
  f_neg = free_energy(p, v_neg, net.visible)
  neg = (steps.masked_mean(f_neg, mask) if net.train_mode == 'cd'
         else f_neg.mean())
  return steps.masked_mean(f_data, mask) - neg, ({'free_energy': f_data},
                                                 v_neg)


def make_train_step(*, net: Net, tx, preprocess, config) -> Callable:
  """CD-k or PCD-k on 'params'; PCD then stores the advanced chains."""

  def objective(variables, batch, key):
    return cd_objective(variables, batch, key, net)

  def update_state(variables, v_neg, batch, key):
    del batch, key
    if net.train_mode == 'pcd':
      variables = {**variables,
                   STATE: {**variables[STATE], 'chains': v_neg}}
    return variables, {}

  return steps.make_variables_step(objective, tx, preprocess,
                                   ema_decay=config.train.ema_decay,
                                   update_state=update_state)


def prepare_estimator(params, key, *, net: Net, num_betas: int = 1000,
                      num_chains: int = 100,
                      base: str = 'data') -> dict[str, jax.Array]:
  """{'log_z', 'log_z_stderr'}: one AIS run, shared by every batch."""
  log_z, stderr = ais_log_partition(
      params['params'], key, base_b=base_visible_biases(params, base),
      visible=net.visible, num_betas=num_betas, num_chains=num_chains)
  return {'log_z': log_z, 'log_z_stderr': stderr}


def log_likelihood(params, batch, key, *, net: Net, num_betas: int = 1000,
                   num_chains: int = 100, base: str = 'data',
                   log_z: jax.Array | None = None,
                   log_z_stderr: jax.Array | None = None) -> jax.Array:
  """-F(v) - log Z_hat [B] nats: an AIS estimate of log p(x) (see above).

  ``log_z`` (and ``log_z_stderr``, reported only) come from
  `prepare_estimator` in an evaluation; without them AIS runs here with
  `key`. Gaussian visibles add the standardization's log-Jacobian, giving
  log p(y) of the dequantized pixels y.
  """
  del log_z_stderr
  if log_z is None:
    log_z = prepare_estimator(params, key, net=net, num_betas=num_betas,
                              num_chains=num_chains, base=base)['log_z']
  v = visible_units(params, batch, net)
  return (-free_energy(params['params'], v, net.visible) - log_z
          + _log_jacobian(params, net))


def sample(params, key, num: int, *, net: Net) -> jax.Array:
  """uint8 [num, H, W, C]: E[v | h] after ``net.sample_sweeps`` sweeps.

  Bernoulli: the final sweep's probabilities sigmoid(b + W h) times 255
  (grey levels, not a binary draw); chains start at the base-rate model.
  Gaussian: the final means b + W h mapped back to pixels, clipped to
  [0, 1); chains start at N(0, I).
  """
  init_key, run_key = jax.random.split(key)
  p = params['params']
  v0 = _initial_chains(init_key, net, params[STATE]['base_rate'], num)
  _, mean = gibbs_chain(p, v0, run_key, net.sample_sweeps, net.visible)
  if net.visible == 'bernoulli':
    images = jnp.round(mean * 255)
  else:
    y = mean * params[STATE]['std'] + params[STATE]['mean']
    images = jnp.floor(jnp.clip(y, 0.0, 1.0 - 1e-6) * 256)
  return images.astype(jnp.uint8).reshape((num,) + tuple(net.image_shape))


# ------------------------------------------------------ chain figures
def _chain_pixels(variables, mean: jax.Array, net: Net) -> jax.Array:
  """E[v | h] [N, D] as uint8 pixels [N, D] (Gaussian visibles mapped back
  from the standardised space)."""
  if net.visible == 'bernoulli':
    return jnp.round(jnp.clip(mean, 0.0, 1.0) * 255).astype(jnp.uint8)
  s = variables[STATE]
  y = mean * s['std'] + s['mean']
  return jnp.floor(jnp.clip(y, 0.0, 1.0 - 1e-6) * 256).astype(jnp.uint8)


def _chain_trace(variables, v, keys, every: int, net: Net) -> list[jax.Array]:
  p = variables['params']
  kept = [_chain_pixels(variables, v, net)]
  for key in keys:
    v, mean = gibbs_chain(p, v, key, every, net.visible)
    kept.append(_chain_pixels(variables, mean, net))
  return kept


def chain_figure(variables, batch, key: jax.Array, *, net: Net,
                 num_steps: int, every: int):
  """Block-Gibbs chains for a figure (`experiments.chains`): (rows from
  noise, rows from the images of `batch`), each a list of uint8 [N, D]
  states, the start first, then the mean of p(v | h) of the last sweep of
  every block of `every` sweeps.

  Noise starts are Bernoulli(1/2) pixels, or N(0, I) in the standardised
  space of Gaussian visibles, from ``fold_in(key, 0)``; the sweeps of block
  j of the noise chains from ``fold_in(key, 2 + 2 j)``, of the data chains
  from ``fold_in(key, 3 + 2 j)``.
  """
  data = visible_units(variables, batch, net)
  noise_key = jax.random.fold_in(key, 0)
  if net.visible == 'bernoulli':
    v0 = jax.random.bernoulli(noise_key, 0.5, data.shape).astype(jnp.float32)
  else:
    v0 = jax.random.normal(noise_key, data.shape)
  blocks = range(num_steps // every)
  noise_keys = [jax.random.fold_in(key, 2 + 2 * j) for j in blocks]
  data_keys = [jax.random.fold_in(key, 3 + 2 * j) for j in blocks]
  return (_chain_trace(variables, v0, noise_keys, every, net),
          _chain_trace(variables, data, data_keys, every, net))

