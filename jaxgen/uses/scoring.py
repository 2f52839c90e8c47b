"""Per-example log-likelihoods and features of any images under a trained run.

`load_run` builds the run's `jaxgen.train.Experiment` from its
``config.json`` and restores the newest (or a given) checkpoint through the
trainer's own `Experiment.restore`.

`nll` scores uint8 images [N, H, W, C] the way the evaluator scores the
test split: the run's preprocessing (``config.data``: scaling, dynamic
binarization or uniform dequantization) is applied on device with one key
per batch of ``config.eval.batch_size`` rows, ``fold_in(key, i)`` for batch
i, and the family's ``log_likelihood`` runs with the arguments of one named
estimator of ``config.eval.estimators``. The result is the negative
log-likelihood of the 8-bit (or binary) image in nats, ``-log p + offset``
(`jaxgen.evaluate.nll_report`): for a dequantized density, a one-sample
upper bound on the discrete NLL with the evaluator's uniform noise, not the
deterministic mid-bin value. A fixed-binarization run
(``config.data.binarize='fixed'``) binarizes new images on the host the way
its source binarized the data (`binarize_like_source`).

A class-conditional run (``config.model.num_classes > 0``) scores
log p(x | y) for every class y in one compiled call (`class_nll`: the batch
is preprocessed once, then the family's ``log_likelihood`` is vmapped over
the K labels with one key, so every class sees the same binarization or
dequantization noise and the same estimator draws), and
log p(x) = logsumexp_y [log p(x | y) + log p(y)] with p(y) the training
labels' frequencies (`marginal_nll`), so no label is needed to score an
image. Sharing the draws (common random numbers) makes the class
comparison less noisy than the scores themselves: for a diffusion bound
estimated from a few stratified timesteps, the K bounds of one image use
the same timesteps and the same noise, so their differences carry no
variance from the timestep draw (`class_draws` says so in words, with what
the family's optional ``describe_estimator`` says about its estimator).

An estimator's arguments can be overridden for one scoring
(``arguments``, e.g. ``{'num_samples': 64}`` to score a VAE with IWAE-64
instead of the configured k; `estimator_arguments`).

`features` reads the representation a family gives
(`jaxgen.uses.probe.FEATURES`).
"""

from __future__ import annotations

import os
import zlib
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgen import data as data_lib
from jaxgen import train
from jaxgen.errors import ConfigError
from jaxgen.uses import probe


def build_run(workdir: str):
  """The `jaxgen.train.Experiment` of a trained workdir, not restored
  (`jaxgen.train.Experiment.from_workdir`).

  Raises:
    FileNotFoundError: no config.json.
    ConfigError, DataError: the saved config or its data cannot be used.
  """
  return train.Experiment.from_workdir(workdir)


def restore_run(exp, step: int | None = None):
  """(state, step) from the run's newest (or given) checkpoint
  (`jaxgen.train.Experiment.restore`).

  Raises:
    FileNotFoundError: the workdir has no checkpoint (named).
  """
  ckpt = exp.checkpointer()
  try:
    if not ckpt.all_steps():
      raise FileNotFoundError(
          f'--workdir={exp.workdir} has no checkpoint in '
          f'{os.path.join(exp.workdir, "checkpoints")}: train it first.')
  finally:
    ckpt.close()
  return exp.restore(step)


def load_run(workdir: str, step: int | None = None):
  """(experiment, state, step) of a trained workdir (`build_run`, then
  `restore_run`)."""
  exp = build_run(workdir)
  state, step = restore_run(exp, step)
  return exp, state, step


def num_classes(exp) -> int:
  """``config.model.num_classes`` (0: unconditional)."""
  return int(getattr(exp.net, 'num_classes', 0) or 0)


def estimator_name(exp, name: str | None = None) -> str:
  """The estimator to score with: `name`, else the first of
  ``config.eval.final_estimators`` (else of the defined ones).

  Raises:
    ConfigError: the family has no likelihood, or `name` is not defined.
  """
  c = exp.config
  if exp.family.log_likelihood is None:
    raise ConfigError(
        f'family {c.family!r} has no log_likelihood (LIKELIHOOD is None): '
        'outlier scores and Bayes classification need a density.')
  defined = sorted(c.eval.estimators)
  if name is None:
    chosen = list(c.eval.final_estimators) or defined
    if not chosen:
      raise ConfigError('config.eval.estimators is empty: the run defines no '
                        'likelihood estimator.')
    return chosen[0]
  if name not in defined:
    raise ConfigError(f'--estimator={name!r} is not defined in '
                      f'config.eval.estimators {defined}.')
  return name


def estimator_arguments(exp, name: str,
                        overrides: dict[str, Any] | None = None
                        ) -> dict[str, Any]:
  """The arguments of estimator `name` in ``config.eval.estimators``, with
  `overrides` put over them.

  Raises:
    ConfigError: an override names an argument the estimator does not
      have (e.g. ``num_samples`` for an exact estimator).
  """
  args = dict(exp.config.eval.estimators[name])
  for k, v in (overrides or {}).items():
    if k not in args:
      raise ConfigError(
          f'estimator {name!r} has no argument {k!r} to override (its '
          f'arguments: {sorted(args) or "none"}); e.g. --num_samples needs '
          'an importance-weighted estimator such as the VAE\'s elbo or '
          'iwae, --num_timesteps a diffusion bound.')
    args[k] = v
  return args


def check_estimator_arguments(exp, name: str,
                              overrides: dict[str, Any] | None = None
                              ) -> dict[str, Any]:
  """`estimator_arguments`, checked by the family's ``validate`` as if
  the config defined them, before anything compiles.

  Raises:
    ConfigError: an override the estimator does not have, or a value the
      family refuses (named with the config field it overrides).
  """
  args = estimator_arguments(exp, name, overrides)
  validate = getattr(exp.family, 'validate', None)
  if overrides and validate is not None:
    config = ml_collections.ConfigDict(exp.config.to_dict())
    config.eval.estimators[name] = args
    try:
      validate(config, exp.dataset)
    except ConfigError as e:
      raise ConfigError(f'overriding estimator {name!r} with {overrides}: '
                        f'{e}') from e
  return args


def binarize_like_source(exp, images: np.ndarray, name: str) -> np.ndarray:
  """`images` binarized as a fixed-binarization source would (seed
  (``binarize_seed``, crc32(`name`)), row indices 0..N-1); unchanged for
  other runs."""
  d = exp.config.data
  if d.binarize != 'fixed':
    return images
  code = zlib.crc32(name.encode())
  return data_lib.fixed_binarize(images, (d.binarize_seed, code),
                                 np.arange(len(images)))


def _seen(exp, batch, pre):
  """The uint8 images the model scored: binarized ones for binary data."""
  if exp.config.data.binarize == 'none':
    return batch['image']
  mid = 0.5 if exp.config.data.value_range == 'unit' else 0.0
  return jnp.where(pre['image'] > mid, 255, 0).astype(jnp.uint8)


def _ll_fn(exp, estimator: str, args: dict[str, Any]) -> Callable:
  key_ = ('uses_ll', estimator, tuple(sorted(args.items())))
  if key_ not in exp._jitted:  # pylint: disable=protected-access
    family, net = exp.family, exp.net

    def fn(params, batch, key):
      pre_key, ll_key = jax.random.split(key)
      pre = exp.preprocess(batch, pre_key)
      ll = family.log_likelihood(params, pre, ll_key, net=net, **args)
      return ll, _seen(exp, batch, pre)

    exp._jitted[key_] = jax.jit(fn)  # pylint: disable=protected-access
  return exp._jitted[key_]  # pylint: disable=protected-access


def _class_ll_fn(exp, estimator: str, args: dict[str, Any]) -> Callable:
  """jit of (params, batch, key) -> (log p(x | y) [B, K], seen images)."""
  key_ = ('uses_class_ll', estimator, tuple(sorted(args.items())))
  if key_ not in exp._jitted:  # pylint: disable=protected-access
    family, net = exp.family, exp.net
    classes = jnp.arange(num_classes(exp), dtype=jnp.int32)

    def fn(params, batch, key):
      pre_key, ll_key = jax.random.split(key)
      pre = exp.preprocess(batch, pre_key)

      def one_class(y):
        labelled = {**pre, 'label': jnp.full_like(pre['label'], y)}
        return family.log_likelihood(params, labelled, ll_key, net=net,
                                     **args)

      return jax.vmap(one_class, out_axes=1)(classes), _seen(exp, batch, pre)

    exp._jitted[key_] = jax.jit(fn)  # pylint: disable=protected-access
  return exp._jitted[key_]  # pylint: disable=protected-access


def _check_images(exp, images) -> np.ndarray:
  images = np.asarray(images)
  if images.dtype != np.uint8 or images.shape[1:] != exp.example_shape:
    raise ConfigError(f'images must be uint8 [N, {exp.example_shape}], got '
                      f'{images.dtype} {images.shape}.')
  return images


def _batched(fn, params, images, labels, key, rows: int):
  """Runs `fn` over `images` in padded batches of `rows` (batch i keyed
  ``fold_in(key, i)``); returns its two outputs, unpadded, as NumPy."""
  n = len(images)
  values, seen = [], []
  for i, start in enumerate(range(0, n, rows)):
    stop = min(start + rows, n)
    m = stop - start
    pad = lambda a: np.concatenate([a, np.zeros((rows - m,) + a.shape[1:],
                                                a.dtype)])
    batch = {'image': pad(images[start:stop]),
             'label': pad(labels[start:stop]), 'mask': np.arange(rows) < m}
    ll, s = fn(params, batch, jax.random.fold_in(key, i))
    values.append(np.asarray(ll, np.float64)[:m])
    seen.append(np.asarray(s)[:m])
  return np.concatenate(values), np.concatenate(seen)


def nll(exp, params, images: np.ndarray, key: jax.Array, *,
        estimator: str, labels: np.ndarray | None = None,
        return_seen: bool = False,
        arguments: dict[str, Any] | None = None):
  """-log p(x) + offset in nats (module docstring): float64 [N].

  Args:
    exp: the run's experiment.
    params: its evaluation parameters (`Experiment.eval_params`).
    images: uint8 [N, H, W, C] (already binarized for a fixed-binarization
      run: `binarize_like_source`).
    key: batch i uses ``fold_in(key, i)``.
    estimator: a name in ``config.eval.estimators``.
    labels: int [N], the class each row is scored under (class-conditional
      runs); zeros when None.
    return_seen: also return the uint8 images the model scored (binarized
      for a binary-data run), for code lengths.
    arguments: overrides of the estimator's arguments
      (`estimator_arguments`).
  """
  images = _check_images(exp, images)
  n = len(images)
  labels = (np.zeros(n, np.int32) if labels is None
            else np.asarray(labels, np.int32))
  fn = _ll_fn(exp, estimator, estimator_arguments(exp, estimator, arguments))
  ll, seen = _batched(fn, params, images, labels, key,
                      exp.config.eval.batch_size)
  out = -ll + exp.offset_nats
  return (out, seen) if return_seen else out


def class_rows(exp) -> int:
  """Images per call of `class_nll`: ``config.eval.batch_size`` // K (at
  least 1), so a call evaluates about one evaluation batch of (image,
  class) pairs."""
  return max(1, exp.config.eval.batch_size // require_classes(exp))


def class_prior(exp) -> np.ndarray:
  """p(y): the training labels' frequencies, float64 [num_classes]."""
  k = num_classes(exp)
  source = exp.dataset.splits['train']
  labels = np.asarray(next(data_lib.eval_batches(
      source, batch_size=len(source)))['label'])
  counts = np.bincount(labels, minlength=k)[:k].astype(np.float64)
  return counts / counts.sum()


def require_classes(exp) -> int:
  """``config.model.num_classes``, or ConfigError when it is 0."""
  k = num_classes(exp)
  if not k:
    raise ConfigError(
        f'config.model.num_classes is 0: family {exp.config.family!r} in '
        f'{exp.workdir} was trained unconditionally; Bayes classification '
        'needs a class-conditional run (e.g. vae.py:mnist8k,cond).')
  return k


def class_nll(exp, params, images: np.ndarray, key: jax.Array, *,
              estimator: str, return_seen: bool = False,
              arguments: dict[str, Any] | None = None):
  """-log p(x | y) + offset for every class y: float64 [N, num_classes].

  One compiled function scores a batch of `class_rows` images under all K
  classes (the module docstring); batch i is keyed ``fold_in(key, i)``.
  With `return_seen`, also the images scored (`nll`); `arguments` as in
  `nll`.
  """
  require_classes(exp)
  images = _check_images(exp, images)
  fn = _class_ll_fn(exp, estimator,
                    estimator_arguments(exp, estimator, arguments))
  ll, seen = _batched(fn, params, images, np.zeros(len(images), np.int32),
                      key, class_rows(exp))
  out = -ll + exp.offset_nats
  return (out, seen) if return_seen else out


def log_marginal(class_nlls: np.ndarray, prior: np.ndarray) -> np.ndarray:
  """log p(x) = logsumexp_y [log p(x|y) + log p(y)]: float64 [N]."""
  with np.errstate(divide='ignore'):
    joint = -np.asarray(class_nlls, np.float64) + np.log(prior)[None]
  top = joint.max(1, keepdims=True)
  return (top + np.log(np.exp(joint - top).sum(1, keepdims=True)))[:, 0]


def marginal_nll(exp, params, images: np.ndarray, key: jax.Array, *,
                 estimator: str, return_seen: bool = False,
                 arguments: dict[str, Any] | None = None):
  """-log p(x) in nats, marginalised over the classes for a conditional
  run (`class_nll`, `class_prior`), else `nll`."""
  if not num_classes(exp):
    return nll(exp, params, images, key, estimator=estimator,
               return_seen=return_seen, arguments=arguments)
  nlls, seen = class_nll(exp, params, images, key, estimator=estimator,
                         return_seen=True, arguments=arguments)
  value = -log_marginal(nlls, class_prior(exp))
  return (value, seen) if return_seen else value


def check_features(exp, name: str | None = None) -> str:
  """The name of the run's features `name` (None: the family's first,
  `jaxgen.uses.probe.extractor`).

  Raises:
    ConfigError: the family gives no features, or none called `name`, or
      the run is class-conditional.
  """
  name, _ = probe.extractor(exp.config.family, name)
  if num_classes(exp):
    raise ConfigError(f'{exp.workdir} is class-conditional '
                      '(config.model.num_classes > 0): its encoder reads the '
                      "label, so its code (a conditional VAE's posterior mean "
                      'given y) is not a label-free feature of the image; '
                      'probe an unconditional run.')
  return name


def features(exp, params, images: np.ndarray, key: jax.Array,
             batch_size: int | None = None,
             name: str | None = None) -> np.ndarray:
  """The family's representation `name` (None: its first) of uint8 images:
  float32 [N, F].

  What each family gives is `jaxgen.uses.probe.FEATURES`; the run's
  preprocessing is applied with ``fold_in(key, i)`` for batch i (a
  binary-data run sees one binarization).

  Raises:
    ConfigError: the family gives no features (or none called `name`)
      here, or is class-conditional (its code would be given the label).
  """
  name = check_features(exp, name)
  key_ = ('uses_features', name)
  if key_ not in exp._jitted:  # pylint: disable=protected-access
    extract = probe.FEATURES[exp.config.family][name].fn
    family, net = exp.family, exp.net

    def fn(params, batch, key):
      out = extract(family, net, params, exp.preprocess(batch, key))
      return out.reshape(out.shape[0], -1).astype(jnp.float32), batch['image']

    exp._jitted[key_] = jax.jit(fn)  # pylint: disable=protected-access
  fn = exp._jitted[key_]  # pylint: disable=protected-access
  images = _check_images(exp, images)
  out, _ = _batched(fn, params, images, np.zeros(len(images), np.int32), key,
                    batch_size or exp.config.eval.batch_size)
  return out.astype(np.float32)


def split_images(exp, split: str, num: int | None = None):
  """(uint8 images [n, H, W, C], int32 labels [n]): the first `num` rows of
  a split (all by default), as the source gives them."""
  if split not in exp.dataset.splits:
    raise ConfigError(f'split {split!r} is not among config.data.splits '
                      f'{sorted(exp.dataset.splits)}.')
  batch = exp.batch(split, num=num, preprocess=False)
  return np.asarray(batch['image']), np.asarray(batch['label'], np.int32)


def class_draws(exp, name: str,
                arguments: dict[str, Any] | None = None) -> dict[str, Any]:
  """What the K class scores of one image share (`class_nll`), for records.

  Returns:
    {'note': the common-random-numbers sentence, preceded by what the
    family says its estimator evaluates per image and followed by the draws
    a key fixes, when the family defines ``describe_estimator`` (the
    contract of `jaxgen.models`); the further fields it returns}.
  """
  args = estimator_arguments(exp, name, arguments)
  note = ('every class of an image is scored with one key: the same '
          'preprocessing noise and the same estimator draws (common random '
          'numbers)')
  describe = getattr(exp.family, 'describe_estimator', None)
  if describe is None:
    return {'note': note}
  said = dict(describe(net=exp.net, **args))
  estimate, shared = said.pop('estimate'), said.pop('shared')
  return {'note': f'{estimate}; {note}: {shared}', **said}


def estimator_record(exp, name: str,
                     arguments: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
  """A report's 'estimator' field, {'name', 'arguments', 'likelihood'}: what
  the scores were made with (the arguments after `arguments`' overrides)."""
  return {'name': name,
          'arguments': estimator_arguments(exp, name, arguments),
          'likelihood': exp.family.LIKELIHOOD}
