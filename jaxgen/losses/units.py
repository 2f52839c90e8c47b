"""Units for reporting likelihoods: nats, bits/dim and dequantization."""

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def nats_to_bits_per_dim(nll_nats: ArrayLike, num_dims: ArrayLike) -> jax.Array:
  r"""Converts a negative log-likelihood in nats to bits per dimension.

  .. math::
    \text{bits/dim} = \frac{\mathrm{NLL}_{\text{nats}}}{D \ln 2}.

  ``nll_nats`` must be the NLL of the *discrete* data (for a continuous
  density on dequantized data, first add :func:`dequantization_offset_nats`).
  A uniform model over 256 levels (``NLL = D ln 256``) gives 8 bits/dim.

  Args:
    nll_nats: float array ``[...]``, NLL per example in nats (summed over the
      ``D`` dimensions of the example).
    num_dims: int or array broadcastable with ``nll_nats``: ``D``, the number
      of dimensions per example (e.g. ``H * W * C``).

  Returns:
    Float array of the broadcast shape: bits per dimension.

  References:
    van den Oord, Kalchbrenner, Kavukcuoglu, *Pixel Recurrent Neural
    Networks*, ICML 2016 (the bits/dim convention of the image-modelling
    literature).
  """
  nll_nats = jnp.asarray(nll_nats, jnp.result_type(float, nll_nats))
  return nll_nats / (num_dims * math.log(2.0))


def dequantization_offset_nats(
    num_dims: ArrayLike, scale: ArrayLike
) -> jax.Array:
  r"""Nats to add to a continuous NLL on scaled, dequantized data.

  Let ``x`` in ``Z^D`` be integer data (e.g. 8-bit pixels), ``u ~ U[0, 1)^D``
  uniform noise, and the continuous model ``p`` be fitted to
  ``y = scale * (x + u)`` (``scale = 1/256`` gives ``y`` in [0, 1); any
  constant shift of ``y`` does not change anything below). ``p`` induces a
  discrete model by integrating over the cube of side ``scale`` that ``x``
  maps to:

  .. math::
    P(x) = \int_{\text{cube}(x)} p(y)\,dy
         = \text{scale}^D \int_{[0,1)^D} p\big(\text{scale}\,(x+u)\big)\,du.

  By Jensen's inequality,

  .. math::
    -\log P(x) \le \mathbb{E}_u\big[-\log p(y)\big] - D \log \text{scale},

  so the discrete NLL (the number comparable with discrete models and the
  papers) is bounded by the continuous NLL plus the offset
  ``-D log(scale)``, which this function returns. For 8-bit data mapped to
  [0, 1) (``scale = 1/256``) the offset is ``D ln 256``; mapped to [-1, 1)
  (``scale = 2/256``) it is ``D ln 128``.

  Args:
    num_dims: int or array, ``D``, the number of dimensions per example.
    scale: positive float or array broadcastable with ``num_dims``: the
      factor between integer levels and the model's inputs.

  Returns:
    Float array of the broadcast shape: the offset in nats (positive when
    ``scale < 1``).

  References:
    Theis, van den Oord, Bethge, *A note on the evaluation of generative
    models*, ICLR 2016 (uniform dequantization bounds the discrete
    log-likelihood); Ho, Chen, Srinivas, Duan, Abbeel, *Flow++*, ICML 2019,
    section 3.1 (dequantization, with the uniform case as a special case).
  """
  scale = jnp.asarray(scale, jnp.result_type(float, scale))
  return -num_dims * jnp.log(scale)
