"""Latent-space tools shared by the latent-variable families (VAE, GANs).

- `lerp` and `slerp`: linear and spherical interpolation (Shoemake 1985;
  White, "Sampling Generative Networks", 2016, argues for slerp with
  Gaussian priors, whose mass lies near a sphere).
- `interpolation_path`: the latents along a path between two codes.
- `vector_arithmetic`: signed sums of averaged latents, the "smiling woman
  - neutral woman + neutral man" of Radford et al., ICLR 2016, Sec. 6.3
  (they average three exemplars per concept, since single codes are
  unstable).
- `perturb`: copies of a code with uniform noise, as the DCGAN paper shows
  the result of an arithmetic as a row of nearby samples.

All pure JAX; shapes are in the docstrings.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp


def lerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:
  """Linear interpolation ``(1 - t) a + t b``: a, b [L], t [T] -> [T, L]."""
  t = jnp.asarray(t)[:, None]
  return (1 - t) * a + t * b


def slerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:
  r"""Spherical interpolation between vectors a and b (Shoemake 1985).

  .. math::
    \operatorname{slerp}(a, b; t) = \frac{\sin((1 - t)\,\omega)}{\sin\omega} a
      + \frac{\sin(t\,\omega)}{\sin\omega} b, \qquad
    \cos\omega = \frac{a \cdot b}{\|a\|\,\|b\|}.

  a, b: [L]; t: [T] -> [T, L]. Falls back to linear when a and b are
  (nearly) parallel (sin omega < 1e-6).
  """
  na = a / jnp.maximum(jnp.linalg.norm(a), 1e-12)
  nb = b / jnp.maximum(jnp.linalg.norm(b), 1e-12)
  omega = jnp.arccos(jnp.clip(jnp.dot(na, nb), -1.0, 1.0))
  so = jnp.sin(omega)
  t = jnp.asarray(t)[:, None]
  safe_so = jnp.where(so < 1e-6, 1.0, so)
  spherical = (jnp.sin((1 - t) * omega) * a + jnp.sin(t * omega) * b) / safe_so
  linear = (1 - t) * a + t * b
  return jnp.where(so < 1e-6, linear, spherical)


def interpolation_path(a: jax.Array, b: jax.Array, num_steps: int,
                       spherical: bool = False) -> jax.Array:
  """`num_steps` latents from a to b, ends included: [num_steps, L]."""
  t = jnp.linspace(0.0, 1.0, num_steps)
  return slerp(a, b, t) if spherical else lerp(a, b, t)


def vector_arithmetic(terms: Sequence[tuple[float, jax.Array]]) -> jax.Array:
  r"""``sum_i w_i mean(Z_i)``: arithmetic over averaged latents.

  Args:
    terms: pairs (weight w_i, latents Z_i [N_i, L]); e.g.
      ``[(1, smiling_women), (-1, neutral_women), (1, neutral_men)]``.

  Returns:
    [L].
  """
  if not terms:
    raise ValueError('vector_arithmetic needs at least one (weight, latents) '
                     'term.')
  return sum(w * jnp.mean(jnp.asarray(z), axis=0) for w, z in terms)


def perturb(key: jax.Array, z: jax.Array, num: int,
            scale: float = 0.25) -> jax.Array:
  """`num` copies of z [L] plus U[-scale, scale] noise: [num, L].

  The first copy is z itself (no noise), so the exact result of an
  arithmetic is always shown.
  """
  noise = jax.random.uniform(key, (num,) + z.shape, z.dtype, -scale, scale)
  return z + noise.at[0].set(0.0)
