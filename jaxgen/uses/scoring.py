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
log p(x | y) for each class y in turn with the same keys (`class_nll`), and
log p(x) = logsumexp_y [log p(x | y) + log p(y)] with p(y) the training
labels' frequencies (`marginal_nll`), so no label is needed to score an
image.

`features` reads the representation a family's encoder gives
(`FEATURES`).
"""

from __future__ import annotations

import os
import zlib
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import data as data_lib
from jaxgen import train
from jaxgen import workdir as workdir_lib
from jaxgen.errors import ConfigError

# family -> what `features` returns for it.
FEATURES = {
    'vae': 'posterior mean E[z | x]',
    'autoencoder': "the encoder's code",
    'kmeans': ('triangle soft assignments max(0, mean_k z_k - z_k), z_k the '
               'distance to centre k (Coates, Lee & Ng 2011)'),
    'gmm': 'responsibilities p(k | x)',
}


def build_run(workdir: str):
  """The `jaxgen.train.Experiment` of a trained workdir, not restored.

  Raises:
    FileNotFoundError: no config.json.
    ConfigError, DataError: the saved config or its data cannot be used.
  """
  if not os.path.isfile(workdir_lib.config_path(workdir)):
    raise FileNotFoundError(
        f'--workdir={workdir} holds no trained run (no '
        f'{workdir_lib.config_path(workdir)}).')
  return train.Experiment(workdir_lib.load_config(workdir), workdir)


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


def _ll_fn(exp, estimator: str) -> Callable:
  key_ = ('uses_ll', estimator)
  if key_ not in exp._jitted:  # pylint: disable=protected-access
    args = dict(exp.config.eval.estimators[estimator])
    family, net = exp.family, exp.net
    binary = exp.config.data.binarize != 'none'
    mid = 0.5 if exp.config.data.value_range == 'unit' else 0.0

    def fn(params, batch, key):
      pre_key, ll_key = jax.random.split(key)
      pre = exp.preprocess(batch, pre_key)
      ll = family.log_likelihood(params, pre, ll_key, net=net, **args)
      seen = (jnp.where(pre['image'] > mid, 255, 0).astype(jnp.uint8)
              if binary else batch['image'])
      return ll, seen

    exp._jitted[key_] = jax.jit(fn)  # pylint: disable=protected-access
  return exp._jitted[key_]  # pylint: disable=protected-access


def nll(exp, params, images: np.ndarray, key: jax.Array, *,
        estimator: str, labels: np.ndarray | None = None,
        return_seen: bool = False):
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
  """
  images = np.asarray(images)
  if images.dtype != np.uint8 or images.shape[1:] != exp.example_shape:
    raise ConfigError(f'images must be uint8 [N, {exp.example_shape}], got '
                      f'{images.dtype} {images.shape}.')
  n = len(images)
  labels = (np.zeros(n, np.int32) if labels is None
            else np.asarray(labels, np.int32))
  fn = _ll_fn(exp, estimator)
  b = exp.config.eval.batch_size
  out, seen = np.empty(n, np.float64), np.empty_like(images)
  for i, start in enumerate(range(0, n, b)):
    rows = slice(start, min(start + b, n))
    m = rows.stop - rows.start
    pad = lambda a: np.concatenate([a, np.zeros((b - m,) + a.shape[1:],
                                                a.dtype)])
    batch = {'image': pad(images[rows]), 'label': pad(labels[rows]),
             'mask': np.arange(b) < m}
    ll, s = fn(params, batch, jax.random.fold_in(key, i))
    out[rows] = -np.asarray(ll, np.float64)[:m] + exp.offset_nats
    seen[rows] = np.asarray(s)[:m]
  return (out, seen) if return_seen else out


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
              estimator: str, return_seen: bool = False):
  """-log p(x | y) for every class y: float64 [N, num_classes] (the same
  keys for every class); with `return_seen`, also the images scored (`nll`).
  """
  k = require_classes(exp)
  n = len(images)
  columns, seen = [], None
  for y in range(k):
    value = nll(exp, params, images, key, estimator=estimator,
                labels=np.full(n, y, np.int32), return_seen=y == 0)
    if y == 0:
      value, seen = value
    columns.append(value)
  out = np.stack(columns, 1)
  return (out, seen) if return_seen else out


def log_marginal(class_nlls: np.ndarray, prior: np.ndarray) -> np.ndarray:
  """log p(x) = logsumexp_y [log p(x|y) + log p(y)]: float64 [N]."""
  with np.errstate(divide='ignore'):
    joint = -np.asarray(class_nlls, np.float64) + np.log(prior)[None]
  top = joint.max(1, keepdims=True)
  return (top + np.log(np.exp(joint - top).sum(1, keepdims=True)))[:, 0]


def marginal_nll(exp, params, images: np.ndarray, key: jax.Array, *,
                 estimator: str, return_seen: bool = False):
  """-log p(x) in nats, marginalised over the classes for a conditional
  run (`class_nll`, `class_prior`), else `nll`."""
  if not num_classes(exp):
    return nll(exp, params, images, key, estimator=estimator,
               return_seen=return_seen)
  nlls, seen = class_nll(exp, params, images, key, estimator=estimator,
                         return_seen=True)
  value = -log_marginal(nlls, class_prior(exp))
  return (value, seen) if return_seen else value


def check_features(exp) -> None:
  """ConfigError unless the run's family gives features (`FEATURES`) and
  is unconditional."""
  name = exp.config.family
  if name not in FEATURES:
    raise ConfigError(f'family {name!r} gives no features here; families '
                      f'with an encoder: {", ".join(sorted(FEATURES))}.')
  if num_classes(exp):
    raise ConfigError(f'{exp.workdir} is class-conditional '
                      '(config.model.num_classes > 0): its encoder reads the '
                      'label; probe an unconditional run.')


def _triangle(centres: jax.Array, x: jax.Array) -> jax.Array:
  """max(0, mean_k z_k - z_k) with z_k = |x - c_k|: [B, K]."""
  d2 = ((x ** 2).sum(1, keepdims=True) - 2.0 * x @ centres.T +
        (centres ** 2).sum(1)[None])
  z = jnp.sqrt(jnp.maximum(d2, 0.0))
  return jnp.maximum(z.mean(1, keepdims=True) - z, 0.0)


def features(exp, params, images: np.ndarray, key: jax.Array,
             batch_size: int | None = None) -> np.ndarray:
  """The family's representation of uint8 images: float32 [N, F].

  What each family gives is `FEATURES`; the run's preprocessing is applied
  with ``fold_in(key, i)`` for batch i (a binary-data run sees one
  binarization).

  Raises:
    ConfigError: the family has no encoder here, or is class-conditional
      (its code would be given the label).
  """
  check_features(exp)
  name = exp.config.family
  key_ = ('uses_features',)
  if key_ not in exp._jitted:  # pylint: disable=protected-access
    family, net = exp.family, exp.net

    def fn(params, batch, key):
      pre = exp.preprocess(batch, key)
      if name == 'autoencoder':
        out = net.apply({'params': params}, pre['image'],
                        method=type(net).encode)
      elif name == 'kmeans':
        out = _triangle(params['centres'],
                        pre['image'].reshape(pre['image'].shape[0], -1))
      else:
        out = family.encode(params, pre, net=net)
      if isinstance(out, tuple):  # the VAE's (mean, log_var)
        out = out[0]
      return out.reshape(out.shape[0], -1).astype(jnp.float32)

    exp._jitted[key_] = jax.jit(fn)  # pylint: disable=protected-access
  fn = exp._jitted[key_]  # pylint: disable=protected-access
  b = batch_size or exp.config.eval.batch_size
  n, chunks = len(images), []
  for i, start in enumerate(range(0, n, b)):
    x = images[start:start + b]
    m = len(x)
    if m < b:
      x = np.concatenate([x, np.zeros((b - m,) + x.shape[1:], x.dtype)])
    batch = {'image': x, 'label': np.zeros(b, np.int32),
             'mask': np.arange(b) < m}
    chunks.append(np.asarray(fn(params, batch,
                                jax.random.fold_in(key, i)))[:m])
  return np.concatenate(chunks)


def split_images(exp, split: str, num: int | None = None):
  """(uint8 images [n, H, W, C], int32 labels [n]): the first `num` rows of
  a split (all by default), as the source gives them."""
  if split not in exp.dataset.splits:
    raise ConfigError(f'split {split!r} is not among config.data.splits '
                      f'{sorted(exp.dataset.splits)}.')
  batch = exp.batch(split, num=num, preprocess=False)
  return np.asarray(batch['image']), np.asarray(batch['label'], np.int32)


def describe_estimator(exp, name: str) -> dict[str, Any]:
  """{'name', 'arguments', 'likelihood'}: what the scores were made with."""
  return {'name': name,
          'arguments': dict(exp.config.eval.estimators[name]),
          'likelihood': exp.family.LIKELIHOOD}
