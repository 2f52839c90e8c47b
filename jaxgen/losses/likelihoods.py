"""Log-likelihoods of observation models, computed from logits and log-scales.

Every function here is pure, jit-able and *unreduced*: it returns one
log-probability per element (or per event, for the multivariate ones) and the
caller reduces (sums over pixels, averages over the batch, ...). Nothing is
computed from probabilities or scales directly; everything goes through
``log_sigmoid``, ``softplus``, ``log_softmax`` and ``logsumexp`` so that
values *and gradients* stay finite at saturated logits and extreme scales.

Outputs have the promoted floating dtype of the inputs (float32 under JAX's
default configuration). Computing these in bfloat16 or float16 is not
recommended: the discretized logistic in particular needs float32 resolution
to tell neighbouring 8-bit levels apart.
"""

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

_LOG_2PI = math.log(2.0 * math.pi)

# Width of a bin in standardised units, (2 / (num_bins - 1)) / scale, below
# which the discretized logistic switches from the exact CDF difference to the
# mid-bin density times the bin width. The relative error of that midpoint
# rule is about width**2 / 24 (the logistic density has |f''/f| <= 1), i.e.
# below 5e-8 here, while above it ``log(-expm1(-width))`` is accurate in
# float32.
_MIDPOINT_WIDTH = 1e-3


def _float_dtype(*args: ArrayLike) -> jnp.dtype:
  """The promoted dtype of ``args``, made floating if it is not already."""
  return jnp.result_type(float, *args)


def bernoulli_log_prob(logits: ArrayLike, x: ArrayLike) -> jax.Array:
  r"""Elementwise log-probability of a Bernoulli observation, from logits.

  .. math::
    \log p(x \mid l) = x \log\sigma(l) + (1 - x) \log\sigma(-l)
                     = x\,l - \operatorname{softplus}(l).

  For ``x`` in {0, 1} this is the Bernoulli log-mass. For float ``x`` in
  [0, 1] (e.g. grey-levels used as targets) it is the negative binary
  cross-entropy ``-BCE(x, sigmoid(l))``, which is not a normalised
  log-density of ``x``. The right-hand form is exact for any real ``x`` and
  has gradient ``x - sigmoid(l)`` w.r.t. ``l``: finite at any finite logit.

  Args:
    logits: float array ``[...]``, the Bernoulli logits ``l`` (log-odds).
    x: array broadcastable with ``logits``, values in [0, 1] (bool, int or
      float).

  Returns:
    Float array of the broadcast shape of ``logits`` and ``x`` with the
    promoted floating dtype: log p(x | logits) per element, in nats.

  References:
    Bishop, *Pattern Recognition and Machine Learning*, 2006, eq. 4.90
    (cross-entropy of the logistic sigmoid).
  """
  dtype = _float_dtype(logits, x)
  logits = jnp.asarray(logits, dtype)
  x = jnp.asarray(x, dtype)
  return x * logits - jax.nn.softplus(logits)


def gaussian_log_prob(
    x: ArrayLike, mean: ArrayLike, log_scale: ArrayLike
) -> jax.Array:
  r"""Elementwise log-density of a univariate Gaussian, from its log-std.

  .. math::
    \log \mathcal{N}(x; \mu, \sigma^2)
      = -\tfrac12 \big((x - \mu) e^{-\log\sigma}\big)^2 - \log\sigma
        - \tfrac12 \log 2\pi.

  Args:
    x: float array ``[...]``.
    mean: float array broadcastable with ``x``: ``mu``.
    log_scale: float array broadcastable with ``x``: ``log sigma`` (the log of
      the *standard deviation*; pass ``0.5 * log_var`` for a log-variance).

  Returns:
    Float array of the broadcast shape, the log-density in nats per element.

  References:
    Bishop, *Pattern Recognition and Machine Learning*, 2006, eq. 1.46.
  """
  dtype = _float_dtype(x, mean, log_scale)
  x, mean, log_scale = (jnp.asarray(a, dtype) for a in (x, mean, log_scale))
  z = (x - mean) * jnp.exp(-log_scale)
  return -0.5 * jnp.square(z) - log_scale - 0.5 * _LOG_2PI


def categorical_log_prob(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
  r"""Log-probability of integer labels under a categorical given by logits.

  .. math::
    \log p(y \mid l) = l_y - \log \textstyle\sum_k e^{l_k}
                     = \operatorname{log\_softmax}(l)_y.

  Logits may contain ``-inf`` (masked classes) as long as the label's own logit
  is finite.

  Args:
    logits: float array ``[..., K]``.
    labels: integer array ``[...]`` (broadcastable with ``logits.shape[:-1]``)
      with values in ``[0, K)``. Out-of-range labels give NaN (negative labels
      in ``[-K, 0)`` wrap around, as in NumPy indexing).

  Returns:
    Float array ``[...]`` (the broadcast batch shape), log p(labels) in nats.

  References:
    Bishop, *Pattern Recognition and Machine Learning*, 2006, eq. 4.108
    (multiclass cross-entropy with the softmax).
  """
  logits = jnp.asarray(logits, _float_dtype(logits))
  labels = jnp.asarray(labels)
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise ValueError(
        f"categorical_log_prob: `labels` must be an integer array, got dtype"
        f" {labels.dtype}."
    )
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  batch_shape = jnp.broadcast_shapes(log_probs.shape[:-1], labels.shape)
  log_probs = jnp.broadcast_to(log_probs, batch_shape + log_probs.shape[-1:])
  labels = jnp.broadcast_to(labels, batch_shape)
  return jnp.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]


def _check_num_bins(num_bins: int) -> None:
  if isinstance(num_bins, bool) or not isinstance(num_bins, int):
    raise ValueError(
        f"`num_bins` must be a Python int (a static value), got {num_bins!r}."
    )
  if num_bins < 2:
    raise ValueError(f"`num_bins` must be >= 2, got {num_bins}.")


def discretized_logistic_log_prob(
    x: ArrayLike,
    mean: ArrayLike,
    log_scale: ArrayLike,
    *,
    num_bins: int = 256,
    log_scale_min: float = -7.0,
) -> jax.Array:
  r"""Elementwise log-mass of a logistic discretized to ``num_bins`` levels.

  The data live on the bin centres of [-1, 1]: level ``k`` in
  ``{0, ..., num_bins - 1}`` is ``x = 2 k / (num_bins - 1) - 1`` (for 8-bit
  images, ``x = pixel / 127.5 - 1``). With half-width
  ``h = 1 / (num_bins - 1)``, ``s = exp(max(log_scale, log_scale_min))`` and
  the logistic CDF ``F(t) = sigmoid((t - mean) / s)``:

  .. math::
    P(x) = \begin{cases}
      F(x + h)              & \text{lowest level } (x = -1), \\
      1 - F(x - h)          & \text{highest level } (x = +1), \\
      F(x + h) - F(x - h)   & \text{otherwise,}
    \end{cases}

  so the masses of all ``num_bins`` levels sum to one. This is PixelCNN++'s
  formulation (Salimans et al. 2017, eq. 2, and the edge cases of their
  ``discretized_mix_logistic_loss``), evaluated in log space:

  * lowest level: ``log F(x+h) = a - softplus(a)``, ``a = (x + h - mean)/s``;
  * highest level: ``log(1 - F(x-h)) = -softplus(b)``, ``b = (x - h - mean)/s``;
  * interior: ``sigmoid(a) - sigmoid(b) = sigmoid(a) sigmoid(-b)
    (1 - exp(-(a - b)))``, hence
    ``log P = log_sigmoid(a) + log_sigmoid(-b) + log(-expm1(-w))`` with the
    standardised bin width ``w = a - b = 2h/s`` computed directly (no
    cancellation). Unlike ``log(max(cdf_delta, 1e-12))`` this is accurate
    deep in the tails, where the CDF difference underflows.
  * When the bin is so narrow relative to the scale that ``w`` loses
    precision or underflows (``w < 1e-3``, i.e. very large scales), it uses
    PixelCNN++'s mid-bin fallback ``log_pdf(x) + log(2h)`` (their
    ``log_pdf_mid - log(127.5)``, generalised to ``num_bins``), whose
    relative error there is below ``w**2 / 24``.

  A level is taken to be the lowest when ``x < -1 + h`` and the highest when
  ``x > 1 - h`` (halfway to the neighbouring centre), so inputs that are only
  approximately on the centres are handled. Branches that are not selected
  are kept finite (the double-``where`` pattern), so values and gradients
  w.r.t. all of ``x``, ``mean`` and ``log_scale`` are finite at levels 0 and
  ``num_bins - 1``, for ``|mean|`` far outside [-1, 1] and for ``log_scale``
  far below the clamp or very large. Below ``log_scale_min`` the gradient
  w.r.t. ``log_scale`` is zero (the clamp), as in PixelCNN++.

  Args:
    x: float array ``[...]`` with values on the bin centres in [-1, 1].
    mean: float array broadcastable with ``x``: the logistic location.
    log_scale: float array broadcastable with ``x``: log of the logistic
      scale ``s`` (not the standard deviation, which is ``s * pi / sqrt(3)``).
    num_bins: static Python int >= 2, the number of levels (256 for 8 bits).
    log_scale_min: ``log_scale`` is clamped from below at this value (static
      float; -7 as in PixelCNN++).

  Returns:
    Float array of the broadcast shape of the inputs: ``log P(x)`` in nats.

  References:
    Salimans, Karpathy, Chen, Kingma. *PixelCNN++: Improving the PixelCNN with
    Discretized Logistic Mixture Likelihood and Other Modifications*,
    ICLR 2017, section 2.1, eq. 2.
  """
  _check_num_bins(num_bins)
  dtype = _float_dtype(x, mean, log_scale)
  x, mean, log_scale = (jnp.asarray(a, dtype) for a in (x, mean, log_scale))
  log_scale = jnp.maximum(log_scale, log_scale_min)
  half_width = 1.0 / (num_bins - 1)

  inv_scale = jnp.exp(-log_scale)
  centred = x - mean
  plus_in = inv_scale * (centred + half_width)  # a
  min_in = inv_scale * (centred - half_width)  # b
  mid_in = inv_scale * centred

  # Lowest level: log F(x + h).
  log_cdf_plus = plus_in - jax.nn.softplus(plus_in)
  # Highest level: log(1 - F(x - h)).
  log_one_minus_cdf_min = -jax.nn.softplus(min_in)

  # Interior levels: log(F(x + h) - F(x - h)), factored so nothing cancels.
  width_in = (2.0 * half_width) * inv_scale  # a - b, always > 0 in exact math.
  narrow = width_in < _MIDPOINT_WIDTH
  safe_width = jnp.where(narrow, 1.0, width_in)  # Keeps log/expm1 off 0.
  log_delta = (
      jax.nn.log_sigmoid(plus_in)
      + jax.nn.log_sigmoid(-min_in)
      + jnp.log(-jnp.expm1(-safe_width))
  )
  # Mid-bin fallback: log pdf(x) + log(bin width).
  log_pdf_mid = mid_in - log_scale - 2.0 * jax.nn.softplus(mid_in)
  log_mid = log_pdf_mid + math.log(2.0 * half_width)
  log_interior = jnp.where(narrow, log_mid, log_delta)

  return jnp.where(
      x < -1.0 + half_width,
      log_cdf_plus,
      jnp.where(x > 1.0 - half_width, log_one_minus_cdf_min, log_interior),
  )


def discretized_logistic_mixture_log_prob(
    x: ArrayLike,
    logit_weights: ArrayLike,
    means: ArrayLike,
    log_scales: ArrayLike,
    *,
    num_bins: int = 256,
    log_scale_min: float = -7.0,
) -> jax.Array:
  r"""Log-mass of a pixel under a mixture of discretized logistics (PixelCNN++).

  One mixture indicator is shared by the ``C`` channels of a pixel, and given
  the component the channels are independent:

  .. math::
    \log P(x) = \operatorname{logsumexp}_k \Big(
      \operatorname{log\_softmax}(\pi)_k
      + \sum_c \log P_{\text{DLogistic}}(x_c;\ \mu_{c,k},\ \log s_{c,k})\Big),

  with ``P_DLogistic`` as in :func:`discretized_logistic_log_prob`.

  PixelCNN++ makes the channels autoregressive within a component through
  linear coefficients: ``mu_{g,k} <- mu_{g,k} + alpha_k x_r`` and
  ``mu_{b,k} <- mu_{b,k} + beta_k x_r + gamma_k x_g`` (with ``tanh`` applied
  to the raw coefficients). That is the *caller's* job: pass the adjusted
  means here. Because the coefficients multiply the observed ``x`` of earlier
  channels, the result is still a normalised distribution over the
  ``num_bins ** C`` values of the pixel.

  Args:
    x: float array ``[..., C]`` on the bin centres in [-1, 1] (see
      :func:`discretized_logistic_log_prob`).
    logit_weights: float array ``[..., K]``, unnormalised log mixture weights
      (batch dims broadcast against ``x.shape[:-1]``).
    means: float array ``[..., C, K]``, component locations per channel.
    log_scales: float array ``[..., C, K]``, component log-scales per channel
      (clamped at ``log_scale_min``).
    num_bins: static Python int >= 2, the number of levels per channel.
    log_scale_min: static float, the lower clamp of ``log_scales``.

  Returns:
    Float array ``[...]`` (the broadcast batch shape): log P(pixel) in nats,
    summed over the ``C`` channels of the pixel.

  Raises:
    ValueError: if the channel or component axes do not agree.

  References:
    Salimans, Karpathy, Chen, Kingma. *PixelCNN++*, ICLR 2017, sections 2.1
    and 2.2, eqs. 2 and 3.
  """
  x, logit_weights, means, log_scales = (
      jnp.asarray(a) for a in (x, logit_weights, means, log_scales)
  )
  if x.ndim < 1 or logit_weights.ndim < 1 or means.ndim < 2:
    raise ValueError(
        "discretized_logistic_mixture_log_prob: expected x [..., C],"
        " logit_weights [..., K], means and log_scales [..., C, K]; got"
        f" x {x.shape}, logit_weights {logit_weights.shape}, means"
        f" {means.shape}."
    )
  num_channels, num_components = means.shape[-2:]
  if log_scales.shape[-2:] != (num_channels, num_components):
    raise ValueError(
        f"`log_scales` must end in (C, K) = {(num_channels, num_components)}"
        f" like `means`; got log_scales {log_scales.shape}."
    )
  if x.shape[-1] != num_channels:
    raise ValueError(
        f"`x` must end in C = {num_channels} channels (means.shape[-2]); got"
        f" x {x.shape}."
    )
  if logit_weights.shape[-1] != num_components:
    raise ValueError(
        f"`logit_weights` must end in K = {num_components} components"
        f" (means.shape[-1]); got logit_weights {logit_weights.shape}."
    )
  per_channel = discretized_logistic_log_prob(
      x[..., None],
      means,
      log_scales,
      num_bins=num_bins,
      log_scale_min=log_scale_min,
  )  # [..., C, K]
  log_weights = jax.nn.log_softmax(
      jnp.asarray(logit_weights, _float_dtype(logit_weights)), axis=-1
  )
  return jax.scipy.special.logsumexp(
      log_weights + jnp.sum(per_channel, axis=-2), axis=-1
  )


def gaussian_mixture_log_prob(
    x: ArrayLike,
    logit_weights: ArrayLike,
    means: ArrayLike,
    log_vars: ArrayLike,
) -> jax.Array:
  r"""Log-density of a mixture of diagonal Gaussians.

  .. math::
    \log p(x) = \operatorname{logsumexp}_k \Big(
      \operatorname{log\_softmax}(\pi)_k
      + \sum_d \log \mathcal{N}(x_d;\ \mu_{k,d},\ e^{v_{k,d}})\Big).

  Args:
    x: float array ``[..., D]``.
    logit_weights: float array ``[K]`` (or ``[..., K]``, broadcasting against
      ``x.shape[:-1]``): unnormalised log mixture weights ``pi``.
    means: float array ``[K, D]`` (or ``[..., K, D]``).
    log_vars: float array ``[K, D]`` (or ``[..., K, D]``): per-dimension log
      *variances* ``v``.

  Returns:
    Float array ``[...]``: log p(x) in nats per event (summed over ``D``).

  Raises:
    ValueError: if the component or event axes do not agree.

  References:
    Bishop, *Pattern Recognition and Machine Learning*, 2006, eq. 9.14
    (log-likelihood of a Gaussian mixture).
  """
  x, logit_weights, means, log_vars = (
      jnp.asarray(a) for a in (x, logit_weights, means, log_vars)
  )
  if x.ndim < 1 or logit_weights.ndim < 1 or means.ndim < 2:
    raise ValueError(
        "gaussian_mixture_log_prob: expected x [..., D], logit_weights [K],"
        f" means and log_vars [K, D]; got x {x.shape}, logit_weights"
        f" {logit_weights.shape}, means {means.shape}."
    )
  num_components, num_dims = means.shape[-2:]
  if log_vars.shape[-2:] != (num_components, num_dims):
    raise ValueError(
        f"`log_vars` must end in (K, D) = {(num_components, num_dims)} like"
        f" `means`; got log_vars {log_vars.shape}."
    )
  if x.shape[-1] != num_dims:
    raise ValueError(
        f"`x` must end in D = {num_dims} (means.shape[-1]); got x {x.shape}."
    )
  if logit_weights.shape[-1] != num_components:
    raise ValueError(
        f"`logit_weights` must end in K = {num_components} (means.shape[-2]);"
        f" got logit_weights {logit_weights.shape}."
    )
  per_dim = gaussian_log_prob(x[..., None, :], means, 0.5 * log_vars)
  log_weights = jax.nn.log_softmax(
      jnp.asarray(logit_weights, _float_dtype(logit_weights)), axis=-1
  )
  return jax.scipy.special.logsumexp(
      log_weights + jnp.sum(per_dim, axis=-1), axis=-1
  )
