"""DDPM: a denoising diffusion model with an eps-prediction U-Net.

Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020;
DDIM sampling from Song, Meng, Ermon, "Denoising Diffusion Implicit
Models", ICLR 2021; classifier-free guidance from Ho & Salimans,
"Classifier-Free Diffusion Guidance", 2022. The pure pieces (schedules,
forward process, bound terms, update rules) are `jaxgen.losses.diffusion`;
the network is `jaxgen.nn.unet.UNet`.

Model. A forward process q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1},
beta_t I) over ``num_timesteps`` T steps (``schedule`` 'linear' or
'cosine'), and a reverse process p(x_{t-1} | x_t) = N(mu_theta(x_t, t),
sigma_t^2 I) with mu_theta from the network's noise prediction eps_theta
(eq. 11) and the fixed variance sigma_t^2 = beta_t or beta-tilde_t
(``variance`` 'beta' or 'posterior'); the last step is a discretized
Gaussian decoder over the 256 levels, so the bound is on the discrete
log-likelihood of 8-bit images (no dequantization).

Training minimises L_simple (eq. 14) with one uniform timestep and one
noise draw per example. A class-conditional model (``num_classes`` > 0)
replaces each label by the null label with probability ``label_dropout``
while training, so one network gives both eps(x, c) and eps(x, null) for
guidance.

Data: 8-bit images scaled to [-1, 1] (``config.data.value_range=
'symmetric'``, no binarization or dequantization).

The bound under the cosine schedule. The cosine schedule's last beta is
its clip, beta_T = 0.999 (Nichol & Dhariwal clip at 0.999 "to prevent
singularities at the end of the diffusion process near t = T"), so
alpha_T = 0.001 and abar_T = 0.001 abar_{T-1}, about 2.4e-9 for T = 1,000.
The prior term L_T = KL(q(x_T | x_0) || N(0, I)) is then negligible (about
abar_T x_0^2 / 2 per dimension). The term of the last reverse step is
not: with the eps-parameterised mean (eq. 11) and the predicted x_0
unclipped, each KL term L_{t-1} (t >= 2) is a constant variance term plus
w_t ||eps - eps_theta(x_t, t)||^2 with

    w_t = beta_t^2 / (2 sigma_t^2 (1 - abar_t) alpha_t)

(`eps_error_weights`; beta_t / (2 (1 - abar_t) alpha_t) for sigma_t^2 =
beta_t). Dividing by alpha_T = 0.001 makes the last step's weight about
500 nats per dimension and unit squared error, where every other step of
the cosine schedule weighs at most 1.5 and the linear schedule's last step
about 0.01: a noise prediction off by 0.1 (root mean square) at
t = T alone costs about 5 nats per dimension, 7 bits/dim. The bound of a
briefly trained model under the cosine schedule is dominated by that one
term; it is the bound of that model, computed correctly (see
tests/models/test_ddpm.py), a property of the clipped schedule rather than
of the evaluation. Compare schedules by their bound after training, or by
the terms without the last (`diffusion.bound_terms` per timestep).

The family contract (see `jaxgen.models`): `Net`, `init`, `loss_fn`,
`LIKELIHOOD` ('bound'), `log_likelihood`, `sample`, `validate`,
`describe_estimator` (the bound's terms per image, for records). Extra:
`trajectory` (the states of the reverse process x_T -> x_0 that `sample`
draws), `guided_eps`, `timestep_sequence`, `to_uint8`, `eps_error_weights`,
`SAMPLERS` (the ``method`` choices of `sample`).
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.losses import diffusion
from jaxgen.models import base
from jaxgen.nn import unet

LIKELIHOOD = 'bound'
NUM_BINS = 256
SAMPLERS = ('ancestral', 'ddim')


class Net(nn.Module):
  """The diffusion model: its U-Net and process; fields are ``config.model``.

  ``Net(x_t, t, labels)`` is eps_theta: images [B, H, W, C] in [-1, 1]
  space, int timesteps [B] in [0, T), labels int [B] in [0, num_classes]
  (num_classes is the null label) -> [B, H, W, C].

  Attributes:
    image_shape: (H, W, C); H and W divisible by 2^len(channels).
    channels: U-Net features per resolution level.
    num_res_blocks: residual blocks per level (down and up).
    sinusoid_dim: size of the sinusoidal timestep embedding.
    time_embed_dim: size of the time embedding after its MLP.
    num_groups: GroupNorm groups (divides every entry of channels).
    num_classes: > 0 makes the model class-conditional.
    label_dropout: probability of the null label per training example
      (classifier-free guidance); conditional models only.
    num_timesteps: T.
    schedule: 'linear' (1e-4 to 0.02) or 'cosine'.
    variance: reverse variance sigma_t^2, 'beta' or 'posterior'.
    clip_denoised: sampling clips the predicted x_0 to [-1, 1].
    sampler: the default of `sample`, 'ancestral' or 'ddim'.
    sample_steps: DDIM steps of the default sampler (0: all T).
  """
  image_shape: Sequence[int] = (28, 28, 1)
  channels: Sequence[int] = (32, 64)
  num_res_blocks: int = 1
  sinusoid_dim: int = 32
  time_embed_dim: int = 128
  num_groups: int = 8
  num_classes: int = 0
  label_dropout: float = 0.1
  num_timesteps: int = 1000
  schedule: str = 'linear'
  variance: str = 'beta'
  clip_denoised: bool = True
  sampler: str = 'ancestral'
  sample_steps: int = 0

  @nn.compact
  def __call__(self, x: jax.Array, t: jax.Array,
               labels: jax.Array | None = None) -> jax.Array:
    return unet.UNet(
        channels=tuple(self.channels), num_res_blocks=self.num_res_blocks,
        sinusoid_dim=self.sinusoid_dim, time_embed_dim=self.time_embed_dim,
        num_groups=self.num_groups, num_classes=self.num_classes,
        name='unet')(x, t, labels)


@functools.lru_cache(maxsize=16)
def _schedule(name: str, num_timesteps: int) -> diffusion.Schedule:
  return diffusion.schedule(name, num_timesteps)


def schedule_of(net: Net) -> diffusion.Schedule:
  """The float64 `diffusion.Schedule` of the net's process."""
  return _schedule(net.schedule, int(net.num_timesteps))


def eps_error_weights(net: Net) -> np.ndarray:
  r"""w_t [T], float64: the weight of the noise prediction's squared error in
  each KL term of the bound (see the module docstring).

  For index t >= 1 (the paper's step t + 1), with the reverse variance
  sigma_t^2 of ``net.variance`` and the predicted x_0 unclipped,

  .. math::
    L_t = D \cdot \tfrac12\big(\log\tfrac{\sigma_t^2}{\tilde\beta_t}
      + \tfrac{\tilde\beta_t}{\sigma_t^2} - 1\big)
      + w_t \|\epsilon - \epsilon_\theta(x_t, t)\|^2,\quad
    w_t = \frac{\beta_t^2}{2\sigma_t^2(1 - \bar\alpha_t)\alpha_t},

  because the posterior and model means differ by
  :math:`\beta_t \sqrt{\bar\alpha_{t-1}} / (1 - \bar\alpha_t)` times
  the error of the predicted x_0, :math:`\sqrt{(1 - \bar\alpha_t) /
  \bar\alpha_t}` times the noise prediction's. Index 0 is the decoder,
  not a KL term: 0 there.
  """
  sched = schedule_of(net)
  betas = np.asarray(sched.betas)
  sigma2 = np.exp(np.asarray(diffusion.model_log_variance(sched,
                                                          net.variance)))
  w = betas ** 2 / (2.0 * sigma2 * (1.0 - np.asarray(sched.alphas_cumprod))
                    * (1.0 - betas))
  w[0] = 0.0
  return w


def _is_int(value, low: int) -> bool:
  return (not isinstance(value, bool) and isinstance(value, int)
          and value >= low)


def validate(config, dataset) -> None:
  """Checks ``config.model``, ``config.data`` and the estimators."""
  m = config.model
  for field, low in (('num_res_blocks', 1), ('num_groups', 1),
                     ('time_embed_dim', 1), ('sinusoid_dim', 4),
                     ('num_timesteps', 2), ('sample_steps', 0)):
    if not _is_int(m[field], low):
      raise ConfigError(f'config.model.{field}={m[field]!r} must be an '
                        f'integer >= {low}.')
  if m.sinusoid_dim % 2:
    raise ConfigError(
        f'config.model.sinusoid_dim={m.sinusoid_dim} must be even.')
  channels = tuple(m.channels)
  if not channels or not all(_is_int(c, 1) and c % m.num_groups == 0
                             and c // m.num_groups >= 2 for c in channels):
    # With one channel per group, the group norm after the time-embedding
    # injection removes the embedding (a per-channel constant).
    raise ConfigError(
        f'config.model.channels={channels} must be integers divisible by '
        f'config.model.num_groups={m.num_groups}, with at least 2 channels '
        'per group.')
  h, w, _ = m.image_shape
  factor = 2 ** len(channels)
  if h % factor or w % factor:
    raise ConfigError(
        f'config.model.channels has {len(channels)} levels, each halving '
        f'the image: config.model.image_shape={tuple(m.image_shape)} needs '
        f'H and W divisible by {factor}.')
  for field, allowed in (('schedule', diffusion.SCHEDULES),
                         ('variance', diffusion.VARIANCES),
                         ('sampler', SAMPLERS)):
    if m[field] not in allowed:
      raise ConfigError(
          f'config.model.{field}={m[field]!r} is not one of {allowed}.')
  if m.sample_steps > m.num_timesteps:
    raise ConfigError(
        f'config.model.sample_steps={m.sample_steps} exceeds '
        f'config.model.num_timesteps={m.num_timesteps}.')
  if m.sampler == 'ancestral' and m.sample_steps not in (0, m.num_timesteps):
    raise ConfigError(
        f"config.model.sample_steps={m.sample_steps}: the 'ancestral' "
        "sampler takes all T steps; use sampler='ddim' for fewer.")
  if not 0.0 <= m.label_dropout < 1.0:
    raise ConfigError(
        f'config.model.label_dropout={m.label_dropout} must lie in [0, 1).')
  base.check_num_classes(m.num_classes, dataset)
  d = config.data
  base.check_discrete_8bit(config, dataset, 'DDPM',
                           'a discretized Gaussian decoder')
  if d.value_range != 'symmetric':
    raise ConfigError(
        "config.data.value_range must be 'symmetric' (pixel / 127.5 - 1), "
        f'got {d.value_range!r}.')
  for name, args in config.eval.estimators.items():
    k = dict(args).get('num_timesteps', 0)
    if not _is_int(k, 0) or k == 1 or k > m.num_timesteps:
      raise ConfigError(
          f'config.eval.estimators.{name}.num_timesteps={k!r} must be 0 '
          f'(all T) or an integer in [2, {m.num_timesteps}].')
    chunk = dict(args).get('chunk_size', 1)
    if not _is_int(chunk, 1):
      raise ConfigError(f'config.eval.estimators.{name}.chunk_size={chunk!r} '
                        'must be an integer >= 1.')


def _labels(net: Net, batch) -> jax.Array | None:
  return batch['label'] if net.num_classes else None


def init(key: jax.Array, batch, *, net: Net) -> Any:
  """Initial parameters for a (preprocessed) example batch."""
  x = batch['image']
  t = jnp.zeros(x.shape[:1], jnp.int32)
  return net.init({'params': key}, x, t, _labels(net, batch))['params']


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """L_simple (eq. 14) at one uniform timestep and noise draw per example.

  Args:
    params: the Net's parameters.
    batch: {'image': float [B, H, W, C] in [-1, 1], 'label': int [B],
      optional 'mask': bool [B]}.
    key: PRNG key for the timesteps, the noise and the label dropout.
    net: the Net.
    train: label dropout (conditional models) only when training.

  Returns:
    (masked mean of L_simple, {'simple': [B] per-example mean squared
    error of the noise prediction}).
  """
  x = batch['image']
  sched = schedule_of(net)
  t_key, noise_key, drop_key = jax.random.split(key, 3)
  t = jax.random.randint(t_key, x.shape[:1], 0, net.num_timesteps)
  noise = jax.random.normal(noise_key, x.shape, x.dtype)
  x_t = diffusion.q_sample(sched, x, t, noise)
  labels = _labels(net, batch)
  if labels is not None and train and net.label_dropout > 0:
    drop = jax.random.bernoulli(drop_key, net.label_dropout, labels.shape)
    labels = jnp.where(drop, net.num_classes, labels)
  eps = net.apply({'params': params}, x_t, t, labels)
  simple = diffusion.simple_loss(noise, eps)
  return steps.masked_mean(simple, batch.get('mask')), {'simple': simple}


def log_likelihood(params, batch, key, *, net: Net, num_timesteps: int = 0,
                   chunk_size: int = 50) -> jax.Array:
  """A lower bound on log p(x) in nats, [B]: -(L_0 + sum_t L_t + L_T).

  With ``num_timesteps=0`` every one of the T terms is evaluated (each at
  one draw of x_t, whose expectation is the bound); with k > 0, the
  decoder term and k - 1 stratified timesteps per image, an unbiased
  estimate of the same bound (`diffusion.variational_bound`). The network
  runs on ``chunk_size`` timesteps per image at a time. The predicted x_0
  is not clipped. A conditional model gives the bound on log p(x | y) at
  the batch's labels.
  """
  labels = _labels(net, batch)

  def eps_fn(x_t, t):
    return net.apply({'params': params}, x_t, t, labels)

  total, _, _ = diffusion.variational_bound(
      eps_fn, schedule_of(net), batch['image'], key, variance=net.variance,
      num_samples=num_timesteps or None, chunk_size=chunk_size,
      num_bins=NUM_BINS)
  return -total


def describe_estimator(*, net: Net, num_timesteps: int = 0,
                       chunk_size: int = 50) -> dict[str, Any]:
  """What `log_likelihood` evaluates per image with these arguments, in
  words for a record (the contract's optional ``describe_estimator``).

  Returns:
    {'estimate': the terms of the bound evaluated per image (all T, or the
    decoder term L_0 and ``num_timesteps - 1`` stratified timesteps);
    'shared': the draws one key fixes (the timesteps and the noise);
    'timesteps_per_image': the terms per image (T when ``num_timesteps``
    is 0)}.
  """
  del chunk_size  # how the terms are batched, not which
  big_t = int(net.num_timesteps)
  k = int(num_timesteps)
  estimate = (f'all T = {big_t:,} terms of the diffusion bound per image, '
              'one noise draw each' if not k else
              f'{k} terms of the diffusion bound per image (the decoder term '
              f'L_0 and {k - 1} timesteps stratified over T = {big_t:,}, an '
              'unbiased estimate)')
  return {'estimate': estimate,
          'shared': 'the same timesteps and noise for every class',
          'timesteps_per_image': k or big_t}


def guided_eps(params, x_t: jax.Array, t: jax.Array,
               labels: jax.Array | None, *, net: Net,
               guidance: float = 0.0) -> jax.Array:
  """eps_theta(x_t, t [, labels]), [B, H, W, C], with classifier-free
  guidance when `guidance` w > 0: (1 + w) eps(x, y) - w eps(x, null)
  (Ho & Salimans 2022, eq. 6), both from one network call on 2B images."""
  if labels is None or not guidance:
    return net.apply({'params': params}, x_t, t, labels)
  null = jnp.full_like(labels, net.num_classes)
  both = net.apply({'params': params}, jnp.concatenate([x_t, x_t]),
                   jnp.concatenate([t, t]), jnp.concatenate([labels, null]))
  cond, uncond = jnp.split(both, 2)
  return (1.0 + guidance) * cond - guidance * uncond


def timestep_sequence(num_timesteps: int, num_steps: int) -> np.ndarray:
  """The DDIM sub-sequence: `num_steps` evenly spaced indices of [0, T),
  first 0 and last T - 1 (all of them when num_steps == T), descending."""
  seq = np.unique(np.round(np.linspace(0, num_timesteps - 1, num_steps))
                  .astype(np.int32))
  if len(seq) != num_steps:
    raise ValueError(f'num_steps={num_steps} must lie in [1, '
                     f'{num_timesteps}].')
  return seq[::-1]


def to_uint8(x: jax.Array) -> jax.Array:
  """Values x in [-1, 1] space -> 8-bit pixels round(127.5 (x + 1)),
  clipped to [0, 255]."""
  return jnp.round(jnp.clip((x + 1.0) * 127.5, 0.0, 255.0)).astype(jnp.uint8)


def _reverse(params, key, num: int, *, net: Net, method: str | None,
             num_steps: int | None, eta, guidance: float, labels,
             keep: bool):
  """The reverse process of `sample`: (x_0, timesteps, states or None)."""
  method = method or net.sampler
  if method not in SAMPLERS:
    raise ValueError(f'method={method!r} is not one of {SAMPLERS}.')
  big_t = int(net.num_timesteps)
  if num_steps is None:
    num_steps = (net.sample_steps or big_t) if method == net.sampler else big_t
  if method == 'ancestral' and num_steps != big_t:
    raise ValueError(f"method='ancestral' takes all {big_t} steps, got "
                     f'num_steps={num_steps}; use method=\'ddim\'.')
  if guidance and not net.num_classes:
    raise ValueError('guidance needs a class-conditional model '
                     '(config.model.num_classes > 0).')
  sched = schedule_of(net)
  labels = base.default_labels(net.num_classes, num, labels)
  seq = timestep_sequence(big_t, num_steps)
  prev = np.append(seq[1:], -1).astype(np.int32)
  shape = (num,) + tuple(net.image_shape)
  start_key, loop_key = jax.random.split(key)

  def eps_at(x, t):
    return guided_eps(params, x, jnp.full((num,), t), labels, net=net,
                      guidance=guidance)

  def step(x, inputs):
    i, t, t_prev = inputs
    noise = jax.random.normal(jax.random.fold_in(loop_key, i), shape)
    eps = eps_at(x, t)
    if method == 'ancestral':
      x = diffusion.ancestral_step(sched, x, t, eps, noise,
                                   variance=net.variance,
                                   clip=net.clip_denoised)
    else:
      x = diffusion.ddim_step(sched, x, t, t_prev, eps, noise, eta,
                              clip=net.clip_denoised)
    return x, (x if keep else None)

  x_start = jax.random.normal(start_key, shape)
  x, states = jax.lax.scan(step, x_start, (jnp.arange(len(seq)),
                                           jnp.asarray(seq),
                                           jnp.asarray(prev)))
  if keep:
    states = jnp.concatenate([x_start[None], states])
  return x, seq, states


def sample(params, key, num: int, *, net: Net, method: str | None = None,
           num_steps: int | None = None, eta: float = 0.0,
           guidance: float = 0.0, labels=None) -> jax.Array:
  """`num` images, uint8 [num, H, W, C], by reverse diffusion from N(0, I).

  One `lax.scan` over the reverse steps (one network call each):

  - method 'ancestral': Ho et al.'s Algorithm 2 over all T steps, sigma_t
    from ``net.variance``, no noise at the last step;
  - method 'ddim': Song et al.'s eq. 12 on `num_steps` evenly spaced
    timesteps (`timestep_sequence`; default all T), stochastic with `eta`
    (0: deterministic; 1 over all T steps: ancestral with the posterior
    variance).

  Defaults come from ``net.sampler`` and ``net.sample_steps``. The
  predicted x_0 is clipped to [-1, 1] when ``net.clip_denoised``. A
  conditional model draws `labels` int [num] (default cycling through the
  classes); `guidance` w > 0 uses classifier-free guidance,
  eps = (1 + w) eps(x, y) - w eps(x, null) (`guided_eps`).
  Final values map to round(127.5 (x + 1)), clipped to [0, 255]
  (`to_uint8`). `method`, `num_steps` and `guidance` are Python values
  (fixed when jitted); `eta` and `labels` may be traced.
  """
  x, _, _ = _reverse(params, key, num, net=net, method=method,
                     num_steps=num_steps, eta=eta, guidance=guidance,
                     labels=labels, keep=False)
  return to_uint8(x)


def trajectory(params, key, num: int, *, net: Net, method: str | None = None,
               num_steps: int | None = None, eta: float = 0.0,
               guidance: float = 0.0, labels=None):
  """The states of `sample`'s reverse process, x_T to x_0.

  The same draw as ``sample`` with the same arguments (the same key gives
  the same images: ``to_uint8(states[-1]) == sample(...)``), keeping every
  intermediate state.

  Returns:
    (timesteps int NumPy [S], the reverse steps' indices in [0, T),
    descending (`timestep_sequence`); states float [S + 1, num, H, W, C]
    in [-1, 1] space, unclipped: states[0] is the starting noise and
    states[i] the state after reverse step timesteps[i - 1], so
    states[-1] is x_0).
  """
  _, seq, states = _reverse(params, key, num, net=net, method=method,
                            num_steps=num_steps, eta=eta, guidance=guidance,
                            labels=labels, keep=True)
  return seq, states
