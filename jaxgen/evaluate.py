"""Evaluation: exact full-split likelihoods in nats and bits/dim.

`evaluate_split` runs a family's per-example metrics and any number of named
likelihood estimators (for a VAE: the ELBO and the IWAE bound with k
samples) over a whole split, exactly once per example: the last batch is
padded and masked, nothing is dropped, and the sums are accumulated in
float64 on the host. Per eval batch i the key is ``fold_in(eval_key, i)``.

`nll_report` is the one place where log-likelihoods become the papers'
units, per example:

    nll_nats     = -log p(x) + offset
    bits_per_dim = nll_nats / (D ln 2)

where D = H * W * C and ``offset`` is the dequantization bookkeeping of a
continuous density on 8-bit data (D ln 256 for data scaled to [0, 1);
zero for discrete likelihoods), so numbers compare with the papers'.

A family whose estimator needs one quantity shared by every batch (an RBM's
log Z, estimated by AIS) defines ``prepare_estimator``: `make_prepare_fn`
calls it once per evaluation, with ``fold_in(eval_key, PREPARE_FOLD)``;
its outputs are passed to every batch's ``log_likelihood`` as extra keyword
arguments and reported in the results as '<estimator>/<argument>'.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import losses
from jaxgen import parallel
from jaxgen import workdir as workdir_lib

# The fold of the evaluation key for `prepare_estimator` (batch i uses
# fold_in(eval_key, i); no split has 2^32 - 1 batches).
PREPARE_FOLD = 2**32 - 1


def nll_report(log_likelihood, num_dims: int,
               offset_nats: float = 0.0) -> dict[str, Any]:
  """Negative log-likelihood in nats and in bits per dimension, per example.

  Args:
    log_likelihood: [B] log p(x) (or a lower bound) in nats, as returned by
      a family's ``log_likelihood``; a float or an array.
    num_dims: D, the number of dimensions of one example (H * W * C).
    offset_nats: nats to add per example for a continuous density evaluated
      on dequantized data (`jaxgen.losses.dequantization_offset_nats`); 0 for
      discrete likelihoods.

  Returns:
    {'nll_nats': -log_likelihood + offset_nats,
     'bits_per_dim': nll_nats / (num_dims * ln 2)}, each shaped like
    `log_likelihood`. Evaluation applies it per example, on device, and
    averages on the host in float64; a uniform model over 256 levels comes
    out at exactly 8.0 bits/dim.
  """
  nll = -jnp.asarray(log_likelihood) + offset_nats
  return {'nll_nats': nll,
          'bits_per_dim': losses.nats_to_bits_per_dim(nll, num_dims)}


def make_eval_step(family, net, preprocess: Callable,
                   estimators: Mapping[str, Mapping[str, Any]], *,
                   num_dims: int, offset_nats: float = 0.0):
  """A jit-able ``(params, batch, key, prepared={}) -> {name: masked sum}``.

  `prepared` is `make_prepare_fn`'s output ({estimator name: {argument:
  value}}), passed on to that estimator's ``log_likelihood``. Sums (not
  means) over unmasked rows of every per-example metric of
  ``family.loss_fn`` (with train=False) and, for every named estimator of
  ``family.log_likelihood``, of '<name>/log_likelihood', '<name>/nll_nats'
  and '<name>/bits_per_dim' (`nll_report`); plus 'count', the number of
  unmasked rows. Hyper-parameters are bound here, before `jax.jit`.
  """
  names = sorted(estimators)

  def eval_step(params, batch, key, prepared=None):
    pre_key, loss_key, ll_key = jax.random.split(key, 3)
    batch = preprocess(batch, pre_key)
    mask = batch['mask'].astype(jnp.float32)
    _, metrics = family.loss_fn(params, batch, loss_key, net=net, train=False)
    sums = {k: (v * mask).sum() for k, v in metrics.items()}
    for j, name in enumerate(names):
      ll = family.log_likelihood(params, batch, jax.random.fold_in(ll_key, j),
                                 net=net, **dict(estimators[name]),
                                 **(prepared or {}).get(name, {}))
      report = {'log_likelihood': ll,
                **nll_report(ll, num_dims, offset_nats)}
      for k, v in report.items():
        sums[f'{name}/{k}'] = (v * mask).sum()
    sums['count'] = mask.sum()
    return sums

  return eval_step


def make_prepare_fn(family, net, estimators: Mapping[str, Mapping[str, Any]]
                    ) -> Callable | None:
  """``(params, key) -> {name: {argument: scalar}}``, or None.

  None unless the family defines ``prepare_estimator(params, key, *, net,
  **estimator) -> {argument: scalar}``; estimator j (sorted by name) gets
  ``fold_in(key, j)``.
  """
  prepare = getattr(family, 'prepare_estimator', None)
  if prepare is None:
    return None
  names = sorted(estimators)

  def prepare_all(params, key):
    return {name: prepare(params, jax.random.fold_in(key, j), net=net,
                          **dict(estimators[name]))
            for j, name in enumerate(names)}

  return prepare_all


def evaluate_split(eval_step: Callable, params: Any,
                   batches: Callable[[], Any], key: jax.Array, mesh, *,
                   progress: Callable | None = None,
                   prepare: Callable | None = None) -> dict[str, float]:
  """Runs a jitted `eval_step` over every batch of a split.

  Args:
    eval_step: a jitted function from `make_eval_step`.
    params: replicated parameters.
    batches: a callable returning a fresh iterator of per-process NumPy
      batches covering the split exactly once (`jaxgen.data.eval_batches`).
    key: the evaluation key; batch i uses fold_in(key, i).
    mesh: the device mesh.
    progress: optional wrapper around the batch iterator (e.g. tqdm).
    prepare: optional `make_prepare_fn` output, called once with
      ``fold_in(key, PREPARE_FOLD)``; every batch's step receives it.

  Returns:
    {name: mean over the split} for every sum of the step (accumulated in
    float64 on the host), 'num_examples', the count, and each prepared
    value as '<estimator>/<argument>'.
  """
  totals: dict[str, float] = {}
  prepared, extra = {}, {}
  if prepare is not None:
    prepared = prepare(params, jax.random.fold_in(key, PREPARE_FOLD))
    for name, args in jax.device_get(prepared).items():
      for k, v in args.items():
        extra[f'{name}/{k}'] = float(np.asarray(v, np.float64))
  iterator = batches()
  if progress is not None:
    iterator = progress(iterator)
  for i, local in enumerate(iterator):
    batch = parallel.global_batch(local, mesh)
    sums = eval_step(params, batch, jax.random.fold_in(key, i), prepared)
    for k, v in jax.device_get(sums).items():
      totals[k] = totals.get(k, 0.0) + float(np.asarray(v, np.float64))
  count = totals.pop('count', 0.0)
  if not count:
    raise ValueError('evaluate_split saw no examples: the split is empty.')
  results = {k: v / count for k, v in totals.items()}
  results['num_examples'] = count
  results.update(extra)
  return results


def write_eval_json(workdir: str, step: int, split: str,
                    results: Mapping[str, float], *, path: str | None = None,
                    overwrite: bool = True) -> str:
  """Writes ``<workdir>/eval/<split>_step<step>.json``; returns the path.

  Args:
    workdir: the run's directory.
    step: the evaluated checkpoint step.
    split: the evaluated split.
    results: `evaluate_split`'s results.
    path: write here instead.
    overwrite: if False, an existing file with other contents raises
      FileExistsError (`jaxgen.workdir.refuse_other_contents`).
  """
  path = path or os.path.join(workdir, 'eval', f'{split}_step{step:07d}.json')
  obj = {'step': int(step), 'split': split, **results}
  if not overwrite:
    workdir_lib.refuse_other_contents(path, workdir_lib.json_text(obj))
  return workdir_lib.write_json(path, obj)


def replicated_fn(fn: Callable, mesh, **static) -> Callable:
  """`jax.jit` of fn with `static` keyword arguments bound, output replicated."""
  return jax.jit(functools.partial(fn, **static),
                 out_shardings=parallel.replicated(mesh))
