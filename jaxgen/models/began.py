r"""BEGAN: Boundary Equilibrium GAN with an autoencoder discriminator.

Berthelot, Schumm & Metz, "BEGAN: Boundary Equilibrium Generative
Adversarial Networks", arXiv:1703.10717, 2017.

The discriminator is an autoencoder AE (`jaxgen.nn.adversarial.
BEGANAutoencoder`); its per-example L1 reconstruction loss

    L(v) = mean_j |v_j - AE(v)_j|

is the quantity the players fight over (eqs. 4-5), with the balance term
k_t kept in [0, 1] by proportional control:

    L_D = L(x) - k_t L(G(z_D))           (discriminator, minimised)
    L_G = L(G(z_G))                      (generator, minimised)
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z_G))), 0, 1)
    M = L(x) + |gamma L(x) - L(G(z_G))|  (convergence measure)

gamma = E L(G(z)) / E L(x) at equilibrium trades diversity (high) against
quality (low). Both players' gradients are taken at the same parameters and
applied together, once per step, as in the paper; k_0 = ``net.k_init``.
No batch norm anywhere; ELUs; the generator has a linear output (images in
[-1, 1], clipped when converted to 8 bits).

State: ``TrainState.params`` is ``{'generator': {'params': ...},
'discriminator': {'params': ...}, 'balance': {'k': float32 []}}``: k_t is
part of the checkpointed state; ``opt_state`` is ``{'generator': ...,
'discriminator': ...}`` (`jaxgen.models.gan.make_optimizer`, with
``config.optimizer`` and ``config.d_optimizer``). The step key is
``fold_in(train_key, step)``, split into (preprocess, z_D, z_G).

Mixed precision: with ``config.train.compute_dtype = 'bfloat16'`` both
networks compute in bfloat16 in the train step
(`jaxgen.steps.compute_module`); the L1 losses, k_t and M are computed in
float32 from their float32-cast outputs.

No likelihood (``LIKELIHOOD = None``); `loss_fn` reports both losses, the
autoencoder losses and M per example.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgen import losses
from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.models import gan
from jaxgen.nn import adversarial as adv

LIKELIHOOD = None  # no density: evaluated by sample quality
log_likelihood = None


class Net(nn.Module):
  """BEGAN's generator and autoencoder discriminator; fields: config.model.

  Attributes:
    image_shape: (H, W, C); H and W divide by 2^num_scales.
    latent_dim: N_z, the dimension of z ~ U[-1, 1]^N_z (as in the paper).
    embedding_dim: N_h, the autoencoder's bottleneck.
    channels: n, the width of the convolutional blocks.
    num_scales: up/down-samplings by 2 in the generator, encoder, decoder.
    repeat: 3x3 convolutions per block.
    gamma: the diversity ratio gamma in (0, 1].
    lambda_k: the proportional gain of the k_t update.
    k_init: k_0.
  """
  image_shape: Sequence[int] = (28, 28, 1)
  latent_dim: int = 64
  embedding_dim: int = 64
  channels: int = 64
  num_scales: int = 2
  repeat: int = 2
  gamma: float = 0.5
  lambda_k: float = 0.001
  k_init: float = 0.0

  @nn.compact
  def __call__(self, z: jax.Array, x: jax.Array):
    """(G(z), AE(x)): both nets as children, e.g. for `nn.tabulate`."""
    return (generator_module(self, name='generator')(z),
            discriminator_module(self, name='discriminator')(x))


def generator_module(net: Net, **kwargs) -> nn.Module:
  """G: z [B, N_z] -> [B, H, W, C]; in ``config.train.compute_dtype`` when
  `net` is the train step's `jaxgen.steps.ComputeDtypeNet`."""
  return steps.compute_module(net, adv.BEGANDecoder(
      tuple(net.image_shape), net.channels, net.num_scales, net.repeat,
      **kwargs))


def discriminator_module(net: Net, **kwargs) -> nn.Module:
  """AE: [B, H, W, C] -> [B, H, W, C]; in the compute dtype as G."""
  return steps.compute_module(net, adv.BEGANAutoencoder(
      tuple(net.image_shape), net.channels, net.num_scales, net.repeat,
      net.embedding_dim, **kwargs))


def sample_latent(key: jax.Array, num: int, *, net: Net) -> jax.Array:
  """z ~ U[-1, 1]^N_z: [num, N_z]."""
  return jax.random.uniform(key, (num, net.latent_dim), jnp.float32, -1.0,
                            1.0)


def validate(config, dataset) -> None:
  """Checks ``config.model`` and the data fields it relies on."""
  m = config.model
  for field in ('latent_dim', 'embedding_dim', 'channels', 'repeat'):
    if m[field] < 1:
      raise ConfigError(f'config.model.{field}={m[field]} must be >= 1.')
  if m.num_scales < 0:
    raise ConfigError(f'config.model.num_scales={m.num_scales} must be >= 0.')
  adv.dcgan_start_shape(m.image_shape, m.num_scales)
  if not 0.0 < m.gamma <= 1.0:
    raise ConfigError(f'config.model.gamma={m.gamma} must lie in (0, 1].')
  if m.lambda_k < 0:
    raise ConfigError(f'config.model.lambda_k={m.lambda_k} must be >= 0.')
  if not 0.0 <= m.k_init <= 1.0:
    raise ConfigError(f'config.model.k_init={m.k_init} must lie in [0, 1].')
  d = config.data
  if d.value_range != 'symmetric' or d.binarize != 'none' or d.dequantize:
    raise ConfigError(
        'BEGAN works on 8-bit images scaled to [-1, 1]: set '
        "config.data.value_range='symmetric', config.data.binarize='none' "
        f'and config.data.dequantize=False (got {d.value_range!r}, '
        f'{d.binarize!r}, {d.dequantize}).')
  gan.check_d_optimizer(config)
  del dataset


def init(key: jax.Array, batch, *, net: Net) -> Any:
  """{'generator', 'discriminator': variables, 'balance': {'k': k_0}}."""
  g_key, d_key = jax.random.split(key)
  x = batch['image']
  z = jnp.zeros((x.shape[0], net.latent_dim), jnp.float32)
  return {
      'generator': generator_module(net).init(g_key, z),
      'discriminator': discriminator_module(net).init(d_key, x),
      'balance': {'k': jnp.asarray(net.k_init, jnp.float32)},
  }


def autoencoder_loss(d_vars, x: jax.Array, *, net: Net) -> jax.Array:
  """L(x) = mean |x - AE(x)| per example: [B]."""
  return losses.autoencoder_l1_loss(
      x, discriminator_module(net).apply(d_vars, x))


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """Both players' losses on a batch, per example.

  Args:
    params: the state's params (see the module docstring).
    batch: preprocessed {'image' [B, H, W, C] in [-1, 1], 'label', 'mask'}.
    key: the latents' key (one z per example).
    net: the Net.
    train: unused (no batch norm, no dropout).

  Returns:
    (mean of L_D over unmasked rows, {'d_loss', 'g_loss', 'real_loss'
    (L(x)), 'fake_loss' (L(G(z))), 'convergence' (M per example)}, [B]).
  """
  del train
  x = batch['image']
  z = sample_latent(key, x.shape[0], net=net)
  fake = generator_module(net).apply(params['generator'], z)
  real_loss = autoencoder_loss(params['discriminator'], x, net=net)
  fake_loss = autoencoder_loss(params['discriminator'], fake, net=net)
  k = params['balance']['k']
  d_loss = losses.began_discriminator_loss(real_loss, fake_loss, k)
  metrics = {
      'd_loss': d_loss,
      'g_loss': losses.began_generator_loss(fake_loss),
      'real_loss': real_loss,
      'fake_loss': fake_loss,
      'convergence': losses.began_convergence(real_loss, fake_loss,
                                              net.gamma),
  }
  return steps.masked_mean(d_loss, batch.get('mask')), metrics


def make_optimizer(config) -> gan.TwoPlayerOptimizer:
  """``config.optimizer`` for G, ``config.d_optimizer`` for AE (one step
  each)."""
  return gan.make_optimizer(config, d_steps=1)


def make_train_step(*, net: Net, tx: gan.TwoPlayerOptimizer,
                    preprocess: Callable, config) -> Callable:
  """BEGAN's step: simultaneous G and D updates, then the k_t update.

  Both gradients are taken at the incoming parameters (the generator's
  update does not see the discriminator's, nor vice versa); k_t moves by
  lambda_k (gamma L(x) - L(G(z_G))) with batch means. Scalar metrics:
  'd_loss', 'g_loss', 'real_loss', 'fake_loss', 'k' (the value used in this
  step), 'convergence' (M_global), the gradient norms, and 'loss' =
  'd_loss'.
  """
  ema_decay = config.train.ema_decay
  gen = generator_module(net)

  def step(state, batch, train_key):
    key = jax.random.fold_in(train_key, state.step)
    pre_key, zd_key, zg_key = jax.random.split(key, 3)
    batch = preprocess(batch, pre_key)
    x, mask = batch['image'], batch['mask']
    g_vars, d_vars = state.params['generator'], state.params['discriminator']
    k = state.params['balance']['k']
    z_d = sample_latent(zd_key, x.shape[0], net=net)
    z_g = sample_latent(zg_key, x.shape[0], net=net)
    fake_d = jax.lax.stop_gradient(gen.apply(g_vars, z_d))

    def d_objective(d_params):
      v = {**d_vars, 'params': d_params}
      real_loss = autoencoder_loss(v, x, net=net)
      fake_loss = autoencoder_loss(v, fake_d, net=net)
      per = losses.began_discriminator_loss(real_loss, fake_loss, k)
      return steps.masked_mean(per, mask), steps.masked_mean(real_loss, mask)

    def g_objective(g_params):
      fake = gen.apply({**g_vars, 'params': g_params}, z_g)
      return losses.began_generator_loss(
          autoencoder_loss(d_vars, fake, net=net)).mean()

    (d_loss, real_loss), d_grads = jax.value_and_grad(
        d_objective, has_aux=True)(d_vars['params'])
    g_loss, g_grads = jax.value_and_grad(g_objective)(g_vars['params'])
    d_updates, d_opt = tx.discriminator.update(
        d_grads, state.opt_state['discriminator'], d_vars['params'])
    g_updates, g_opt = tx.generator.update(
        g_grads, state.opt_state['generator'], g_vars['params'])
    params = {
        'generator': {**g_vars,
                      'params': optax.apply_updates(g_vars['params'],
                                                    g_updates)},
        'discriminator': {**d_vars,
                          'params': optax.apply_updates(d_vars['params'],
                                                        d_updates)},
        'balance': {'k': losses.began_balance_update(
            k, real_loss, g_loss, net.gamma, net.lambda_k)},
    }
    ema = state.ema_params
    if ema_decay:
      ema = steps.ema_update(ema, params, ema_decay)
    metrics = {
        'd_loss': d_loss, 'g_loss': g_loss, 'real_loss': real_loss,
        'fake_loss': g_loss, 'k': k,
        'convergence': losses.began_convergence(real_loss, g_loss, net.gamma),
        'd_grad_norm': optax.tree.norm(d_grads),
        'g_grad_norm': optax.tree.norm(g_grads),
        'loss': d_loss,
    }
    opt_state = {'generator': g_opt, 'discriminator': d_opt}
    return state.replace(step=state.step + 1, params=params,
                         opt_state=opt_state, ema_params=ema), metrics

  return step


def generate(params, z: jax.Array, *, net: Net) -> jax.Array:
  """G(z) as uint8 images [N, H, W, C] for latents z [N, N_z]."""
  return gan.to_uint8(generator_module(net).apply(params['generator'], z))


def sample(params, key, num: int, *, net: Net) -> jax.Array:
  """`num` samples G(z), z ~ U[-1, 1]^N_z: uint8 [num, H, W, C]."""
  return generate(params, sample_latent(key, num, net=net), net=net)
