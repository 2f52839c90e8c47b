r"""Generative stochastic networks: a denoising autoencoder's Markov chain.

Bengio, Yao, Alain & Vincent, "Generalized Denoising Auto-Encoders as
Generative Models", NeurIPS 2013; Bengio, Thibodeau-Laufer, Alain &
Yosinski, "Deep Generative Stochastic Networks Trainable by Backprop",
ICML 2014.

A fixed corruption process C(x~ | x) and a learned reconstruction
distribution P_theta(x | x~) define a Markov chain on examples,

    x~_t ~ C(x~ | x_t),    x_{t+1} ~ P_theta(x | x~_t),

whose transition operator is T(x' | x) = sum_x~ C(x~ | x) P_theta(x' | x~)
(an integral for continuous x~). When P_theta(x | x~) is a consistent
estimator of the true conditional P(x | x~) of the pair (x, x~ ~ C(.|x)),
the chain's stationary distribution is a consistent estimator of the data
distribution (Bengio et al. 2013, Theorem 1): the denoising autoencoder
is a generative model that is sampled, not evaluated.

Corruptions (``net.corruption``, strength ``net.noise_level``):

- 'salt_pepper': each dimension, with probability p, is replaced by a fair
  coin flip in {0, 1}: C(x~_i | x_i) = (1 - p) [x~_i = x_i] + p / 2 (binary
  images; Bengio et al. 2013, Sec. 4.2).
- 'masking': each dimension, with probability p, is set to 0:
  C(x~_i | x_i) = (1 - p) [x~_i = x_i] + p [x~_i = 0] (binary images).
- 'gaussian': x~ = x + sigma epsilon, epsilon ~ N(0, I), no clipping
  (toy points and dequantized images).

Reconstruction distributions (``net.reconstruction``), from an MLP on the
flattened x~:

- 'bernoulli': independent Bernoulli pixels from D logits (binarized
  images).
- 'gaussian': a diagonal Gaussian with mean from the MLP and, with
  ``output_std = 0``, a learned log-standard-deviation per dimension that
  depends on x~ (softly bounded to [`LOG_SCALE_MIN`, `LOG_SCALE_MAX`]); with
  ``output_std > 0`` a fixed standard deviation (toy points, dequantized
  images on [0, 1)).

Walkback training (Bengio et al. 2013, Sec. 3.3): from a training example
x, the chain is run for K = ``net.walkback_steps`` steps, x*_0 = x,
x~_k ~ C(x~ | x*_{k-1}), x*_k ~ P_theta(x | x~_k), and the loss is

    L(x) = - sum_{k=1..K} log P_theta(x | x~_k),

the reconstruction log-likelihood of the *clean* x from every corrupted
state the chain visits; the sampled states x*_k are constants (no gradient
flows through them). K = 1 is the plain denoising criterion. Walkback
visits the spurious modes the chain would wander to and teaches P_theta
to pull them back towards the data. Step k of the chain in training (and of
`chain`) draws its corruption and its sample from ``split(fold_in(key, k))``.

With ``net.latent_dim = 0`` (the default) the chain is the 2013 paper's:
its state is x alone. ``latent_dim = L > 0`` gives a GSN with a latent
state (Bengio et al. 2014, Sec. 3 and 4, with one latent layer instead of
the paper's stack): the state is (x_t, h_t), h_t in R^L, and a step is

    x~_t = C(x~ | x_t),
    h_{t+1} = tanh(W x~_t + V h_t + c + s eps) + s eps',
    x_{t+1} ~ P_theta(x | h_{t+1}),

H_{t+1} ~ P(H | H_t, X_t) then X_{t+1} ~ P(X | H_{t+1}), with eps, eps'
~ N(0, I) the injected noise before and after the nonlinearity (s =
``latent_noise``) and P_theta(x | h) the decoder MLP (``hidden``) on
h_{t+1}. Walkback runs K steps from (x, h_0 = 0) and sums -log P_theta(x
| h_k) over k = 1..K; the sampled x*_k carry no gradient but the latent
states do: the gradient flows back through the unrolled h_1..h_K (trainable
by backprop, the 2014 paper's point). Step t draws its corruption, its
sample and the latent noise from ``split(fold_in(key, t), 3)``.
`latent_chain` runs the chain from any (x, h) and returns its final state,
so a chain can be continued where it stopped.

The family defines no tractable likelihood (``LIKELIHOOD = None``): it is
scored by sample quality. `sample` runs ``net.burn_in`` steps of the chain
from noise (Bernoulli(1/2) pixels, U[0, 1) dequantized pixels, or
N(0, start_std^2 I) points) and returns its last state: the mean of
P_theta(x | x~) there (``sample_mode='mean'``) or a draw from it ('draw').
`chain` keeps every n-th state of a chain from any start (data or noise),
and `transition_log_probs` gives log T(x' | x) exactly for tiny binary
models.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import losses
from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.models import pixels
from jaxgen.nn import blocks

LIKELIHOOD = None  # no tractable density: evaluated by sample quality
log_likelihood = None
DATA = ('images', 'points')

CORRUPTIONS = ('salt_pepper', 'masking', 'gaussian')
BINARY_CORRUPTIONS = ('salt_pepper', 'masking')
RECONSTRUCTIONS = ('bernoulli', 'gaussian')
SAMPLE_MODES = ('mean', 'draw')
# Soft bounds on a learned log-standard-deviation: below as the pixel
# decoders' (exp(-7) ~ 1e-3), above at exp(2) ~ 7.4, so that a chain
# started far from the data cannot draw ever wider steps and overflow.
LOG_SCALE_MIN = pixels.GAUSSIAN_LOG_SCALE_MIN
LOG_SCALE_MAX = 2.0


class Net(nn.Module):
  """The reconstruction network P(x | x~); fields are config.model.

  ``Net(...)(x_tilde)`` maps corrupted examples [B, ...] to the raw outputs
  [B, D] (Bernoulli logits) or [B, 2 D] (means, then raw log-scales) of
  P(x | x~); `reconstruction_params` names them.

  Attributes:
    image_shape: (H, W, C) of images, or (D,) of points.
    hidden: widths of the MLP's hidden layers.
    activation: their nonlinearity (`jaxgen.nn.blocks.ACTIVATIONS`).
    reconstruction: 'bernoulli' (binarized images) or 'gaussian' (points,
      dequantized images).
    output_std: 'gaussian' only: 0 learns the standard deviation (one per
      dimension, a function of x~); > 0 fixes it.
    corruption: 'salt_pepper', 'masking' (binary data) or 'gaussian'.
    noise_level: p in (0, 1) of the binary corruptions; sigma > 0 of the
      Gaussian one.
    walkback_steps: K >= 1, chain steps per training example.
    burn_in: chain steps from noise before `sample` returns the state.
    start_std: standard deviation of the Gaussian noise that chains on
      points start from.
    sample_mode: 'mean' (the mean of P(x | x~) at the last step) or 'draw'
      (the chain's state itself) for `sample`.
    latent_dim: L, the width of the latent state h; 0 = the chain on x
      alone (module docstring).
    latent_noise: s >= 0, the std of the Gaussian noise added before and
      after the tanh of the latent update (latent_dim > 0).
  """
  image_shape: Sequence[int] = (28, 28, 1)
  hidden: Sequence[int] = (512, 512)
  activation: str = 'tanh'
  reconstruction: str = 'bernoulli'
  output_std: float = 0.0
  corruption: str = 'salt_pepper'
  noise_level: float = 0.4
  walkback_steps: int = 1
  burn_in: int = 100
  start_std: float = 1.0
  sample_mode: str = 'mean'
  latent_dim: int = 0
  latent_noise: float = 0.0

  @nn.compact
  def __call__(self, x_tilde: jax.Array, h: jax.Array | None = None,
               noise: jax.Array | None = None):
    """latent_dim 0: the raw outputs of P(x | x~). Else (raw outputs of
    P(x | h'), h' [B, L]) for the latent update from (x~, h) (h None: 0)
    with noise [2, B, L] (None: no noise)."""
    num_dims = math.prod(self.image_shape)
    learned = self.reconstruction == 'gaussian' and not self.output_std
    out = num_dims * (2 if learned else 1)
    flat = x_tilde.reshape(x_tilde.shape[0], -1)
    if not self.latent_dim:
      return blocks.MLP(tuple(self.hidden) + (out,), self.activation,
                        name='mlp')(flat)
    if h is None:
      h = jnp.zeros((flat.shape[0], self.latent_dim), flat.dtype)
    a = (nn.Dense(self.latent_dim, name='encode')(flat)
         + nn.Dense(self.latent_dim, use_bias=False, name='recur')(h))
    if noise is not None:
      a = a + self.latent_noise * noise[0]
    h_next = jnp.tanh(a)
    if noise is not None:
      h_next = h_next + self.latent_noise * noise[1]
    return blocks.MLP(tuple(self.hidden) + (out,), self.activation,
                      name='decode')(h_next), h_next


def is_points(net: Net) -> bool:
  """Whether the family models points [B, D] (else images [B, H, W, C])."""
  return len(net.image_shape) == 1


def examples(batch) -> jax.Array:
  """The examples of a preprocessed batch: 'point' or 'image' rows."""
  return batch['point'] if 'point' in batch else batch['image']


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool) and (
      math.isfinite(value))


def validate(config, dataset) -> None:
  """Checks ``config.model`` against itself and the loaded data."""
  m = config.model
  for field, allowed in (('corruption', CORRUPTIONS),
                         ('reconstruction', RECONSTRUCTIONS),
                         ('sample_mode', SAMPLE_MODES)):
    if m[field] not in allowed:
      raise ConfigError(f'config.model.{field}={m[field]!r} is not one of '
                        f'{allowed}.')
  blocks.activation(m.activation)
  if not m.hidden or not all(_is_int(w) and w > 0 for w in m.hidden):
    raise ConfigError(f'config.model.hidden={tuple(m.hidden)!r} must be a '
                      'non-empty list of positive widths.')
  for field in ('walkback_steps', 'burn_in'):
    if not _is_int(m[field]) or m[field] < 1:
      raise ConfigError(f'config.model.{field}={m[field]!r} must be an '
                        'integer >= 1.')
  level = m.noise_level
  if m.corruption in BINARY_CORRUPTIONS:
    if not _is_number(level) or not 0.0 < level < 1.0:
      raise ConfigError(
          f'config.model.noise_level={level!r} must be a probability in '
          f"(0, 1) for {m.corruption!r} corruption.")
    if m.reconstruction != 'bernoulli':
      raise ConfigError(
          f'config.model.corruption={m.corruption!r} corrupts binary pixels: '
          "it needs config.model.reconstruction='bernoulli'.")
  elif not _is_number(level) or level <= 0:
    raise ConfigError(f'config.model.noise_level={level!r} must be a '
                      "standard deviation > 0 for 'gaussian' corruption.")
  if not _is_number(m.output_std) or m.output_std < 0:
    raise ConfigError(f'config.model.output_std={m.output_std!r} must be >= '
                      '0 (0: learned).')
  latent_dim = m.get('latent_dim', 0)
  if not _is_int(latent_dim) or latent_dim < 0:
    raise ConfigError(f'config.model.latent_dim={latent_dim!r} must be an '
                      'integer >= 0 (0: no latent state).')
  latent_noise = m.get('latent_noise', 0.0)
  if not _is_number(latent_noise) or latent_noise < 0:
    raise ConfigError(f'config.model.latent_noise={latent_noise!r} must be '
                      '>= 0.')
  if not _is_number(m.start_std) or m.start_std <= 0:
    raise ConfigError(f'config.model.start_std={m.start_std!r} must be > 0.')
  if dataset.image_shape is None:  # points
    if m.reconstruction != 'gaussian':
      raise ConfigError(
          f'config.model.reconstruction={m.reconstruction!r}: dataset '
          f"{dataset.name!r} gives real-valued points; use 'gaussian'.")
    return
  pixels.check_data_config(m.reconstruction, config.data,
                           dataset.pixel_levels)


# ------------------------------------------------------ the two kernels


def corrupt(key: jax.Array, x: jax.Array, *, net: Net) -> jax.Array:
  """x~ ~ C(x~ | x), elementwise (see the module docstring); same shape."""
  p = net.noise_level
  if net.corruption == 'salt_pepper':
    flip_key, coin_key = jax.random.split(key)
    flip = jax.random.bernoulli(flip_key, p, x.shape)
    coin = jax.random.bernoulli(coin_key, 0.5, x.shape).astype(x.dtype)
    return jnp.where(flip, coin, x)
  if net.corruption == 'masking':
    keep = jax.random.bernoulli(key, 1.0 - p, x.shape)
    return jnp.where(keep, x, jnp.zeros_like(x))
  return x + p * jax.random.normal(key, x.shape, x.dtype)


def corruption_log_prob(x_tilde: jax.Array, x: jax.Array, *,
                        net: Net) -> jax.Array:
  """log C(x~ | x) per example [B] (a mass for the binary corruptions, a
  density for 'gaussian'); x~ and x [B, ...]."""
  p = net.noise_level
  if net.corruption == 'gaussian':
    lp = losses.gaussian_log_prob(x_tilde, x, math.log(p))
  else:
    same = (x_tilde == x).astype(jnp.float32)
    other = (0.5 if net.corruption == 'salt_pepper' else
             (x_tilde == 0).astype(jnp.float32))
    lp = jnp.log((1.0 - p) * same + p * other)
  return lp.reshape(lp.shape[0], -1).sum(-1)


def reconstruction_params(params, x_tilde: jax.Array, *,
                          net: Net) -> dict[str, jax.Array]:
  """P(x | x~)'s parameters, each [B, ...] like x~: {'logits'} or
  {'mean', 'log_scale'}."""
  return _distribution(net.apply({'params': params}, x_tilde),
                       x_tilde.shape, net)


def _distribution(out: jax.Array, shape, net: Net) -> dict[str, jax.Array]:
  """The raw outputs [B, D] or [B, 2 D] as P(x | .)'s parameters."""
  if net.reconstruction == 'bernoulli':
    return {'logits': out.reshape(shape)}
  if net.output_std:
    mean = out
    log_scale = jnp.full_like(mean, math.log(net.output_std))
  else:
    mean, raw = jnp.split(out, 2, axis=-1)
    log_scale = LOG_SCALE_MIN + jax.nn.softplus(raw - LOG_SCALE_MIN)
    log_scale = LOG_SCALE_MAX - jax.nn.softplus(LOG_SCALE_MAX - log_scale)
  return {'mean': mean.reshape(shape), 'log_scale': log_scale.reshape(shape)}


def reconstruction_log_prob(net: Net, dist: dict[str, jax.Array],
                            x: jax.Array) -> jax.Array:
  """log P(x | x~) per example [B], from `reconstruction_params`."""
  if net.reconstruction == 'bernoulli':
    lp = losses.bernoulli_log_prob(dist['logits'], x)
  else:
    lp = losses.gaussian_log_prob(x, dist['mean'], dist['log_scale'])
  return lp.reshape(lp.shape[0], -1).sum(-1)


def _draw(net: Net, dist: dict[str, jax.Array], key: jax.Array) -> jax.Array:
  """x ~ P(x | x~): float32, the shape of the parameters."""
  if net.reconstruction == 'bernoulli':
    logits = dist['logits']
    return jax.random.bernoulli(key, jax.nn.sigmoid(logits)).astype(
        logits.dtype)
  mean = dist['mean']
  return mean + jnp.exp(dist['log_scale']) * jax.random.normal(
      key, mean.shape, mean.dtype)


def _mean(net: Net, dist: dict[str, jax.Array]) -> jax.Array:
  if net.reconstruction == 'bernoulli':
    return jax.nn.sigmoid(dist['logits'])
  return dist['mean']


def _step_keys(key: jax.Array, step) -> tuple[jax.Array, jax.Array]:
  """(corruption key, sampling key) of chain step `step` (1-based)."""
  corrupt_key, draw_key = jax.random.split(jax.random.fold_in(key, step))
  return corrupt_key, draw_key


# ---------------------------------------------------------------- training


def walkback_terms(params, x: jax.Array, key: jax.Array, *,
                   net: Net) -> jax.Array:
  """-log P(x | x~_k) for k = 1..K along the walkback chain from x: [K, B].

  x*_0 = x; step k draws x~_k ~ C(. | x*_{k-1}) and x*_k ~ P(. | x~_k) with
  the keys of ``split(fold_in(key, k))``; x*_k carries no gradient.
  """

  if net.latent_dim:

    def latent(carry, k):
      x_star, h = carry
      x_next, h, dist = latent_step(params, x_star, h, key, k, net=net)
      nll = -reconstruction_log_prob(net, dist, x)
      return (jax.lax.stop_gradient(x_next), h), nll

    h0 = jnp.zeros((x.shape[0], net.latent_dim), jnp.float32)
    _, nll = jax.lax.scan(latent, (x, h0),
                          jnp.arange(1, net.walkback_steps + 1))
    return nll

  def step(x_star, k):
    corrupt_key, draw_key = _step_keys(key, k)
    dist = reconstruction_params(params, corrupt(corrupt_key, x_star, net=net),
                                 net=net)
    nll = -reconstruction_log_prob(net, dist, x)
    return jax.lax.stop_gradient(_draw(net, dist, draw_key)), nll

  _, nll = jax.lax.scan(step, x, jnp.arange(1, net.walkback_steps + 1))
  return nll


def latent_step(params, x: jax.Array, h: jax.Array, key: jax.Array, t, *,
                net: Net):
  """One step of the latent chain from (x_t, h_t) (t 1-based, keys of
  ``split(fold_in(key, t), 3)``): (x_{t+1} drawn, h_{t+1}, the
  parameters of P(x | h_{t+1}))."""
  corrupt_key, draw_key, noise_key = jax.random.split(
      jax.random.fold_in(key, t), 3)
  noise = jax.random.normal(noise_key, (2,) + h.shape, h.dtype)
  out, h_next = net.apply({'params': params},
                          corrupt(corrupt_key, x, net=net), h, noise)
  dist = _distribution(out, x.shape, net)
  return _draw(net, dist, draw_key), h_next, dist


def latent_chain(params, key: jax.Array, x0: jax.Array, h0: jax.Array, *,
                 net: Net, num_steps: int, first_step: int = 1):
  """Steps first_step .. first_step + num_steps - 1 of the latent chain
  from the state (x0, h0).

  Returns (x, h, mean): the final state and the mean of P(x | h) it was
  drawn from; calling again with (x, h) and first_step + num_steps
  continues the same chain.
  """
  x0 = jnp.asarray(x0, jnp.float32)

  def one(carry, t):
    x, h, _ = carry
    x, h, dist = latent_step(params, x, h, key, t, net=net)
    return (x, h, _mean(net, dist)), None

  (x, h, mean), _ = jax.lax.scan(
      one, (x0, jnp.asarray(h0, jnp.float32), x0),
      first_step + jnp.arange(num_steps))
  return x, h, mean


def init(key: jax.Array, batch, *, net: Net) -> Any:
  return net.init(key, examples(batch))['params']


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """The walkback loss (module docstring), a mean over unmasked rows.

  Returns (scalar, {'walkback_nll': -sum_k log P(x | x~_k), 'recon_nll':
  its first term, the denoising loss of one corruption of x}), each [B] in
  nats (densities for 'gaussian', so they may be negative). The same chain
  is run in evaluation, with the evaluation key.
  """
  del train
  nll = walkback_terms(params, examples(batch), key, net=net)
  total = nll.sum(0)
  metrics = {'walkback_nll': total, 'recon_nll': nll[0]}
  return steps.masked_mean(total, batch.get('mask')), metrics


# ---------------------------------------------------------------- sampling


def chain(params, key: jax.Array, x0: jax.Array, *, net: Net,
          num_steps: int, every: int = 1, mean: bool = False) -> jax.Array:
  """Runs the chain from x0 and keeps every `every`-th state.

  Args:
    params: the trained parameters.
    key: step t (1-based) draws from ``split(fold_in(key, t))``.
    x0: the start [N, ...], preprocessed (binary pixels in {0, 1}, pixels
      in [0, 1), or points): data, or noise from `start`.
    net: the Net.
    num_steps: chain steps, a multiple of `every`.
    every: keep the states after steps every, 2 every, ..., num_steps.
    mean: keep the mean of P(x | x~) each kept state was drawn from
      instead of the state (smoother images; the chain itself goes on
      from the drawn state).

  Returns:
    float32 [num_steps // every + 1, N, ...]: x0, then the kept states.
  """
  if net.latent_dim:
    raise ValueError('chain runs the chain on x alone; a latent state '
                     '(net.latent_dim > 0) runs with latent_chain.')
  if not _is_int(every) or every < 1:
    raise ValueError(f'every={every!r} must be an integer >= 1.')
  if not _is_int(num_steps) or num_steps < 0 or num_steps % every:
    raise ValueError(f'num_steps={num_steps!r} must be an integer >= 0 and '
                     f'a multiple of every={every}.')
  x0 = jnp.asarray(x0, jnp.float32)

  def one(carry, t):
    x, _ = carry
    corrupt_key, draw_key = _step_keys(key, t)
    dist = reconstruction_params(params, corrupt(corrupt_key, x, net=net),
                                 net=net)
    return (_draw(net, dist, draw_key), _mean(net, dist)), None

  def block(carry, j):
    carry, _ = jax.lax.scan(one, carry, j * every + jnp.arange(1, every + 1))
    return carry, carry[1] if mean else carry[0]

  _, kept = jax.lax.scan(block, (x0, x0), jnp.arange(num_steps // every))
  return jnp.concatenate([x0[None], kept])


def start(key: jax.Array, num: int, *, net: Net) -> jax.Array:
  """Noise to start chains from: float32 [num, ...] (module docstring)."""
  shape = (num,) + tuple(net.image_shape)
  if net.reconstruction == 'bernoulli':
    return jax.random.bernoulli(key, 0.5, shape).astype(jnp.float32)
  if is_points(net):
    return net.start_std * jax.random.normal(key, shape, jnp.float32)
  return jax.random.uniform(key, shape, jnp.float32)


def to_uint8(x: jax.Array, *, net: Net) -> jax.Array:
  """Chain states (or means) as uint8 images: Bernoulli probabilities
  round(255 p); dequantized pixels floor(256 y), clipped."""
  if net.reconstruction == 'bernoulli':
    return jnp.round(jnp.clip(x, 0.0, 1.0) * 255.0).astype(jnp.uint8)
  return jnp.floor(jnp.clip(x * 256.0, 0.0, 255.0)).astype(jnp.uint8)


def sample(params, key, num: int, *, net: Net) -> jax.Array:
  """The state after ``net.burn_in`` steps of chains from noise.

  uint8 [num, H, W, C] images, or float32 [num, D] points; with
  ``net.sample_mode == 'mean'`` the mean of P(x | x~) at the last step.
  """
  start_key, chain_key = jax.random.split(key)
  x0 = start(start_key, num, net=net)
  if net.latent_dim:
    x, _, mean = latent_chain(
        params, chain_key, x0, jnp.zeros((num, net.latent_dim)), net=net,
        num_steps=net.burn_in)
    x = mean if net.sample_mode == 'mean' else x
  else:
    states = chain(params, chain_key, x0, net=net, num_steps=net.burn_in,
                   every=net.burn_in, mean=net.sample_mode == 'mean')
    x = states[-1]
  return x if is_points(net) else to_uint8(x, net=net)


def transition_log_probs(params, *, net: Net) -> jax.Array:
  """log T(x' | x) [2^D, 2^D] of a binary model, every x and x' enumerated.

  T(x' | x) = sum_x~ C(x~ | x) P(x' | x~), summed over all 2^D corrupted
  states: exact, for tiny D (tests, illustrations). Rows index x and
  columns x' in the order of `binary_states`.
  """
  if (net.reconstruction != 'bernoulli' or net.corruption == 'gaussian'
      or net.latent_dim):
    raise ValueError('transition_log_probs enumerates binary models only '
                     "('bernoulli' reconstruction, binary corruption, no "
                     'latent state).')
  states = binary_states(net)
  n = states.shape[0]
  # log C(x~ | x) [x, x~] and log P(x' | x~) [x~, x'].
  log_c = corruption_log_prob(
      jnp.tile(states, (n,) + (1,) * (states.ndim - 1)),
      jnp.repeat(states, n, axis=0), net=net).reshape(n, n)
  dist = reconstruction_params(params, states, net=net)
  log_p = jax.vmap(
      lambda x_next: reconstruction_log_prob(
          net, dist, jnp.broadcast_to(x_next, states.shape)))(states).T
  return jax.nn.logsumexp(log_c[:, :, None] + log_p[None], axis=1)


def binary_states(net: Net) -> jax.Array:
  """All 2^D binary examples, float32 [2^D, ...]; row i has the bits of i
  with the first dimension most significant."""
  num_dims = math.prod(net.image_shape)
  if num_dims > 16:
    raise ValueError(f'{num_dims} binary dimensions: too many to enumerate.')
  bits = jnp.asarray(list(itertools.product((0.0, 1.0), repeat=num_dims)),
                     jnp.float32)
  return bits.reshape((-1,) + tuple(net.image_shape))


# ------------------------------------------------------ chain figures
def _chain_trace(params, x, key, *, net: Net, num_steps: int,
                 every: int) -> list[jax.Array]:
  """One chain of `num_steps` steps from `key` (step t from
  ``fold_in(key, t)``, as `chain` and `latent_chain` draw)."""
  if not net.latent_dim:
    kept = list(chain(params, key, x, net=net, num_steps=num_steps,
                      every=every, mean=True))
  else:
    kept, h = [x], jnp.zeros((x.shape[0], net.latent_dim))
    for j in range(num_steps // every):
      x, h, mean = latent_chain(params, key, x, h, net=net, num_steps=every,
                                first_step=1 + j * every)
      kept.append(mean)
  return [to_uint8(k, net=net) for k in kept]


def chain_figure(variables, batch, key: jax.Array, *, net: Net,
                 num_steps: int, every: int):
  """The chain of corruptions and reconstructions for a figure
  (`experiments.chains`): (rows from noise, rows from the images of
  `batch`), each a list of uint8 states, the start first, then the mean of
  the reconstruction distribution each kept state was drawn from, every
  `every` steps (`chain`, or `latent_chain` from h = 0 with a latent
  state).

  Noise starts as `start` from ``fold_in(key, 0)``; the noise chains from
  ``fold_in(key, 2)``, the data chains from ``fold_in(key, 3)``.
  """
  x0 = start(jax.random.fold_in(key, 0), batch['image'].shape[0], net=net)
  data = batch['image'].astype(jnp.float32)
  return tuple(_chain_trace(variables, x, jax.random.fold_in(key, i),
                            net=net, num_steps=num_steps, every=every)
               for i, x in ((2, x0), (3, data)))

