"""Model families, each a module with the same contract.

A family module exports:

- ``Net``: a `flax.linen.Module` whose fields are ``config.model``.
- ``init(key, batch, *, net) -> params`` for a preprocessed example batch.
- ``loss_fn(params, batch, key, *, net, train) -> (scalar, {name: [B]})``:
  the training objective (a mean over unmasked rows) and per-example metrics.
- ``LIKELIHOOD``: 'exact', 'bound' or None, saying what
  ``log_likelihood(params, batch, key, *, net, **kwargs) -> [B] nats``
  returns (None: the family has no likelihood and ``log_likelihood`` is None).
- ``sample(params, key, num, *, net, **cond) -> uint8 [num, H, W, C]``, or
  None for a family that cannot generate (a plain autoencoder).
- optional ``reconstruct(params, batch, key, *, net) -> uint8 [B, H, W, C]``.
- optional ``validate(config, dataset)``: raises `ConfigError` naming the
  field when ``config`` does not fit the family or the data; called before
  anything is compiled.
- optional ``make_train_step(*, net, tx, preprocess, config)`` returning
  ``step(state, batch, train_key) -> (state, scalar metrics)``: families with
  their own step (GANs, EM, EMA codebooks) keep the generic step's signature
  and so the shared loop, checkpoints, sharding and logging.
- optional ``DATA``: the kinds of data the family models, a tuple of
  'images' (default) and 'points' (toy 2-D data: batches carry 'point'
  float32 [B, D], ``config.model.image_shape`` is (D,), and ``sample``
  returns float32 [num, D]).
- optional ``make_optimizer(config) -> tx``: an optax-like object with
  ``init(params)``; the trainer stores its state in ``TrainState.opt_state``
  and hands ``tx`` to ``make_train_step`` (e.g. separate generator and
  discriminator optimizers).

A family with non-trainable state (batch-norm statistics, EMA codebooks)
keeps the whole Flax variables dict ({'params': ..., 'batch_stats': ...}) in
``TrainState.params`` and brings its own ``make_train_step`` that updates
only what should change; every contract function then receives that
variables dict as ``params``.

The trainer, evaluator, CLI and tests loop over `FAMILIES` instead of
special-casing models.
"""

from __future__ import annotations

import importlib
import types

from jaxgen.errors import ConfigError

# name (config.family) -> module. Imported on first use, so a family's
# dependencies load only when it runs.
FAMILIES: dict[str, str] = {
    'autoencoder': 'jaxgen.models.autoencoder',
    'began': 'jaxgen.models.began',
    'code_prior': 'jaxgen.models.code_prior',
    'gan': 'jaxgen.models.gan',
    'gated_pixelcnn': 'jaxgen.models.gated_pixelcnn',
    'gmm': 'jaxgen.models.gmm',
    'kmeans': 'jaxgen.models.kmeans',
    'made': 'jaxgen.models.made',
    'nade': 'jaxgen.models.nade',
    'pixelcnn': 'jaxgen.models.pixelcnn',
    'pixelcnnpp': 'jaxgen.models.pixelcnnpp',
    'pixelrnn': 'jaxgen.models.pixelrnn',
    'vae': 'jaxgen.models.vae',
    'vqvae': 'jaxgen.models.vqvae',
    'vqvae2': 'jaxgen.models.vqvae2',
    'wavenet': 'jaxgen.models.wavenet',
}

REQUIRED = ('Net', 'init', 'loss_fn', 'LIKELIHOOD', 'log_likelihood', 'sample')


def get_family(name: str) -> types.ModuleType:
  """The family module registered as `name` (``config.family``)."""
  if name not in FAMILIES:
    raise ConfigError(
        f'config.family={name!r} is not a known family; known: '
        f'{sorted(FAMILIES)}.')
  return importlib.import_module(FAMILIES[name])
