"""Small helpers every family's loss uses."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def masked_mean(values: jax.Array, mask: jax.Array | None) -> jax.Array:
  """Mean of per-example `values` [B] over rows where `mask` [B] is True.

  Evaluation pads its last batch with masked rows; they must not count.
  With no mask every row counts.
  """
  if mask is None:
    return values.mean()
  mask = mask.astype(values.dtype)
  return (values * mask).sum() / jnp.maximum(mask.sum(), 1.0)
