"""Config fields added after runs were written, and their neutral values.

A workdir's config.json (and a results record's config) holds the fields
its config had when it ran. When a field is added later, the older files
lack it; each field listed here comes with the value that reproduces what
those runs computed (bitwise: the field's code path with that value is the
old one). `fill_added_fields` puts the missing ones into a config dict, so
`jaxgen.workdir.load_config` gives a complete config and readers use
``config.train.profile_steps`` plainly; the results catalogue compares
records with presets through the same registry.

Fields of the sections every config has (``train``, ``eval``) are in
`COMMON_FIELDS`; fields of one family's ``config.model`` are in
`FAMILY_FIELDS` under its ``config.family``, so a config only ever gets the
fields its family's config has (a VAE's config.json never gains the GAN's
``model.d_dropout``). Values are written as config.json holds them (lists,
dicts).
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

# Dotted path under ``config`` -> the value that reproduces older runs.
COMMON_FIELDS: dict[str, Any] = {
    'train.profile_steps': 0,  # no jax.profiler trace
    'train.compute_dtype': 'float32',  # float32 activations and matmuls
    'eval.evaluations': [],  # named evaluations of experiments.main
    'eval.evaluation_options': {},
}

# config.family -> {dotted path -> the value that reproduces older runs}.
FAMILY_FIELDS: dict[str, dict[str, Any]] = {
    # No discriminator dropout; fresh latents for the generator update.
    'gan': {'model.d_dropout': 0.0, 'model.reuse_fakes': False},
    'code_prior': {
        'model.mask_unused_codes': False,  # no prior mask
        # The random frozen VQ model (no workdir): its family's default Net.
        'model.random_vqvae_fields': [],
    },
    'gsn': {
        'model.latent_dim': 0,  # no latent state: the chain on x alone
        'model.latent_noise': 0.0,  # unused without a latent state
    },
    'ffjord': {'model.train_time': False},  # T fixed at model.time_length
    # The first layer's full k//2 + 1 rows and centre tap.
    'gated_pixelcnn': {'model.crop_input': False},
    'dbm': {
        'model.pretrain_steps': [0, 0],  # no greedy pre-training
        # The pre-training rate, unused while pretrain_steps is (0, 0).
        'model.pretrain_learning_rate': 0.05,
    },
}


def added_fields(family: str | None) -> dict[str, Any]:
  """{dotted path: neutral value} of the added fields a config of `family`
  has: `COMMON_FIELDS` and the family's own (none for an unknown family)."""
  return {**COMMON_FIELDS, **FAMILY_FIELDS.get(family or '', {})}


def all_added_fields() -> dict[str, Any]:
  """Every registered field, families merged: {dotted path: value}.

  Raises:
    ValueError: two families register one path with different values (a
      merged view would then be ambiguous).
  """
  merged = dict(COMMON_FIELDS)
  for family, fields in sorted(FAMILY_FIELDS.items()):
    for path, value in fields.items():
      if path in merged and merged[path] != value:
        raise ValueError(f'{path} is registered with {merged[path]!r} and, '
                         f'for family {family!r}, {value!r}.')
      merged[path] = value
  return merged


def fill_added_fields(config: Mapping[str, Any]) -> dict[str, Any]:
  """A copy of the config dict `config` with its missing added fields set.

  Only fields of ``config['family']`` (`added_fields`) are filled, and only
  where their section (``train``, ``model``, ...) exists; fields present
  are kept as they are.
  """
  out = copy.deepcopy(dict(config))
  for path, value in added_fields(out.get('family')).items():
    *sections, name = path.split('.')
    node = out
    for key in sections:
      node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict) and name not in node:
      node[name] = copy.deepcopy(value)
  return out
