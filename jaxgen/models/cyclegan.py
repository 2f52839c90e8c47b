r"""CycleGAN: unpaired image-to-image translation with cycle consistency.

Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017.

Two generators, G: A -> B and F: B -> A (U-Nets without dropout,
`jaxgen.nn.translation.UNetGenerator`), and two PatchGAN discriminators,
D_A on domain A and D_B on domain B (unconditional
`jaxgen.nn.translation.PatchDiscriminator`), trained with the
least-squares objective (Mao et al. 2017; Zhu et al. 2017, Sec. 4). One
step updates both generators together, then both discriminators:

    G, F <- opt_G(grad  mean_b [LS_G(D_B(G(a))) + LS_G(D_A(F(b)))
                                + lambda_cyc L_cyc + lambda_id L_id])
    D_A, D_B <- opt_D(grad  mean_b [LS_D(D_A(a), D_A(pool_A(F(b))))
                                    + LS_D(D_B(b), D_B(pool_B(G(a))))])

with LS_G(o) = mean_patches (o - 1)^2 / 2, LS_D(r, f) = mean_patches
((r - 1)^2 + f^2) / 2, L_cyc = mean|F(G(a)) - a| + mean|G(F(b)) - b| (eq. 2)
and L_id = mean|F(a) - a| + mean|G(b) - b| (Sec. 5.2); `jaxgen.losses`.
The discriminators see generated images through an image history buffer
(Shrivastava et al., "Learning from Simulated and Unsupervised Images
through Adversarial Training", CVPR 2017, Sec. 2.3; Zhu et al. 2017,
Sec. 4), one per domain, of ``net.history_size`` images (`history_query`).

Data. The domains are made from the images of any dataset by
`jaxgen.data.paired`: domain A is the images as they are, domain B the
images thickened by a 3x3 dilation, and each batch of 2m images gives m of
each, the first half as A and the dilation of the second half as B
(`jaxgen.data.paired.unpaired_halves`), so no pair is ever seen. Row i of
A and row i of B are paired only to reduce the losses.

State: ``TrainState.params`` is ``{'generator': {'params': {'g_ab', 'g_ba'}},
'discriminator': {'params': {'d_a', 'd_b'}}, 'history': {'fake_a',
'fake_b': float32 [history_size, H, W, C], 'count_a', 'count_b': int32},
'bank': uint8 [bank_size, H, W, C]}`` (no 'history' when
``net.history_size`` is 0). The history buffers and the bank (a ring buffer
of recent training images, as in `jaxgen.models.pix2pix`) are written by
the step, never optimized, and checkpointed with the weights. The
optimizer state is `jaxgen.models.gan.TwoPlayerOptimizer`'s, the two
generators sharing one optimizer and the two discriminators the other (as
in the paper's code). With ``config.train.ema_decay`` > 0 the EMA covers
the weights and holds the current buffers.

Randomness: step s uses ``fold_in(train_key, s)``, split into
(preprocess, history) keys; the history key is split into one key per
domain and those into one per example.

Samples: `sample` gives F(b), thin digits recovered from the thickened
bank rows (domain A is the dataset's own images, so they are scored
against its test split). `loss_fn` also measures, on held-out images
whose pairing the model never used, how well F undoes the dilation
('l1', 'psnr') and G reproduces it ('l1_ab', 'psnr_ab').
Mixed precision: with ``config.train.compute_dtype = 'bfloat16'`` the
train step builds both players through `jaxgen.steps.compute_module`, so
their layers compute in bfloat16; variables, optimizer states and every
loss (from the float32-cast outputs) stay float32, and evaluation and
translation run in float32.

No likelihood (``LIKELIHOOD = None``).
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
from jaxgen.models import pix2pix
from jaxgen.nn import translation as nets

LIKELIHOOD = None  # no density: cycle/identity errors, sample quality
log_likelihood = None

TASKS = ('thicken',)
GENERATORS = ('g_ab', 'g_ba')
DISCRIMINATORS = ('d_a', 'd_b')


class Net(nn.Module):
  """Both generators and discriminators; fields are config.model.

  Attributes:
    image_shape: (H, W, C); H and W divisible by 2^len(g_channels).
    task: the domains; 'thicken' (the only one: A = the images, B = their
      3x3 dilations).
    g_channels: each U-Net's stride-2 encoder convolutions.
    g_res_blocks: residual blocks at the U-Nets' lowest resolution.
    g_norm: 'instance' (the paper's) or 'none'.
    d_channels, d_strides, d_kernel: each PatchGAN
      (`jaxgen.nn.translation.patch_receptive_field` gives its patch).
    leaky_slope: the discriminators' LeakyReLU slope.
    cycle_weight: lambda_cyc (the paper's 10).
    identity_weight: lambda_id (the paper's 0.5 lambda_cyc; 0: none).
    history_size: images in each history buffer (the paper's 50; 0: the
      discriminators see the current generated images only).
    bank_size: rows of the training-image ring buffer `sample` draws from.
  """
  image_shape: Sequence[int] = (28, 28, 1)
  task: str = 'thicken'
  g_channels: Sequence[int] = (16, 32)
  g_res_blocks: int = 1
  g_norm: str = 'instance'
  d_channels: Sequence[int] = (16, 32)
  d_strides: Sequence[int] = (2, 1)
  d_kernel: int = 4
  leaky_slope: float = 0.2
  cycle_weight: float = 10.0
  identity_weight: float = 5.0
  history_size: int = 50
  bank_size: int = 1000

  @nn.compact
  def __call__(self, a: jax.Array, b: jax.Array):
    """(G(a), F(b), D_A(a), D_B(b)), e.g. for `nn.tabulate`."""
    g, f = (generator_module(self, name=n) for n in GENERATORS)
    d_a, d_b = (discriminator_module(self, name=n) for n in DISCRIMINATORS)
    return g(a), f(b), d_a(None, a), d_b(None, b)


def generator_module(net: Net, **kwargs) -> nets.UNetGenerator:
  """One generator (no dropout: CycleGAN's generators are deterministic);
  in ``config.train.compute_dtype`` when `net` is the train step's
  `jaxgen.steps.ComputeDtypeNet` (`jaxgen.steps.compute_module`)."""
  return steps.compute_module(net, nets.UNetGenerator(
      net.image_shape[-1], tuple(net.g_channels), net.g_res_blocks,
      net.g_norm, 0.0, 0, **kwargs))


def discriminator_module(net: Net, **kwargs) -> nets.PatchDiscriminator:
  """One unconditional PatchGAN; in the compute dtype as the generator."""
  return steps.compute_module(net, nets.PatchDiscriminator(
      tuple(net.d_channels), tuple(net.d_strides), net.d_kernel,
      net.leaky_slope, **kwargs))


def generate(params, images: jax.Array, direction: str, *,
             net: Net) -> jax.Array:
  """G(images) ('g_ab': A -> B) or F(images) ('g_ba': B -> A), in [-1, 1].

  Args:
    params: the family's variables, or {'params': {'g_ab', 'g_ba'}}.
    images: float [N, H, W, C] in [-1, 1].
    direction: 'g_ab' or 'g_ba'.
    net: the Net.
  """
  g = params['generator'] if 'generator' in params else params
  return generator_module(net).apply({'params': g['params'][direction]},
                                     images)


def _discriminate(net: Net, d_params, name: str, images) -> jax.Array:
  return discriminator_module(net).apply({'params': d_params[name]}, None,
                                         images)


# ---------------------------------------------------------- history buffer


def history_init(size: int, image_shape: Sequence[int]) -> dict[str, Any]:
  """An empty buffer: ``{'images': zeros [size, H, W, C], 'count': 0}``."""
  return {'images': jnp.zeros((size,) + tuple(image_shape), jnp.float32),
          'count': jnp.zeros((), jnp.int32)}


def history_query(images: jax.Array, stored: jax.Array, count: jax.Array,
                  key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The image history buffer of Shrivastava et al. 2017 (as in CycleGAN).

  Examples are taken in order. While the buffer holds fewer than N =
  ``stored.shape[0]`` images, each generated image is stored and returned
  as it is. Once it is full, each is returned as it is with probability
  1/2; otherwise a stored image, uniform over the N, is returned in its
  place and the generated image takes its slot.

  Args:
    images: float [m, H, W, C], the current generated images.
    stored: float [N, H, W, C], the buffer (N >= 1).
    count: int32 scalar, images stored so far (at most N).
    key: split into one key per example.

  Returns:
    (the images for the discriminator [m, H, W, C], the new buffer, the new
    count).
  """
  size = stored.shape[0]

  def one(carry, x):
    stored, count = carry
    image, k = x
    coin_key, slot_key = jax.random.split(k)
    full = count >= size
    swap = full & jax.random.bernoulli(coin_key, 0.5)
    slot = jnp.where(full, jax.random.randint(slot_key, (), 0, size),
                     jnp.minimum(count, size - 1))
    old = stored[slot]
    out = jnp.where(swap, old, image)
    stored = stored.at[slot].set(jnp.where(full & ~swap, old, image))
    return (stored, jnp.minimum(count + 1, size)), out

  keys = jax.random.split(key, images.shape[0])
  (stored, count), out = jax.lax.scan(one, (stored, count), (images, keys))
  return out, stored, count


def _history(history, domain: str, images, key):
  if history is None:
    return images, None
  out, stored, count = history_query(images, history[f'fake_{domain}'],
                                     history[f'count_{domain}'], key)
  return out, {f'fake_{domain}': stored, f'count_{domain}': count}


# ----------------------------------------------------------------- contract


def validate(config, dataset) -> None:
  """Checks ``config.model`` and the data fields the family relies on."""
  m = config.model
  if dataset.image_shape is None:
    raise ConfigError(f'config.data.name={config.data.name!r} gives points; '
                      'CycleGAN translates images.')
  if m.task not in TASKS:
    raise ConfigError(f'config.model.task={m.task!r} is not one of '
                      f'{TASKS}.')
  nets.check_net_fields(m)
  for field in ('cycle_weight', 'identity_weight'):
    if m[field] < 0:
      raise ConfigError(f'config.model.{field}={m[field]} must be >= 0.')
  for field in ('history_size', 'bank_size'):
    low = 0 if field == 'history_size' else 1
    if not isinstance(m[field], int) or m[field] < low:
      raise ConfigError(f'config.model.{field}={m[field]!r} must be an '
                        f'integer >= {low}.')
  if config.train.batch_size % 2:
    raise ConfigError(
        f'config.train.batch_size={config.train.batch_size} must be even: '
        'each batch gives half its images to domain A and half to B.')
  gan.check_d_optimizer(config, whose="the discriminators'")
  gan.check_tanh_data(config, generator='the generators end')


def init(key: jax.Array, batch, *, net: Net) -> Any:
  """The four nets' weights, empty history buffers and an empty bank."""
  keys = jax.random.split(key, 4)
  x = batch['image']
  g = {n: generator_module(net).init(k, x)['params']
       for n, k in zip(GENERATORS, keys[:2])}
  d = {n: discriminator_module(net).init(k, None, x)['params']
       for n, k in zip(DISCRIMINATORS, keys[2:])}
  out = {'generator': {'params': g}, 'discriminator': {'params': d},
         'bank': jnp.zeros((net.bank_size,) + tuple(net.image_shape),
                           jnp.uint8)}
  if net.history_size:
    empty = history_init(net.history_size, net.image_shape)
    out['history'] = {'fake_a': empty['images'], 'count_a': empty['count'],
                      'fake_b': empty['images'], 'count_b': empty['count']}
  return out


def _generator_terms(net: Net, g_params, d_params, a, b):
  """Per-example objective of both generators, and its pieces."""
  gen = generator_module(net)
  g = lambda x: gen.apply({'params': g_params['g_ab']}, x)
  f = lambda x: gen.apply({'params': g_params['g_ba']}, x)
  fake_b, fake_a = g(a), f(b)
  cycle = losses.cycle_consistency_loss(a, f(fake_b), b, g(fake_a))
  if net.identity_weight:
    identity = losses.identity_loss(a, f(a), b, g(b))
  else:
    identity = jnp.zeros(a.shape[:1], a.dtype)
  per = losses.cyclegan_generator_loss(
      _discriminate(net, d_params, 'd_b', fake_b),
      _discriminate(net, d_params, 'd_a', fake_a), cycle, identity,
      net.cycle_weight, net.identity_weight)
  return per, {'cycle': cycle, 'identity': identity, 'fake_a': fake_a,
               'fake_b': fake_b}


def _discriminator_terms(net: Net, d_params, a, b, fake_a, fake_b):
  """Per-example LS objective of both discriminators."""
  per_patch = lambda name, real, fake: losses.least_squares_discriminator_loss(
      _discriminate(net, d_params, name, real),
      _discriminate(net, d_params, name, fake)).mean((1, 2))
  return per_patch('d_a', a, fake_a) + per_patch('d_b', b, fake_b)


def _pair_mask(mask):
  if mask is None:
    return None
  half = mask.shape[0] // 2
  return mask[:half] & mask[half:]


def loss_fn(params, batch, key, *, net: Net, train: bool = True):
  """The objectives and the translation errors, per image of the batch.

  The batch's first half is domain A, the dilation of its second half
  domain B (`jaxgen.data.paired.unpaired_halves`). Each row's terms are
  those of its own image in its domain: for an image a of A, D_B's
  least-squares generator loss on G(a), |F(G(a)) - a| ('cycle'),
  |F(a) - a| ('identity'), and D's terms on a (real, by D_A) and G(a)
  (generated, by D_B); for an image b of B the mirror terms. The sum over
  rows is the sum over pairs of eq. 3 (`jaxgen.losses.cyclegan_generator_loss`
  with the cycle and identity terms split per image), so the batch mean is
  half the per-pair objective the step minimises.

  The translation errors use the pairing the model never saw, for every
  row's original image x (before any dilation): F(dilate(x)) against x
  ('l1', 'psnr': the thin digits recovered from thick ones) and G(x)
  against dilate(x) ('l1_ab', 'psnr_ab'), on the [0, 1] scale.

  Returns:
    (the mean of 'g_loss' over unmasked rows, {'g_loss', 'd_loss',
    'cycle', 'identity', 'l1', 'psnr', 'l1_ab', 'psnr_ab'} each [B]).
  """
  del key, train
  x = batch['image']
  a, b = paired.unpaired_halves(x)
  g_params = params['generator']['params']
  d_params = params['discriminator']['params']
  gen = generator_module(net)
  g = lambda v: gen.apply({'params': g_params['g_ab']}, v)
  f = lambda v: gen.apply({'params': g_params['g_ba']}, v)
  fake_b, fake_a = g(a), f(b)
  l1 = losses.l1_per_example
  cycle = jnp.concatenate([l1(f(fake_b), a), l1(g(fake_a), b)])
  identity = jnp.concatenate([l1(f(a), a), l1(g(b), b)])
  if not net.identity_weight:
    identity = jnp.zeros_like(identity)
  ls_g = lambda name, v: losses.least_squares_generator_loss(
      _discriminate(net, d_params, name, v)).mean((1, 2))
  adversarial = jnp.concatenate([ls_g('d_b', fake_b), ls_g('d_a', fake_a)])
  g_loss = (adversarial + net.cycle_weight * cycle
            + net.identity_weight * identity)
  # Row a: D_A's real term on a and D_B's generated term on G(a) (the
  # two nets' patch grids have one shape); row b: the mirror terms.
  patches = lambda name, v: _discriminate(net, d_params, name, v)
  d_loss = jnp.concatenate([
      losses.least_squares_discriminator_loss(
          patches('d_a', a), patches('d_b', fake_b)).mean((1, 2)),
      losses.least_squares_discriminator_loss(
          patches('d_b', b), patches('d_a', fake_a)).mean((1, 2))])
  thick = paired.dilate(x)
  forward, back = g(x), f(thick)
  metrics = {
      'g_loss': g_loss, 'd_loss': d_loss, 'cycle': cycle,
      'identity': identity,
      'l1_ab': l1(forward, thick) / 2.0,
      'psnr_ab': losses.psnr(forward, thick, data_range=2.0),
      'l1': l1(back, x) / 2.0,
      'psnr': losses.psnr(back, x, data_range=2.0),
  }
  return steps.masked_mean(g_loss, batch.get('mask')), metrics


def make_train_step(*, net: Net, tx: gan.TwoPlayerOptimizer,
                    preprocess: Callable, config) -> Callable:
  """The step ``(state, batch, train_key) -> (state, metrics)``.

  Both generators' update, then the history buffers, then both
  discriminators' update against the buffers' images, then the bank and
  the EMA. Metrics (scalars, means over the pairs): 'g_loss', 'd_loss',
  'cycle', 'identity', 'g_grad_norm', 'd_grad_norm', and 'loss' =
  'g_loss'.
  """
  ema_decay = config.train.ema_decay

  def step(state, batch, train_key):
    key = jax.random.fold_in(train_key, state.step)
    pre_key, hist_key = jax.random.split(key)
    raw = batch['image']
    batch = preprocess(batch, pre_key)
    a, b = paired.unpaired_halves(batch['image'])
    mask = _pair_mask(batch['mask'])
    g_vars = state.params['generator']
    d_vars = state.params['discriminator']

    def g_objective(g_params):
      per, terms = _generator_terms(net, g_params, d_vars['params'], a, b)
      return steps.masked_mean(per, mask), terms

    (g_loss, terms), g_grads = jax.value_and_grad(
        g_objective, has_aux=True)(g_vars['params'])
    updates, g_opt = tx.generator.update(
        g_grads, state.opt_state['generator'], g_vars['params'])
    g_vars = {'params': optax.apply_updates(g_vars['params'], updates)}

    history = state.params.get('history')
    key_a, key_b = jax.random.split(hist_key)
    fake_a = jax.lax.stop_gradient(terms['fake_a'])
    fake_b = jax.lax.stop_gradient(terms['fake_b'])
    fake_a, new_a = _history(history, 'a', fake_a, key_a)
    fake_b, new_b = _history(history, 'b', fake_b, key_b)

    def d_objective(d_params):
      per = _discriminator_terms(net, d_params, a, b, fake_a, fake_b)
      return steps.masked_mean(per, mask)

    d_loss, d_grads = jax.value_and_grad(d_objective)(d_vars['params'])
    updates, d_opt = tx.discriminator.update(
        d_grads, state.opt_state['discriminator'], d_vars['params'])
    d_vars = {'params': optax.apply_updates(d_vars['params'], updates)}

    params = {'generator': g_vars, 'discriminator': d_vars,
              'bank': pix2pix.update_bank(state.params['bank'], raw,
                                          state.step)}
    if history is not None:
      params['history'] = {**new_a, **new_b}
    ema = state.ema_params
    if ema_decay:
      weights = lambda p: {k: p[k] for k in ('generator', 'discriminator')}
      ema = {**params, **steps.ema_update(weights(ema), weights(params),
                                          ema_decay)}
    metrics = {
        'g_loss': g_loss, 'loss': g_loss, 'd_loss': d_loss,
        'cycle': steps.masked_mean(terms['cycle'], mask),
        'identity': steps.masked_mean(terms['identity'], mask),
        'g_grad_norm': optax.tree.norm(g_grads),
        'd_grad_norm': optax.tree.norm(d_grads),
    }
    opt_state = {'generator': g_opt, 'discriminator': d_opt}
    return state.replace(step=state.step + 1, params=params,
                         opt_state=opt_state, ema_params=ema), metrics

  return step


def make_optimizer(config) -> gan.TwoPlayerOptimizer:
  """``config.optimizer`` for both generators, ``config.d_optimizer`` for
  both discriminators (`jaxgen.models.gan.make_optimizer`)."""
  return gan.make_optimizer(config, d_steps=1)


def translation_rows(params, images: jax.Array, key: jax.Array, *,
                     net: Net) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(dilated input, F(input), the original) as uint8 [N, H, W, C].

  The original is the image F never saw paired with its dilation.
  """
  del key
  target = transforms.to_float(images, 'symmetric')
  thick = paired.dilate(target)
  out = generate(params, thick, 'g_ba', net=net)
  return gan.to_uint8(thick), gan.to_uint8(out), gan.to_uint8(target)


def sample(params, key, num: int, *, net: Net) -> jax.Array:
  """F(dilate(x)) for the first `num` bank rows x (cycling): uint8
  [num, H, W, C], images of domain A."""
  rows = jnp.arange(num) % net.bank_size
  return translation_rows(params, params['bank'][rows], key, net=net)[1]
