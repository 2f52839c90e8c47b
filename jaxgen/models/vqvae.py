"""VQ-VAE: a convolutional autoencoder with a discrete code map.

van den Oord, Vinyals & Kavukcuoglu, "Neural Discrete Representation
Learning", NeurIPS 2017 (§3, eq. 3; appendix A.1 for the EMA codebook);
dead-code restarts as in Dhariwal et al., "Jukebox", 2020; the
Gumbel-softmax alternative of Jang, Gu & Poole, ICLR 2017.

Model. An encoder maps x [H, W, C] to z_e [h, w, D] (``num_downsamples``
strided 4x4 convolutions, a 3x3 convolution, residual blocks, a 1x1
convolution); each of the h*w vectors is quantized to one of K codes; a
mirror-image decoder maps the code vectors z_q to the parameters of
p(x | z) (`jaxgen.models.pixels`: Bernoulli on binarized pixels, or the
discretized logistic on 8-bit pixels). Quantizers (``quantizer``):

- 'vq': nearest code, straight-through gradient, codebook trained by the
  codebook loss ||sg[z_e] - e||^2;
- 'ema': nearest code, straight-through gradient, codebook by exponential
  moving averages with Laplace-smoothed counts (no codebook loss);
- 'gumbel': a categorical q(z | x) per position from logits, a
  straight-through Gumbel-softmax sample ``sg(hardmax - softmax) + softmax``
  in training and the mode in evaluation; KL(q || uniform) as regulariser.

Training loss per example (sums over pixels and code positions):

    -log p(x | z_q(x)) + sum_pos [||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2]

('ema' drops the codebook term; 'gumbel' uses kl_weight * KL(q || U)
instead). Dead codes (moving usage count below ``dead_code_threshold``) are
restarted from the batch's encodings after each step.

Likelihood. With the deterministic one-hot posterior q(z | x) at the codes
z_q(x) and a prior p(z), the ELBO is log p(x | z_q(x)) + log p(z_q(x)) <=
log p(x) (the entropy of q is 0). This family's prior is the uniform one the
VQ-VAE trains with (KL = N log K for N code positions), so `log_likelihood`
returns log p(x | z_q(x)) - N log K; a learned prior over the codes
(`jaxgen.models.code_prior`) replaces the second term. `sample` decodes
uniformly drawn codes (the training-time prior).

Non-gradient state: the codebook statistics live in the ``'codebook_ema'``
collection; `TrainState.params` holds the whole variables dict
({'params', 'codebook_ema'}), `make_optimizer` applies the optimizer to
'params' only and `make_train_step` does the EMA and restart updates.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgen import losses
from jaxgen import nn as jnn
from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.models import pixels
from jaxgen.nn import conv_transpose
from jaxgen.nn import initializers as inits
from jaxgen.nn import quantizers

LIKELIHOOD = 'bound'  # log p(x | z_q(x)) + log p_uniform(z_q(x)) <= log p(x)
QUANTIZERS = ('vq', 'ema', 'gumbel')
SAMPLE_MODES = ('mean', 'draw')
MAX_CODES_FOR_PRIOR = 256  # the PixelCNN prior's categorical output


def code_size(size: int, num_downsamples: int) -> int:
  """Spatial size after `num_downsamples` stride-2 'SAME' convolutions."""
  for _ in range(num_downsamples):
    size = -(-size // 2)
  return size


class ResidualStack(nn.Module):
  """num_blocks x [act, 3x3 conv -> res_features, act, 1x1 conv, + x], act.

  The residual block of the VQ-VAE paper (§4.1): "ReLU, 3x3 conv, ReLU, 1x1
  conv"; [B, h, w, F] -> [B, h, w, F].
  """
  features: int
  res_features: int
  num_blocks: int
  activation: str = 'relu'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    act = jnn.activation(self.activation)
    for b in range(self.num_blocks):
      r = inits.Conv(self.res_features, (3, 3), name=f'res_{b}_3x3')(act(x))
      x = x + inits.Conv(self.features, (1, 1), name=f'res_{b}_1x1')(act(r))
    return act(x)


class Encoder(nn.Module):
  """x [B, H, W, C] -> [B, h, w, out_features], h = ceil(H / 2^n).

  n = num_downsamples strided 4x4 convolutions (hidden/2 channels, hidden
  for the last), a 3x3 convolution to `hidden`, a residual stack, a 1x1
  convolution to `out_features`.
  """
  hidden: int
  res_hidden: int
  num_res_blocks: int
  num_downsamples: int
  out_features: int
  activation: str = 'relu'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    act = jnn.activation(self.activation)
    for i in range(self.num_downsamples):
      width = self.hidden if i == self.num_downsamples - 1 else self.hidden // 2
      x = act(inits.Conv(width, (4, 4), strides=(2, 2), name=f'down_{i}')(x))
    x = inits.Conv(self.hidden, (3, 3), name='in_3x3')(x)
    x = ResidualStack(self.hidden, self.res_hidden, self.num_res_blocks,
                      self.activation, name='res')(x)
    return inits.Conv(self.out_features, (1, 1), name='out_1x1')(x)


class Decoder(nn.Module):
  """[B, h, w, D] -> [B, H, W, out_channels]: the mirror of `Encoder`.

  A 3x3 convolution to `hidden`, a residual stack, n transposed 4x4
  stride-2 convolutions (the last to `out_channels`, no activation), cropped
  to ``out_shape`` (H, W). With n = 0 the last layer is a 3x3 convolution.
  """
  hidden: int
  res_hidden: int
  num_res_blocks: int
  num_upsamples: int
  out_channels: int
  out_shape: Sequence[int]
  activation: str = 'relu'

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    act = jnn.activation(self.activation)
    x = inits.Conv(self.hidden, (3, 3), name='in_3x3')(z)
    x = ResidualStack(self.hidden, self.res_hidden, self.num_res_blocks,
                      self.activation, name='res')(x)
    if not self.num_upsamples:
      x = inits.Conv(self.out_channels, (3, 3), name='out_3x3')(x)
    for i in range(self.num_upsamples):
      last = i == self.num_upsamples - 1
      width = self.out_channels if last else self.hidden // 2
      x = conv_transpose.ConvTranspose(width, (4, 4), strides=(2, 2),
                                       padding='SAME', name=f'up_{i}')(x)
      if not last:
        x = act(x)
    return x[:, :self.out_shape[0], :self.out_shape[1], :]


def make_quantizer(net) -> nn.Module:
  """The quantizer module a Net's fields ask for (assign it in setup)."""
  if net.quantizer == 'gumbel':
    return quantizers.GumbelQuantizer(net.num_codes, net.code_dim,
                                      net.gumbel_temperature)
  return quantizers.VectorQuantizer(net.num_codes, net.code_dim,
                                    use_ema=net.quantizer == 'ema')


class Net(nn.Module):
  """Encoder, quantizer and decoder; fields are ``config.model``.

  Attributes:
    image_shape: (H, W, C) of the data.
    hidden_channels: width of the convolutions and residual stacks.
    res_channels: width inside a residual block.
    num_res_blocks: residual blocks in the encoder and in the decoder.
    num_downsamples: stride-2 convolutions; the code map is
      ceil(H / 2^n) x ceil(W / 2^n).
    code_dim: D, the dimension of a code vector.
    num_codes: K, the codebook size (<= 256 for a PixelCNN prior).
    quantizer: 'vq', 'ema' or 'gumbel' (module docstring).
    commitment_cost: beta of the commitment loss ('vq', 'ema').
    ema_decay: gamma of the moving averages (EMA codebook and, for every
      quantizer but 'gumbel', the usage counts behind restarts).
    ema_epsilon: Laplace smoothing of the EMA counts.
    dead_code_threshold: restart codes whose moving count (vectors per
      batch) falls below this; 0 disables restarts ('vq', 'ema').
    gumbel_temperature: tau of the Gumbel-softmax ('gumbel').
    kl_weight: weight of KL(q || uniform) ('gumbel').
    likelihood: decoder p(x | z): 'bernoulli', 'gaussian' or 'logistic'.
    activation: hidden nonlinearity.
    sample_mode: 'mean' shows decoder means, 'draw' samples x | z too.
  """
  image_shape: Sequence[int] = (28, 28, 1)
  hidden_channels: int = 64
  res_channels: int = 32
  num_res_blocks: int = 2
  num_downsamples: int = 2
  code_dim: int = 16
  num_codes: int = 64
  quantizer: str = 'ema'
  commitment_cost: float = 0.25
  ema_decay: float = 0.99
  ema_epsilon: float = 1e-5
  dead_code_threshold: float = 1.0
  gumbel_temperature: float = 1.0
  kl_weight: float = 1.0
  likelihood: str = 'bernoulli'
  activation: str = 'relu'
  sample_mode: str = 'mean'

  def setup(self):
    self.encoder = Encoder(self.hidden_channels, self.res_channels,
                           self.num_res_blocks, self.num_downsamples,
                           self.code_dim, self.activation)
    self.vq = make_quantizer(self)
    self.decoder = Decoder(
        self.hidden_channels, self.res_channels, self.num_res_blocks,
        self.num_downsamples,
        self.image_shape[-1] * pixels.num_params(self.likelihood),
        tuple(self.image_shape[:2]), self.activation)

  def encode(self, x: jax.Array) -> jax.Array:
    """x [B, H, W, C] -> z_e [B, h, w, D]."""
    return self.encoder(x)

  def quantize(self, z_e: jax.Array, key: jax.Array | None = None):
    """z_e -> {'z_q', 'indices' [B, h, w], ...} (`jaxgen.nn.quantizers`).

    `key` draws the Gumbel-softmax sample ('gumbel' in training); None
    takes the nearest code / the mode.
    """
    if self.quantizer == 'gumbel':
      return self.vq(z_e, key)
    return self.vq(z_e)

  def embed(self, indices: jax.Array) -> jax.Array:
    """Code indices int [B, h, w] -> code vectors [B, h, w, D]."""
    return self.vq.embed(indices)

  def decode(self, z_q: jax.Array) -> dict[str, jax.Array]:
    """z_q [B, h, w, D] -> p(x | z) parameters, each [B, H, W, C]."""
    return pixels.split_params(self.likelihood, self.decoder(z_q))

  def __call__(self, x: jax.Array, key: jax.Array | None = None):
    """{'decoder': p(x | z_q(x)) parameters, 'levels': {'vq': ...}}."""
    level = self.quantize(self.encode(x), key)
    return {'decoder': self.decode(level['z_q']),
            'levels': {'vq': level}}

  def decode_codes(self, codes: Sequence[jax.Array]) -> dict[str, jax.Array]:
    """(indices [B, h, w],) -> p(x | z) parameters."""
    (indices,) = codes
    return self.decode(self.embed(indices))


# Level names (the quantizer submodules, top first) and their code maps.
LEVELS = ('vq',)


def code_shapes(net: Net) -> tuple[tuple[int, int], ...]:
  """(h, w) of each code map, top level first: here one map."""
  h, w = net.image_shape[:2]
  n = net.num_downsamples
  return ((code_size(h, n), code_size(w, n)),)


# --------------------------------------------------------- shared pieces
# Used by this family, `vqvae2` and `code_prior`.


def check_quantizer_fields(m, dataset=None) -> None:
  """ConfigError naming the config.model field of a VQ model that is off."""
  if m.quantizer not in QUANTIZERS:
    raise ConfigError(f'config.model.quantizer={m.quantizer!r} is not one of '
                      f'{QUANTIZERS}.')
  if m.sample_mode not in SAMPLE_MODES:
    raise ConfigError(f'config.model.sample_mode={m.sample_mode!r} is not one '
                      f'of {SAMPLE_MODES}.')
  if m.num_codes < 2:
    raise ConfigError(f'config.model.num_codes={m.num_codes} must be >= 2.')
  for name in ('code_dim', 'hidden_channels', 'res_channels'):
    if m[name] < 1:
      raise ConfigError(f'config.model.{name}={m[name]} must be >= 1.')
  if m.hidden_channels < 2:
    raise ConfigError(f'config.model.hidden_channels={m.hidden_channels} '
                      'must be >= 2 (the strided layers use half of it).')
  if m.num_res_blocks < 0:
    raise ConfigError(
        f'config.model.num_res_blocks={m.num_res_blocks} must be >= 0.')
  if not 0.0 <= m.ema_decay < 1.0:
    raise ConfigError(f'config.model.ema_decay={m.ema_decay} must lie in '
                      '[0, 1).')
  if m.ema_epsilon <= 0:
    raise ConfigError(f'config.model.ema_epsilon={m.ema_epsilon} must be > 0.')
  if m.dead_code_threshold < 0:
    raise ConfigError(f'config.model.dead_code_threshold='
                      f'{m.dead_code_threshold} must be >= 0 (0 = off).')
  if m.commitment_cost < 0:
    raise ConfigError(
        f'config.model.commitment_cost={m.commitment_cost} must be >= 0.')
  if m.gumbel_temperature <= 0:
    raise ConfigError(f'config.model.gumbel_temperature='
                      f'{m.gumbel_temperature} must be > 0.')
  if m.kl_weight < 0:
    raise ConfigError(f'config.model.kl_weight={m.kl_weight} must be >= 0.')
  jnn.activation(m.activation)
  del dataset


def latent_terms(net, level: dict[str, jax.Array]):
  """Per-example latent loss and metrics of one quantized level.

  Returns (loss [B], {name: [B]}): for 'vq'/'ema' the summed VQ loss
  (`jaxgen.losses.vq_loss`, codebook term only for 'vq') and the mean
  squared quantization error per position; for 'gumbel' kl_weight * the
  summed KL(q || uniform), and the KL.
  """
  if net.quantizer == 'gumbel':
    kl = losses.categorical_kl_to_uniform(level['logits'])
    kl = kl.reshape(kl.shape[0], -1).sum(-1)
    return net.kl_weight * kl, {'kl': kl}
  vq = losses.vq_loss(level['z_e'], level['e'], net.commitment_cost,
                      update_codebook=net.quantizer == 'vq')
  err = losses.commitment_loss(level['z_e'], level['e'])
  flat = lambda a: a.reshape(a.shape[0], -1)
  return flat(vq).sum(-1), {'quantization_error': flat(err).mean(-1)}


def uniform_log_prior(net, shapes) -> float:
  """log p_uniform(z) = -N log K for N code positions (all levels)."""
  positions = sum(h * w for h, w in shapes)
  return -positions * math.log(net.num_codes)


def forward(variables, batch, key, *, net, levels: Sequence[str],
            shapes, train: bool):
  """(per-example loss [B], metrics {name: [B]}, level outputs by name).

  Shared by `vqvae` and `vqvae2`: the reconstruction term, the latent terms
  of every level (prefixed '<metric>_<level>' when there are several), and
  the uniform-prior bound as 'nll' / 'bits_per_dim'.
  """
  x = batch['image']
  gumbel_key = key if (train and net.quantizer == 'gumbel') else None
  out = net.apply(apply_variables(variables), x, gumbel_key)
  recon_nll = -pixels.log_prob(net.likelihood, out['decoder'], x)
  per_example = recon_nll
  metrics = {'recon_nll': recon_nll,
             'recon_error': pixels.recon_error(net.likelihood, out['decoder'],
                                               x)}
  for name in levels:
    loss, more = latent_terms(net, out['levels'][name])
    per_example = per_example + loss
    suffix = '' if len(levels) == 1 else '_' + name.split('_', 1)[-1]
    metrics.update({k + suffix: v for k, v in more.items()})
  nll = recon_nll - uniform_log_prior(net, shapes)
  metrics['nll'] = nll
  metrics['bits_per_dim'] = losses.nats_to_bits_per_dim(nll, x[0].size)
  return per_example, metrics, out


def apply_variables(variables) -> dict[str, Any]:
  """The collections a VQ Net reads: 'params' and 'codebook_ema'."""
  return {k: v for k, v in variables.items()
          if k in ('params', quantizers.STATE)}


def make_optimizer(config) -> optax.GradientTransformation:
  """``config.optimizer`` applied to 'params' (not the codebook state)."""
  return steps.params_optimizer(steps.make_optimizer(config.optimizer,
                                                     config.train.num_steps))


def codebook_update(net, levels: Sequence[str]) -> Callable:
  """`steps.make_variables_step`'s update_state: EMA/restarts of each level.

  Also reports, per level, the batch's codebook perplexity and the number
  of codes used ('perplexity', 'codes_used', 'restarts', suffixed by the
  level name when there are several).
  """

  def update(variables, out, batch, key):
    params = dict(variables['params'])
    state = dict(variables.get(quantizers.STATE, {}))
    metrics = {}
    mask = batch['mask'].astype(jnp.float32)
    for i, name in enumerate(levels):
      level = out['levels'][name]
      weights = mask.reshape((-1,) + (1,) * (level['indices'].ndim - 1))
      onehot = jax.nn.one_hot(level['indices'], net.num_codes)
      usage = losses.code_usage(onehot, weights)
      suffix = '' if len(levels) == 1 else '_' + name.split('_', 1)[-1]
      metrics['perplexity' + suffix] = losses.perplexity(usage)
      metrics['codes_used' + suffix] = jnp.sum(usage > 0).astype(jnp.float32)
      if net.quantizer == 'gumbel':
        continue
      sub = dict(params.get(name, {}))
      new_state, codebook, stats = quantizers.state_update(
          state[name], level, weights, jax.random.fold_in(key, i),
          sub.get('codebook'), use_ema=net.quantizer == 'ema',
          decay=net.ema_decay, epsilon=net.ema_epsilon,
          threshold=net.dead_code_threshold)
      state[name] = new_state
      if net.quantizer == 'vq':
        sub['codebook'] = codebook
        params[name] = sub
      metrics['restarts' + suffix] = stats['restarts']
    new = {**variables, 'params': params}
    if state:
      new[quantizers.STATE] = state
    return new, metrics

  return update


def uniform_codes(key, num: int, shapes, num_codes: int) -> tuple:
  """Code maps drawn uniformly: one int32 [num, h, w] per level."""
  keys = jax.random.split(key, len(shapes))
  return tuple(jax.random.randint(k, (num, h, w), 0, num_codes)
               for k, (h, w) in zip(keys, shapes))


# ------------------------------------------------------------- contract


def validate(config, dataset) -> None:
  """Checks ``config.model`` against itself and the loaded dataset."""
  m = config.model
  check_quantizer_fields(m)
  if m.num_downsamples < 0:
    raise ConfigError(
        f'config.model.num_downsamples={m.num_downsamples} must be >= 0.')
  pixels.check_data_config(m.likelihood, config.data, dataset.pixel_levels)


def init(key: jax.Array, batch, *, net: Net) -> dict[str, Any]:
  """The variables dict {'params', 'codebook_ema'} for an example batch."""
  return dict(net.init(key, batch['image']))


def loss_fn(variables, batch, key, *, net: Net, train: bool = True):
  """Reconstruction NLL plus the latent loss, mean over unmasked rows.

  Args:
    variables: {'params', 'codebook_ema'}.
    batch: {'image': float [B, H, W, C] in the likelihood's range, 'mask'}.
    key: the Gumbel-softmax draw ('gumbel' in training); unused otherwise.
    net: the Net.
    train: 'gumbel' samples in training and takes the mode otherwise.

  Returns:
    (scalar, {'recon_nll', 'recon_error', 'quantization_error' (or 'kl'),
    'nll', 'bits_per_dim'}: each [B]); 'nll' is the uniform-prior bound
    -log p(x | z_q(x)) + N log K in nats.
  """
  per_example, metrics, _ = forward(variables, batch, key, net=net,
                                    levels=LEVELS, shapes=code_shapes(net),
                                    train=train)
  return steps.masked_mean(per_example, batch.get('mask')), metrics


def make_train_step(*, net: Net, tx, preprocess, config) -> Callable:
  """The step: optax on 'params', then EMA codebook and dead-code restarts."""
  return make_family_step(net, tx, preprocess, config, LEVELS,
                          code_shapes(net))


def make_family_step(net, tx, preprocess, config, levels, shapes) -> Callable:
  """`make_train_step` for a VQ family with quantizer submodules `levels`."""

  def objective(variables, batch, key):
    per_example, metrics, out = forward(variables, batch, key, net=net,
                                        levels=levels, shapes=shapes,
                                        train=True)
    return steps.masked_mean(per_example, batch['mask']), (metrics, out)

  return steps.make_variables_step(objective, tx, preprocess,
                                   ema_decay=config.train.ema_decay,
                                   update_state=codebook_update(net, levels))


def encode_codes(variables, batch, *, net: Net) -> tuple[jax.Array, ...]:
  """The code maps of a preprocessed batch, top first: (int32 [B, h, w],)."""
  out = net.apply(apply_variables(variables), batch['image'])
  return tuple(out['levels'][name]['indices'] for name in LEVELS)


def decode_codes(variables, codes, *, net: Net) -> dict[str, jax.Array]:
  """p(x | z) parameters [B, H, W, C] of code maps (top first)."""
  return net.apply(apply_variables(variables), tuple(codes),
                   method=Net.decode_codes)


def decode_to_uint8(decoded, key, *, net) -> jax.Array:
  """uint8 images from decoder parameters (mean, or a draw with 'draw')."""
  draw_key = key if net.sample_mode == 'draw' else None
  return pixels.to_uint8(net.likelihood, decoded, draw_key)


def log_likelihood(variables, batch, key, *, net: Net) -> jax.Array:
  """log p(x | z_q(x)) - N log K [B] nats: the bound with the uniform prior.

  The ELBO of the deterministic posterior q(z | x) = one-hot at z_q(x) under
  p(z) = Uniform(K)^N (module docstring); codes from the nearest code (or
  the mode for 'gumbel').
  """
  _, metrics, _ = forward(variables, batch, key, net=net, levels=LEVELS,
                          shapes=code_shapes(net), train=False)
  return -metrics['nll']


def sample(variables, key, num: int, *, net: Net):
  """Decoded uniformly drawn codes (the training-time prior): uint8."""
  code_key, x_key = jax.random.split(key)
  codes = uniform_codes(code_key, num, code_shapes(net), net.num_codes)
  return decode_to_uint8(decode_codes(variables, codes, net=net), x_key,
                         net=net)


def reconstruct(variables, batch, key, *, net: Net):
  """Decoder output at the batch's codes: uint8 [B, H, W, C]."""
  codes = encode_codes(variables, batch, net=net)
  return decode_to_uint8(decode_codes(variables, codes, net=net), key,
                         net=net)


@functools.partial(jax.jit, static_argnames=('family', 'net'))
def code_counts(variables, batch, *, family, net) -> tuple[jax.Array, ...]:
  """Per level, how often each code is used on a batch's unmasked rows: [K].

  `family` is this module or `vqvae2` (anything with `encode_codes`).
  """
  codes = family.encode_codes(variables, batch, net=net)
  mask = batch['mask'].astype(jnp.float32)
  return tuple(
      (jax.nn.one_hot(c, net.num_codes) * mask[:, None, None, None]).sum(
          (0, 1, 2)) for c in codes)

