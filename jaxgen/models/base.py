"""Small helpers the families share: label checks and default labels.

The masked per-example mean lives in `jaxgen.steps` (`steps.masked_mean`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.errors import ConfigError


def check_discrete_8bit(config, dataset, model: str, likelihood: str) -> None:
  """Raises `ConfigError` unless the run sees the 8-bit levels undequantized.

  For families with a discrete likelihood over the 256 pixel levels
  (`model` names the family in the message, `likelihood` its decoder).
  """
  d = config.data
  if d.binarize != 'none' or dataset.pixel_levels != 256:
    raise ConfigError(
        f'{model} models 8-bit pixels with {likelihood}: set '
        f"config.data.binarize='none' (got {d.binarize!r}) and use 8-bit "
        f'data (dataset {dataset.name!r} has {dataset.pixel_levels} levels).')
  if d.dequantize:
    raise ConfigError(
        f'config.data.dequantize must be False: {likelihood} is a discrete '
        'likelihood over the 256 levels, not a density.')


def check_dequantized_8bit(config, dataset, model: str = 'a flow') -> None:
  """Raises `ConfigError` unless the run sees uniformly dequantized 8-bit
  pixels y = (x + u) / 256 in [0, 1): for continuous densities (`model`
  names the family in the message); the evaluator adds D ln 256."""
  d = config.data
  if d.binarize != 'none' or dataset.pixel_levels != 256:
    raise ConfigError(
        f"{model} is a density on dequantized 8-bit pixels: set "
        f"config.data.binarize='none' (got {d.binarize!r}) and use 8-bit "
        'data.')
  if not d.dequantize:
    raise ConfigError(
        f'config.data.dequantize=False: {model} is a continuous density; '
        'set it to True (uniform dequantization, D ln 256 added by the '
        'evaluator).')
  if d.value_range != 'unit':
    raise ConfigError(
        f'config.data.value_range={d.value_range!r}: {model} reads '
        "dequantized pixels in [0, 1); set it to 'unit'.")


def check_num_classes(num_classes: int, dataset) -> None:
  """Raises `ConfigError` when config.model.num_classes misfits the data."""
  if num_classes and not dataset.num_classes:
    raise ConfigError(
        f'config.model.num_classes={num_classes} asks for a class-conditional '
        f'model but dataset {dataset.name!r} has no labels.')
  if num_classes and num_classes < dataset.num_classes:
    raise ConfigError(
        f'config.model.num_classes={num_classes} is smaller than the '
        f'{dataset.num_classes} classes of dataset {dataset.name!r}.')


def default_labels(num_classes: int, num: int, labels) -> jax.Array | None:
  """Labels for `num` conditional samples: given ones (checked), or cycling.

  Returns None for an unconditional model (num_classes == 0); otherwise
  int [num], by default 0, 1, ..., num_classes - 1, 0, 1, ...

  Raises:
    ConfigError: given labels of another shape than [num], or, when their
      values are known (not traced), not integers in [0, num_classes): an
      embedding lookup or a one-hot would take them silently.
  """
  if not num_classes:
    return None
  if labels is None:
    return jnp.arange(num) % num_classes
  labels = jnp.asarray(labels)
  if labels.shape != (num,):
    raise ConfigError(f'labels must have shape ({num},), got {labels.shape}.')
  if not isinstance(labels, jax.core.Tracer):
    values = np.asarray(labels)
    if (not np.issubdtype(values.dtype, np.integer) or values.min() < 0
        or values.max() >= num_classes):
      raise ConfigError(
          f'labels must be integers in [0, {num_classes}) (config.model.'
          f'num_classes={num_classes}), got {values.dtype} values in '
          f'[{values.min()}, {values.max()}].')
  return labels
