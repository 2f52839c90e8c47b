r"""pix2pix: paired image-to-image translation with a conditional GAN.

Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional
Adversarial Networks", CVPR 2017.

A generator G (a U-Net, `jaxgen.nn.translation.UNetGenerator`) maps an
input image x to a translation G(x); a PatchGAN discriminator D
(`jaxgen.nn.translation.PatchDiscriminator`) sees x concatenated with
either the target y or G(x) and gives one logit per patch. One training
step is one D update, then one G update against the updated D (Sec. 3.3):

    D <- D - opt_D(grad_D  mean_{b, patches} (softplus(-D(x, y))
                                              + softplus(D(x, G(x)))) / 2)
    G <- G - opt_G(grad_G  mean_b [mean_patches softplus(-D(x, G(x)))
                                   + lambda mean_pixels |y - G(x)|])

(eq. 4; `jaxgen.losses.patch_discriminator_loss`,
`jaxgen.losses.pix2pix_generator_loss`). G's only noise is the dropout of
its innermost decoder layers, applied at training and at test time
(Sec. 3.2).

Data. The pairs are built from the images of any dataset by
`jaxgen.data.paired` (``net.task``: 'edges', 'inpaint', 'superres' or
'colorize'): each target y is an image of the batch, scaled to [-1, 1],
and x is made from it inside the step. The family has no data source of
its own. x may have other channels than y ('inpaint': C + 1, 'colorize':
one luminance channel for RGB targets): G outputs y's channels and D sees
x and y concatenated.

State: ``TrainState.params`` is ``{'generator': {'params': ...},
'discriminator': {'params': ...}, 'bank': uint8 [bank_size, H, W, C]}``.
The bank is a ring buffer of the most recent training images (row
``(s * B + i) mod bank_size`` holds row i of step s's batch), written by the
step, never optimized, checkpointed with the weights. `sample` translates
the task inputs of its rows, so the trainer, which gives `sample` only a
key, draws translations of real training inputs (rows not yet written are
blank images). The optimizer state is ``{'generator': ..., 'discriminator':
...}`` (`jaxgen.models.gan.TwoPlayerOptimizer`). With
``config.train.ema_decay`` > 0 the EMA covers both nets' weights and holds
the current bank.

Randomness: step s uses ``fold_in(train_key, s)``, split into
(preprocess, task, dropout) keys: the task key draws the inpainting
squares, the dropout key G's masks (the same masks in D's and G's update,
so both see one G(x)). `loss_fn`, `translate` and `sample` take their keys
the same way.

Mixed precision: with ``config.train.compute_dtype = 'bfloat16'`` the
train step builds both players through `jaxgen.steps.compute_module`, so
their layers compute in bfloat16; variables, optimizer states and every
loss (from the float32-cast outputs) stay float32, and evaluation and
translation run in float32.

No likelihood (``LIKELIHOOD = None``). `loss_fn` gives per-example
metrics for evaluation: 'l1' (mean absolute error of G(x) against y on the
[0, 1] pixel scale), 'psnr' (dB, on the same scale), both players' losses
and D's mean patch logits; samples are scored by `jaxgen.quality`.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgen import losses
from jaxgen import steps
from jaxgen.data import paired
from jaxgen.data import transforms
from jaxgen.errors import ConfigError
from jaxgen.models import gan
from jaxgen.nn import translation as nets

LIKELIHOOD = None  # no density: L1/PSNR against the targets, sample quality
log_likelihood = None

TASKS = paired.TASKS


class Net(nn.Module):
  """The generator/discriminator pair of one task; fields are config.model.

  Attributes:
    image_shape: (H, W, C) of the targets; H and W divisible by
      2^len(g_channels).
    task: 'edges' | 'inpaint' | 'superres' | 'colorize'
      (`jaxgen.data.paired`).
    hole: the side of the inpainting square ('inpaint').
    factor: the pooling factor of 'superres'.
    g_channels: the U-Net encoder's stride-2 convolutions.
    g_res_blocks: residual blocks at the U-Net's lowest resolution.
    g_norm: 'instance' or 'none'.
    g_dropout: the decoder's dropout rate (G's noise; 0: deterministic).
    g_dropout_layers: decoder layers with dropout, innermost first.
    d_channels: PatchGAN convolutions' features.
    d_strides: their strides; with `d_kernel` they set the patch size
      (`receptive_field`).
    d_kernel: the PatchGAN kernel size.
    leaky_slope: D's LeakyReLU slope.
    l1_weight: lambda of the L1 term (eq. 4; the paper's 100).
    bank_size: rows of the training-image ring buffer `sample` draws from.
  """
  image_shape: Sequence[int] = (28, 28, 1)
  task: str = 'edges'
  hole: int = 12
  factor: int = 4
  g_channels: Sequence[int] = (32, 64)
  g_res_blocks: int = 1
  g_norm: str = 'instance'
  g_dropout: float = 0.5
  g_dropout_layers: int = 1
  d_channels: Sequence[int] = (32, 64)
  d_strides: Sequence[int] = (2, 1)
  d_kernel: int = 4
  leaky_slope: float = 0.2
  l1_weight: float = 100.0
  bank_size: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array, y: jax.Array, *,
               deterministic: bool = True):
    """(G(x), D(x, y)): both nets as children, e.g. for `nn.tabulate`."""
    fake = generator_module(self, name='generator')(
        x, deterministic=deterministic)
    return fake, discriminator_module(self, name='discriminator')(x, y)


def generator_module(net: Net, **kwargs) -> nets.UNetGenerator:
  """The U-Net built from `net`'s fields (`kwargs`: name, parent); in
  ``config.train.compute_dtype`` when `net` is the train step's
  `jaxgen.steps.ComputeDtypeNet` (`jaxgen.steps.compute_module`)."""
  return steps.compute_module(net, nets.UNetGenerator(
      net.image_shape[-1], tuple(net.g_channels), net.g_res_blocks,
      net.g_norm, net.g_dropout, net.g_dropout_layers, **kwargs))


def discriminator_module(net: Net, **kwargs) -> nets.PatchDiscriminator:
  """The PatchGAN built from `net`'s fields; in the compute dtype as G."""
  return steps.compute_module(net, nets.PatchDiscriminator(
      tuple(net.d_channels), tuple(net.d_strides), net.d_kernel,
      net.leaky_slope, **kwargs))


def receptive_field(net: Net) -> tuple[int, int, int]:
  """(size, jump, offset) of D's patches (`nets.patch_receptive_field`)."""
  return nets.patch_receptive_field(net.d_kernel, net.d_strides)


def task_inputs(net: Net, targets: jax.Array, key: jax.Array) -> jax.Array:
  """The inputs x of ``net.task`` for targets y in [-1, 1] [B, H, W, C]."""
  return paired.task_input(net.task, targets, key, hole=net.hole,
                           factor=net.factor)


def translate(params, inputs: jax.Array, key: jax.Array, *,
              net: Net) -> jax.Array:
  """G(x) in [-1, 1], float [B, H, W, C], with dropout masks from `key`.

  Args:
    params: {'generator': variables, ...} (or the generator's variables).
    inputs: x, float [B, H, W, C_in] (`task_inputs`).
    key: the dropout key (unused when ``net.g_dropout`` is 0).
    net: the Net.
  """
  g_vars = params['generator'] if 'generator' in params else params
  gen = generator_module(net)
  if not net.g_dropout:
    return gen.apply(g_vars, inputs)
  return gen.apply(g_vars, inputs, deterministic=False,
                   rngs={'dropout': key})


def _discriminate(net: Net, d_vars, inputs, images) -> jax.Array:
  return discriminator_module(net).apply(d_vars, inputs, images)


# ----------------------------------------------------------------- contract


def validate(config, dataset) -> None:
  """Checks ``config.model`` and the data fields the family relies on."""
  m = config.model
  if dataset.image_shape is None:
    raise ConfigError(f'config.data.name={config.data.name!r} gives points; '
                      'pix2pix translates images.')
  paired.check_task_fields(m.task, m.image_shape, m.hole, m.factor)
  nets.check_net_fields(m)
  if isinstance(m.g_dropout, bool) or not 0 <= m.g_dropout < 1:
    raise ConfigError(f'config.model.g_dropout={m.g_dropout!r} must be a '
                      'rate in [0, 1).')
  if m.l1_weight < 0:
    raise ConfigError(f'config.model.l1_weight={m.l1_weight} must be >= 0.')
  if not isinstance(m.bank_size, int) or m.bank_size < 1:
    raise ConfigError(f'config.model.bank_size={m.bank_size!r} must be an '
                      'integer >= 1.')
  gan.check_d_optimizer(config)
  gan.check_tanh_data(config)


def init(key: jax.Array, batch, *, net: Net) -> Any:
  """{'generator', 'discriminator': variables, 'bank': zeros}."""
  g_key, d_key = jax.random.split(key)
  y = batch['image']
  x = task_inputs(net, y, jax.random.key(0))
  return {
      'generator': generator_module(net).init(g_key, x),
      'discriminator': discriminator_module(net).init(d_key, x, y),
      'bank': jnp.zeros((net.bank_size,) + tuple(net.image_shape),
                        jnp.uint8),
  }


def _keys(key: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(task, dropout) keys of one evaluation, translation or sample."""
  task_key, drop_key = jax.random.split(key)
  return task_key, drop_key


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """Both players' objectives and the translation's errors, per example.

  G keeps its dropout in evaluation too (its noise): ``train`` changes
  nothing here.

  Args:
    params: the family's variables.
    batch: preprocessed {'image' [B, H, W, C] in [-1, 1], 'mask' [B], ...}.
    key: split into the task and dropout keys.
    net: the Net.
    train: unused (no batch statistics).

  Returns:
    (the mean generator objective over unmasked rows, {'g_loss', 'd_loss',
    'l1', 'psnr', 'd_real', 'd_fake'} each [B]).
  """
  del train
  task_key, drop_key = _keys(key)
  target = batch['image']
  x = task_inputs(net, target, task_key)
  fake = translate(params, x, drop_key, net=net)
  real_l = _discriminate(net, params['discriminator'], x, target)
  fake_l = _discriminate(net, params['discriminator'], x, fake)
  g_loss = losses.pix2pix_generator_loss(fake_l, fake, target, net.l1_weight)
  metrics = {
      'g_loss': g_loss,
      'd_loss': losses.patch_discriminator_loss(real_l, fake_l).mean((1, 2)),
      # On the [0, 1] pixel scale: half the [-1, 1] differences.
      'l1': losses.l1_per_example(fake, target) / 2.0,
      'psnr': losses.psnr(fake, target, data_range=2.0),
      'd_real': real_l.mean((1, 2)),
      'd_fake': fake_l.mean((1, 2)),
  }
  return steps.masked_mean(g_loss, batch.get('mask')), metrics


def update_bank(bank: jax.Array, images: jax.Array,
                step: jax.Array) -> jax.Array:
  """Writes a batch's uint8 images into the ring buffer at step `step`.

  Row i of step s goes to ``(s * B + i) mod bank_size``; with a batch
  larger than the bank, the last rows of the batch win.
  """
  n, b = bank.shape[0], images.shape[0]
  if b > n:
    images, offset = images[b - n:], b - n
  else:
    offset = 0
  rows = (step.astype(jnp.int32) * b + offset + jnp.arange(images.shape[0])
          ) % n
  return bank.at[rows].set(images.astype(bank.dtype))


def make_train_step(*, net: Net, tx: gan.TwoPlayerOptimizer,
                    preprocess: Callable, config) -> Callable:
  """The two-player step ``(state, batch, train_key) -> (state, metrics)``.

  One D update on (x, y) against (x, G(x)), then one G update against the
  updated D, then the bank and (with ``config.train.ema_decay`` > 0) the
  EMA. Metrics (scalars, means over unmasked rows): 'd_loss', 'g_loss',
  'l1' (the training batch's, [0, 1] scale), 'd_real', 'd_fake',
  'd_grad_norm', 'g_grad_norm', and 'loss' = 'g_loss'.
  """
  ema_decay = config.train.ema_decay

  def step(state, batch, train_key):
    key = jax.random.fold_in(train_key, state.step)
    pre_key, task_key, drop_key = jax.random.split(key, 3)
    raw = batch['image']
    batch = preprocess(batch, pre_key)
    target, mask = batch['image'], batch['mask']
    x = task_inputs(net, target, task_key)
    g_vars = state.params['generator']
    d_vars = state.params['discriminator']
    # G runs forward once: D's update sees G(x) as data, and G's gradient
    # is pulled back through the same forward pass (same dropout masks).
    fake, g_vjp = jax.vjp(
        lambda g_params: translate({**g_vars, 'params': g_params}, x,
                                   drop_key, net=net), g_vars['params'])

    def d_objective(d_params):
      v = {**d_vars, 'params': d_params}
      real_l = _discriminate(net, v, x, target)
      fake_l = _discriminate(net, v, x, fake)
      per = losses.patch_discriminator_loss(real_l, fake_l).mean((1, 2))
      return steps.masked_mean(per, mask), (real_l.mean((1, 2)),
                                            fake_l.mean((1, 2)))

    (d_loss, (d_real, d_fake)), d_grads = jax.value_and_grad(
        d_objective, has_aux=True)(d_vars['params'])
    updates, d_opt = tx.discriminator.update(
        d_grads, state.opt_state['discriminator'], d_vars['params'])
    d_vars = {**d_vars, 'params': optax.apply_updates(d_vars['params'],
                                                      updates)}

    def g_objective(out):
      fake_l = _discriminate(net, d_vars, x, out)
      per = losses.pix2pix_generator_loss(fake_l, out, target, net.l1_weight)
      return steps.masked_mean(per, mask), losses.l1_per_example(out, target)

    (g_loss, l1), out_grads = jax.value_and_grad(
        g_objective, has_aux=True)(fake)
    g_grads, = g_vjp(out_grads)
    updates, g_opt = tx.generator.update(
        g_grads, state.opt_state['generator'], g_vars['params'])
    g_vars = {**g_vars, 'params': optax.apply_updates(g_vars['params'],
                                                      updates)}
    bank = update_bank(state.params['bank'], raw, state.step)
    params = {'generator': g_vars, 'discriminator': d_vars, 'bank': bank}
    ema = state.ema_params
    if ema_decay:
      nets_only = lambda p: {k: p[k] for k in ('generator', 'discriminator')}
      ema = {**steps.ema_update(nets_only(ema), nets_only(params), ema_decay),
             'bank': bank}
    metrics = {
        'd_loss': d_loss, 'g_loss': g_loss, 'loss': g_loss,
        'l1': steps.masked_mean(l1, mask) / 2.0,
        'd_real': steps.masked_mean(d_real, mask),
        'd_fake': steps.masked_mean(d_fake, mask),
        'd_grad_norm': optax.tree.norm(d_grads),
        'g_grad_norm': optax.tree.norm(g_grads),
    }
    opt_state = {'generator': g_opt, 'discriminator': d_opt}
    return state.replace(step=state.step + 1, params=params,
                         opt_state=opt_state, ema_params=ema), metrics

  return step


def make_optimizer(config) -> gan.TwoPlayerOptimizer:
  """``config.optimizer`` for G, ``config.d_optimizer`` for D (one D update
  per step): `jaxgen.models.gan.make_optimizer`."""
  return gan.make_optimizer(config, d_steps=1)


def translation_rows(params, images: jax.Array, key: jax.Array, *,
                     net: Net) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(input, output, target) as uint8 [N, H, W, C] for a figure.

  Args:
    params: the family's variables.
    images: the targets, uint8 [N, H, W, C].
    key: split into the task and dropout keys.
    net: the Net.

  Returns:
    The input's image channels (for 'inpaint', the masked image; for
    'colorize', the luminance repeated in each of the target's channels,
    a grey image), G(x), and the targets, all uint8 [N, H, W, C].
  """
  task_key, drop_key = _keys(key)
  target = transforms.to_float(images, 'symmetric')
  x = task_inputs(net, target, task_key)
  out = translate(params, x, drop_key, net=net)
  channels = net.image_shape[-1]
  shown = x[..., :channels]
  if shown.shape[-1] < channels:
    shown = jnp.broadcast_to(shown[..., :1], shown.shape[:-1] + (channels,))
  return gan.to_uint8(shown), gan.to_uint8(out), gan.to_uint8(target)


def sample(params, key, num: int, *, net: Net) -> jax.Array:
  """G(x) for the inputs of the first `num` bank rows (cycling): uint8.

  Row i translates the task input of bank row ``i mod bank_size`` (a
  recent training image; the inpainting squares and dropout masks from
  `key`).

  Returns:
    uint8 [num, H, W, C].
  """
  rows = jnp.arange(num) % net.bank_size
  return translation_rows(params, params['bank'][rows], key, net=net)[1]


def reconstruct(params, batch, key, *, net: Net) -> jax.Array:
  """G(x) for a preprocessed batch's task inputs (targets: its images)."""
  task_key, drop_key = _keys(key)
  x = task_inputs(net, batch['image'], task_key)
  return gan.to_uint8(translate(params, x, drop_key, net=net))

