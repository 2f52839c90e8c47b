r"""NICE: additive couplings and a diagonal scaling, exact log-likelihood.

Dinh, Krueger & Bengio, "NICE: Non-linear Independent Components
Estimation", ICLR 2015 workshop. The layers are `jaxgen.nn.flows`.

The input is flattened to x [B, D]; ``num_couplings`` additive couplings
(eq. 4-6) alternate which half of NICE's odd/even partition of the
coordinates conditions the other, each coupling function an MLP of
``depth`` ReLU layers of width ``hidden`` with a zero-initialised linear
output; a diagonal scaling layer ``z = h * exp(s)`` (section 3.3) ends the
flow. The couplings have unit Jacobian determinant, so
``log|det dz/dx| = sum s`` (plus the logit pre-processing's when
``logit_alpha > 0``; NICE itself uses none). The prior is a factorised
standard logistic (the paper's, section 3.4) or Gaussian (``prior``):

    log p(y) = sum_d log p_prior(z_d) + sum_d s_d.

**What density is returned.** As in `jaxgen.models.realnvp`: on images,
`log_likelihood` is the exact density of the uniformly dequantized input
``y = (x + u) / 256`` in [0, 1)^D (NICE section 4 adds the same uniform
noise, then rescales to [0, 1]); the evaluator adds ``D ln 256`` nats, so
bits/dim bound the discrete NLL of the 8-bit images and compare with the
papers'. On toy 2-D points it is log p(x) of the points.

The family contract (`jaxgen.models`): `Net`, `init`, `loss_fn`,
`LIKELIHOOD`, `log_likelihood`, `sample` (optional ``temperature``),
`validate`, `DATA`; and `forward`, `inverse`, `log_det` as pure functions.
These are the flow helpers of `jaxgen.models.realnvp`, which read the
prior from ``net.prior``.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.errors import ConfigError
from jaxgen.models import realnvp
from jaxgen.nn import flows

LIKELIHOOD = 'exact'  # density of the dequantized input (+ D ln 256 by eval)
DATA = ('images', 'points')

init = realnvp.init
forward = realnvp.forward
inverse = realnvp.inverse
log_det = realnvp.log_det
log_likelihood = realnvp.log_likelihood
loss_fn = realnvp.loss_fn
sample = realnvp.sample


class Net(nn.Module):
  """The NICE flow; fields are ``config.model``.

  ``Net(...)(x)`` maps x [B, ...] to ``(z [B, D], log|det dz/dx| [B])``;
  ``(z, inverse=True)`` maps back to ``(x [B, ...], log|det dx/dz|)``.

  Attributes:
    image_shape: (H, W, C) of images, or (D,) of points.
    num_couplings: additive couplings, alternating the partition's halves.
    hidden: width of each coupling MLP.
    depth: ReLU hidden layers of each coupling MLP.
    prior: 'logistic' (NICE's) or 'gaussian', standard and factorised.
    logit_alpha: alpha of the logit pre-processing of [0, 1] data; 0 for
      none (NICE's choice; points).
  """
  image_shape: Sequence[int] = (28, 28, 1)
  num_couplings: int = 4
  hidden: int = 1000
  depth: int = 5
  prior: str = 'logistic'
  logit_alpha: float = 0.0

  def setup(self):
    self.couplings = [
        flows.Coupling(mask='checkerboard', parity=i % 2, affine=False,
                       hidden=self.hidden, depth=self.depth)
        for i in range(self.num_couplings)]
    self.scaling = flows.Scaling()

  def __call__(self, x: jax.Array, inverse: bool = False):
    if inverse:
      return self._inverse(x)
    h = x.reshape(x.shape[0], -1)
    logdet = jnp.zeros(x.shape[:1], jnp.float32)
    if self.logit_alpha:
      h, logdet = flows.logit_forward(h, self.logit_alpha)
    for layer in self.couplings:
      h, ld = layer(h)
      logdet += ld
    z, ld = self.scaling(h)
    return z, logdet + ld

  def _inverse(self, z: jax.Array):
    h, logdet = self.scaling(z, inverse=True)
    for layer in reversed(self.couplings):
      h, ld = layer(h, inverse=True)
      logdet += ld
    if self.logit_alpha:
      h, ld = flows.logit_inverse(h, self.logit_alpha)
      logdet += ld
    return h.reshape((z.shape[0],) + tuple(self.image_shape)), logdet


def validate(config, dataset) -> None:
  """Raises `ConfigError` naming the field that does not fit NICE."""
  m = config.model
  realnvp.validate_flow_data(config, dataset)
  if m.prior not in flows.PRIORS:
    raise ConfigError(
        f'config.model.prior={m.prior!r} is not one of {flows.PRIORS}.')
  if isinstance(m.num_couplings, bool) or not isinstance(
      m.num_couplings, int) or m.num_couplings < 2:
    raise ConfigError(
        f'config.model.num_couplings={m.num_couplings!r} must be an integer '
        '>= 2 (each coordinate is transformed by every other coupling).')
