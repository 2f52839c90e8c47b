"""Evaluations by name: measurements of a trained run beyond its likelihood.

`Experiment.evaluate` gives every family's per-example metrics and
likelihood estimates. What some families can measure besides lives here,
one function per measurement, all with the same signature::

    fn(exp, state, *, out_dir, **options) -> dict of record fields

`exp` is a built `jaxgen.train.Experiment`, `state` its trained state,
`out_dir` the directory a figure is written to (created when needed);
`options` are the evaluation's own keyword arguments. The returned dict
holds JSON-able values, ready to be merged into a run's record. Callers (the
results runner, scripts, tests) look an evaluation up in `EVALUATIONS` by
name instead of knowing which family provides what; a config names those
``experiments.main`` runs in ``config.eval.evaluations`` (`from_config`):

- ``'code_usage'``: codebook usage of a VQ family over a split
  (`split_code_usage`): ``{'code_usage': [{'perplexity', 'codes_used',
  'num_codes'} per level, top first]}``.
- ``'codebook_figure'``: the centres of a family with ``codebook`` and
  ``encode`` (K-means, the GMM) as one PNG grid, sorted by how many training
  examples each encodes (`cluster_sizes`): ``{'codebook': {'png', 'sizes'}}``.
- ``'sample_quality'``: sample-quality scores of the run's samples against
  the real images of a split (`jaxgen.quality.evaluate_workdir`):
  ``{'quality': {...}, 'quality_seconds': float}``.
- ``'sampler_quality'``: the scores of ``'sample_quality'`` for several
  samplers of one run (DDPM's ancestral and DDIM), same samples count and
  key (`sampler_quality`): ``{'samplers': {'rows': [...], 'png', ...}}``.
- ``'translation_figure'``: of an image-to-image family with
  ``translation_rows`` (pix2pix), test images as input / output / target
  rows of one PNG (`translation_figure`): ``{'translations': {'png'}}``.
- ``'inpainting_figure'``: of an autoregressive image family with
  ``complete`` (PixelCNN, Gated PixelCNN, PixelCNN++), completions of the
  bottom half of test images given the top, and the exact mean
  -log p(bottom | top) over a split (`inpainting_figure`):
  ``{'inpainting': {'png', 'suffix_nll_nats', 'prefix_nll_nats', ...}}``.
- ``'superres_figure'``: of a multi-scale family with ``super_resolve``,
  sub-grids of test images, samples given them and the truth
  (`superres_figure`): ``{'superres': {'png', ...}}``.
- ``'classifier_accuracy'``: of the feature classifier behind those scores
  (the 'classifier' family), its accuracy on a split's 8-bit images and on
  one binarization of them, also written as ``<workdir>/accuracy.json``:
  ``{'classifier_accuracy': {...}}``.

Evaluations are collective like `Experiment.evaluate`: every process calls
them and gets the same fields; only process 0 writes files.
"""

from __future__ import annotations

import inspect
import os
import time
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import data as data_lib
from jaxgen import images as images_lib
from jaxgen import models
from jaxgen import parallel
from jaxgen import quality
from jaxgen import workdir as workdir_lib
from jaxgen import writers
from jaxgen.errors import ConfigError

Evaluation = Callable[..., dict[str, Any]]


def _split_source(exp, split: str | None):
  split = split or exp.config.eval.split
  if split not in exp.dataset.splits:
    raise ConfigError(f'split {split!r} is not among config.data.splits '
                      f'{sorted(exp.dataset.splits)}.')
  return exp.dataset.splits[split]


# --------------------------------------------------------------- code usage
def _code_count_fn(exp) -> Callable:
  """Jitted ``(variables, global batch, key) -> per-level code counts``:
  the batch preprocessed with `key`, then the family's ``encode_codes``
  one-hot summed over unmasked rows and positions, replicated."""

  def counts(variables, batch, key):
    batch = exp.preprocess(batch, key)
    codes = exp.family.encode_codes(variables, batch, net=exp.net)
    mask = batch['mask'].astype(jnp.float32)
    return tuple(
        (jax.nn.one_hot(c, exp.net.num_codes) *
         mask[:, None, None, None]).sum((0, 1, 2)) for c in codes)

  rep = parallel.replicated(exp.mesh)
  return jax.jit(counts,
                 in_shardings=(rep, parallel.data_sharded(exp.mesh), rep),
                 out_shardings=rep)


def split_code_usage(exp, state, split: str | None = None) -> list[dict]:
  """Codebook usage over a whole split of an `Experiment` of a VQ family.

  The family must provide ``encode_codes(variables, batch, *, net)`` (one
  [B, h, w] int map per level) and its net ``num_codes``. Like
  `Experiment.evaluate`, each process reads its share of the split
  (`jaxgen.data.eval_batches`), batches are assembled on the mesh, and eval
  batch i is preprocessed with ``fold_in(eval_key, i)``; per-batch counts
  are summed in float64 on the host.

  Returns:
    Per level (top first), {'counts': [K] float64 numpy, 'perplexity':
    float, 'codes_used': int}: the perplexity exp(H(p)) of the split's code
    frequencies p (K when every code is used equally often).
  """
  if not hasattr(exp.family, 'encode_codes'):
    raise ConfigError(f'family {exp.config.family!r} has no encode_codes: '
                      'code usage needs a vector-quantized family.')
  source = _split_source(exp, split)
  fn = _code_count_fn(exp)
  variables = exp.eval_params(state)
  totals = None
  for i, local in enumerate(data_lib.eval_batches(
      source, batch_size=exp.local_eval_batch_size,
      process_index=jax.process_index(), process_count=jax.process_count())):
    batch = parallel.global_batch(local, exp.mesh)
    counts = jax.device_get(fn(variables, batch,
                               jax.random.fold_in(exp.eval_key, i)))
    counts = [np.asarray(c, np.float64) for c in counts]
    totals = counts if totals is None else [t + c for t, c in
                                            zip(totals, counts)]
  out = []
  for t in totals:
    p = t / t.sum()
    nz = p[p > 0]
    out.append({'counts': t,
                'perplexity': float(np.exp(-(nz * np.log(nz)).sum())),
                'codes_used': int((t > 0).sum())})
  return out


def code_usage(exp, state, *, out_dir: str,
               split: str | None = None) -> dict[str, Any]:
  """``{'code_usage': [...]}``: `split_code_usage` per level, without the
  counts (perplexity, codes used, codebook size K)."""
  del out_dir  # writes nothing
  return {'code_usage': [
      {'perplexity': level['perplexity'], 'codes_used': level['codes_used'],
       'num_codes': int(len(level['counts']))}
      for level in split_code_usage(exp, state, split)]}


# ----------------------------------------------------------- codebook figure
def cluster_sizes(exp, params, split: str = 'train',
                  batch_size: int = 1000) -> np.ndarray:
  """Examples per code: hard counts (K-means) or summed posteriors (GMM).

  Uses the family's ``encode(params, batch, *, net) -> [B, K]`` (one-hot
  for K-means, responsibilities for the GMM) on the preprocessed split,
  batch i preprocessed with ``fold_in(eval_key, i)``; summed in float64.
  """
  encode = jax.jit(lambda p, b: exp.family.encode(p, b, net=exp.net))
  source = _split_source(exp, split)
  total = None
  for i, batch in enumerate(data_lib.eval_batches(source,
                                                  batch_size=batch_size)):
    key = jax.random.fold_in(exp.eval_key, i)
    pre = exp.preprocess(jax.tree.map(np.asarray, batch), key)
    codes = np.asarray(encode(params, pre), np.float64)
    codes = codes * np.asarray(batch['mask'], np.float64)[:, None]
    total = codes.sum(0) if total is None else total + codes.sum(0)
  return total


def codebook_grid(exp, state, *, out_dir: str, order: str = 'size',
                  columns: int = 8, scale: int = 0) -> tuple[str, np.ndarray]:
  """Writes ``<out_dir>/codebook.png``: the family's ``codebook`` images.

  Args:
    exp: an `Experiment` of a family with ``codebook(params, *, net)`` ->
      uint8 [K, H, W, C] and ``encode``.
    state: its trained state (the evaluated parameters are drawn).
    out_dir: where the PNG goes.
    order: 'size' sorts the codes by `cluster_sizes` on the training split
      (largest first, ties in index order); 'index' keeps their order.
    columns: grid columns.
    scale: pixel enlargement (0: to about 64 pixels per image).

  Returns:
    (the PNG's path, sizes [K] in grid order).
  """
  if order not in ('size', 'index'):
    raise ConfigError(f"order={order!r} must be 'size' or 'index'.")
  for name in ('codebook', 'encode'):
    if not hasattr(exp.family, name):
      raise ConfigError(f'family {exp.config.family!r} has no {name}: the '
                        'codebook figure needs a family with a codebook.')
  params = jax.device_get(exp.eval_params(state))
  images = np.asarray(exp.family.codebook(params, net=exp.net))
  sizes = cluster_sizes(exp, params)
  if order == 'size':
    perm = np.argsort(-sizes, kind='stable')
    images, sizes = images[perm], sizes[perm]
  height = exp.dataset.image_shape[0]
  path = os.path.join(out_dir, 'codebook.png')
  if exp.is_main:
    grid = images_lib.image_grid(images, columns)
    images_lib.save_png(path, grid, scale or max(1, 64 // height))
  return path, sizes


def codebook_figure(exp, state, *, out_dir: str,
                    **options) -> dict[str, Any]:
  """``{'codebook': {'png': path, 'sizes': [K] rounded ints}}`` of
  `codebook_grid` (same options)."""
  path, sizes = codebook_grid(exp, state, out_dir=out_dir, **options)
  return {'codebook': {'png': path,
                       'sizes': [int(round(float(v))) for v in sizes]}}


# ------------------------------------------------------- translation figure
TRANSLATION_LABELS = ('input', 'output', 'target')


def _write_labelled_rows(exp, rows, labels, path: str) -> None:
  """Process 0 writes `rows` (uint8 image batches) as one comparison grid
  with a label per row to `path`, creating its directory."""
  if exp.is_main:
    rows = [np.asarray(r) for r in rows]
    scale = images_lib.display_scale(rows[0])
    figure = images_lib.label_rows(images_lib.comparison_grid(rows), labels,
                                   scale)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    images_lib.save_png(path, figure)


def translation_figure(exp, state, *, out_dir: str,
                       num: int = 16) -> dict[str, Any]:
  """Writes ``<out_dir>/translations.png``: input / output / target rows.

  The first `num` images of the evaluation split are the targets; the
  family's ``translation_rows(params, images, key, *, net)`` gives the
  three rows (keyed by the evaluation key).

  Returns:
    ``{'translations': {'png': path, 'num': num}}``.
  """
  if not hasattr(exp.family, 'translation_rows'):
    raise ConfigError(f'family {exp.config.family!r} has no '
                      'translation_rows: the figure needs an image-to-image '
                      'family.')
  images = exp.batch(num=num, preprocess=False)['image']
  params = jax.device_get(exp.eval_params(state))
  rows = jax.jit(lambda p, x, k: exp.family.translation_rows(
      p, x, k, net=exp.net))(params, images, exp.eval_key)
  path = os.path.join(out_dir, 'translations.png')
  _write_labelled_rows(exp, rows, TRANSLATION_LABELS, path)
  return {'translations': {'png': path, 'num': int(len(images))}}


# ---------------------------- completions and super-resolution (autoregressive)
# The grey of the hidden pixels in the inpainting figure (darker than the
# grid's padding, 128).
_HIDDEN = 64


def _as_read(exp, images) -> np.ndarray:
  """uint8 images as a Bernoulli model reads them (pixel >= 128: 255, else
  0); unchanged for other models."""
  images = np.asarray(images)
  if getattr(exp.net, 'likelihood', '') == 'bernoulli':
    return np.where(images >= 128, 255, 0).astype(np.uint8)
  return images


def _completion_nll_fn(exp, num_known: int) -> Callable:
  """Jitted ``(params, global batch, key) -> (sum of -log p(suffix |
  prefix), sum of -log p(x), count)`` over the unmasked rows, replicated.
  The batch is preprocessed with the first of ``split(key, 3)``, the key
  `jaxgen.evaluate.make_eval_step` preprocesses with, so batch i sees the
  binarization `Experiment.evaluate` gives it."""

  def sums(params, batch, key):
    batch = exp.preprocess(batch, jax.random.split(key, 3)[0])
    suffix = -exp.family.conditional_log_likelihood(params, batch, num_known,
                                                    net=exp.net)
    total = -exp.family.log_likelihood(params, batch, key, net=exp.net)
    mask = batch['mask'].astype(jnp.float32)
    return (suffix * mask).sum(), (total * mask).sum(), mask.sum()

  rep = parallel.replicated(exp.mesh)
  return jax.jit(sums,
                 in_shardings=(rep, parallel.data_sharded(exp.mesh), rep),
                 out_shardings=rep)


def inpainting_figure(exp, state, *, out_dir: str, num: int = 8,
                      samples: int = 3,
                      split: str | None = None) -> dict[str, Any]:
  """Completions of the bottom half given the top, and its exact NLL.

  For an autoregressive family with ``complete(params, x, num_known, key, *,
  net)`` and ``conditional_log_likelihood(params, batch, num_known, *,
  net)`` (`jaxgen.models.pixelcnn`, `gated_pixelcnn`, `pixelcnnpp`), with
  the top half known (num_known = (H // 2) * W pixels in raster order):

  - ``<out_dir>/inpainting.png``: the first `num` images of the evaluation
    split as rows 'known' (the kept top half, the bottom dark grey),
    `samples` completions (keys ``fold_in(eval_key, k)``) and 'truth';
    the raw uint8 images are completed, and shown, as the model reads them
    (a Bernoulli model: pixel >= 128 is 1).
  - Over the whole `split` (default the evaluation split), each batch i
    preprocessed with ``fold_in(eval_key, i)`` as `Experiment.evaluate`
    does: the mean exact -log p(bottom | top) (the bottom half's pixels'
    conditionals summed, one network pass) and the mean -log p(top) =
    -log p(x) + log p(bottom | top), in nats.

  Returns:
    ``{'inpainting': {'png', 'num', 'samples', 'num_known', 'split',
    'suffix_nll_nats', 'prefix_nll_nats', 'num_examples'}}``.
  """
  for name in ('complete', 'conditional_log_likelihood'):
    if not hasattr(exp.family, name):
      raise ConfigError(f'family {exp.config.family!r} has no {name}: '
                        'inpainting needs an autoregressive image family.')
  h, w = tuple(exp.net.image_shape)[:2]
  num_known = (h // 2) * w
  params = exp.eval_params(state)
  local = exp.batch(split=split, num=num, preprocess=False)
  labels = ({'labels': jnp.asarray(local['label'])}
            if getattr(exp.net, 'num_classes', 0) else {})
  rows = [np.asarray(exp.family.complete(
      params, local['image'], num_known, jax.random.fold_in(exp.eval_key, k),
      net=exp.net, **labels)) for k in range(samples)]
  known = rows[0].copy()
  known[:, h // 2:] = _HIDDEN
  rows = [known] + rows + [_as_read(exp, local['image'])]
  path = os.path.join(out_dir, 'inpainting.png')
  _write_labelled_rows(
      exp, rows,
      ['known'] + [f'sample {k + 1}' for k in range(samples)] + ['truth'],
      path)

  fn = _completion_nll_fn(exp, num_known)
  totals = np.zeros(3, np.float64)
  for i, batch in enumerate(data_lib.eval_batches(
      _split_source(exp, split), batch_size=exp.local_eval_batch_size,
      process_index=jax.process_index(), process_count=jax.process_count())):
    out = fn(params, parallel.global_batch(batch, exp.mesh),
             jax.random.fold_in(exp.eval_key, i))
    totals += np.asarray([float(v) for v in jax.device_get(out)])
  suffix, total, count = totals
  return {'inpainting': {
      'png': path, 'num': int(len(rows[0])), 'samples': int(samples),
      'num_known': int(num_known), 'split': split or exp.config.eval.split,
      'suffix_nll_nats': float(suffix / count),
      'prefix_nll_nats': float((total - suffix) / count),
      'num_examples': int(count)}}


def superres_figure(exp, state, *, out_dir: str, num: int = 8,
                    samples: int = 3) -> dict[str, Any]:
  """Writes ``<out_dir>/superres.png``: samples of x given its sub-grid.

  For a family with ``subsample(images, *, net)`` and ``super_resolve(params,
  x_s, key, *, net)`` (`jaxgen.models.multiscale_pixelcnn`): the first `num`
  images of the evaluation split (raw uint8, shown as the model reads them)
  as rows 'x_s' (the sub-grid, enlarged by repetition), `samples` draws of
  x given x_s (keys ``fold_in(eval_key, k)``) and 'truth'.

  Returns:
    ``{'superres': {'png', 'num', 'samples'}}``.
  """
  for name in ('subsample', 'super_resolve'):
    if not hasattr(exp.family, name):
      raise ConfigError(f'family {exp.config.family!r} has no {name}: the '
                        'figure needs a multi-scale family.')
  params = exp.eval_params(state)
  images = np.asarray(exp.batch(num=num, preprocess=False)['image'])
  x_s = np.asarray(exp.family.subsample(images, net=exp.net))
  rows = [np.asarray(exp.family.super_resolve(
      params, x_s, jax.random.fold_in(exp.eval_key, k), net=exp.net))
          for k in range(samples)]
  f = images.shape[1] // x_s.shape[1]
  seen = exp.family.subsample(rows[0], net=exp.net)
  rows = ([np.repeat(np.repeat(seen, f, axis=1), f, axis=2)] + rows +
          [_as_read(exp, images)])
  path = os.path.join(out_dir, 'superres.png')
  _write_labelled_rows(
      exp, rows,
      ['x_s'] + [f'sample {k + 1}' for k in range(samples)] + ['truth'], path)
  return {'superres': {'png': path, 'num': int(len(images)),
                       'samples': int(samples)}}


# ------------------------------------------------------------ sample quality
def sample_quality(exp, state, *, out_dir: str,
                   classifier: quality.FeatureClassifier | str | None = None,
                   **options) -> dict[str, Any]:
  """Sample-quality scores of `state`'s samples, by
  `jaxgen.quality.evaluate_workdir` (written to ``<workdir>/eval/``).

  Args:
    exp: the run.
    state: its trained state.
    out_dir: unused (the scores are written to ``<workdir>/eval/``).
    classifier: the feature classifier (or its workdir) of image data; None
      for toy 2-D points.
    **options: further keyword arguments of `quality.evaluate_workdir`.

  Returns:
    {'quality': the scalar and list scores, 'quality_seconds': seconds}.
  """
  del out_dir  # evaluate_workdir writes under the workdir
  start = time.perf_counter()
  scores = quality.evaluate_workdir(exp, state, classifier, **options)
  return {'quality': {k: v for k, v in scores.items()
                      if isinstance(v, (int, float, str, list))},
          'quality_seconds': time.perf_counter() - start}


# ------------------------------------------------------ samplers' quality
def _sampler_label(method: str, num_steps: int) -> str:
  return f'{method} {num_steps:,} steps'


def sampler_quality(exp, state, *, out_dir: str,
                    classifier: quality.FeatureClassifier | str,
                    samplers: tuple = (('ancestral', 0), ('ddim', 50)),
                    num_samples: int | None = None, split: str | None = None,
                    seed: int = 0, columns: int = 8) -> dict[str, Any]:
  """Sample-quality scores of one run under several samplers, side by side.

  For a family whose ``sample`` takes ``method`` (one of its ``SAMPLERS``)
  and ``num_steps`` (DDPM):
  `num_samples` images per sampler from the same key, ``fold_in(sample_key,
  step)`` (so every sampler starts from the same noise), each set scored
  like `sample_quality` (`quality.image_scores` with the classifier's
  features) against the real images of `split` in the run's view; writes
  ``<out_dir>/samplers.png``, the first `columns` samples of each sampler
  as one row, in the order of `samplers`.

  Args:
    exp: the run.
    state: its trained state (the evaluated parameters are sampled).
    out_dir: where the PNG goes.
    classifier: the feature classifier (or its workdir).
    samplers: (method, num_steps) pairs; num_steps 0 is all T steps.
    num_samples: samples per sampler (default: the size of `split`).
    split: the reference split (default ``config.eval.split``).
    seed: seed of the reference view's binarization (as `sample_quality`).
    columns: samples per row of the figure.

  Returns:
    ``{'samplers': {'png', 'num_samples', 'split', 'rows': [{'sampler',
    'method', 'num_steps', 'seconds' (of drawing the samples, compilation
    included), 'num_classes' and the scores of `quality.image_scores` but
    'class_counts'}, ...]}}``.
  """
  known = getattr(exp.family, 'SAMPLERS', None)
  if not known or exp.family.sample is None:
    raise ConfigError(f'family {exp.config.family!r} names no SAMPLERS: '
                      'sampler_quality needs a family whose sample(...) '
                      'takes method= and num_steps= (DDPM).')
  pairs = [tuple(p) for p in samplers]
  if not pairs or any(len(p) != 2 or p[0] not in known
                      or isinstance(p[1], bool) or not isinstance(p[1], int)
                      or p[1] < 0 for p in pairs):
    raise ConfigError(f'samplers={samplers!r} must be (method, num_steps) '
                      f'pairs, method one of {known}, num_steps >= 0 (0: '
                      'all T steps).')
  split = split or exp.config.eval.split
  source = _split_source(exp, split)
  n = len(source) if num_samples is None else int(num_samples)
  if n < 2:
    raise ConfigError(f'num_samples={n} must be >= 2.')
  clf = (classifier if isinstance(classifier, quality.FeatureClassifier)
         else quality.load_classifier(classifier))
  quality.check_same_data(exp.config.data, clf.config.data, split)
  reference = quality.reference_images(exp, split, 'model',
                                       jax.random.split(jax.random.key(seed))[0])
  ref_f, ref_lp = clf.outputs(reference)
  params = exp.eval_params(state)
  step = int(state.step)
  key = jax.random.fold_in(exp.keys()[3], step)
  big_t = int(getattr(exp.net, 'num_timesteps', 0))
  rows, grids = [], []
  for method, num_steps in pairs:
    num_steps = num_steps or big_t or None
    fn = jax.jit(lambda p, k, m=method, s=num_steps: exp.family.sample(
        p, k, n, net=exp.net, method=m, num_steps=s))
    start = time.perf_counter()
    images = np.asarray(jax.device_get(fn(params, key)))
    seconds = time.perf_counter() - start
    f, lp = clf.outputs(images)
    scores = quality.image_scores(f, lp, ref_f, ref_lp)
    scores['num_classes'] = len(scores.pop('class_counts'))
    rows.append({'sampler': _sampler_label(method, num_steps),
                 'method': method, 'num_steps': num_steps,
                 'seconds': seconds, **scores})
    grids.append(images[:columns])
  path = os.path.join(out_dir, 'samplers.png')
  if exp.is_main:
    os.makedirs(out_dir, exist_ok=True)
    rows_png = [np.asarray(g) for g in grids]
    scale = images_lib.display_scale(rows_png[0])
    images_lib.save_png(path, images_lib.label_rows(
        images_lib.comparison_grid(rows_png),
        tuple(r['sampler'] for r in rows), scale))
  return {'samplers': {'png': path, 'num_samples': n, 'split': split,
                       'rows': rows}}


# ------------------------------------------------------- classifier accuracy
def _train_log(workdir: str) -> list[dict[str, float]]:
  """The logged training loss and accuracy (``metrics.jsonl``); [] when
  nothing was logged in `workdir`."""
  if not os.path.exists(os.path.join(workdir, writers.METRICS_FILE)):
    return []
  return [{k: r[k] for k in ('step', 'loss', 'accuracy') if k in r}
          for r in writers.read_metrics(workdir, 'train')]


def classifier_accuracy(exp, state, *, out_dir: str, split: str | None = None,
                        seed: int = 0, train_seconds: float | None = None
                        ) -> dict[str, Any]:
  """Accuracy of a trained feature classifier; writes ``accuracy.json``.

  For a run of the 'classifier' family (`jaxgen.models.classifier`): the
  evaluated parameters as a `quality.FeatureClassifier`, its accuracy on
  the 8-bit images of `split` and on one dynamic binarization of them
  (keyed by `seed`), the parameter count and the logged training curve
  (``metrics.jsonl``), written to ``<workdir>/accuracy.json``
  (`quality.accuracy_path`), which `quality.load_classifier` reads.

  Args:
    exp: a run of the classifier family.
    state: its trained state.
    out_dir: unused (accuracy.json goes to the workdir).
    split: the split measured (default ``config.eval.split``).
    seed: seed of the binarization.
    train_seconds: the training's wall time, recorded when given.

  Returns:
    {'classifier_accuracy': {'test_accuracy', 'test_accuracy_binarized',
    'num_test', 'num_params', 'step', 'num_steps', 'split', 'dataset',
    'train_log', 'note'[, 'train_seconds']}}: 'test_*' are on `split`.
  """
  del out_dir  # accuracy.json goes to the workdir
  family = exp.config.family
  if family != quality.CLASSIFIER_FAMILY:
    raise ConfigError(f"config.family={family!r}: 'classifier_accuracy' "
                      f'measures a {quality.CLASSIFIER_FAMILY!r} run.')
  split = split or exp.config.eval.split
  data = quality.whole_split(_split_source(exp, split))
  params = jax.device_get(exp.eval_params(state))
  clf = quality.FeatureClassifier(exp.net, params, exp.config)
  binarized = quality.binarized_uint8(data['image'], jax.random.key(seed))
  info = {
      'test_accuracy': clf.accuracy(data['image'], data['label']),
      'test_accuracy_binarized': clf.accuracy(binarized, data['label']),
      'num_test': int(len(data['label'])),
      'num_params': int(sum(np.size(x) for x in jax.tree.leaves(params))),
      'step': int(state.step),
      'num_steps': int(exp.config.train.num_steps),
      'split': split,
      'dataset': exp.config.data.name,
      'train_log': _train_log(exp.workdir),
      'note': quality.NOT_INCEPTION,
  }
  if train_seconds is not None:
    info['train_seconds'] = float(train_seconds)
  if exp.is_main:
    workdir_lib.write_json(quality.accuracy_path(exp.workdir), info,
                           strict=True)
  return {'classifier_accuracy': info}


EVALUATIONS: Mapping[str, Evaluation] = {
    'classifier_accuracy': classifier_accuracy,
    'code_usage': code_usage,
    'codebook_figure': codebook_figure,
    'inpainting_figure': inpainting_figure,
    'sample_quality': sample_quality,
    'sampler_quality': sampler_quality,
    'superres_figure': superres_figure,
    'translation_figure': translation_figure,
}
# The record field whose presence shows that an evaluation has run.
FIELDS: Mapping[str, str] = {
    'classifier_accuracy': 'classifier_accuracy',
    'code_usage': 'code_usage',
    'codebook_figure': 'codebook',
    'inpainting_figure': 'inpainting',
    'sample_quality': 'quality',
    'sampler_quality': 'samplers',
    'superres_figure': 'superres',
    'translation_figure': 'translations',
}


def get(name: str) -> Evaluation:
  """The evaluation called `name`; a ConfigError lists the known ones."""
  if name not in EVALUATIONS:
    raise ConfigError(f'evaluation {name!r} is unknown; known: '
                      f'{", ".join(sorted(EVALUATIONS))}.')
  return EVALUATIONS[name]


def run(name: str, exp, state, *, out_dir: str,
        **options) -> dict[str, Any]:
  """Runs the evaluation called `name`; returns its record fields."""
  return get(name)(exp, state, out_dir=out_dir, **options)


# What a family must provide for an evaluation (checked before training).
_NEEDS: Mapping[str, tuple[str, ...]] = {
    'code_usage': ('encode_codes',),
    'codebook_figure': ('codebook', 'encode'),
    'translation_figure': ('translation_rows',),
}


def from_config(config) -> list[tuple[str, dict[str, Any]]]:
  """The evaluations a config names, in order, with their options.

  ``config.eval.evaluations`` holds names of `EVALUATIONS`;
  ``config.eval.evaluation_options.<name>`` the keyword arguments of one of
  them. A config without these fields (a run written before they existed)
  names none. Everything is checked from the config alone, so a mistake is
  found before anything is compiled or trained.

  Raises:
    ConfigError: naming the field: an unknown evaluation (listing the known
      ones), options of an evaluation that is not named or that it does not
      take, or a family that lacks what the evaluation measures.
  """
  names = config.eval.get('evaluations', ())
  if isinstance(names, str) or not all(isinstance(n, str) for n in names):
    raise ConfigError(f'config.eval.evaluations={names!r} must be a tuple of '
                      f'names from {", ".join(sorted(EVALUATIONS))}.')
  names = tuple(names)
  for name in names:
    if name not in EVALUATIONS:
      raise ConfigError(f'config.eval.evaluations: {name!r} is unknown; '
                        f'known: {", ".join(sorted(EVALUATIONS))}.')
  options = config.eval.get('evaluation_options', None)
  options = options.to_dict() if hasattr(options, 'to_dict') else dict(
      options or {})
  for name, given in options.items():
    field = f'config.eval.evaluation_options.{name}'
    if name not in names:
      raise ConfigError(f'{field}: {name!r} is not in config.eval.evaluations '
                        f'{names}.')
    params = inspect.signature(EVALUATIONS[name]).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
      continue
    takes = [p for p in params if p not in ('exp', 'state', 'out_dir')]
    for key in given:
      if key not in takes:
        raise ConfigError(f'{field}.{key}: {name!r} takes no option {key!r}; '
                          f'its options: {", ".join(takes) or "none"}.')
  family = models.get_family(config.family)
  for name in names:
    lacks = [a for a in _NEEDS.get(name, ()) if not hasattr(family, a)]
    if lacks:
      raise ConfigError(f'config.eval.evaluations: {name!r} needs a family '
                        f'with {" and ".join(lacks)}; config.family='
                        f'{config.family!r} has none.')
    if (name == 'classifier_accuracy' and
        config.family != quality.CLASSIFIER_FAMILY):
      raise ConfigError(f'config.eval.evaluations: {name!r} measures a '
                        f'{quality.CLASSIFIER_FAMILY!r} run, not '
                        f'config.family={config.family!r}.')
  return [(name, dict(options.get(name, {}))) for name in names]
