r"""Sample quality without Inception weights: FID-style, IS-style, mode counts.

Likelihoods compare families that have one; GANs have none, and a
likelihood says little about how samples look (Theis et al., "A note on the
evaluation of generative models", ICLR 2016). This module scores *samples*,
for every family that can sample, against a split's real images.

Image scores use a small classifier trained in the project on the training
split of the same dataset (`jaxgen.nn.classifier.Classifier`, trained by
``python -m experiments.train_classifier``), not an ImageNet Inception
network:

* ``fid_style``: the squared Fréchet (2-Wasserstein) distance between
  Gaussians fitted to the classifier's penultimate features of samples and
  of real images, as FID does with Inception pool3 features (Heusel et al.,
  NeurIPS 2017):

      d^2 = |mu_1 - mu_2|^2 + Tr(C_1) + Tr(C_2) - 2 Tr((C_1 C_2)^{1/2}).

* ``is_style``: exp E_x[KL(p(y|x) || p(y))], p(y) = E_x p(y|x) over the
  samples, from the classifier's softmax (the Inception Score of Salimans
  et al., NeurIPS 2016, on one split). It lies in [1, K].
* ``label_kl_uniform`` / ``label_kl_reference`` and ``classes_covered``:
  the histogram of predicted (argmax) classes of the samples against the
  uniform distribution and against the histogram of the classifier's
  predictions on the real reference images; a class is covered when at
  least ``min_count`` samples are predicted as it (the mode count of
  stacked-MNIST experiments, Metz et al. 2017 / Srivastava et al. 2017).

**These scores are not comparable to Inception-based FID or IS**, nor across
classifiers or datasets: they depend on this classifier's features, and the
Fréchet distance is biased upward at small sample sizes (Chong & Forsyth,
CVPR 2020), so compare rows with the same classifier, split and number of
samples. Each result therefore carries a data reference: real training
images against the same real test images (``data/train_vs_test/*``, the
same number of samples as the model row), the test split against itself
split in random halves (``data/half_vs_half/fid_style``) and the IS-style
score of the test images (``data/reference/is_style``).

Toy 2-D mixtures (``toy:ring8``, ``toy:grid25``) use the standard
mode-collapse protocol of Metz et al. ("Unrolled Generative Adversarial
Networks", ICLR 2017) and Srivastava et al. ("VEEGAN", NeurIPS 2017):
`jaxgen.metrics.toy_mode_coverage` counts a sample as high quality when it
lies within 3 standard deviations of the nearest mode, and a mode as
covered when at least ``min_count`` high-quality samples are nearest to it.

The scores themselves are the pure functions of `jaxgen.metrics` (float64
NumPy on the host); this module trains and loads the classifier and scores
a run's workdir.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from jaxgen import data as data_lib
from jaxgen import metrics as metrics_lib
from jaxgen import steps
from jaxgen import train as train_lib
from jaxgen import workdir as workdir_lib
from jaxgen.errors import ConfigError
from jaxgen.errors import DataError
from jaxgen.nn import classifier as classifier_lib

NOT_INCEPTION = (
    'Scores from the in-project classifier (penultimate features / softmax), '
    'not from Inception: not comparable to Inception-based FID or IS, nor '
    'across classifiers, splits or sample sizes.')
VIEWS = ('model', 'raw')
TOY_NUM_SAMPLES = 2500  # samples scored on toy mixtures (VEEGAN, PacGAN)
CHECKPOINT_DIR = 'checkpoint'
CONFIG_FILE = 'config.json'
ACCURACY_FILE = 'accuracy.json'

# ------------------------------------------------------------- classifier


def make_classifier(model: ml_collections.ConfigDict
                    ) -> classifier_lib.Classifier:
  """The `Classifier` from a classifier config's ``model`` (checked)."""
  fields = {k: tuple(v) if isinstance(v, (list, tuple)) else v
            for k, v in model.to_dict().items()}
  net = classifier_lib.Classifier(**fields)
  net.check()
  return net


def _data_kwargs(d: ml_collections.ConfigDict,
                 binarize: str | None = None) -> dict[str, Any]:
  """`jaxgen.data.load_dataset` arguments from a ``config.data``."""
  return dict(name=d.name, data_dir=d.data_dir or None,
              splits=dict(d.splits),
              shuffle_before_split=d.shuffle_before_split,
              split_seed=d.split_seed,
              binarize=d.binarize if binarize is None else binarize,
              binarize_seed=d.binarize_seed, num_points=d.num_points)


def _whole_split(source) -> dict[str, np.ndarray]:
  """Every row of a split as one NumPy batch (all rows unmasked)."""
  return next(data_lib.eval_batches(source, batch_size=len(source)))


def classifier_preprocess(binarize_prob: float) -> Callable:
  """Training-time view of a uint8 batch: pixel/255, some rows binarized.

  Each example is, with probability `binarize_prob`, replaced by one
  Bernoulli(pixel/255) draw (dynamic binarization), so the features stay
  meaningful on the {0, 1} images of Bernoulli models as well as on 8-bit
  images. ``(batch, key) -> batch``, keyed like the trainer's preprocessing.
  """

  def fn(batch, key):
    x = batch['image'].astype(jnp.float32) / 255.0
    bits_key, pick_key = jax.random.split(key)
    bits = jax.random.bernoulli(bits_key, x).astype(jnp.float32)
    pick = jax.random.bernoulli(pick_key, binarize_prob,
                                (x.shape[0], 1, 1, 1))
    return {**batch, 'image': jnp.where(pick, bits, x)}

  return fn


def classifier_loss(params, batch, key, *, net: classifier_lib.Classifier,
                    train: bool):
  """Mean cross-entropy over unmasked rows and per-example 'nll', 'accuracy'.

  ``batch['image']`` float32 [B, H, W, C] in [0, 1]; the generic step's
  loss signature, so `jaxgen.steps.make_train_step` trains it.
  """
  logits, _ = net.apply(params, batch['image'], train=train,
                        rngs={'dropout': key})
  nll = classifier_lib.cross_entropy(logits, batch['label'])
  accuracy = (jnp.argmax(logits, -1) == batch['label']).astype(jnp.float32)
  return steps.masked_mean(nll, batch['mask']), {'nll': nll,
                                                'accuracy': accuracy}


def _check_classifier_config(c: ml_collections.ConfigDict, dataset) -> None:
  if c.data.binarize != 'none':
    raise ConfigError(
        f'config.data.binarize={c.data.binarize!r}: the classifier trains on '
        "the 8-bit images ('none') and binarizes a share of them itself "
        '(config.train.binarize_prob).')
  if dataset.image_shape is None:
    raise ConfigError(f'config.data.name={c.data.name!r} gives points: the '
                      'classifier is for image datasets.')
  if tuple(c.model.image_shape) != tuple(dataset.image_shape):
    raise ConfigError(
        f'config.model.image_shape={tuple(c.model.image_shape)} does not '
        f'match {c.data.name!r}, whose images are {dataset.image_shape}.')
  if dataset.num_classes is None or dataset.num_classes > c.model.num_classes:
    raise ConfigError(
        f'config.model.num_classes={c.model.num_classes} must cover the '
        f'labels of {c.data.name!r} ({dataset.num_classes} classes; None = '
        'no labels).')
  for split in ('train', 'test'):
    if split not in dataset.splits:
      raise ConfigError(f'config.data.splits.{split} is empty: the '
                        'classifier trains on train and reports test accuracy.')
  t = c.train
  if not 0.0 <= t.binarize_prob <= 1.0:
    raise ConfigError(f'config.train.binarize_prob={t.binarize_prob} must '
                      'lie in [0, 1].')
  if not 1 <= t.batch_size <= len(dataset.splits['train']):
    raise ConfigError(
        f'config.train.batch_size={t.batch_size} must lie in [1, '
        f'{len(dataset.splits["train"])}] (the training split).')
  if t.num_steps < 1 or t.log_every_steps < 1:
    raise ConfigError('config.train.num_steps and config.train.'
                      'log_every_steps must be >= 1.')


@dataclasses.dataclass
class FeatureClassifier:
  """A trained classifier: features and log-probabilities of uint8 images.

  Attributes:
    net: the `Classifier` module.
    params: its variables ({'params': ...}).
    config: the classifier config it was trained with (locked).
    info: the accuracy JSON written after training ({} before).
    workdir: where it is saved ('' before).
    batch_size: images per forward pass (the last batch is padded, so one
      compilation serves any number of images).
  """
  net: classifier_lib.Classifier
  params: Any
  config: ml_collections.ConfigDict
  info: dict[str, Any] = dataclasses.field(default_factory=dict)
  workdir: str = ''
  batch_size: int = 500

  def __post_init__(self):
    net = self.net

    def apply(params, images):
      logits, features = net.apply(params, images.astype(jnp.float32) / 255.0)
      return features, jax.nn.log_softmax(logits, axis=-1)

    self._apply = jax.jit(apply)

  @property
  def num_classes(self) -> int:
    return self.net.num_classes

  def outputs(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features [N, F] and log p(y|x) [N, K], float64 NumPy.

    Args:
      images: uint8 [N, H, W, C] with (H, W, C) the classifier's image shape.
    """
    images = np.asarray(images)
    shape = tuple(self.net.image_shape)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (
        shape):
      raise DataError(f'the classifier takes uint8 [N, {shape[0]}, '
                      f'{shape[1]}, {shape[2]}] images, got {images.dtype} '
                      f'{images.shape}.')
    feats, logps = [], []
    b = self.batch_size
    for start in range(0, len(images), b):
      chunk = images[start:start + b]
      n = len(chunk)
      if n < b:
        chunk = np.concatenate([chunk, np.zeros((b - n,) + shape, np.uint8)])
      f, lp = jax.device_get(self._apply(self.params, chunk))
      feats.append(np.asarray(f[:n], np.float64))
      logps.append(np.asarray(lp[:n], np.float64))
    return np.concatenate(feats), np.concatenate(logps)

  def accuracy(self, images: Any, labels: Any) -> float:
    """Share of `images` whose argmax class equals `labels` [N]."""
    _, lp = self.outputs(images)
    return float(np.mean(np.argmax(lp, axis=1) == np.asarray(labels)))


def _batch_indices(key: jax.Array, step: jax.Array, num_rows: int,
                   batch_size: int) -> jax.Array:
  """Rows of batch `step`: epoch e = step // (N // B) is a fresh permutation
  from fold_in(key, e), cut into N // B batches (the remainder is skipped)."""
  per_epoch = num_rows // batch_size
  perm = jax.random.permutation(jax.random.fold_in(key, step // per_epoch),
                                num_rows)
  return jax.lax.dynamic_slice(perm, ((step % per_epoch) * batch_size,),
                               (batch_size,))


def _binarized_uint8(images: np.ndarray, key: jax.Array) -> np.ndarray:
  """One dynamic-binarization draw of uint8 images, as uint8 {0, 255}."""
  bits = data_lib.dynamic_binarize(key, jnp.asarray(images))
  return np.asarray(bits).astype(np.uint8) * np.uint8(255)


def train_classifier(config: ml_collections.ConfigDict, workdir: str, *,
                     log: Callable[[str], None] = print) -> FeatureClassifier:
  """Trains the feature classifier, saves it under `workdir`, returns it.

  Deterministic from ``config.seed``: the root key is split into (init,
  train, data) keys; batch s is row block s of the permutation for its
  epoch (`_batch_indices`), and the update is `jaxgen.train`'s generic step
  (``fold_in(train_key, s)`` for dropout and the binarization of
  `classifier_preprocess`). The whole training split sits on the device.

  Writes ``<workdir>/config.json``, the parameters as an orbax checkpoint in
  ``<workdir>/checkpoint`` and ``<workdir>/accuracy.json`` (test accuracy on
  the 8-bit images and on one dynamic binarization of them, parameter count,
  wall time, the logged training loss and accuracy). A workdir that already
  holds a classifier trained with the same config is loaded instead; another
  config is a `ConfigError`.
  """
  c = config
  workdir = os.path.abspath(workdir)
  config_text = c.to_json_best_effort(indent=2, sort_keys=True)
  config_path = os.path.join(workdir, CONFIG_FILE)
  if os.path.exists(os.path.join(workdir, ACCURACY_FILE)):
    with open(config_path) as f:
      if f.read() != config_text:
        raise ConfigError(f'{workdir} holds a classifier trained with another '
                          'config; use a new --workdir.')
    log(f'{workdir} already holds this classifier; loading it.')
    return load_classifier(workdir)
  net = make_classifier(c.model)
  dataset = data_lib.load_dataset(**_data_kwargs(c.data))
  _check_classifier_config(c, dataset)
  train_data = _whole_split(dataset.splits['train'])
  images = jnp.asarray(train_data['image'])
  labels = jnp.asarray(train_data['label'])
  num_rows = int(images.shape[0])
  init_key, train_key, data_key, test_key = jax.random.split(
      jax.random.key(c.seed), 4)
  h, w, ch = dataset.image_shape
  params = jax.jit(net.init)(init_key, jnp.zeros((1, h, w, ch), jnp.float32))
  tx = steps.make_optimizer(c.optimizer, c.train.num_steps)
  generic = steps.make_train_step(
      functools.partial(classifier_loss, net=net, train=True), tx,
      preprocess=classifier_preprocess(c.train.binarize_prob))
  batch_size = c.train.batch_size

  def step(state, images, labels):
    idx = _batch_indices(data_key, state.step, num_rows, batch_size)
    batch = {'image': images[idx], 'label': labels[idx],
             'mask': jnp.ones((batch_size,), bool)}
    return generic(state, batch, train_key)

  step = jax.jit(step, donate_argnums=0)
  state = steps.TrainState(step=jnp.zeros((), jnp.int32), params=params,
                           opt_state=tx.init(params))
  start = time.perf_counter()
  pending, history = [], []
  for s in range(1, c.train.num_steps + 1):
    state, metrics = step(state, images, labels)
    pending.append(metrics)
    if s % c.train.log_every_steps == 0 or s == c.train.num_steps:
      host = jax.device_get(pending)
      means = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
      if not all(np.isfinite(v) for v in means.values()):
        raise train_lib.NonFiniteError(f'non-finite classifier metrics at '
                                       f'step {s}: {means}')
      history.append({'step': s, **means})
      log(f'step {s}: loss {means["loss"]:.4f}, train accuracy '
          f'{means["accuracy"]:.4f}')
      pending.clear()
  params = jax.device_get(state.params)
  seconds = time.perf_counter() - start

  clf = FeatureClassifier(net, params, c)
  test = _whole_split(dataset.splits['test'])
  binarized = _binarized_uint8(test['image'], test_key)
  info = {
      'test_accuracy': clf.accuracy(test['image'], test['label']),
      'test_accuracy_binarized': clf.accuracy(binarized, test['label']),
      'num_test': int(len(test['label'])),
      'num_params': train_lib.count_params(params),
      'num_steps': int(c.train.num_steps),
      'train_seconds': seconds,
      'train_log': history,
      'dataset': c.data.name,
      'note': NOT_INCEPTION,
  }
  os.makedirs(workdir, exist_ok=True)
  with open(config_path, 'w') as f:
    f.write(config_text)
  ckpt_path = os.path.join(workdir, CHECKPOINT_DIR)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(ckpt_path, params, force=True)
  checkpointer.wait_until_finished()
  checkpointer.close()
  _write_json(os.path.join(workdir, ACCURACY_FILE), info)
  clf.info, clf.workdir = info, workdir
  return clf


def load_classifier(workdir: str) -> FeatureClassifier:
  """The classifier saved by `train_classifier` in `workdir` (orbax restore
  onto the shapes its config.json implies)."""
  workdir = os.path.abspath(workdir)
  path = os.path.join(workdir, ACCURACY_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f'{path} does not exist: train a classifier first with python -m '
        f'experiments.train_classifier --workdir={workdir}.')
  config = workdir_lib.load_config(workdir)
  net = make_classifier(config.model)
  h, w, ch = config.model.image_shape
  abstract = jax.eval_shape(net.init, jax.random.key(0),
                            jnp.zeros((1, h, w, ch), jnp.float32))
  checkpointer = ocp.StandardCheckpointer()
  try:
    params = checkpointer.restore(os.path.join(workdir, CHECKPOINT_DIR),
                                  abstract)
  finally:
    checkpointer.close()
  with open(path) as f:
    info = json.load(f)
  return FeatureClassifier(net, params, config, info, workdir)


# ------------------------------------------------------ scoring a workdir


def image_scores(features: np.ndarray, log_probs: np.ndarray,
                 ref_features: np.ndarray, ref_log_probs: np.ndarray, *,
                 min_count: int = 1) -> dict[str, Any]:
  """All image scores of one sample set against one reference set.

  Args:
    features, log_probs: the classifier's outputs on the samples, [N, F]
      and [N, K].
    ref_features, ref_log_probs: the same on the real reference images.
    min_count: samples a class needs to count as covered.

  Returns:
    {'fid_style', 'is_style', 'label_kl_uniform', 'label_kl_reference',
    'classes_covered', 'class_counts', 'num_samples'}.
  """
  k = log_probs.shape[1]
  out = {'fid_style': metrics_lib.frechet_distance(features, ref_features),
         'is_style': metrics_lib.inception_style_score(log_probs),
         'num_samples': int(len(features))}
  out.update(metrics_lib.label_distribution(np.argmax(log_probs, 1), k,
                                            np.argmax(ref_log_probs, 1),
                                            min_count=min_count))
  return out


def check_same_data(model_data: ml_collections.ConfigDict,
                    classifier_data: ml_collections.ConfigDict,
                    split: str) -> None:
  """Raises `ConfigError` unless the classifier saw the run's data and split.

  The classifier must be trained on the same training rows as the
  generative model, so that the test split is held out from both.
  """
  for field in ('name', 'shuffle_before_split', 'split_seed'):
    if model_data[field] != classifier_data[field]:
      raise ConfigError(
          f'config.data.{field} of the run ({model_data[field]!r}) differs '
          f'from the classifier\'s ({classifier_data[field]!r}): train a '
          'classifier on the same data.')
  for name in ('train', split):
    a = model_data.splits[name] if name in model_data.splits else None
    b = (classifier_data.splits[name] if name in classifier_data.splits
         else None)
    if a != b:
      raise ConfigError(
          f'config.data.splits.{name} of the run ({a!r}) differs from the '
          f'classifier\'s ({b!r}).')


def reference_images(exp: train_lib.Experiment, split: str, view: str,
                     key: jax.Array) -> np.ndarray:
  """Real images of a split as uint8 [N, H, W, C], in a given view.

  ``view='model'``: the data as the model is trained on it, so a perfect
  model scores like the data: with ``config.data.binarize='dynamic'`` one
  Bernoulli(pixel/255) draw with `key` as {0, 255}; 'fixed': the source's
  binarized pixels; 'none': the 8-bit pixels. ``view='raw'``: always the
  8-bit pixels.
  """
  if view not in VIEWS:
    raise ConfigError(f'reference view {view!r} is not one of {VIEWS}.')
  d = exp.config.data
  if view == 'raw' and d.binarize == 'fixed':
    source = data_lib.load_dataset(**_data_kwargs(d, 'none')).splits[split]
  else:
    source = exp.dataset.splits[split]
  images = _whole_split(source)['image']
  if view == 'model' and d.binarize == 'dynamic':
    images = _binarized_uint8(images, key)
  return images


def _write_json(path: str, payload: Mapping[str, Any]) -> str:
  """Atomic JSON write; non-finite floats become null (strict JSON)."""
  return workdir_lib.write_json(path, dict(payload), strict=True)


def quality_path(workdir: str, step: int, view: str = 'model') -> str:
  """``<workdir>/eval/quality_step<step>[_raw].json``."""
  suffix = '' if view == 'model' else f'_{view}'
  return os.path.join(workdir, 'eval', f'quality_step{step:07d}{suffix}.json')


def evaluate_workdir(workdir: str,
                     classifier: FeatureClassifier | str | None, *,
                     num_samples: int | None = None, view: str = 'model',
                     split: str | None = None, seed: int = 0,
                     step: int | None = None, min_count: int = 1,
                     write: bool = True) -> dict[str, Any]:
  """Sample-quality scores of a trained run's samples; written as JSON.

  Restores the run through `jaxgen.train.Experiment` (newest or given
  checkpoint, EMA parameters when the run evaluates them), draws
  `num_samples` samples with ``Experiment.sample_images`` (its key is
  ``fold_in(sample_key, step)``) and scores them against the real images
  of `split` (default ``config.eval.split``) in the given `view`
  (`reference_images`). Also scores the data itself (see the module
  docstring): ``data/train_vs_test/*`` (as many random training images as
  samples, against the same reference) and ``data/half_vs_half/fid_style``.
  `seed` fixes the reference binarization and the data subsets.

  Toy 2-D runs (``toy:ring8``, ``toy:grid25``: ``Experiment.points``,
  samples float32 [N, 2]) get `toy_mode_coverage` of their samples instead,
  with `num_samples` defaulting to `TOY_NUM_SAMPLES` (the 2,500 of VEEGAN
  and PacGAN), the same scores for as many real points of `split`
  (``data/reference/*``), and need no classifier.

  Args:
    workdir: a trained run (its config.json and checkpoints).
    classifier: a `FeatureClassifier` or the workdir of one.
    num_samples: default: the size of the reference split (images) or
      `TOY_NUM_SAMPLES` (points).
    view: 'model' or 'raw' (`reference_images`).
    split: the reference split.
    seed: seed of the reference binarization and subsets.
    step: checkpoint step (default: newest).
    min_count: samples a class (or mode) needs to count as covered.
    write: write ``<workdir>/eval/quality_step<step>[_raw].json``.

  Returns:
    The flat results dict (also written), with the scores at top level.
  """
  config = workdir_lib.load_config(workdir)
  exp = train_lib.Experiment(config, workdir)
  if exp.family.sample is None:
    raise ConfigError(f'family {config.family!r} cannot sample: nothing to '
                      'score.')
  split = split or config.eval.split
  if split not in exp.dataset.splits:
    raise ConfigError(f'split {split!r} is not among config.data.splits '
                      f'{sorted(exp.dataset.splits)}.')
  state, step = exp.restore(step)
  points = getattr(exp, 'points', False)
  num_ref = len(exp.dataset.splits[split])
  default = TOY_NUM_SAMPLES if points else num_ref
  n = default if num_samples is None else int(num_samples)
  if n < 2:
    raise ConfigError(f'num_samples={n} must be >= 2.')
  results: dict[str, Any] = {
      'step': int(step), 'family': config.family, 'dataset': config.data.name,
      'split': split, 'num_samples': n}
  samples = exp.sample_images(state, n, step)
  if points:
    centers, std = data_lib.toy_modes(config.data.name)
    results.update(metrics_lib.toy_mode_coverage(samples, centers, std,
                                                 min_count=min_count))
    real = _whole_split(exp.dataset.splits[split])['point']
    rows = np.random.default_rng(seed).permutation(len(real))[:n]
    for k, v in metrics_lib.toy_mode_coverage(real[rows], centers, std,
                                              min_count=min_count).items():
      results[f'data/reference/{k}'] = v
    results['data/reference/num_samples'] = int(len(rows))
    if write:
      results['path'] = _write_json(quality_path(workdir, step), results)
    return results

  results['note'] = NOT_INCEPTION
  if classifier is None:
    raise ConfigError(f'{config.data.name!r} holds images: scoring them needs '
                      'a classifier (experiments.train_classifier).')
  clf = (classifier if isinstance(classifier, FeatureClassifier)
         else load_classifier(classifier))
  check_same_data(config.data, clf.config.data, split)
  key = jax.random.key(seed)
  ref_key, train_key = jax.random.split(key)
  rng = np.random.default_rng(seed)
  reference = reference_images(exp, split, view, ref_key)
  ref_f, ref_lp = clf.outputs(reference)
  f, lp = clf.outputs(samples)
  results.update(image_scores(f, lp, ref_f, ref_lp, min_count=min_count))

  train_images = reference_images(exp, 'train', view, train_key)
  rows = rng.permutation(len(train_images))[:min(n, len(train_images))]
  tf, tlp = clf.outputs(train_images[rows])
  for k, v in image_scores(tf, tlp, ref_f, ref_lp,
                           min_count=min_count).items():
    results[f'data/train_vs_test/{k}'] = v
  halves = rng.permutation(num_ref)
  a, b = halves[:num_ref // 2], halves[num_ref // 2:]
  results['data/half_vs_half/fid_style'] = metrics_lib.frechet_distance(
      ref_f[a], ref_f[b])
  results['data/half_vs_half/num_samples'] = int(len(a))
  results['data/reference/is_style'] = metrics_lib.inception_style_score(
      ref_lp)
  results.update({
      'view': view,
      'binarize': config.data.binarize,
      'num_reference': int(num_ref),
      'seed': int(seed),
      'classifier/workdir': clf.workdir,
      'classifier/test_accuracy': clf.info.get('test_accuracy'),
      'classifier/test_accuracy_binarized': clf.info.get(
          'test_accuracy_binarized'),
      'classifier/feature_dim': int(clf.net.feature_dim),
  })
  if write:
    results['path'] = _write_json(quality_path(workdir, step, view), results)
  return results
