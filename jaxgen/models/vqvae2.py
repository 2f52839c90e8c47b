"""A two-level VQ-VAE in the manner of VQ-VAE-2: top and bottom code maps.

Razavi, van den Oord & Vinyals, "Generating Diverse High-Fidelity Images
with VQ-VAE-2", NeurIPS 2019, §3.1 and Fig. 2a (the two-level encoder and
decoder); the quantizers, losses, EMA codebooks and restarts of
`jaxgen.models.vqvae` (van den Oord et al., NeurIPS 2017).

Architecture (b = bottom_downsamples, t = top_downsamples):

    h_b  = Encoder_b(x)                      [H/2^b, W/2^b, hidden]
    z_t  = Encoder_t(h_b) -> quantize_top    [H/2^(b+t), ..., D]   top codes
    d_t  = Decoder_t(z_t^q)                  [H/2^b, ..., D]
    z_b  = 1x1 conv([h_b, d_t]) -> quantize_bottom   bottom codes
    x^   = Decoder([z_b^q, Upsample(z_t^q)])  p(x | z_t, z_b)

The bottom codes are computed from the encoder features *and* the decoded
top codes, so the bottom level carries what the top one misses (local
detail) and the top level the global structure. Each level has its own
codebook of K codes of dimension D (same quantizer kind for both). The
training loss is the reconstruction NLL plus both levels' latent losses
(metrics suffixed '_top' / '_bottom'); `log_likelihood` is the
uniform-prior bound log p(x | z_q) - (N_top + N_bottom) log K; a learned
prior over both maps (top, then bottom given top) is
`jaxgen.models.code_prior`.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import nn as jnn
from jaxgen import steps
from jaxgen.errors import ConfigError
from jaxgen.models import pixels
from jaxgen.models import vqvae
from jaxgen.models.vqvae import check_quantizer_fields
from jaxgen.nn import conv_transpose
from jaxgen.nn import initializers as inits

LIKELIHOOD = 'bound'  # log p(x | z_q(x)) + log p_uniform(z_q(x)) <= log p(x)
LEVELS = ('vq_top', 'vq_bottom')  # top first, as the prior factorises


class Net(nn.Module):
  """Two-level VQ-VAE; fields are ``config.model``.

  Attributes:
    image_shape: (H, W, C).
    hidden_channels, res_channels, num_res_blocks, activation: as `vqvae.Net`
      (every encoder and decoder uses them).
    bottom_downsamples: stride-2 layers from the image to the bottom map.
    top_downsamples: stride-2 layers from the bottom map to the top map.
    code_dim, num_codes, quantizer, commitment_cost, ema_decay, ema_epsilon,
      dead_code_threshold, gumbel_temperature, kl_weight, likelihood,
      sample_mode: as `vqvae.Net`, for both levels.
  """
  image_shape: Sequence[int] = (28, 28, 1)
  hidden_channels: int = 64
  res_channels: int = 32
  num_res_blocks: int = 2
  bottom_downsamples: int = 2
  top_downsamples: int = 1
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
    h, r, n = self.hidden_channels, self.res_channels, self.num_res_blocks
    (_, _), (hb, wb) = code_shapes(self)
    self.encoder_bottom = vqvae.Encoder(h, r, n, self.bottom_downsamples, h,
                                        self.activation)
    self.encoder_top = vqvae.Encoder(h, r, n, self.top_downsamples,
                                     self.code_dim, self.activation)
    self.vq_top = vqvae.make_quantizer(self)
    self.decoder_top = vqvae.Decoder(h, r, n, self.top_downsamples,
                                     self.code_dim, (hb, wb), self.activation)
    self.pre_bottom = inits.Conv(self.code_dim, (1, 1))
    self.vq_bottom = vqvae.make_quantizer(self)
    self.upsample_top = [
        conv_transpose.ConvTranspose(self.code_dim, (4, 4), strides=(2, 2),
                                     padding='SAME')
        for _ in range(self.top_downsamples)]
    self.decoder = vqvae.Decoder(
        h, r, n, self.bottom_downsamples,
        self.image_shape[-1] * pixels.num_params(self.likelihood),
        tuple(self.image_shape[:2]), self.activation)

  def _quantize(self, quantizer, z, key):
    return quantizer(z, key) if self.quantizer == 'gumbel' else quantizer(z)

  def decode(self, z_top: jax.Array, z_bottom: jax.Array):
    """Code vectors of both levels -> p(x | z) parameters [B, H, W, C]."""
    up = z_top
    for i, layer in enumerate(self.upsample_top):
      up = layer(up)
      if i + 1 < len(self.upsample_top):
        up = jnn.activation(self.activation)(up)
    up = up[:, :z_bottom.shape[1], :z_bottom.shape[2], :]
    out = self.decoder(jnp.concatenate([z_bottom, up], axis=-1))
    return pixels.split_params(self.likelihood, out)

  def __call__(self, x: jax.Array, key: jax.Array | None = None):
    """{'decoder': p(x | z_q(x)), 'levels': {'vq_top': ..., 'vq_bottom': ...}}."""
    keys = (None, None) if key is None else tuple(jax.random.split(key))
    h_b = self.encoder_bottom(x)
    top = self._quantize(self.vq_top, self.encoder_top(h_b), keys[0])
    d_t = self.decoder_top(top['z_q'])
    z_b = self.pre_bottom(jnp.concatenate([h_b, d_t], axis=-1))
    bottom = self._quantize(self.vq_bottom, z_b, keys[1])
    return {'decoder': self.decode(top['z_q'], bottom['z_q']),
            'levels': {'vq_top': top, 'vq_bottom': bottom}}

  def decode_codes(self, codes: Sequence[jax.Array]):
    """(top [B, ht, wt], bottom [B, hb, wb]) indices -> p(x | z) params."""
    top, bottom = codes
    return self.decode(self.vq_top.embed(top), self.vq_bottom.embed(bottom))


def code_shapes(net) -> tuple[tuple[int, int], tuple[int, int]]:
  """((ht, wt), (hb, wb)): the top and bottom code maps' sizes."""
  h, w = net.image_shape[:2]
  b, t = net.bottom_downsamples, net.top_downsamples
  hb, wb = vqvae.code_size(h, b), vqvae.code_size(w, b)
  return ((vqvae.code_size(hb, t), vqvae.code_size(wb, t)), (hb, wb))


def validate(config, dataset) -> None:
  """Checks ``config.model`` against itself and the loaded dataset."""
  m = config.model
  check_quantizer_fields(m)
  if m.bottom_downsamples < 0:
    raise ConfigError(f'config.model.bottom_downsamples='
                      f'{m.bottom_downsamples} must be >= 0.')
  if m.top_downsamples < 1:
    raise ConfigError(f'config.model.top_downsamples={m.top_downsamples} '
                      'must be >= 1 (the top map is coarser than the bottom).')
  pixels.check_data_config(m.likelihood, config.data, dataset.pixel_levels)


def init(key: jax.Array, batch, *, net: Net) -> dict[str, Any]:
  """The variables dict {'params', 'codebook_ema'} for an example batch."""
  return dict(net.init(key, batch['image']))


def loss_fn(variables, batch, key, *, net: Net, train: bool = True):
  """Reconstruction NLL plus both levels' latent losses (see `vqvae.loss_fn`).

  Metrics [B]: 'recon_nll', 'recon_error', 'quantization_error_top' /
  '_bottom' (or 'kl_top' / '_bottom'), and the uniform-prior bound 'nll',
  'bits_per_dim'.
  """
  per_example, metrics, _ = vqvae.forward(
      variables, batch, key, net=net, levels=LEVELS, shapes=code_shapes(net),
      train=train)
  return steps.masked_mean(per_example, batch.get('mask')), metrics


make_optimizer = vqvae.make_optimizer


def make_train_step(*, net: Net, tx, preprocess, config) -> Callable:
  """Optax on 'params', then the EMA updates and restarts of both levels."""
  return vqvae.make_family_step(net, tx, preprocess, config, LEVELS,
                                code_shapes(net))


def encode_codes(variables, batch, *, net: Net) -> tuple[jax.Array, ...]:
  """(top int32 [B, ht, wt], bottom int32 [B, hb, wb]) of a batch."""
  out = net.apply(vqvae.apply_variables(variables), batch['image'])
  return tuple(out['levels'][name]['indices'] for name in LEVELS)


def decode_codes(variables, codes, *, net: Net):
  """p(x | z) parameters of (top, bottom) code maps."""
  return net.apply(vqvae.apply_variables(variables), tuple(codes),
                   method=Net.decode_codes)


def log_likelihood(variables, batch, key, *, net: Net) -> jax.Array:
  """log p(x | z_q(x)) - (N_top + N_bottom) log K [B]: the uniform bound."""
  _, metrics, _ = vqvae.forward(variables, batch, key, net=net, levels=LEVELS,
                                shapes=code_shapes(net), train=False)
  return -metrics['nll']


def sample(variables, key, num: int, *, net: Net):
  """Decoded uniformly drawn top and bottom codes: uint8 [num, H, W, C]."""
  code_key, x_key = jax.random.split(key)
  codes = vqvae.uniform_codes(code_key, num, code_shapes(net), net.num_codes)
  return vqvae.decode_to_uint8(decode_codes(variables, codes, net=net), x_key,
                               net=net)


def reconstruct(variables, batch, key, *, net: Net):
  """Decoder output at the batch's top and bottom codes: uint8."""
  codes = encode_codes(variables, batch, net=net)
  return vqvae.decode_to_uint8(decode_codes(variables, codes, net=net), key,
                               net=net)
