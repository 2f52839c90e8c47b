r"""Image-to-image translation objectives: pix2pix and CycleGAN, unreduced.

Every function is pure, jit-able and *unreduced*: it returns one value per
example (or per discriminator patch) that the caller averages. Adversarial
terms work from the discriminator's raw outputs, as in
`jaxgen.losses.adversarial` (logits for the cross-entropy objective, linear
outputs for the least-squares one); a PatchGAN discriminator gives one
output per patch, ``[B, h, w]``.

With ``x`` the input image, ``y`` its target, ``G(x)`` the translation and
``l = D(x, .)`` the discriminator's patch logits:

========================  ====================================================
PatchGAN discriminator    ``(softplus(-l_r) + softplus(l_f)) / 2`` per patch
                          (Isola et al. 2017, eq. 1; halved "while optimizing
                          D", Sec. 3.3)
pix2pix generator         ``mean_patches softplus(-l_f) + lambda
                          mean_pixels |y - G(x)|`` per example (eq. 4 with the
                          non-saturating adversarial term, Sec. 3.3, and the
                          L1 term of eq. 3)
least-squares GAN         `least_squares_discriminator_loss`,
                          `least_squares_generator_loss` (Mao et al. 2017,
                          eq. 2), per patch: CycleGAN's adversarial terms
cycle consistency         ``mean |F(G(a)) - a| + mean |G(F(b)) - b|`` per
                          example (Zhu et al. 2017, eq. 2)
identity                  ``mean |F(a) - a| + mean |G(b) - b|`` per example
                          (Zhu et al. 2017, Sec. 5.2, after Taigman et al.
                          2017), with G: A -> B and F: B -> A
CycleGAN generators       ``LS(D_B(G(a))) + LS(D_A(F(b))) + lambda_cyc cycle
                          + lambda_id identity`` per example (eq. 3, the
                          least-squares form of Sec. 4)
========================  ====================================================

The L1 terms are means over an example's elements (the papers' reference
code), not sums: lambda keeps its meaning across image sizes.

References:
  Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional
  Adversarial Networks" (pix2pix), CVPR 2017.
  Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using
  Cycle-Consistent Adversarial Networks" (CycleGAN), ICCV 2017.
  Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017.
  Taigman, Polyak & Wolf, "Unsupervised Cross-Domain Image Generation",
  ICLR 2017.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxgen.losses.adversarial import least_squares_generator_loss


def _float(x: ArrayLike) -> jax.Array:
  x = jnp.asarray(x)
  return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(float)


def _per_example_mean(x: jax.Array) -> jax.Array:
  """[B, ...] -> [B]: the mean over every axis but the first."""
  return x.reshape(x.shape[0], -1).mean(-1)


def l1_per_example(x: ArrayLike, y: ArrayLike) -> jax.Array:
  r"""``mean_j |x_j - y_j|`` per example.

  Args:
    x: float ``[B, ...]``.
    y: float, the same shape.

  Returns:
    ``[B]``.
  """
  return _per_example_mean(jnp.abs(_float(x) - _float(y)))


def psnr(x: ArrayLike, y: ArrayLike, data_range: float = 1.0,
         min_mse: float = 1e-10) -> jax.Array:
  r"""Peak signal-to-noise ratio ``10 log10(R^2 / mse)`` per example, in dB.

  Args:
    x: float ``[B, ...]``.
    y: float, the same shape.
    data_range: R, the width of the value range (1 for [0, 1], 2 for
      [-1, 1]).
    min_mse: the mean squared error is floored here, so identical images
      give a finite value (``10 log10(R^2 / min_mse)``, 100 dB for R = 1).

  Returns:
    ``[B]``.
  """
  mse = _per_example_mean(jnp.square(_float(x) - _float(y)))
  return 10.0 * jnp.log10(data_range ** 2 / jnp.maximum(mse, min_mse))


def patch_discriminator_loss(real_logits: ArrayLike,
                             fake_logits: ArrayLike) -> jax.Array:
  r"""The PatchGAN discriminator's cross-entropy per patch, halved.

  .. math::
    \tfrac12 \left(-\log D(x, y) - \log(1 - D(x, G(x)))\right)
      = \tfrac12 \left(\operatorname{softplus}(-l_r)
        + \operatorname{softplus}(l_f)\right)

  for each patch (Isola et al. 2017, eq. 1; D's objective is divided by 2
  to slow it relative to G, Sec. 3.3). Average over patches and examples
  for the paper's objective.

  Args:
    real_logits: float ``[B, h, w]``, D's patch logits on (input, target).
    fake_logits: float ``[B, h, w]``, on (input, translation).

  Returns:
    ``[B, h, w]``, nats per patch.
  """
  real, fake = _float(real_logits), _float(fake_logits)
  if real.ndim != 3 or real.shape != fake.shape:
    raise ValueError(f'patch logits must both be [B, h, w]; got {real.shape} '
                     f'and {fake.shape}.')
  return 0.5 * (jax.nn.softplus(-real) + jax.nn.softplus(fake))


def pix2pix_generator_loss(fake_logits: ArrayLike, translation: ArrayLike,
                           target: ArrayLike,
                           l1_weight: float = 100.0) -> jax.Array:
  r"""The pix2pix generator objective per example (Isola et al. 2017, eq. 4).

  .. math::
    \operatorname{mean}_{patches} \operatorname{softplus}(-l_f)
      + \lambda \operatorname{mean}_j |y_j - G(x)_j|

  The adversarial term is the non-saturating ``-log D(x, G(x))`` (Sec. 3.3),
  averaged over D's patches; the L1 term (eq. 3) is averaged over the
  example's pixels. The paper's lambda is 100.

  Args:
    fake_logits: float ``[B, h, w]``, D's patch logits on (input,
      translation).
    translation: float ``[B, H, W, C]``, G(x).
    target: float ``[B, H, W, C]``, y.
    l1_weight: lambda.

  Returns:
    ``[B]``.
  """
  adversarial = _per_example_mean(jax.nn.softplus(-_float(fake_logits)))
  return adversarial + l1_weight * l1_per_example(translation, target)


def cycle_consistency_loss(real_a: ArrayLike, cycled_a: ArrayLike,
                           real_b: ArrayLike,
                           cycled_b: ArrayLike) -> jax.Array:
  r"""Cycle consistency ``mean |F(G(a)) - a| + mean |G(F(b)) - b|``.

  Zhu et al. 2017, eq. 2, per example pair (row i of A with row i of B:
  the two terms are independent, paired only to reduce).

  Args:
    real_a: float ``[B, H, W, C]``, images of domain A.
    cycled_a: F(G(a)), the same shape.
    real_b: float ``[B, H, W, C]``, images of domain B.
    cycled_b: G(F(b)), the same shape.

  Returns:
    ``[B]``; 0 when F(G(a)) = a and G(F(b)) = b.
  """
  return l1_per_example(cycled_a, real_a) + l1_per_example(cycled_b, real_b)


def identity_loss(real_a: ArrayLike, f_of_a: ArrayLike, real_b: ArrayLike,
                  g_of_b: ArrayLike) -> jax.Array:
  r"""Identity mapping loss ``mean |F(a) - a| + mean |G(b) - b|``.

  Zhu et al. 2017, Sec. 5.2 (from Taigman et al. 2017): each generator,
  given an image of its target domain, should leave it unchanged. G maps
  A -> B and F maps B -> A.

  Args:
    real_a: float ``[B, H, W, C]``.
    f_of_a: F(a), the same shape.
    real_b: float ``[B, H, W, C]``.
    g_of_b: G(b), the same shape.

  Returns:
    ``[B]``.
  """
  return l1_per_example(f_of_a, real_a) + l1_per_example(g_of_b, real_b)


def cyclegan_generator_loss(fake_b_outputs: ArrayLike,
                            fake_a_outputs: ArrayLike, cycle: ArrayLike,
                            identity: ArrayLike, cycle_weight: float = 10.0,
                            identity_weight: float = 5.0) -> jax.Array:
  r"""Both CycleGAN generators' objective per example (eq. 3, least squares).

  .. math::
    \operatorname{mean}_{patches} (D_B(G(a)) - 1)^2 / 2
      + \operatorname{mean}_{patches} (D_A(F(b)) - 1)^2 / 2
      + \lambda_{cyc} L_{cyc} + \lambda_{id} L_{id}

  with the least-squares generator loss of Mao et al. 2017 (Zhu et al. 2017,
  Sec. 4). The paper's weights are lambda_cyc = 10 and lambda_id = 0.5
  lambda_cyc.

  Args:
    fake_b_outputs: float ``[B, h, w]``, D_B's patch outputs on G(a).
    fake_a_outputs: float ``[B, h, w]``, D_A's patch outputs on F(b).
    cycle: float ``[B]``, `cycle_consistency_loss`.
    identity: float ``[B]``, `identity_loss` (pass zeros to leave it out).
    cycle_weight: lambda_cyc.
    identity_weight: lambda_id.

  Returns:
    ``[B]``.
  """
  adversarial = (
      _per_example_mean(least_squares_generator_loss(fake_b_outputs))
      + _per_example_mean(least_squares_generator_loss(fake_a_outputs)))
  return (adversarial + cycle_weight * _float(cycle)
          + identity_weight * _float(identity))
