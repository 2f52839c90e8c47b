"""Deep Boltzmann machines with two hidden layers.

Salakhutdinov & Hinton, "Deep Boltzmann Machines", AISTATS 2009: mean-field
inference for the data term, persistent Markov chains (stochastic
approximation) for the model term, and AIS for log Z over (v, h2) with h1
summed out analytically.

Binary visibles v [D] (binarized images) and hidden layers h1 [H1],
h2 [H2], weights W1 [D, H1], W2 [H1, H2], biases b [D], c1 [H1], c2 [H2]:

    E(v, h1, h2) = -v.b - h1.c1 - h2.c2 - v W1 h1 - h1 W2 h2
    p(h1_j = 1 | v, h2) = sigmoid(c1_j + v W1_j + W2_j h2)
    p(v_i = 1 | h1) = sigmoid(b_i + W1_i h1)
    p(h2_k = 1 | h1) = sigmoid(c2_k + h1 W2_k)

Inference: the fully factorised q(h1, h2 | v) = prod Bernoulli(mu1)
Bernoulli(mu2) at the fixed point of

    mu1 = sigmoid(c1 + v W1 + W2 mu2),  mu2 = sigmoid(c2 + mu1 W2),

reached by ``mean_field_steps`` iterations from the bottom-up pass mu1 =
sigmoid(c1 + v W1), mu2 = sigmoid(c2 + mu1 W2) (`mean_field`). It gives the
variational lower bound

    log p(v) >= -E(v, mu1, mu2) + H(mu1) + H(mu2) - log Z,

with H the Bernoulli entropies. Training ascends it: the step
differentiates mean_data E(v, mu) - mean_chains E(v_s, h1_s, h2_s) with
mu and the chain samples held fixed (data statistics minus model
statistics), the chains advanced by ``cd_steps`` Gibbs sweeps (h1 given
(v, h2), then v and h2 given h1) per step and kept in the non-trainable
collection 'state' of the variables dict, so checkpoints carry them.

**Greedy layer-wise pre-training** (paper, section 3.1; Salakhutdinov &
Larochelle, AISTATS 2010), ``pretrain_steps = (P1, P2)``, (0, 0) by
default (no pre-training: the weights start small and random and both
layers learn jointly from the first step). The train step reads its
phase from the step counter of the train state: steps [0, P1) train
layer 1, steps [P1, P1 + P2) layer 2, later steps the whole DBM as above.

Phase 1, the bottom RBM over (v, h1) with its input doubled bottom-up
(two tied copies of v, as if h2 were there and agreed with v):

    p(h1_j = 1 | v) = sigmoid(c1_j + 2 v W1_j),  p(v_i = 1 | h1) =
    sigmoid(b_i + W1_i h1),

trained by CD-k (k = ``cd_steps``) from the data: with h1^0 = p(h1 | v^0)
and (v^k, h1^k) after k sweeps (h1 ~ p(h1 | v), then v ~ p(v | h1)),
h1^k = p(h1 | v^k), the step descends

    mean_data E1(v^0, h1^0) - mean E1(v^k, h1^k),
    E1(v, h1) = -v.b - h1.c1 - v W1 h1 = E(v, h1, 0),

whose gradient is -(<v h1>_0 - <v h1>_k) for W1 (Salakhutdinov's CD
update of the modified RBM), -(<v>_0 - <v>_k) for b, -(<h1>_0 - <h1>_k)
for c1; only (W1, b, c1) move.

Phase 2, the top RBM over (h1, h2) with its input doubled top-down (two
tied copies of h2, standing in for v), on the bottom RBM's posterior
probabilities mu1 = sigmoid(c1 + 2 v W1) as data:

    p(h2_k = 1 | h1) = sigmoid(c2_k + h1 W2_k),  p(h1_j = 1 | h2) =
    sigmoid(c1_j + 2 W2_j h2),

by CD-k from mu1 on E2(h1, h2) = -h1.c1 - h2.c2 - h1 W2 h2 = E(0, h1,
h2); only (W2, c2) move: c1 stays the bottom RBM's, the visible bias of
the top RBM.

Composition. Each RBM's h1 sees twice one half of the DBM's input to h1
(2 v W1 from below, 2 W2 h2 from above), so averaging the two models'
pre-activations of h1 gives exactly the DBM's conditional,

    ((c1 + 2 v W1) + (c1 + 2 W2 h2)) / 2 = c1 + v W1 + W2 h2,

which is the paper's halving of the total input into h1. With the
doubling written into the pre-training conditionals (not into the
weights) and c1 shared by both RBMs, the halving is folded into the
parameterisation: the joint phase starts from (W1, W2, b, c1, c2) as they
are, and nothing changes at a phase boundary. (Deeper DBMs would also
halve the middle RBMs' weights, W -> W / 2 where an RBM was trained with
2W in both directions; with two hidden layers there is no middle RBM.)

`make_optimizer` gives the pre-training phases SGD with momentum 0.9 at
the constant rate ``pretrain_learning_rate`` and starts the configured
``config.optimizer`` (its schedule over the remaining num_steps - P1 -
P2 steps) afresh at the joint phase, so the joint phase of a pre-trained
run sees the optimizer a run without pre-training sees from step 0. The
persistent chains wait through the pre-training phases; the parameters a
phase does not train are kept bitwise (the momentum of an earlier phase
does not move them). A run shorter than P1 + P2 steps ends in
pre-training, and is evaluated as the DBM its parameters define.

**The likelihood is an estimate** (`LIKELIHOOD` = 'estimate'):
``log_likelihood`` is the variational bound with log Z replaced by its AIS
estimate. AIS runs on the marginal over (v, h2),

    f_beta(v, h2) = exp((1 - beta) v.b_A + beta (v.b + h2.c2))
                    prod_j (1 + exp(beta (c1_j + v W1_j + W2_j h2))),

from the base-rate model (beta = 0: v ~ Bernoulli(sigmoid(b_A)), h2
uniform) to the DBM (beta = 1), with one Gibbs sweep over (v, h1, h2) at
each of ``num_betas`` linearly spaced betas. The weights estimate Z
without bias, so log Z tends to come out low: the reported number is a
lower bound on log p(v) only up to that error, and tends to over-estimate
it when the chains mix poorly. log Z and its standard error are computed
once per evaluation (`prepare_estimator`). `log_partition_exact` and
`log_prob_exact` enumerate 2^H1 states for tiny models.

`sample` runs ``sample_sweeps`` Gibbs sweeps from the base-rate model and
returns the final p(v | h1) probabilities scaled to 0..255 (not a binary
draw).
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.models import pixels
from jaxgen.nn import initializers as inits

# Why config.train.compute_dtype must stay 'float32' (the trainer refuses
# 'bfloat16' with this reason).
FLOAT32_ONLY = (
    "the step's matmuls are the model's own conditionals in the mean-field "
    'fixed point and the Gibbs sweeps, not activations of a network: in '
    'bfloat16 (8 significant bits) they would describe a rounded model, not '
    'the one whose energy the gradient and the AIS evaluation use')
LIKELIHOOD = 'estimate'  # AIS estimate of the variational lower bound
BASES = ('data', 'zeros')
ESTIMATOR_CHOICES = {'base': BASES}
STATE = 'state'  # non-trainable: persistent chains and base rates
PREPARED = ('log_z', 'log_z_stderr')


class Net(nn.Module):
  """The DBM's parameters; fields are ``config.model``.

  Attributes:
    image_shape: (H, W, C); D = H * W * C binary visible units.
    hidden_dims: (H1, H2), the sizes of the two hidden layers.
    init_scale: std of the normal initialisation of W1 and W2.
    mean_field_steps: fixed-point iterations of the mean-field posterior.
    cd_steps: Gibbs sweeps of the persistent chains per training step.
    num_chains: persistent chains.
    sample_sweeps: Gibbs sweeps of `sample`.
    pretrain_steps: (P1, P2), the steps of greedy pre-training of layer 1,
      then layer 2, before the joint phase; (0, 0) trains jointly from the
      start.
    pretrain_learning_rate: the SGD rate of the pre-training phases.
  """
  image_shape: Sequence[int] = (8, 8, 1)
  hidden_dims: Sequence[int] = (100, 100)
  init_scale: float = 0.01
  mean_field_steps: int = 10
  cd_steps: int = 1
  num_chains: int = 100
  sample_sweeps: int = 1000
  pretrain_steps: Sequence[int] = (0, 0)
  pretrain_learning_rate: float = 0.05

  @property
  def num_dims(self) -> int:
    return math.prod(self.image_shape)

  def setup(self):
    d, (h1, h2) = self.num_dims, self.hidden_dims
    init = inits.normal(self.init_scale)
    self.w1 = self.param('w1', init, (d, h1))
    self.w2 = self.param('w2', init, (h1, h2))
    self.b = self.param('b', nn.initializers.zeros, (d,))
    self.c1 = self.param('c1', nn.initializers.zeros, (h1,))
    self.c2 = self.param('c2', nn.initializers.zeros, (h2,))

  def __call__(self, v: jax.Array) -> jax.Array:
    """The layer-1 pre-activations c1 + v W1 [B, H1] (for `init`)."""
    return v @ self.w1 + self.c1


# ---------------------------------------------------------------- the math
def energy(p, v, h1, h2) -> jax.Array:
  """E(v, h1, h2) [B]; also the expected energy at mean-field values."""
  return -(v @ p['b'] + h1 @ p['c1'] + h2 @ p['c2']
           + jnp.sum((v @ p['w1']) * h1, -1)
           + jnp.sum((h1 @ p['w2']) * h2, -1))


def mean_field(p, v: jax.Array, num_steps: int):
  """(mu1 [B, H1], mu2 [B, H2]) after `num_steps` fixed-point iterations."""
  bottom_up = v @ p['w1'] + p['c1']
  mu1 = jax.nn.sigmoid(bottom_up)
  mu2 = jax.nn.sigmoid(mu1 @ p['w2'] + p['c2'])

  def body(_, mus):
    mu1 = jax.nn.sigmoid(bottom_up + mus[1] @ p['w2'].T)
    return mu1, jax.nn.sigmoid(mu1 @ p['w2'] + p['c2'])

  return jax.lax.fori_loop(0, num_steps, body, (mu1, mu2))


def _entropy(mu: jax.Array) -> jax.Array:
  """Sum of Bernoulli entropies [B]."""
  eps = 1e-7
  mu = jnp.clip(mu, eps, 1 - eps)
  return -jnp.sum(mu * jnp.log(mu) + (1 - mu) * jnp.log1p(-mu), -1)


def unnormalized_bound(p, v: jax.Array, num_steps: int) -> jax.Array:
  """-E(v, mu1, mu2) + H(mu1) + H(mu2) [B]: the bound plus log Z."""
  mu1, mu2 = mean_field(p, v, num_steps)
  return -energy(p, v, mu1, mu2) + _entropy(mu1) + _entropy(mu2)


def gibbs_sweep(p, state, key: jax.Array):
  """One sweep (v, h1, h2) -> h1 | v, h2 -> (v, h2) | h1.

  One block of uniforms [B, H1 + D + H2] per sweep (u < p is a Bernoulli
  draw), so a compiled chain holds one random-bit generator per sweep.
  Returns the new (v, h1, h2) and p(v = 1 | h1).
  """
  v, _, h2 = state
  h1_dim, d = p['w1'].shape[1], p['w1'].shape[0]
  u = jax.random.uniform(key, (v.shape[0], h1_dim + d + h2.shape[-1]))
  dtype = v.dtype
  h1 = (u[:, :h1_dim] < jax.nn.sigmoid(
      v @ p['w1'] + h2 @ p['w2'].T + p['c1'])).astype(dtype)
  pv = jax.nn.sigmoid(h1 @ p['w1'].T + p['b'])
  v = (u[:, h1_dim:h1_dim + d] < pv).astype(dtype)
  h2 = (u[:, h1_dim + d:] < jax.nn.sigmoid(h1 @ p['w2'] + p['c2'])
        ).astype(dtype)
  return (v, h1, h2), pv


def gibbs_chain(p, state, key: jax.Array, num_sweeps: int):
  """`num_sweeps` sweeps; sweep i uses ``jax.random.split(key,
  num_sweeps)[i]``. Returns (state, p(v = 1 | h1) of the last sweep)."""

  def body(carry, sweep_key):
    return gibbs_sweep(p, carry[0], sweep_key), None

  out, _ = jax.lax.scan(body, (state, jnp.zeros_like(state[0])),
                        jax.random.split(key, num_sweeps))
  return out


# ------------------------------------------------- greedy pre-training
PHASES = ('layer1', 'layer2', 'joint')
# The parameters each phase trains; the others keep their values.
PHASE_PARAMS = {'layer1': ('w1', 'b', 'c1'), 'layer2': ('w2', 'c2'),
                'joint': ('w1', 'w2', 'b', 'c1', 'c2')}


def phase_index(step: jax.Array, pretrain_steps: Sequence[int]) -> jax.Array:
  """int32 index into `PHASES` of train step `step` (0-based)."""
  p1, p2 = pretrain_steps
  return ((step >= p1).astype(jnp.int32)
          + (step >= p1 + p2).astype(jnp.int32))


def layer1_hidden_probs(p, v: jax.Array) -> jax.Array:
  """p(h1 = 1 | v) of the bottom RBM, input doubled: sigmoid(c1 + 2 v W1)."""
  return jax.nn.sigmoid(2.0 * (v @ p['w1']) + p['c1'])


def layer2_visible_probs(p, h2: jax.Array) -> jax.Array:
  """p(h1 = 1 | h2) of the top RBM, input doubled: sigmoid(c1 + 2 W2 h2)."""
  return jax.nn.sigmoid(2.0 * (h2 @ p['w2'].T) + p['c1'])


def layer2_hidden_probs(p, h1: jax.Array) -> jax.Array:
  """p(h2 = 1 | h1) = sigmoid(c2 + h1 W2), the same in the top RBM."""
  return jax.nn.sigmoid(h1 @ p['w2'] + p['c2'])


def layer1_sweep(p, v: jax.Array, u: jax.Array) -> jax.Array:
  """One sweep of the bottom RBM given uniforms u [B, H1 + D]: h1 ~
  p(h1 | v) (doubled input), then v ~ p(v | h1). Returns the new v."""
  h1_dim = p['w1'].shape[1]
  h1 = (u[:, :h1_dim] < layer1_hidden_probs(p, v)).astype(v.dtype)
  return (u[:, h1_dim:] < jax.nn.sigmoid(h1 @ p['w1'].T + p['b'])
          ).astype(v.dtype)


def layer2_sweep(p, h1: jax.Array, u: jax.Array) -> jax.Array:
  """One sweep of the top RBM given uniforms u [B, H2 + H1]: h2 ~
  p(h2 | h1), then h1 ~ p(h1 | h2) (doubled input). Returns the new h1."""
  h2_dim = p['w2'].shape[1]
  h2 = (u[:, :h2_dim] < layer2_hidden_probs(p, h1)).astype(h1.dtype)
  return (u[:, h2_dim:] < layer2_visible_probs(p, h2)).astype(h1.dtype)


def _cd_chain(sweep, p, x: jax.Array, key: jax.Array, num_sweeps: int,
              width: int) -> jax.Array:
  """`num_sweeps` sweeps; sweep i draws its uniforms [B, width] from
  ``jax.random.split(key, num_sweeps)[i]``."""

  def body(x, sweep_key):
    return sweep(p, x, jax.random.uniform(sweep_key, (x.shape[0], width))
                 ), None

  x, _ = jax.lax.scan(body, x, jax.random.split(key, num_sweeps))
  return x


def layer1_negatives(p, v: jax.Array, key: jax.Array,
                     num_sweeps: int) -> jax.Array:
  """v^k: `num_sweeps` bottom-RBM sweeps from the data v (CD-k)."""
  d, h1_dim = p['w1'].shape
  return _cd_chain(layer1_sweep, p, v, key, num_sweeps, h1_dim + d)


def layer2_negatives(p, h1: jax.Array, key: jax.Array,
                     num_sweeps: int) -> jax.Array:
  """h1^k: `num_sweeps` top-RBM sweeps from the data h1 (CD-k)."""
  h1_dim, h2_dim = p['w2'].shape
  return _cd_chain(layer2_sweep, p, h1, key, num_sweeps, h2_dim + h1_dim)


def layer1_objective(p, v: jax.Array, v_neg: jax.Array,
                     mask: jax.Array | None = None):
  """(mean_data E1(v, h1^0) - mean E1(v^k, h1^k), E1(v, h1^0) [B]) with
  h1 = p(h1 | .) of the bottom RBM held fixed and E1(v, h1) = E(v, h1,
  0): its gradient is the bottom RBM's CD-k update (module docstring)."""
  frozen = jax.lax.stop_gradient(p)
  h_data = jax.lax.stop_gradient(layer1_hidden_probs(frozen, v))
  h_neg = jax.lax.stop_gradient(layer1_hidden_probs(frozen, v_neg))
  zeros = jnp.zeros((v.shape[0], p['w2'].shape[1]), v.dtype)
  e_data = energy(p, v, h_data, zeros)
  loss = (steps.masked_mean(e_data, mask)
          - steps.masked_mean(energy(p, v_neg, h_neg, zeros), mask))
  return loss, e_data


def layer2_objective(p, h1: jax.Array, h1_neg: jax.Array,
                     mask: jax.Array | None = None):
  """(mean_data E2(h1, h2^0) - mean E2(h1^k, h2^k), E2(h1, h2^0) [B])
  with h2 = p(h2 | .) held fixed and E2(h1, h2) = E(0, h1, h2): the top
  RBM's CD-k update (module docstring)."""
  frozen = jax.lax.stop_gradient(p)
  h2_data = jax.lax.stop_gradient(layer2_hidden_probs(frozen, h1))
  h2_neg = jax.lax.stop_gradient(layer2_hidden_probs(frozen, h1_neg))
  zeros = jnp.zeros((h1.shape[0], p['w1'].shape[0]), h1.dtype)
  e_data = energy(p, zeros, h1, h2_data)
  loss = (steps.masked_mean(e_data, mask)
          - steps.masked_mean(energy(p, zeros, h1_neg, h2_neg), mask))
  return loss, e_data


def tempered(p, beta, base_b: jax.Array):
  """The parameters of f_beta: every term times beta, visible biases
  (1 - beta) b_A + beta b."""
  return {'w1': beta * p['w1'], 'w2': beta * p['w2'], 'c1': beta * p['c1'],
          'c2': beta * p['c2'], 'b': (1 - beta) * base_b + beta * p['b']}


def log_marginal(p, v: jax.Array, h2: jax.Array) -> jax.Array:
  """log sum_h1 exp(-E(v, h1, h2)) [B]: h1 summed out analytically."""
  return (v @ p['b'] + h2 @ p['c2']
          + jax.nn.softplus(v @ p['w1'] + h2 @ p['w2'].T + p['c1']).sum(-1))


def ais_log_partition(p, key: jax.Array, *, base_b: jax.Array,
                      num_betas: int, num_chains: int):
  """AIS over (v, h2): (log Z estimate, its delta-method standard error)."""
  d, h1_dim = p['w1'].shape
  h2_dim = p['w2'].shape[1]
  kv, kh, run_key = jax.random.split(key, 3)
  v = jax.random.bernoulli(kv, jax.nn.sigmoid(base_b),
                           (num_chains, d)).astype(jnp.float32)
  h2 = jax.random.bernoulli(kh, 0.5, (num_chains, h2_dim)).astype(jnp.float32)
  betas = jnp.linspace(0.0, 1.0, num_betas)

  def body(carry, inputs):
    v, h2, log_w = carry
    lo, hi, sweep_key = inputs
    p_hi = tempered(p, hi, base_b)
    log_w = log_w + log_marginal(p_hi, v, h2) - log_marginal(
        tempered(p, lo, base_b), v, h2)
    (v, _, h2), _ = gibbs_sweep(p_hi, (v, None, h2), sweep_key)
    return (v, h2, log_w), None

  (_, _, log_w), _ = jax.lax.scan(
      body, (v, h2, jnp.zeros((num_chains,))),
      (betas[:-1], betas[1:], jax.random.split(run_key, num_betas - 1)))
  log_z0 = (jax.nn.softplus(base_b).sum()
            + (h1_dim + h2_dim) * math.log(2.0))
  log_z = log_z0 + jax.nn.logsumexp(log_w) - math.log(num_chains)
  w = jnp.exp(log_w - log_w.max())
  return log_z, jnp.std(w, ddof=1) / (math.sqrt(num_chains) * w.mean())


def _states(n: int) -> jax.Array:
  return ((jnp.arange(2 ** n)[:, None] >> jnp.arange(n)) & 1).astype(
      jnp.float32)


def log_partition_exact(p) -> jax.Array:
  """log Z by enumerating the 2^H1 states of h1 (v and h2 summed out)."""
  h1 = _states(p['w1'].shape[1])
  return jax.nn.logsumexp(
      h1 @ p['c1'] + jax.nn.softplus(h1 @ p['w1'].T + p['b']).sum(-1)
      + jax.nn.softplus(h1 @ p['w2'] + p['c2']).sum(-1))


def log_prob_exact(p, v: jax.Array) -> jax.Array:
  """log p(v) [B] by enumerating h1 (h2 summed out); tiny models only."""
  h1 = _states(p['w1'].shape[1])  # [S, H1]
  terms = ((v @ p['b'])[:, None] + (v @ p['w1'] + p['c1']) @ h1.T
           + jax.nn.softplus(h1 @ p['w2'] + p['c2']).sum(-1)[None])
  return jax.nn.logsumexp(terms, axis=-1) - log_partition_exact(p)


# ----------------------------------------------------------- the contract
def _flat(batch) -> jax.Array:
  x = batch['image']
  return x.reshape(x.shape[0], -1).astype(jnp.float32)


def validate(config, dataset) -> None:
  """Checks ``config.model``, the data and the AIS estimators."""
  m = config.model
  if len(m.hidden_dims) != 2 or min(m.hidden_dims) < 1:
    raise ConfigError(f'config.model.hidden_dims={tuple(m.hidden_dims)} '
                      'must be two layer sizes >= 1.')
  for field in ('mean_field_steps', 'cd_steps', 'num_chains',
                'sample_sweeps'):
    if m[field] < 1:
      raise ConfigError(f'config.model.{field}={m[field]} must be >= 1.')
  if m.init_scale <= 0:
    raise ConfigError(f'config.model.init_scale={m.init_scale} must be > 0.')
  pre = tuple(m.get('pretrain_steps', (0, 0)))
  if len(pre) != 2 or any(not isinstance(n, int) or n < 0 for n in pre):
    raise ConfigError(f'config.model.pretrain_steps={pre} must be two step '
                      'counts >= 0 (layer 1, layer 2).')
  if not m.get('pretrain_learning_rate', 0.05) > 0:
    raise ConfigError('config.model.pretrain_learning_rate='
                      f'{m.pretrain_learning_rate} must be > 0.')
  pixels.check_data_config('bernoulli', config.data, dataset.pixel_levels)
  for name, args in config.eval.estimators.items():
    for arg in PREPARED:
      if arg in args:
        raise ConfigError(
            f'config.eval.estimators.{name}.{arg} is computed once per '
            'evaluation by dbm.prepare_estimator; do not set it.')
    for arg in ('num_betas', 'num_chains'):
      if arg in args and args[arg] < 2:
        raise ConfigError(f'config.eval.estimators.{name}.{arg}='
                          f'{args[arg]} must be >= 2.')


def _initial_chains(key, net: Net, base_b: jax.Array, num: int):
  kv, k1, k2 = jax.random.split(key, 3)
  h1_dim, h2_dim = net.hidden_dims
  v = jax.random.bernoulli(kv, jax.nn.sigmoid(base_b), (num, net.num_dims))
  h1 = jax.random.bernoulli(k1, 0.5, (num, h1_dim))
  h2 = jax.random.bernoulli(k2, 0.5, (num, h2_dim))
  return tuple(x.astype(jnp.float32) for x in (v, h1, h2))


def init(key: jax.Array, batch, *, net: Net) -> dict[str, Any]:
  """{'params': {w1, w2, b, c1, c2}, 'state': {v, h1, h2, base_rate}}."""
  param_key, chain_key = jax.random.split(key)
  params = net.init(param_key, _flat(batch))['params']
  base = jnp.zeros((net.num_dims,))
  v, h1, h2 = _initial_chains(chain_key, net, base, net.num_chains)
  return {'params': params,
          STATE: {'v': v, 'h1': h1, 'h2': h2, 'base_rate': base}}


def data_init(variables, batch, key, *, net: Net) -> dict[str, Any]:
  """Base rates b_A = logit((n_1 + 1) / (n + 2)) of the first training
  batch: kept for AIS, the initial visible biases, the chains' start."""
  x = _flat(batch)
  mask = batch['mask'].astype(jnp.float32)[:, None]
  rate = ((x * mask).sum(0) + 1.0) / (mask.sum() + 2.0)
  base = jnp.log(rate) - jnp.log1p(-rate)
  v, h1, h2 = _initial_chains(key, net, base, net.num_chains)
  return {**variables, 'params': {**variables['params'], 'b': base},
          STATE: {'v': v, 'h1': h1, 'h2': h2, 'base_rate': base}}


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """Monitoring: minus the unnormalised bound, -E(v, mu) - H(mu) [B]
  ('neg_bound_plus_log_z'; adding log Z gives the negative bound), and the
  mean-field reconstruction cross-entropy ('recon_error')."""
  del key, train
  p = params['params']
  v = _flat(batch)
  mu1, mu2 = mean_field(p, v, net.mean_field_steps)
  neg = energy(p, v, mu1, mu2) - _entropy(mu1) - _entropy(mu2)
  pv = jnp.clip(jax.nn.sigmoid(mu1 @ p['w1'].T + p['b']), 1e-6, 1 - 1e-6)
  recon = -jnp.sum(v * jnp.log(pv) + (1 - v) * jnp.log1p(-pv), -1)
  metrics = {'neg_bound_plus_log_z': neg, 'recon_error': recon}
  return steps.masked_mean(neg, batch.get('mask')), metrics


class PhasedState(NamedTuple):
  """The state of `phased_optimizer`: its update count, then each
  optimizer's own state."""
  count: jax.Array
  pretrain: Any
  joint: Any


def phased_optimizer(pretrain: optax.GradientTransformation,
                     joint: optax.GradientTransformation,
                     boundary: int) -> optax.GradientTransformation:
  """`pretrain` for the first `boundary` updates, then `joint` from its
  own initial state (its step count starts at 0 at the boundary)."""

  def init(params):
    return PhasedState(jnp.zeros([], jnp.int32), pretrain.init(params),
                       joint.init(params))

  def update(grads, state, params=None):

    def pre_branch(_):
      updates, s = pretrain.update(grads, state.pretrain, params)
      return updates, s, state.joint

    def joint_branch(_):
      updates, s = joint.update(grads, state.joint, params)
      return updates, state.pretrain, s

    updates, pre_state, joint_state = jax.lax.cond(
        state.count < boundary, pre_branch, joint_branch, None)
    return updates, PhasedState(state.count + 1, pre_state, joint_state)

  return optax.GradientTransformation(init, update)


def make_optimizer(config) -> optax.GradientTransformation:
  """``config.optimizer`` on 'params' (not the chains); with pre-training,
  SGD (momentum 0.9, ``model.pretrain_learning_rate``) for the first P1 +
  P2 steps, then ``config.optimizer`` scheduled over the rest."""
  num_pre = sum(config.model.get('pretrain_steps', (0, 0)))
  if not num_pre:
    return steps.params_optimizer(steps.make_optimizer(
        config.optimizer, config.train.num_steps))
  joint = steps.make_optimizer(config.optimizer,
                               max(config.train.num_steps - num_pre, 1))
  pretrain = optax.sgd(config.model.get('pretrain_learning_rate', 0.05),
                       momentum=0.9)
  return steps.params_optimizer(phased_optimizer(pretrain, joint, num_pre))


def sa_objective(variables, batch, key, net: Net):
  """(mean_data E(v, mu) - mean_chains E(chains), ({'energy_mf': [B]},
  advanced chains)); mu and the chains are held fixed, so the gradient is
  the data statistics minus the model statistics."""
  p = variables['params']
  frozen = jax.lax.stop_gradient(p)
  v = _flat(batch)
  mu1, mu2 = jax.lax.stop_gradient(mean_field(frozen, v,
                                              net.mean_field_steps))
  s = variables[STATE]
  chains, _ = gibbs_chain(frozen, (s['v'], s['h1'], s['h2']), key,
                          net.cd_steps)
  chains = jax.lax.stop_gradient(chains)
  e_data = energy(p, v, mu1, mu2)
  loss = steps.masked_mean(e_data, batch.get('mask')) - energy(
      p, *chains).mean()
  return loss, ({'energy_mf': e_data}, chains)


def _store_chains(variables, chains):
  v, h1, h2 = chains
  return {**variables, STATE: {**variables[STATE], 'v': v, 'h1': h1,
                               'h2': h2}}


def make_train_step(*, net: Net, tx, preprocess, config) -> Callable:
  """Mean-field data term, persistent-chain model term; stores the chains.

  With ``net.pretrain_steps`` (0, 0) this is the generic variables step
  on `sa_objective`. Otherwise the step's phase (`phase_index` of the
  state's step) picks the objective by `jax.lax.switch`: the bottom RBM's
  CD-k (`layer1_objective`), the top RBM's (`layer2_objective`, on
  p(h1 | v) of the bottom RBM) or `sa_objective`; the parameters the phase
  does not train keep their values, the chains move in the joint phase
  only, and the step logs 'phase' and the data term's energy per example
  as 'energy_data'.
  """

  def objective(variables, batch, key):
    return sa_objective(variables, batch, key, net)

  def update_state(variables, chains, batch, key):
    del batch, key
    return _store_chains(variables, chains), {}

  if not any(net.pretrain_steps):
    return steps.make_variables_step(objective, tx, preprocess,
                                     ema_decay=config.train.ema_decay,
                                     update_state=update_state)

  def chains_of(variables):
    s = variables[STATE]
    return s['v'], s['h1'], s['h2']

  def layer1(variables, batch, key):
    p, v = variables['params'], _flat(batch)
    v_neg = layer1_negatives(jax.lax.stop_gradient(p), v, key, net.cd_steps)
    loss, e_data = layer1_objective(p, v, v_neg, batch.get('mask'))
    return loss, ({'energy_data': e_data}, chains_of(variables))

  def layer2(variables, batch, key):
    p = variables['params']
    frozen = jax.lax.stop_gradient(p)
    h1 = jax.lax.stop_gradient(layer1_hidden_probs(frozen, _flat(batch)))
    h1_neg = layer2_negatives(frozen, h1, key, net.cd_steps)
    loss, e_data = layer2_objective(p, h1, h1_neg, batch.get('mask'))
    return loss, ({'energy_data': e_data}, chains_of(variables))

  def joint(variables, batch, key):
    loss, (metrics, chains) = sa_objective(variables, batch, key, net)
    return loss, ({'energy_data': metrics['energy_mf']}, chains)

  branches = (layer1, layer2, joint)
  trains = {name: jnp.array([name in PHASE_PARAMS[phase] for phase in PHASES])
            for name in PHASE_PARAMS['joint']}

  def step(state: steps.TrainState, batch, train_key):
    key = jax.random.fold_in(train_key, state.step)
    pre_key, loss_key, _ = jax.random.split(key, 3)
    batch = preprocess(batch, pre_key)
    variables = state.params
    phase = phase_index(state.step, net.pretrain_steps)
    (loss, (per_example, chains)), grads, params, opt_state = (
        steps.apply_gradients(
            lambda p: jax.lax.switch(phase, branches,
                                     {**variables, 'params': p}, batch,
                                     loss_key),
            tx, variables['params'], state.opt_state))
    old = variables['params']
    params = {name: jnp.where(trains[name][phase], params[name], old[name])
              for name in params}
    variables = _store_chains({**variables, 'params': params}, chains)
    return steps.finish_step(
        state, variables, opt_state, loss=loss, per_example=per_example,
        grads=grads, mask=batch['mask'], ema_decay=config.train.ema_decay,
        extra={'phase': phase.astype(jnp.float32)})

  return step


def prepare_estimator(params, key, *, net: Net, num_betas: int = 1000,
                      num_chains: int = 100,
                      base: str = 'data') -> dict[str, jax.Array]:
  """{'log_z', 'log_z_stderr'}: one AIS run, shared by every batch."""
  del net
  rates = params[STATE]['base_rate']
  log_z, stderr = ais_log_partition(
      params['params'], key,
      base_b=rates if base == 'data' else jnp.zeros_like(rates),
      num_betas=num_betas, num_chains=num_chains)
  return {'log_z': log_z, 'log_z_stderr': stderr}


def log_likelihood(params, batch, key, *, net: Net, num_betas: int = 1000,
                   num_chains: int = 100, base: str = 'data',
                   log_z: jax.Array | None = None,
                   log_z_stderr: jax.Array | None = None) -> jax.Array:
  """The variational bound with log Z by AIS [B] nats (see above).

  ``log_z`` comes from `prepare_estimator` in an evaluation; without it
  AIS runs here with `key`.
  """
  del log_z_stderr
  if log_z is None:
    log_z = prepare_estimator(params, key, net=net, num_betas=num_betas,
                              num_chains=num_chains, base=base)['log_z']
  return unnormalized_bound(params['params'], _flat(batch),
                            net.mean_field_steps) - log_z


def sample(params, key, num: int, *, net: Net) -> jax.Array:
  """uint8 [num, H, W, C]: p(v = 1 | h1) x 255 after ``sample_sweeps``
  Gibbs sweeps from the base-rate model."""
  init_key, run_key = jax.random.split(key)
  state = _initial_chains(init_key, net, params[STATE]['base_rate'], num)
  _, pv = gibbs_chain(params['params'], state, run_key, net.sample_sweeps)
  images = jnp.round(pv * 255).astype(jnp.uint8)
  return images.reshape((num,) + tuple(net.image_shape))


# ------------------------------------------------------ chain figures
def _chain_trace(variables, state, keys, every: int) -> list[jax.Array]:
  p = variables['params']
  kept = [state[0]]
  for key in keys:
    state, pv = gibbs_chain(p, state, key, every)
    kept.append(pv)
  return [jnp.round(x * 255).astype(jnp.uint8) for x in kept]


def chain_figure(variables, batch, key: jax.Array, *, net: Net,
                 num_steps: int, every: int):
  """Block-Gibbs chains of (v, h1, h2) for a figure (`experiments.chains`):
  (rows from noise, rows from the images of `batch`), each a list of uint8
  [N, D] states, the start's v first, then p(v = 1 | h1) after every block
  of `every` sweeps.

  Noise starts draw v, h1 and h2 from Bernoulli(1/2) (``fold_in(key, 0)``);
  data starts draw h2 from the mean-field posterior of the image
  (``fold_in(key, 1)``; h1 is drawn by the first sweep). The sweeps of
  block j of the noise chains from ``fold_in(key, 2 + 2 j)``, of the data
  chains from ``fold_in(key, 3 + 2 j)``.
  """
  flat = _flat(batch)
  n = flat.shape[0]
  h1_dim, h2_dim = net.hidden_dims
  kv, k1, k2 = jax.random.split(jax.random.fold_in(key, 0), 3)
  noise = tuple(jax.random.bernoulli(k, 0.5, (n, d)).astype(jnp.float32)
                for k, d in ((kv, flat.shape[1]), (k1, h1_dim), (k2, h2_dim)))
  _, mu2 = mean_field(variables['params'], flat, net.mean_field_steps)
  h2 = jax.random.bernoulli(jax.random.fold_in(key, 1), mu2).astype(
      jnp.float32)
  data = (flat, jnp.zeros((n, h1_dim)), h2)
  blocks = range(num_steps // every)
  noise_keys = [jax.random.fold_in(key, 2 + 2 * j) for j in blocks]
  data_keys = [jax.random.fold_in(key, 3 + 2 * j) for j in blocks]
  return (_chain_trace(variables, noise, noise_keys, every),
          _chain_trace(variables, data, data_keys, every))

