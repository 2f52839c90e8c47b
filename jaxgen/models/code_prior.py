"""An autoregressive prior over the frozen codes of a VQ-VAE or VQ-VAE-2.

van den Oord, Vinyals & Kavukcuoglu, "Neural Discrete Representation
Learning", NeurIPS 2017, §3.2 and §4 (a PixelCNN prior fit to the codes of
a trained, frozen VQ-VAE; samples = prior samples decoded); Razavi, van den
Oord & Vinyals, "Generating Diverse High-Fidelity Images with VQ-VAE-2",
NeurIPS 2019, §3.2 (a top prior, and a bottom prior conditioned on the top
codes, both class-conditional); the priors are the project's Gated PixelCNN
(van den Oord et al., NeurIPS 2016: `jaxgen.models.gated_pixelcnn`) and its
cached sampler (Ramachandran et al., 2017).

Model. The frozen VQ-VAE (``vqvae_workdir``: a workdir trained with the
'vqvae' or 'vqvae2' family, read once and carried in the variables dict
under 'vqvae'; '' builds a randomly initialised one from ``vqvae_family``
and ``random_vqvae_fields``, for smoke tests) encodes an image to code maps
z_1 (top), ..., z_L (bottom), L = 1 or 2. The prior factorises over levels
and, inside a level, over positions in raster order:

    p(z) = prod_l p(z_l | z_<l, y),  p(z_l | z_<l, y) = a Gated PixelCNN on
           the h_l x w_l x 1 "image" of codes, class-conditional on y when
           ``num_classes`` > 0, and for l > 1 conditioned on the map
           c_l = conv(resize(embed(z_<l))) [h_l, w_l, F], added at every
           position of every gated layer by a 1x1 convolution (the Gated
           PixelCNN's spatial ``cond``).

Codes k in [0, K), K <= 256, enter the PixelCNN as 8-bit pixels: the input
is k / 255 and the output a 256-way softmax (the integer is recovered as
round(255 x), exact in float32). With ``mask_unused_codes`` the levels
>= K get no probability and the code NLL is exact. Without it (the
default) the softmax learns to leave them empty;
the sampler clips a draw >= K (rare after training) to K - 1, so it draws
code K - 1 with probability P(K - 1) + P(>= K), and the reported
-log P(codes), using P(K - 1) alone, is an upper bound on the sampler's
NLL, exact when no mass is left on the levels >= K.

As in VQ-VAE-2, the bottom prior is conditioned spatially: a conditioning
stack over the top codes (each bottom position sees the embedding of the
top code above it, mixed with its neighbours by a 3x3 convolution) gives a
feature map added at every position. VQ-VAE-2's stack is a deeper residual
network, and its priors add self-attention; these are small, attention-free
versions.

Bound (`log_likelihood`, bits/dim by the shared evaluator). With the VQ-VAE's
deterministic posterior q(z | x) = one-hot at z_q(x) (entropy 0), the ELBO is

    log p(x) >= log p(x | z_q(x)) + log p(z_q(x))
              = [decoder log-likelihood of x at its own codes]
                + sum_l [log p(z_l(x) | z_<l(x), y) under the prior],

in nats per image, which the evaluator turns into bits/dim with D = H W C
image dimensions. This is the VQ-VAE paper's log p(x) >= log p(x | z_q(x))
p(z_q(x)) (§3.2). ``prior='uniform'`` replaces the second term by -N log K
(the prior the VQ-VAE trained with): equal to the VQ family's own
`log_likelihood`.

Training: the prior's NLL of the codes (``loss_fn``); the VQ-VAE variables
are never updated (the step differentiates 'params' only).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import losses
from jaxgen import models
from jaxgen import steps
from jaxgen import workdir as workdir_lib
from jaxgen.errors import ConfigError
from jaxgen.models import ar_sampling as ars
from jaxgen.models import gated_pixelcnn
from jaxgen.models import pixels
from jaxgen.models import vqvae
from jaxgen.nn import initializers as inits

LIKELIHOOD = 'bound'  # log p(x | z_q(x)) + log p_prior(z_q(x)) <= log p(x)
VQ_FAMILIES = ('vqvae', 'vqvae2')
PRIORS = ('learned', 'uniform')
FROZEN = 'vqvae'  # the variables-dict key of the frozen VQ-VAE


# ------------------------------------------------------ the frozen VQ-VAE


def _tuples(tree):
  if isinstance(tree, dict):
    return {k: _tuples(v) for k, v in tree.items()}
  if isinstance(tree, list):
    return tuple(_tuples(v) for v in tree)
  return tree


@functools.lru_cache(maxsize=16)
def _workdir_config(workdir: str) -> dict[str, Any]:
  try:
    return workdir_lib.read_config_dict(workdir)
  except FileNotFoundError as e:
    raise ConfigError(
        f'config.model.vqvae_workdir={workdir!r}: no config.json there (train '
        "a 'vqvae' or 'vqvae2' experiment into that workdir first, or set "
        "vqvae_workdir='' for a randomly initialised VQ-VAE).") from e


def frozen_model(net) -> tuple[Any, nn.Module]:
  """(VQ family module, its Net) of a code prior's ``net`` (cached)."""
  return _frozen_model(net.vqvae_workdir, net.vqvae_family,
                       tuple(net.image_shape),
                       tuple(map(tuple, net.random_vqvae_fields)))


@functools.lru_cache(maxsize=16)
def _frozen_model(workdir: str, family_name: str, image_shape, random_fields):
  if workdir:
    config = _workdir_config(workdir)
    family_name = config['family']
    if family_name not in VQ_FAMILIES:
      raise ConfigError(
          f'config.model.vqvae_workdir={workdir!r} holds a {family_name!r} '
          f'run; the code prior needs one of {VQ_FAMILIES}.')
    fields = _tuples(config['model'])
  else:
    fields = {**dict(random_fields), 'image_shape': tuple(image_shape)}
  family = models.get_family(family_name)
  return family, family.Net(**fields)


@functools.lru_cache(maxsize=4)
def _restored_variables(workdir: str):
  """The VQ-VAE's evaluation variables from its newest checkpoint (NumPy)."""
  _workdir_config(workdir)  # a clear error when nothing was trained there
  try:
    return workdir_lib.restore_params(workdir)
  except FileNotFoundError as e:
    raise ConfigError(f'config.model.vqvae_workdir={workdir!r}: {e}') from e


def frozen_variables(net, key: jax.Array, batch) -> Any:
  """The frozen VQ-VAE's variables: restored, or initialised from `key`."""
  family, vq_net = frozen_model(net)
  if net.vqvae_workdir:
    return jax.tree.map(jnp.asarray, _restored_variables(net.vqvae_workdir))
  return family.init(key, batch, net=vq_net)


def code_shapes(net) -> tuple[tuple[int, int], ...]:
  """(h, w) of the frozen model's code maps, top first."""
  family, vq_net = frozen_model(net)
  return tuple(family.code_shapes(vq_net))


def num_codes(net) -> int:
  return frozen_model(net)[1].num_codes


# ------------------------------------------------------------------ Net


class CodeConditioner(nn.Module):
  """Code maps of the levels above -> a conditioning map [B, h, w, features].

  The conditioning stack of VQ-VAE-2 (Razavi et al. 2019, §3.2), small:
  each map [B, h_a, w_a] is embedded (K -> embed_dim per position) and
  resized to the level's (h, w) by nearest neighbours (the top code above a
  bottom position); the concatenation goes through a 3x3 convolution, ReLU
  and a 1x1 convolution. It sees only the levels above, never the level it
  conditions, so it needs no mask.
  """
  num_codes: int
  features: int
  shape: Sequence[int]  # (h, w) of the conditioned level
  embed_dim: int = 8

  @nn.compact
  def __call__(self, codes: Sequence[jax.Array]) -> jax.Array:
    h, w = self.shape
    parts = []
    for i, c in enumerate(codes):
      e = inits.Embed(self.num_codes, self.embed_dim, name=f'embed_{i}')(c)
      parts.append(jax.image.resize(e, (e.shape[0], h, w, e.shape[-1]),
                                    'nearest'))
    x = nn.relu(inits.Conv(self.features, (3, 3), name='hidden')(
        jnp.concatenate(parts, axis=-1)))
    return inits.Conv(self.features, (1, 1), name='out')(x)


def _level_fields(net) -> list[dict[str, Any]]:
  return [dict(image_shape=(h, w, 1), likelihood='categorical',
               features=net.features, num_layers=net.num_layers,
               input_kernel=net.input_kernel, kernel_size=net.kernel_size,
               output_features=tuple(net.output_features), use_skip=True,
               num_classes=net.num_classes,
               cond_dim=net.cond_features if level else 0,
               cond_spatial=bool(level),
               num_levels=(num_codes(net) if net.mask_unused_codes
                           else ars.NUM_LEVELS))
          for level, (h, w) in enumerate(code_shapes(net))]


def level_nets(net) -> tuple[gated_pixelcnn.Net, ...]:
  """The Gated PixelCNN of every level, top first (standalone modules).

  Their parameters are ``variables['params']['priors_<l>']``: `Net` owns the
  same modules, so `gated_pixelcnn.sample` runs them directly.
  """
  return tuple(gated_pixelcnn.Net(**f) for f in _level_fields(net))


class Net(nn.Module):
  """Priors over the code maps of a frozen VQ model; fields: config.model.

  Attributes:
    image_shape: (H, W, C) of the data (the VQ model's input).
    vqvae_workdir: workdir of a trained 'vqvae' / 'vqvae2' run ('' = a
      randomly initialised VQ model, for smoke tests).
    vqvae_family: 'vqvae' or 'vqvae2'; must match the workdir's family
      (without a workdir: the random model's family).
    random_vqvae_fields: (name, value) pairs of the random VQ model's Net
      fields, over its family's defaults (used without a workdir only; ()
      = the family's default Net; the smoke config's is a tiny one).
    features, num_layers, input_kernel, kernel_size, output_features: of
      each level's Gated PixelCNN (`gated_pixelcnn.Net`).
    num_classes: > 0 makes every level class-conditional.
    cond_features: channels of the map c_l that carries the levels above
      into level l > 1.
    mask_unused_codes: give the 256 - K softmax levels that are not codes
      no probability (`gated_pixelcnn.Net.num_levels` = K), which makes the
      code NLL exact for the sampler's distribution; False leaves them to
      be learnt away and clips draws >= K.
  """
  image_shape: Sequence[int] = (28, 28, 1)
  vqvae_workdir: str = ''
  vqvae_family: str = 'vqvae'
  random_vqvae_fields: Sequence[tuple[str, Any]] = ()
  features: int = 64
  num_layers: int = 8
  input_kernel: int = 5
  kernel_size: int = 3
  output_features: Sequence[int] = (128,)
  num_classes: int = 0
  cond_features: int = 64
  mask_unused_codes: bool = False

  def setup(self):
    fields = _level_fields(self)
    self.priors = [gated_pixelcnn.Net(**f) for f in fields]
    self.conditioners = [
        CodeConditioner(num_codes(self), self.cond_features,
                        tuple(f['image_shape'][:2]))
        for f in fields[1:]]

  def condition(self, codes: Sequence[jax.Array]) -> jax.Array:
    """c_l for level l = len(codes) from the maps above it: [B, h_l, w_l, F]."""
    return self.conditioners[len(codes) - 1](tuple(codes))

  def level_logits(self, level: int, image: jax.Array,
                   above: Sequence[jax.Array] = (),
                   labels: jax.Array | None = None) -> jax.Array:
    """Logits [B, h, w, 1, 256] of level `level` for its code image.

    image: the level's codes as the PixelCNN input [B, h, w, 1] (`code_image`);
    above: the int code maps of the levels above it (top first).
    """
    cond = self.condition(above) if level else None
    return self.priors[level](image, labels, cond)

  def __call__(self, codes: Sequence[jax.Array],
               labels: jax.Array | None = None) -> list[jax.Array]:
    """Code maps int [B, h_l, w_l] -> logits [B, h_l, w_l, 1, 256] per level."""
    return [self.level_logits(level, code_image(codes[level]), codes[:level],
                              labels)
            for level in range(len(self.priors))]


def code_image(codes: jax.Array) -> jax.Array:
  """int codes [B, h, w] -> the PixelCNN's input [B, h, w, 1] = k / 255."""
  return codes[..., None].astype(jnp.float32) / 255.0


def _labels(net, batch):
  return batch['label'] if net.num_classes else None


# ------------------------------------------------------------- contract


def validate(config, dataset) -> None:
  """Checks ``config.model`` and the frozen VQ model against the data."""
  m = config.model
  if m.vqvae_family not in VQ_FAMILIES:
    raise ConfigError(f'config.model.vqvae_family={m.vqvae_family!r} is not '
                      f'one of {VQ_FAMILIES}.')
  if m.vqvae_workdir:
    vq_config = _workdir_config(m.vqvae_workdir)
    if vq_config['family'] != m.vqvae_family:
      raise ConfigError(
          f'config.model.vqvae_family={m.vqvae_family!r} but '
          f'config.model.vqvae_workdir={m.vqvae_workdir!r} holds a '
          f"{vq_config['family']!r} run.")
    for field in ('name', 'binarize', 'value_range', 'dequantize'):
      if vq_config['data'][field] != config.data[field]:
        raise ConfigError(
            f'config.data.{field}={config.data[field]!r} differs from the '
            f"VQ model's ({vq_config['data'][field]!r} in "
            f'{m.vqvae_workdir}/config.json): the prior must see the codes of '
            'the data the VQ model was trained on.')
    if tuple(vq_config['model']['image_shape']) != tuple(m.image_shape):
      raise ConfigError(
          f'config.model.image_shape={tuple(m.image_shape)} differs from the '
          f"VQ model's {tuple(vq_config['model']['image_shape'])}.")
  else:
    _check_random_fields(m.random_vqvae_fields, m.vqvae_family)
  _, vq_net = frozen_model(m)
  if vq_net.num_codes > vqvae.MAX_CODES_FOR_PRIOR:
    raise ConfigError(
        f'the VQ model in config.model.vqvae_workdir={m.vqvae_workdir!r} has '
        f'{vq_net.num_codes} codes; the PixelCNN prior models at most '
        f'{vqvae.MAX_CODES_FOR_PRIOR} (a 256-way softmax).')
  pixels.check_data_config(vq_net.likelihood, config.data,
                           dataset.pixel_levels)
  if m.features <= 0:
    raise ConfigError(f'config.model.features={m.features} must be > 0.')
  if m.num_layers < 1:
    raise ConfigError(f'config.model.num_layers={m.num_layers} must be >= 1.')
  for name in ('input_kernel', 'kernel_size'):
    if m[name] < 1 or m[name] % 2 == 0:
      raise ConfigError(f'config.model.{name}={m[name]} must be odd and '
                        'positive.')
  ars.check_output_features(m.output_features, 1)
  if m.cond_features < 1:
    raise ConfigError(
        f'config.model.cond_features={m.cond_features} must be >= 1.')
  ars.check_num_classes(m.num_classes, dataset)
  if m.vqvae_workdir:
    _restored_variables(m.vqvae_workdir)  # load (and check) before compiling


def _check_random_fields(pairs, family_name: str) -> None:
  """config.model.random_vqvae_fields: (name, value) pairs naming fields of
  the VQ family's Net other than image_shape (the prior's own)."""
  names = {f.name for f in dataclasses.fields(models.get_family(
      family_name).Net)} - {'parent', 'name', 'image_shape'}
  for pair in pairs:
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2 or
        pair[0] not in names):
      raise ConfigError(
          f'config.model.random_vqvae_fields={pairs!r}: each entry must be a '
          f"(name, value) pair naming a field of the {family_name!r} Net "
          f'other than image_shape ({sorted(names)}); {pair!r} is not.')


def init(key: jax.Array, batch, *, net: Net) -> dict[str, Any]:
  """{'params': the priors', 'vqvae': the frozen VQ model's variables}."""
  prior_key, vq_key = jax.random.split(key)
  frozen = frozen_variables(net, vq_key, batch)
  family, vq_net = frozen_model(net)
  codes = family.encode_codes(frozen, batch, net=vq_net)
  params = net.init(prior_key, codes, _labels(net, batch))['params']
  return {'params': params, FROZEN: frozen}


def encode(variables, batch, *, net: Net) -> tuple[jax.Array, ...]:
  """The frozen model's code maps of a preprocessed batch, top first."""
  family, vq_net = frozen_model(net)
  codes = family.encode_codes(variables[FROZEN], batch, net=vq_net)
  return tuple(jax.lax.stop_gradient(c) for c in codes)


def prior_log_probs(variables, codes, labels, *, net: Net) -> list[jax.Array]:
  """log p(z_l | z_<l, y) [B] nats per level, top first (exact)."""
  logits = net.apply({'params': variables['params']}, tuple(codes), labels)
  return [ars.log_prob('categorical', lg, code_image(c))
          for lg, c in zip(logits, codes)]


def _level_names(net) -> tuple[str, ...]:
  return ('',) if len(code_shapes(net)) == 1 else ('_top', '_bottom')


def loss_fn(variables, batch, key, *, net: Net, train: bool = True):
  """The prior's NLL of the batch's codes (nats per image), masked mean.

  Metrics [B]: 'prior_nll' (all levels), 'prior_nll_top' / '_bottom' for a
  two-level model, 'prior_bits_per_code' (prior NLL / (N ln 2), N code
  positions); in evaluation (train=False) also the two-stage bound:
  'recon_nll' (-log p(x | z_q(x))), 'nll' = recon_nll + prior_nll and its
  'bits_per_dim' over the image's D dimensions.
  """
  del key
  codes = encode(variables, batch, net=net)
  log_probs = prior_log_probs(variables, codes, _labels(net, batch), net=net)
  prior_nll = -sum(log_probs)
  positions = sum(h * w for h, w in code_shapes(net))
  metrics = {'prior_nll': prior_nll,
             'prior_bits_per_code': losses.nats_to_bits_per_dim(prior_nll,
                                                                positions)}
  names = _level_names(net)
  if len(names) > 1:
    metrics.update({f'prior_nll{n}': -lp for n, lp in zip(names, log_probs)})
  if not train:
    recon = -_decoder_log_prob(variables, batch, codes, net=net)
    metrics['recon_nll'] = recon
    metrics['nll'] = recon + prior_nll
    metrics['bits_per_dim'] = losses.nats_to_bits_per_dim(
        metrics['nll'], batch['image'][0].size)
  return steps.masked_mean(prior_nll, batch.get('mask')), metrics


def _decoder_log_prob(variables, batch, codes, *, net: Net) -> jax.Array:
  family, vq_net = frozen_model(net)
  decoded = family.decode_codes(variables[FROZEN], codes, net=vq_net)
  return pixels.log_prob(vq_net.likelihood, decoded, batch['image'])


def log_likelihood(variables, batch, key, *, net: Net,
                   prior: str = 'learned') -> jax.Array:
  """The two-stage bound log p(x | z_q(x)) + log p(z_q(x)) [B] nats.

  Args:
    variables, batch, key, net: as `loss_fn` (key unused: deterministic).
    prior: 'learned' (this family's PixelCNN priors) or 'uniform' (-N log K:
      the bound of the VQ model alone, as its family's `log_likelihood`).
  """
  del key
  if prior not in PRIORS:
    raise ConfigError(f'prior={prior!r} is not one of {PRIORS}.')
  codes = encode(variables, batch, net=net)
  recon = _decoder_log_prob(variables, batch, codes, net=net)
  if prior == 'uniform':
    _, vq_net = frozen_model(net)
    return recon + vqvae.uniform_log_prior(vq_net, code_shapes(net))
  return recon + sum(prior_log_probs(variables, codes, _labels(net, batch),
                                     net=net))


make_optimizer = vqvae.make_optimizer


def make_train_step(*, net: Net, tx, preprocess, config) -> Callable:
  """Optax on the priors' 'params'; the frozen VQ model is carried along."""

  def objective(variables, batch, key):
    loss, metrics = loss_fn(variables, batch, key, net=net, train=True)
    return loss, (metrics, None)

  return steps.make_variables_step(objective, tx, preprocess,
                                   ema_decay=config.train.ema_decay)


def sample_codes(variables, key, num: int, *, net: Net, labels=None,
                 method: str = 'cached') -> tuple[jax.Array, ...]:
  """Code maps drawn from the prior, top first: int32 [num, h_l, w_l].

  Level l is drawn by `gated_pixelcnn.sample` (cached by default) with key
  fold_in(key, l), conditioned on the labels (default 0, 1, ... cycling, for
  a class-conditional prior) and on c_l from the levels already drawn.
  """
  labels = ars.sample_labels(net.num_classes, num, labels)
  k = num_codes(net)
  codes = []
  for level, level_net in enumerate(level_nets(net)):
    cond = None
    if level:
      cond = net.apply({'params': variables['params']}, tuple(codes),
                       method=Net.condition)
    image = gated_pixelcnn.sample(
        variables['params'][f'priors_{level}'], jax.random.fold_in(key, level),
        num, net=level_net, labels=labels, cond=cond, method=method)
    codes.append(jnp.minimum(image[..., 0].astype(jnp.int32), k - 1))
  return tuple(codes)


def decode(variables, codes, key=None, *, net: Net) -> jax.Array:
  """Images of code maps (top first) through the frozen decoder: uint8."""
  family, vq_net = frozen_model(net)
  decoded = family.decode_codes(variables[FROZEN], tuple(codes), net=vq_net)
  return vqvae.decode_to_uint8(decoded, key, net=vq_net)


def sample(variables, key, num: int, *, net: Net, labels=None,
           method: str = 'cached') -> jax.Array:
  """End-to-end samples: codes from the prior, decoded: uint8 [num, H, W, C].

  The decoder shows its mean (or a draw, if the VQ model's sample_mode is
  'draw').
  """
  code_key, x_key = jax.random.split(key)
  codes = sample_codes(variables, code_key, num, net=net, labels=labels,
                       method=method)
  return decode(variables, codes, x_key, net=net)


def reconstruct(variables, batch, key, *, net: Net) -> jax.Array:
  """The frozen VQ model's reconstructions of a batch: uint8."""
  family, vq_net = frozen_model(net)
  return family.reconstruct(variables[FROZEN], batch, key, net=vq_net)
