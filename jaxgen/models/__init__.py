"""Model families, each a module with the same contract.

The trainer, the evaluator, the CLI and the tests loop over `FAMILIES`
instead of special-casing models, so a new family is one module here, one
line in `FAMILIES` and one config file. Its arguments are passed as below:
positional where shown before ``*``, by keyword after it.

Required names (`REQUIRED`):

- ``Net``: a `flax.linen.Module`, built as ``Net(**config.model)`` (lists
  become tuples): every key of ``config.model`` is a field, and fields the
  config leaves out have defaults.
- ``init(key, batch, *, net) -> params``: the initial parameters, the
  pytree the trainer keeps in ``TrainState.params``, for one preprocessed
  example batch.
- ``loss_fn(params, batch, key, *, net, train) -> (scalar, {name: [B]})``:
  the training objective (a mean over the rows whose ``batch['mask']`` is
  True) and per-example metrics; ``train=False`` in evaluation.
- ``LIKELIHOOD``: 'exact', 'bound' (a lower bound on log p(x)),
  'estimate' (a stochastic estimate, neither exact nor a bound: an
  energy-based model's -F(x) - log Z with log Z by annealed importance
  sampling, which tends to over-estimate log p(x)) or None, saying what
  ``log_likelihood`` returns.
- ``log_likelihood(params, batch, key, *, net, **estimator) -> [B] nats``,
  or None when ``LIKELIHOOD`` is None (then ``config.eval.estimators`` must
  be empty and the family is scored by sample quality or reconstruction).
  Each entry of ``config.eval.estimators`` is a dict of its keyword
  arguments (e.g. ``{'bound': 'iwae', 'num_samples': 5000}``), checked
  against its signature before training. A density of dequantized data
  returns log p(y); the evaluator adds the dequantization offset.
- ``sample(params, key, num, *, net, **cond) -> uint8 [num, H, W, C]``
  (float32 [num, D] for points), or None for a family that cannot generate
  (a plain autoencoder, which then provides ``reconstruct``; the feature
  classifier of `jaxgen.quality`, which neither draws nor reconstructs and
  is measured by its per-example metrics alone). The trainer
  calls ``sample(params, key, num=num, net=net)``: the count is named
  ``num`` and conditioning arguments (labels, observed pixels) have
  defaults.

Optional names (`OPTIONAL`); the trainer uses each one a family defines:

- ``reconstruct(params, batch, key, *, net) -> uint8 [B, H, W, C]``: drawn
  beside the inputs in the image grids.
- ``validate(config, dataset)``: raises `ConfigError` naming the field when
  ``config`` does not fit the family or the loaded `jaxgen.data.Dataset`;
  called before anything is compiled.
- ``make_train_step(*, net, tx, preprocess, config)`` returning
  ``step(state, batch, train_key) -> (state, {name: scalar})``: families
  with their own step (GANs, EM, EMA codebooks, frozen sub-models) keep the
  generic step's signature and so the shared loop, checkpoints, sharding
  and logging. The step receives the raw batch and ``preprocess(batch,
  key)``, the data config's transform, to apply (EM takes the
  dequantization noise in expectation instead), and draws its keys from
  ``fold_in(train_key, state.step)``.
- ``make_optimizer(config) -> tx``: an optax-like object with
  ``init(params)``, used instead of the generic optimizer built from
  ``config.optimizer``; the trainer stores its state in
  ``TrainState.opt_state`` and hands ``tx`` to ``make_train_step`` (e.g.
  separate generator and discriminator optimizers).
- ``DATA``: the kinds of data the family models, a tuple of 'images' (the
  default) and 'points' (toy 2-D data: batches carry 'point' float32
  [B, D], ``config.model.image_shape`` is (D,), and ``sample`` returns
  float32 [num, D]).
- ``data_init(params, batch, key, *, net) -> params``: a data-dependent
  initialisation (Glow's actnorm): the trainer calls it once, on the first
  preprocessed training batch, when it starts a fresh run (never on
  resume: the values are in the checkpoint), with a key folded from the
  init key, and builds the optimizer state from what it returns.
- ``prepare_estimator(params, key, *, net, **estimator) -> {argument:
  scalar}``: a quantity every batch of one evaluation must share (an RBM's
  AIS log Z and its standard error). `jaxgen.evaluate` calls it once per
  evaluation and estimator, passes what it returns to each batch's
  ``log_likelihood`` as extra keyword arguments, and reports each value
  in the results (and the eval JSON) as '<estimator>/<argument>'.
- ``ESTIMATOR_CHOICES``: {argument of ``log_likelihood``: tuple of allowed
  values} for arguments with a closed set of values (the VAE's
  ``{'bound': ('iwae', 'elbo')}``); a config value outside it is a
  `ConfigError` naming ``config.eval.estimators.<name>.<argument>``, raised
  before training.
- ``chain_figure(variables, batch, key, *, net, num_steps, every) ->
  (rows from noise, rows from the batch's images)``: a Markov-chain model's
  chains for a figure (`experiments.chains`), each row a list of uint8
  [N, ...] states, the start first, then one state every `every` steps.
- ``FLOAT32_ONLY``: a string, why the family must compute in float32 (EM's
  sufficient statistics, a Boltzmann machine's Gibbs conditionals); the
  trainer refuses ``config.train.compute_dtype='bfloat16'`` with it, before
  compiling.
- ``describe_estimator(*, net, **estimator) -> {'estimate': str,
  'shared': str, ...}``: words for a record about what ``log_likelihood``
  evaluates per example with those arguments ('estimate': a diffusion
  bound's timesteps per image) and which of its random draws one key fixes
  ('shared'); further keys are record fields. `jaxgen.uses.scoring.
  class_draws` states them beside its common-random-numbers sentence when
  one image is scored under every class; without the name it states that
  sentence alone.

A family with non-trainable state (batch-norm statistics, EMA codebooks, a
frozen sub-model) keeps the whole Flax variables dict ({'params': ...,
'batch_stats': ...}) in ``TrainState.params`` and brings its own
``make_train_step`` (`jaxgen.steps.make_variables_step`) that updates only
what should change; every contract function then receives that variables
dict as ``params``.

Discrete codes (`CODES`). A family whose code maps the autoregressive prior
(`code_prior`) can model exports, and is listed in
`code_prior.VQ_FAMILIES`:

- ``code_shapes(net) -> ((h, w), ...)``: the size of each code map, top
  level first.
- ``encode_codes(variables, batch, *, net) -> (int32 [B, h, w], ...)``: the
  code maps of a preprocessed batch, deterministic, top first, each code in
  [0, ``net.num_codes``).
- ``decode_codes(variables, codes, *, net)``: the decoder's p(x | z)
  parameters for those maps, read by `pixels.log_prob` and
  `pixels.to_uint8` with ``net.likelihood``.

Its ``Net`` has the fields ``num_codes`` (at most
`vqvae.MAX_CODES_FOR_PRIOR`: the prior is a 256-way softmax),
``likelihood`` and ``sample_mode``. The code prior restores a finished run
of the family from its workdir and calls these on the frozen model.

The config file. ``experiments/configs/<family>.py``, named after the
`FAMILIES` key, defines ``get_config(arg)``: it starts from
``common.base_config('<family>', dataset)`` (which sets ``config.family``
and every common section), fills ``config.model``, and ends with
``common.finalize(config, dataset)``, which locks it. It reads ``arg``
with ``common.parse_arg`` (the listing of ``python -m experiments.families``
and the unknown-option error come from that call). It accepts the
'smoke' dataset option: the tests train every registered family for a few
steps from ``get_config('smoke')``. A family that needs settings outside
``config.model`` adds top-level keys between the two calls (the GAN's and
BEGAN's ``d_optimizer``, the discriminator's optimizer with the fields of
``config.optimizer``) and reads them in its own ``validate``,
``make_optimizer`` or ``make_train_step``, which receive the whole config;
they are saved with it in the workdir's config.json.

Imports. A family builds on what lies below the models: `jaxgen.losses`,
`jaxgen.nn`, `jaxgen.data`, `jaxgen.estimators`, `jaxgen.errors`,
`jaxgen.steps` (``TrainState``, ``make_optimizer``, ``make_train_step``,
``make_variables_step``, ``ema_update``, ``masked_mean``) and
`jaxgen.workdir` (``load_config`` and ``restore_params`` of another
finished run); on the shared helpers of this package, `base` (label
checks), `pixels` (pixel likelihoods) and `ar_sampling` (autoregressive
samplers); and on other families' modules for pieces they share: `began`
on `gan` (the two-player optimizer, uint8 output), `kmeans` on `gmm`
(moments, seeding, the moments optimizer), `vqvae2` on `vqvae` (encoder,
decoder, quantizers, step), `nice` and `ffjord` on `realnvp` (the flow
helpers),
`code_prior` and `multiscale_pixelcnn` on `gated_pixelcnn` (the priors; the
two stages), `vqvae` (frozen-model
helpers) and `get_family` (the frozen family by name). It never imports
the trainer, `jaxgen.evaluate`, `jaxgen.quality` or `experiments`: the
trainer imports the families, not the other way round.
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
    'classifier': 'jaxgen.models.classifier',
    'code_prior': 'jaxgen.models.code_prior',
    'cyclegan': 'jaxgen.models.cyclegan',
    'dbm': 'jaxgen.models.dbm',
    'ddpm': 'jaxgen.models.ddpm',
    'ffjord': 'jaxgen.models.ffjord',
    'gan': 'jaxgen.models.gan',
    'gated_pixelcnn': 'jaxgen.models.gated_pixelcnn',
    'glow': 'jaxgen.models.glow',
    'gmm': 'jaxgen.models.gmm',
    'gsn': 'jaxgen.models.gsn',
    'kmeans': 'jaxgen.models.kmeans',
    'made': 'jaxgen.models.made',
    'multiscale_pixelcnn': 'jaxgen.models.multiscale_pixelcnn',
    'nade': 'jaxgen.models.nade',
    'nice': 'jaxgen.models.nice',
    'pix2pix': 'jaxgen.models.pix2pix',
    'pixelcnn': 'jaxgen.models.pixelcnn',
    'pixelcnnpp': 'jaxgen.models.pixelcnnpp',
    'pixelrnn': 'jaxgen.models.pixelrnn',
    'rbm': 'jaxgen.models.rbm',
    'realnvp': 'jaxgen.models.realnvp',
    'vae': 'jaxgen.models.vae',
    'vqvae': 'jaxgen.models.vqvae',
    'vqvae2': 'jaxgen.models.vqvae2',
    'wavenet': 'jaxgen.models.wavenet',
}

REQUIRED = ('Net', 'init', 'loss_fn', 'LIKELIHOOD', 'log_likelihood', 'sample')
OPTIONAL = ('reconstruct', 'validate', 'make_train_step', 'make_optimizer',
            'DATA', 'ESTIMATOR_CHOICES', 'data_init', 'prepare_estimator',
            'FLOAT32_ONLY', 'chain_figure', 'describe_estimator')
# The discrete-code sub-contract: all three or none.
CODES = ('code_shapes', 'encode_codes', 'decode_codes')


def get_family(name: str) -> types.ModuleType:
  """The family module registered as `name` (``config.family``)."""
  if name not in FAMILIES:
    raise ConfigError(
        f'config.family={name!r} is not a known family; known: '
        f'{sorted(FAMILIES)}.')
  return importlib.import_module(FAMILIES[name])
