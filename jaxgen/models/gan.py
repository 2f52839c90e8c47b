r"""Generative adversarial networks: GAN, DCGAN, WGAN, WGAN-GP, LSGAN, cGAN.

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014; Radford,
Metz & Chintala, "Unsupervised Representation Learning with Deep
Convolutional GANs" (DCGAN), ICLR 2016; Arjovsky, Chintala & Bottou,
"Wasserstein GAN", ICML 2017; Gulrajani et al., "Improved Training of
Wasserstein GANs" (WGAN-GP), NeurIPS 2017; Mao et al., "Least Squares
GANs", ICCV 2017; Mirza & Osindero, "Conditional Generative Adversarial
Nets", 2014.

A generator G maps z ~ p(z) (N(0, I) or U[-1, 1]^L) to an example; a
discriminator (critic) D scores examples. One training step of the family
is k = ``net.d_steps`` discriminator updates, then one generator update
(Goodfellow et al. 2014, Alg. 1; Arjovsky et al. 2017, Alg. 1):

    for i in 1..k:   D <- D - opt_D(grad_D  mean L_D(D(x_i), D(G(z_i))))
    G <- G - opt_G(grad_G  mean L_G(D(G(z))))

with the objective ``net.objective`` (losses in `jaxgen.losses`):

===============  ==================================  ========================
objective        L_D                                 L_G
===============  ==================================  ========================
minimax          softplus(-l_r) + softplus(l_f)      -softplus(l_f)
nonsaturating    softplus(-l_r) + softplus(l_f)      softplus(-l_f)
wgan             f_f - f_r; weights clipped to       -f_f
                 [-c, c] after each update
wgan-gp          f_f - f_r + lambda (||grad f(x^)||   -f_f
                 - 1)^2 at interpolates x^
lsgan            ((l_r - 1)^2 + l_f^2) / 2           (l_f - 1)^2 / 2
===============  ==================================  ========================

The generator update draws fresh latents z (the papers' algorithm) or, with
``net.reuse_fakes``, backpropagates through the last discriminator
update's G(z_k) (`generator_forward`, `generator_step_on_fakes`): one
generator forward pass per step instead of two, as PyTorch's DCGAN example
trains.

The networks (``net.architecture``) are DCGAN's convolutional pair or dense
nets (`jaxgen.nn.adversarial`); ``net.num_classes > 0`` conditions both on
one-hot labels. The family models images in [-1, 1] (``value_range=
'symmetric'``, Tanh output) and 2-D toy points (``DATA``; linear output).

Mixed precision (``config.train.compute_dtype = 'bfloat16'``): the train
step builds both players through `jaxgen.steps.compute_module`, so their
layers compute in bfloat16 while the variables, optimizer states, the
losses (from the float32-cast outputs) and WGAN-GP's penalty (its critic
pass in float32) stay float32; evaluation and sampling run in float32.

State: ``TrainState.params`` is ``{'generator': variables, 'discriminator':
variables}``, each the whole Flax variables dict (``{'params': ...,
'batch_stats': ...}`` with batch norm), so the running statistics are
checkpointed with the weights. ``TrainState.opt_state`` is
``{'generator': ..., 'discriminator': ...}`` (`make_optimizer`). Each
network's running statistics change only in its own update: the generator
runs in training mode (batch statistics) inside the discriminator's update
and vice versa, but those passes' statistics are discarded, so neither
update touches the other network's variables.

Randomness: step s uses ``key = fold_in(train_key, s)``, split into
(preprocess, discriminator, generator) keys; the discriminator key is split
into k, one per update, and each of those into (noise, interpolates). With
``d_dropout`` > 0 the discriminator's dropout masks are drawn from keys
folded out of those (`dropout_key`): one per pass (real, fake, penalty,
generator update), so no existing key changes and ``d_dropout = 0``
reproduces runs made before the option existed bitwise.

Data per step: the batch of ``config.train.batch_size`` = k * m real
examples is dealt into k minibatches of m (rows i, i + k, i + 2k, ...), one
per discriminator update, so each update sees fresh data as in the papers'
algorithms; the generator update draws m latents and uses the labels of the
last minibatch (the data's label distribution) for a conditional GAN.

The family has no likelihood (``LIKELIHOOD = None``); `loss_fn` gives both
players' losses as per-example metrics for evaluation, and samples are
scored by `jaxgen.quality`. Latent tools: `generate`, `interpolate`, and
`jaxgen.nn.latent` (slerp, vector arithmetic over averaged latents).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgen import losses
from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.models import base
from jaxgen.nn import adversarial as adv
from jaxgen.nn import latent as latent_lib

LIKELIHOOD = None  # no density: evaluated by sample quality
log_likelihood = None
DATA = ('images', 'points')  # images, and toy 2-D point datasets

OBJECTIVES = ('minimax', 'nonsaturating', 'wgan', 'wgan-gp', 'lsgan')
ARCHITECTURES = ('mlp', 'dcgan')
LATENT_PRIORS = ('normal', 'uniform')
G_NORMS = ('batch', 'none')


class Net(nn.Module):
  """The generator/discriminator pair and its game; fields are config.model.

  Attributes:
    image_shape: the shape of one example: (H, W, C) for images, (D,) for
      points.
    architecture: 'dcgan' (strided convolutions, `adv.DCGANGenerator` /
      `adv.DCGANDiscriminator`) or 'mlp' (dense layers; the only choice for
      points).
    objective: one of `OBJECTIVES` (see the module docstring).
    latent_dim: L, the dimension of z.
    latent_prior: 'normal' (N(0, I)) or 'uniform' (U[-1, 1]^L, as in DCGAN).
    num_classes: K > 0 makes a conditional GAN (one-hot labels into both
      nets); 0 is unconditional.
    g_channels, d_channels, kernel_size: the DCGAN stacks; len(g_channels)
      stride-2 layers, so H and W must divide by 2^len(g_channels).
    g_hidden, d_hidden: hidden widths of the MLP nets.
    g_norm: 'batch' or 'none' in the generator.
    d_norm: 'batch', 'layer' or 'none' in the discriminator ('batch' is not
      allowed with 'wgan-gp': the penalty needs per-example gradients).
    use_bias: biases in the (transposed) convolutions and dense layers.
    leaky_slope: the discriminator's LeakyReLU slope.
    d_steps: k, discriminator updates per generator update;
      config.train.batch_size must be a multiple of it.
    gp_weight: lambda of the gradient penalty ('wgan-gp').
    clip_value: c of WGAN's weight clipping ('wgan').
    d_dropout: dropout rate after each of the discriminator's LeakyReLUs in
      its training passes (0: none; keyed, see the module docstring).
    reuse_fakes: the generator update backpropagates through the fakes
      G(z_k) of the last discriminator update (one generator forward pass
      per step, as PyTorch's DCGAN example does) instead of drawing fresh
      latents (False: the papers' algorithm).
  """
  image_shape: Sequence[int] = (28, 28, 1)
  architecture: str = 'dcgan'
  objective: str = 'nonsaturating'
  latent_dim: int = 100
  latent_prior: str = 'normal'
  num_classes: int = 0
  g_channels: Sequence[int] = (256, 128, 64)
  d_channels: Sequence[int] = (64, 128, 256)
  kernel_size: int = 4
  g_hidden: Sequence[int] = (128, 128, 128)
  d_hidden: Sequence[int] = (128, 128, 128)
  g_norm: str = 'batch'
  d_norm: str = 'batch'
  use_bias: bool = False
  leaky_slope: float = 0.2
  d_steps: int = 1
  gp_weight: float = 10.0
  clip_value: float = 0.01
  d_dropout: float = 0.0
  reuse_fakes: bool = False

  @nn.compact
  def __call__(self, z: jax.Array, x: jax.Array,
               labels: jax.Array | None = None, *, train: bool = False):
    """(G(z), D(x)): both nets as children, e.g. for `nn.tabulate`."""
    cond = one_hot(self, labels)
    fake = generator_module(self, name='generator')(z, cond, train=train)
    return fake, discriminator_module(self, name='discriminator')(
        x, cond, train=train)


def is_points(net: Net) -> bool:
  """Whether the family models points [B, D] (else images [B, H, W, C])."""
  return len(net.image_shape) == 1


def generator_module(net: Net, **kwargs) -> nn.Module:
  """The generator built from `net`'s fields (`kwargs`: name, parent).

  In ``config.train.compute_dtype`` when `net` is the train step's
  `jaxgen.steps.ComputeDtypeNet` (`jaxgen.steps.compute_module`).
  """
  output = 'linear' if is_points(net) else 'tanh'
  if net.architecture == 'dcgan':
    module = adv.DCGANGenerator(tuple(net.image_shape),
                                tuple(net.g_channels), net.kernel_size,
                                net.g_norm, net.use_bias, output, **kwargs)
  else:
    module = adv.MLPGenerator(tuple(net.image_shape), tuple(net.g_hidden),
                              net.g_norm, net.use_bias, output, **kwargs)
  return steps.compute_module(net, module)


def discriminator_module(net: Net, **kwargs) -> nn.Module:
  """The discriminator (critic) built from `net`'s fields; in the compute
  dtype as `generator_module`."""
  if net.architecture == 'dcgan':
    module = adv.DCGANDiscriminator(tuple(net.d_channels), net.kernel_size,
                                    net.d_norm, net.leaky_slope,
                                    net.use_bias, dropout=net.d_dropout,
                                    **kwargs)
  else:
    module = adv.MLPDiscriminator(tuple(net.d_hidden), net.d_norm,
                                  net.leaky_slope, net.use_bias,
                                  dropout=net.d_dropout, **kwargs)
  return steps.compute_module(net, module)


# The discriminator's dropout keys: fold_in(fold_in(key, _DROPOUT), pass).
_DROPOUT = 0x64726F70  # 'drop'
_REAL, _FAKE, _PENALTY, _GENERATOR = range(4)


def dropout_key(net: Net, key: jax.Array, which: int) -> jax.Array | None:
  """The dropout key of one discriminator pass, or None without dropout."""
  if not net.d_dropout:
    return None
  return jax.random.fold_in(jax.random.fold_in(key, _DROPOUT), which)


def one_hot(net: Net, labels: jax.Array | None) -> jax.Array | None:
  """One-hot labels [B, K] for a conditional GAN; None otherwise."""
  if not net.num_classes:
    return None
  return jax.nn.one_hot(labels, net.num_classes, dtype=jnp.float32)


def sample_latent(key: jax.Array, num: int, *, net: Net) -> jax.Array:
  """z [num, L] from the prior: N(0, I) or U[-1, 1]^L."""
  shape = (num, net.latent_dim)
  if net.latent_prior == 'uniform':
    return jax.random.uniform(key, shape, jnp.float32, -1.0, 1.0)
  return jax.random.normal(key, shape, jnp.float32)


def examples(batch) -> jax.Array:
  """The real examples of a preprocessed batch: 'image' or 'point' rows."""
  return batch['point'] if 'point' in batch else batch['image']


def apply(module: nn.Module, variables, *args, train: bool,
          dropout_rng: jax.Array | None = None):
  """(output, variables): `module` on its variables dict.

  With ``train=True`` batch norm uses batch statistics and the returned
  variables carry the updated running averages; otherwise (or without
  batch norm) the variables come back unchanged. ``dropout_rng`` feeds the
  'dropout' stream (training passes of a discriminator with dropout).
  """
  rngs = {'dropout': dropout_rng} if train and dropout_rng is not None else {}
  if train and 'batch_stats' in variables:
    out, updates = module.apply(variables, *args, train=True,
                                mutable=['batch_stats'], rngs=rngs)
    return out, {**variables, **updates}
  return module.apply(variables, *args, train=train, rngs=rngs), variables


# ------------------------------------------------------------- objectives


def discriminator_losses(net: Net, real_out: jax.Array,
                         fake_out: jax.Array) -> jax.Array:
  """Per-example L_D [B] of ``net.objective`` (without a gradient penalty)."""
  if net.objective in ('minimax', 'nonsaturating'):
    return losses.gan_discriminator_loss(real_out, fake_out)
  if net.objective in ('wgan', 'wgan-gp'):
    return losses.wasserstein_critic_loss(real_out, fake_out)
  return losses.least_squares_discriminator_loss(real_out, fake_out)


def generator_losses(net: Net, fake_out: jax.Array) -> jax.Array:
  """Per-example L_G [B] of ``net.objective``."""
  if net.objective == 'minimax':
    return losses.gan_generator_loss_minimax(fake_out)
  if net.objective == 'nonsaturating':
    return losses.gan_generator_loss_nonsaturating(fake_out)
  if net.objective in ('wgan', 'wgan-gp'):
    return losses.wasserstein_generator_loss(fake_out)
  return losses.least_squares_generator_loss(fake_out)


def _discriminator_terms(net: Net, d_vars, real, fake, cond, key, *,
                         train: bool):
  """(per-example L_D incl. penalty, updated D variables, metrics [B])."""
  disc = discriminator_module(net)
  real_out, d_vars = apply(disc, d_vars, real, cond, train=train,
                           dropout_rng=dropout_key(net, key, _REAL))
  fake_out, d_vars = apply(disc, d_vars, fake, cond, train=train,
                           dropout_rng=dropout_key(net, key, _FAKE))
  per = discriminator_losses(net, real_out, fake_out)
  metrics = {'d_real': real_out, 'd_fake': fake_out}
  if net.objective in ('wgan', 'wgan-gp'):
    metrics['wasserstein'] = real_out - fake_out
  if net.objective == 'wgan-gp':
    # No batch norm here (validate): examples are independent. The
    # penalty's critic runs in float32 whatever the compute dtype: its
    # input-gradient norm is compared with 1 and differentiated again.
    critic = lambda v: apply(steps.float32_module(disc), d_vars, v, cond,
                             train=train,
                             dropout_rng=dropout_key(net, key, _PENALTY))[0]
    gp = losses.gradient_penalty(critic, real, fake, key)
    metrics['gradient_penalty'] = gp
    per = per + net.gp_weight * gp
  metrics['d_loss'] = per
  return per, d_vars, metrics


# ----------------------------------------------------------------- contract



def check_d_optimizer(config, whose: str = "the discriminator's") -> None:
  """Raises `ConfigError` when ``config.d_optimizer`` is missing."""
  if 'd_optimizer' not in config:
    raise ConfigError(f'config.d_optimizer is missing: {whose} '
                      'optimizer (same fields as config.optimizer).')


def check_tanh_data(config, generator: str = 'the generator ends') -> None:
  """Raises `ConfigError` unless the data are 8-bit images in [-1, 1], the
  range of a generator that ends in Tanh."""
  d = config.data
  if d.value_range != 'symmetric' or d.binarize != 'none' or d.dequantize:
    raise ConfigError(
        f'{generator} in Tanh, so the data must be 8-bit images scaled '
        "to [-1, 1]: set config.data.value_range='symmetric', "
        "config.data.binarize='none' and config.data.dequantize=False (got "
        f'{d.value_range!r}, {d.binarize!r}, {d.dequantize}).')

def validate(config, dataset) -> None:
  """Checks ``config.model`` (and the data/optimizer fields it relies on)."""
  m = config.model
  choices = (('architecture', ARCHITECTURES), ('objective', OBJECTIVES),
             ('latent_prior', LATENT_PRIORS), ('g_norm', G_NORMS),
             ('d_norm', adv.NORMS))
  for field, allowed in choices:
    if m[field] not in allowed:
      raise ConfigError(f'config.model.{field}={m[field]!r} is not one of '
                        f'{allowed}.')
  if m.latent_dim <= 0:
    raise ConfigError(f'config.model.latent_dim={m.latent_dim} must be > 0.')
  if isinstance(m.d_steps, bool) or not isinstance(m.d_steps, int) or (
      m.d_steps < 1):
    raise ConfigError(f'config.model.d_steps={m.d_steps!r} must be an '
                      'integer >= 1.')
  if config.train.batch_size % m.d_steps:
    raise ConfigError(
        f'config.train.batch_size={config.train.batch_size} must be a '
        f'multiple of config.model.d_steps={m.d_steps}: each step deals the '
        'batch into d_steps discriminator minibatches.')
  if m.objective == 'wgan-gp' and m.d_norm == 'batch':
    raise ConfigError(
        "config.model.d_norm='batch' cannot be used with objective "
        "'wgan-gp': the gradient penalty needs per-example input-gradients; "
        "use 'layer' or 'none' (Gulrajani et al. 2017, Sec. 4).")
  if m.objective == 'wgan' and m.clip_value <= 0:
    raise ConfigError(f'config.model.clip_value={m.clip_value} must be > 0.')
  if m.objective == 'wgan-gp' and m.gp_weight < 0:
    raise ConfigError(f'config.model.gp_weight={m.gp_weight} must be >= 0.')
  if isinstance(m.d_dropout, bool) or not isinstance(
      m.d_dropout, (int, float)) or not 0 <= m.d_dropout < 1:
    raise ConfigError(f'config.model.d_dropout={m.d_dropout!r} must be a '
                      'rate in [0, 1).')
  base.check_num_classes(m.num_classes, dataset)
  check_d_optimizer(config)
  if dataset.image_shape is None:
    if m.architecture != 'mlp':
      raise ConfigError(
          f'config.model.architecture={m.architecture!r} needs images; '
          f'dataset {dataset.name!r} gives points: use \'mlp\'.')
    return
  if m.architecture == 'dcgan':
    adv.dcgan_start_shape(m.image_shape, len(m.g_channels))
    if not m.d_channels:
      raise ConfigError('config.model.d_channels must not be empty.')
  check_tanh_data(config)


def init(key: jax.Array, batch, *, net: Net) -> Any:
  """{'generator': variables, 'discriminator': variables}."""
  g_key, d_key = jax.random.split(key)
  x = examples(batch)
  cond = one_hot(net, batch['label'])
  z = jnp.zeros((x.shape[0], net.latent_dim), jnp.float32)
  return {
      'generator': generator_module(net).init(g_key, z, cond, train=False),
      'discriminator': discriminator_module(net).init(d_key, x, cond,
                                                      train=False),
  }


def _latents(key: jax.Array, m: int, *, net: Net):
  """(z [m, latent_dim], the interpolates' key) of one discriminator pass
  with `key`: the one place its key is split, so `generator_forward` draws
  the latents `discriminator_step` would."""
  z_key, gp_key = jax.random.split(key)
  return sample_latent(z_key, m, net=net), gp_key


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """Both players' losses on a batch, as per-example metrics.

  Draws one latent per example, generates, and scores the real and the
  generated rows. With ``train=False`` batch norm uses its running
  averages (evaluation); with True, batch statistics (the updated averages
  are discarded: the two-player step, `make_train_step`, owns the updates).

  Args:
    params: {'generator': variables, 'discriminator': variables}.
    batch: preprocessed {'image' [B, H, W, C] in [-1, 1] or 'point' [B, D],
      'label' [B], 'mask' [B]}.
    key: PRNG key for the latents (and the interpolates of 'wgan-gp').
    net: the Net.
    train: batch statistics (True) or running averages (False).

  Returns:
    (the discriminator's loss: mean over unmasked rows of L_D, {'d_loss',
    'g_loss', 'd_real', 'd_fake' (raw outputs), and for the Wasserstein
    objectives 'wasserstein' (f(x) - f(G(z))), for 'wgan-gp'
    'gradient_penalty'}, each [B]).
  """
  real = examples(batch)
  cond = one_hot(net, batch['label'])
  z, gp_key = _latents(key, real.shape[0], net=net)
  fake, _ = apply(generator_module(net), params['generator'], z, cond,
                  train=train)
  per, _, metrics = _discriminator_terms(net, params['discriminator'], real,
                                         fake, cond, gp_key, train=train)
  metrics['g_loss'] = generator_losses(net, metrics['d_fake'])
  return steps.masked_mean(per, batch.get('mask')), metrics


def discriminator_step(g_vars, d_vars, d_opt_state, real, labels, mask, key,
                       *, net: Net, tx: 'TwoPlayerOptimizer', fake=None):
  """One discriminator update; the generator's variables are only read.

  Args:
    g_vars, d_vars: the two networks' variables.
    d_opt_state: the discriminator's optimizer state.
    real: a minibatch of real examples [m, ...]; labels, mask: [m].
    key: split into (latents, interpolates).
    net, tx: the Net and the `TwoPlayerOptimizer`.
    fake: G(z) [m, ...] for the latents of ``key`` (`generator_forward`),
      when the caller has them already; default: generated here.

  Returns:
    (d_vars, d_opt_state, scalar metrics): new discriminator variables
    (weights, and running statistics updated by its real then fake pass),
    clipped to [-clip_value, clip_value] for 'wgan'.
  """
  z, gp_key = _latents(key, real.shape[0], net=net)
  cond = one_hot(net, labels)
  if fake is None:
    fake, _ = apply(generator_module(net), g_vars, z, cond, train=True)
  fake = jax.lax.stop_gradient(fake)

  def objective(d_params):
    per, new_vars, metrics = _discriminator_terms(
        net, {**d_vars, 'params': d_params}, real, fake, cond, gp_key,
        train=True)
    return steps.masked_mean(per, mask), (new_vars, metrics)

  (_, (new_vars, metrics)), grads = jax.value_and_grad(
      objective, has_aux=True)(d_vars['params'])
  updates, d_opt_state = tx.discriminator.update(grads, d_opt_state,
                                                 d_vars['params'])
  d_params = optax.apply_updates(d_vars['params'], updates)
  if net.objective == 'wgan':
    d_params = jax.tree.map(
        lambda p: jnp.clip(p, -net.clip_value, net.clip_value), d_params)
  scalars = {k: steps.masked_mean(v, mask) for k, v in metrics.items()}
  scalars['d_grad_norm'] = optax.tree.norm(grads)
  return {**new_vars, 'params': d_params}, d_opt_state, scalars


def generator_step(g_vars, d_vars, g_opt_state, labels, key, *, net: Net,
                   tx: 'TwoPlayerOptimizer'):
  """One generator update; the discriminator's variables are only read.

  Args:
    g_vars, d_vars: the two networks' variables.
    g_opt_state: the generator's optimizer state.
    labels: int [m]: one latent is drawn per label (the labels condition a
      conditional GAN; their number is the minibatch size).
    key: the latents' key.
    net, tx: the Net and the `TwoPlayerOptimizer`.

  Returns:
    (g_vars, g_opt_state, scalar metrics {'g_loss', 'g_grad_norm'}).
  """
  cond = one_hot(net, labels)
  z = sample_latent(key, labels.shape[0], net=net)
  gen, disc = generator_module(net), discriminator_module(net)

  def objective(g_params):
    fake, new_vars = apply(gen, {**g_vars, 'params': g_params}, z, cond,
                           train=True)
    fake_out, _ = apply(disc, d_vars, fake, cond, train=True,
                        dropout_rng=dropout_key(net, key, _GENERATOR))
    return generator_losses(net, fake_out).mean(), new_vars

  (g_loss, new_vars), grads = jax.value_and_grad(
      objective, has_aux=True)(g_vars['params'])
  return _generator_update(new_vars, grads, g_loss, g_opt_state, tx)


def _generator_update(new_vars, grads, g_loss, g_opt_state,
                      tx: 'TwoPlayerOptimizer'):
  """The generator's optimizer step on `grads` (w.r.t. ``new_vars
  ['params']``, the weights before it); its running statistics from
  `new_vars`."""
  updates, g_opt_state = tx.generator.update(grads, g_opt_state,
                                             new_vars['params'])
  g_params = optax.apply_updates(new_vars['params'], updates)
  return ({**new_vars, 'params': g_params}, g_opt_state,
          {'g_loss': g_loss, 'g_grad_norm': optax.tree.norm(grads)})


def generator_forward(g_vars, labels, key, *, net: Net):
  """G(z) in training mode for the latents a `discriminator_step` with
  `key` draws, kept for the generator's update (``net.reuse_fakes``).

  Returns:
    (fake [m, ...], its pullback from a cotangent of `fake` to the
    generator's 'params', the generator's variables with the running
    statistics of this pass).
  """
  z, _ = _latents(key, labels.shape[0], net=net)
  cond = one_hot(net, labels)
  gen = generator_module(net)
  fake, pullback, new_vars = jax.vjp(
      lambda p: apply(gen, {**g_vars, 'params': p}, z, cond, train=True),
      g_vars['params'], has_aux=True)
  return fake, pullback, new_vars


def generator_step_on_fakes(forward, d_vars, g_opt_state, labels, key, *,
                            net: Net, tx: 'TwoPlayerOptimizer'):
  """One generator update through the fakes of `generator_forward`
  (`forward`) against the discriminator `d_vars`: `generator_step` with
  the latents of that pass instead of fresh ones, without running G again.

  Args:
    forward: (fake, pullback, new_vars) of `generator_forward`.
    d_vars: the discriminator's variables (only read).
    g_opt_state: the generator's optimizer state.
    labels: int [m], the labels of `forward`'s pass.
    key: the discriminator pass's dropout key (as in `generator_step`).
    net, tx: the Net and the `TwoPlayerOptimizer`.

  Returns:
    (g_vars, g_opt_state, scalar metrics {'g_loss', 'g_grad_norm'}).
  """
  fake, pullback, new_vars = forward
  cond = one_hot(net, labels)

  def objective(fake):
    fake_out, _ = apply(discriminator_module(net), d_vars, fake, cond,
                        train=True,
                        dropout_rng=dropout_key(net, key, _GENERATOR))
    return generator_losses(net, fake_out).mean()

  g_loss, fake_grad = jax.value_and_grad(objective)(fake)
  (grads,) = pullback(fake_grad)
  return _generator_update(new_vars, grads, g_loss, g_opt_state, tx)


def deal(x: jax.Array, k: int) -> jax.Array:
  """[k * m, ...] -> [k, m, ...]: minibatch i holds rows i, i + k, ...

  Dealing (rather than cutting into blocks) spreads every minibatch over
  all the devices a data-sharded batch lives on.
  """
  m = x.shape[0] // k
  return x.reshape((m, k) + x.shape[1:]).swapaxes(0, 1)


def make_train_step(*, net: Net, tx: 'TwoPlayerOptimizer',
                    preprocess: Callable, config) -> Callable:
  """The two-player step ``(state, batch, train_key) -> (state, metrics)``.

  k = ``net.d_steps`` `discriminator_step`s (unrolled, one dealt
  minibatch and key each), then one `generator_step` against the updated
  discriminator (with ``net.reuse_fakes``: `generator_step_on_fakes`
  through the last discriminator update's fakes); then the EMA of all
  variables when ``config.train.ema_decay`` > 0 (as in the generic step).

  Metrics (scalars): the discriminator's averaged over its k updates
  ('d_loss', 'd_real', 'd_fake', 'd_grad_norm', 'wasserstein',
  'gradient_penalty'), the generator's ('g_loss', 'g_grad_norm'), and
  'loss' = 'd_loss' (the shared loop logs 'loss').
  """
  k = net.d_steps
  ema_decay = config.train.ema_decay
  d_update = functools.partial(discriminator_step, net=net, tx=tx)
  g_update = functools.partial(generator_step, net=net, tx=tx)

  def step(state, batch, train_key):
    key = jax.random.fold_in(train_key, state.step)
    pre_key, d_key, g_key = jax.random.split(key, 3)
    batch = preprocess(batch, pre_key)
    g_vars = state.params['generator']
    xs = (deal(examples(batch), k), deal(batch['label'], k),
          deal(batch['mask'], k), jax.random.split(d_key, k))

    # k is static and small: a Python loop, unrolled into the jitted step.
    # Not a `lax.scan`: XLA:CPU leaves its fast convolution path for the
    # kernel gradients of convolutions inside a loop body (far slower for a
    # DCGAN discriminator), and unrolling k steps costs little compile time.
    d_vars = state.params['discriminator']
    d_opt = state.opt_state['discriminator']
    per_step = []
    forward = None
    for i in range(k):
      if net.reuse_fakes and i == k - 1:
        forward = generator_forward(g_vars, xs[1][i], xs[3][i], net=net)
      d_vars, d_opt, metrics = d_update(
          g_vars, d_vars, d_opt, *(x[i] for x in xs),
          fake=None if forward is None else forward[0])
      per_step.append(metrics)
    d_metrics = jax.tree.map(lambda *v: jnp.stack(v), *per_step)
    if forward is None:
      g_vars, g_opt, g_metrics = g_update(
          g_vars, d_vars, state.opt_state['generator'], xs[1][-1], g_key)
    else:
      g_vars, g_opt, g_metrics = generator_step_on_fakes(
          forward, d_vars, state.opt_state['generator'], xs[1][-1], g_key,
          net=net, tx=tx)
    params = {**state.params, 'generator': g_vars, 'discriminator': d_vars}
    ema = state.ema_params
    if ema_decay:
      ema = steps.ema_update(ema, params, ema_decay)
    metrics = {name: v.mean() for name, v in d_metrics.items()}
    metrics.update(g_metrics)
    metrics['loss'] = metrics['d_loss']
    opt_state = {'generator': g_opt, 'discriminator': d_opt}
    return state.replace(step=state.step + 1, params=params,
                         opt_state=opt_state, ema_params=ema), metrics

  return step


@dataclasses.dataclass(frozen=True)
class TwoPlayerOptimizer:
  """Separate optax optimizers for the generator and the discriminator.

  ``init(params)`` gives ``{'generator': ..., 'discriminator': ...}``
  optimizer states for the 'params' collection of each network's
  variables (running statistics are not optimized).
  """
  generator: optax.GradientTransformation
  discriminator: optax.GradientTransformation

  def init(self, params) -> dict[str, Any]:
    return {
        'generator': self.generator.init(params['generator']['params']),
        'discriminator': self.discriminator.init(
            params['discriminator']['params']),
    }


def make_optimizer(config, d_steps: int | None = None) -> TwoPlayerOptimizer:
  """``config.optimizer`` for G and ``config.d_optimizer`` for D.

  Both are built by `jaxgen.steps.make_optimizer` (same fields); the
  discriminator's schedule spans its num_steps * d_steps updates.
  """
  check_d_optimizer(config)
  num_steps = config.train.num_steps
  k = config.model.d_steps if d_steps is None else d_steps
  return TwoPlayerOptimizer(
      generator=steps.make_optimizer(config.optimizer, num_steps),
      discriminator=steps.make_optimizer(config.d_optimizer, num_steps * k))


def to_uint8(x: jax.Array) -> jax.Array:
  """Generator outputs in [-1, 1] -> uint8 0..255 (rounded, clipped)."""
  return jnp.round(jnp.clip((x + 1.0) * 127.5, 0.0, 255.0)).astype(jnp.uint8)


def generate(params, z: jax.Array, *, net: Net, labels=None) -> jax.Array:
  """G(z) in inference mode (running batch statistics).

  Args:
    params: {'generator': variables, ...}.
    z: latents [N, L].
    net: the Net.
    labels: int [N] for a conditional GAN (default: cycling 0..K-1).

  Returns:
    uint8 [N, H, W, C] images, or float32 [N, D] points.
  """
  cond = one_hot(net, base.default_labels(net.num_classes, z.shape[0],
                                          labels))
  x = generator_module(net).apply(params['generator'], z, cond, train=False)
  return x if is_points(net) else to_uint8(x)


def sample(params, key, num: int, *, net: Net, labels=None) -> jax.Array:
  """`num` samples G(z), z ~ p(z): uint8 [num, H, W, C] or float32 [num, D].

  A conditional GAN takes `labels` int [num] (default: 0, 1, ..., cycling
  through the classes).
  """
  return generate(params, sample_latent(key, num, net=net), net=net,
                  labels=labels)


def interpolate(params, key, *, net: Net, num_paths: int = 4,
                num_steps: int = 8, spherical: bool = True, labels=None):
  """Samples along paths between pairs of random latents.

  Args:
    params: the trained variables.
    key: draws the 2 * num_paths end points from the prior.
    num_paths: rows.
    num_steps: points per path, ends included.
    spherical: slerp (the natural path for a Gaussian prior, whose mass
      lies near a sphere) or a straight line.
    labels: for a conditional GAN, int [num_paths]: one class per path.

  Returns:
    uint8 [num_paths, num_steps, H, W, C] (or float32 [..., D] for points).
  """
  ends = sample_latent(key, 2 * num_paths, net=net).reshape(
      num_paths, 2, net.latent_dim)
  path = lambda e: latent_lib.interpolation_path(e[0], e[1], num_steps,
                                                 spherical)
  z = jax.vmap(path)(ends).reshape(num_paths * num_steps, net.latent_dim)
  if net.num_classes:
    labels = jnp.repeat(
        base.default_labels(net.num_classes, num_paths, labels), num_steps)
  out = generate(params, z, net=net, labels=labels)
  return out.reshape((num_paths, num_steps) + out.shape[1:])
