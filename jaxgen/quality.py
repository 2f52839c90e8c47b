r"""Sample quality without Inception weights: FID-style, IS-style, mode counts.

Likelihoods compare families that have one; GANs have none, and a
likelihood says little about how samples look (Theis et al., "A note on the
evaluation of generative models", ICLR 2016). This module scores *samples*,
for every family that can sample, against a split's real images.

Image scores use a small classifier trained in the project on the training
split of the same dataset (the 'classifier' family,
`jaxgen.models.classifier`, trained by the shared trainer through
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

Toy 2-D points of every toy dataset get the energy distance
(`jaxgen.metrics.energy_distance`, Székely & Rizzo 2013) between the
samples and real test points, beside that between real training and test
points. Toy mixtures with discrete modes (``toy:ring8``, ``toy:grid25``)
also use the standard mode-collapse protocol of Metz et al. ("Unrolled
Generative Adversarial Networks", ICLR 2017) and Srivastava et al.
("VEEGAN", NeurIPS 2017): `jaxgen.metrics.toy_mode_coverage` counts a
sample as high quality when it lies within 3 standard deviations of the
nearest mode, and a mode as covered when at least ``min_count``
high-quality samples are nearest to it.

The scores themselves are the pure functions of `jaxgen.metrics` (float64
NumPy on the host); this module loads a trained classifier from its
workdir (`load_classifier`, parameters by `jaxgen.workdir.restore_params`)
and scores a run that its caller has built and restored
(`evaluate_workdir`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgen import data as data_lib
from jaxgen import metrics as metrics_lib
from jaxgen import models
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
CLASSIFIER_FAMILY = 'classifier'  # the family (config.family) of the features
ACCURACY_FILE = 'accuracy.json'
OLD_CHECKPOINT_DIR = 'checkpoint'  # a bare parameter checkpoint: not read

# ------------------------------------------------------------- classifier


def _data_kwargs(d: ml_collections.ConfigDict,
                 binarize: str | None = None) -> dict[str, Any]:
  """`jaxgen.data.load_dataset` arguments from a ``config.data``."""
  return dict(name=d.name, data_dir=d.data_dir or None,
              splits=dict(d.splits),
              shuffle_before_split=d.shuffle_before_split,
              split_seed=d.split_seed,
              binarize=d.binarize if binarize is None else binarize,
              binarize_seed=d.binarize_seed, num_points=d.num_points)


def whole_split(source) -> dict[str, np.ndarray]:
  """Every row of a split as one NumPy batch (all rows unmasked)."""
  return next(data_lib.eval_batches(source, batch_size=len(source)))


def binarized_uint8(images: np.ndarray, key: jax.Array) -> np.ndarray:
  """One dynamic-binarization draw of uint8 images, as uint8 {0, 255}."""
  bits = data_lib.dynamic_binarize(key, jnp.asarray(images))
  return np.asarray(bits).astype(np.uint8) * np.uint8(255)


@dataclasses.dataclass
class FeatureClassifier:
  """A trained classifier: features and log-probabilities of uint8 images.

  Attributes:
    net: the classifier family's `Net` (a `Classifier`).
    params: its variables ({'params': ...}).
    config: the config it was trained with (locked).
    info: its ``accuracy.json`` ({} when not written).
    workdir: where it was trained ('' when not known).
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


def classifier_net(config: ml_collections.ConfigDict
                   ) -> classifier_lib.Classifier:
  """The classifier family's `Net` from a classifier config (checked)."""
  family = models.get_family(CLASSIFIER_FAMILY)
  net = family.Net(**{k: tuple(v) if isinstance(v, (list, tuple)) else v
                      for k, v in config.model.to_dict().items()})
  net.check()
  return net


def check_classifier_workdir(workdir: str) -> None:
  """Raises `ConfigError` when `workdir` holds a classifier this project can
  no longer read: one saved as a bare orbax checkpoint (``checkpoint/``)
  instead of the trainer's ``checkpoints/``, or a run of another family."""
  workdir = os.path.abspath(workdir)
  if (os.path.isdir(os.path.join(workdir, OLD_CHECKPOINT_DIR)) and
      not os.path.isdir(os.path.join(workdir, workdir_lib.CHECKPOINT_DIR))):
    raise ConfigError(
        f'{workdir} holds a classifier in a format that is no longer read '
        f'(a bare {OLD_CHECKPOINT_DIR}/ without the trainer\'s '
        f'{workdir_lib.CHECKPOINT_DIR}/): train it again into a new workdir '
        '(python -m experiments.train_classifier --dataset=... '
        '--workdir=...), or delete this one first.')
  if os.path.isfile(workdir_lib.config_path(workdir)):
    family = workdir_lib.read_config_dict(workdir).get('family')
    if family != CLASSIFIER_FAMILY:
      raise ConfigError(
          f'{workdir} holds a run of config.family={family!r}, not a '
          f'{CLASSIFIER_FAMILY!r}: pass the workdir of '
          'experiments.train_classifier.')


def accuracy_path(workdir: str) -> str:
  """``<workdir>/accuracy.json``, written by the 'classifier_accuracy'
  evaluation (`jaxgen.evaluations`)."""
  return os.path.join(workdir, ACCURACY_FILE)


def load_classifier(workdir: str) -> FeatureClassifier:
  """The classifier trained in `workdir`, ready to score images.

  Reads ``<workdir>/config.json``, ``<workdir>/accuracy.json`` (written
  after training by ``python -m experiments.train_classifier``) and the
  evaluation parameters of the checkpoint whose step it records
  (`jaxgen.workdir.restore_params`: no trainer is built).

  Raises:
    ConfigError: an unreadable old-format workdir or another family's run
      (`check_classifier_workdir`).
    FileNotFoundError: no accuracy.json (training unfinished, or trained by
      experiments.main alone) or no such checkpoint.
  """
  given = os.path.normpath(workdir)  # what records name: the user's path
  workdir = os.path.abspath(workdir)
  check_classifier_workdir(workdir)
  path = accuracy_path(workdir)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f'{path} does not exist: train the classifier (or, when trained, '
        'measure its accuracy) with python -m experiments.train_classifier '
        f'--dataset=... --workdir={workdir}.')
  config = workdir_lib.load_config(workdir)
  with open(path) as f:
    info = json.load(f)
  params = workdir_lib.restore_params(workdir, step=info['step'])
  return FeatureClassifier(classifier_net(config), params, config, info,
                           given)


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


def reference_images(exp: Any, split: str, view: str,
                     key: jax.Array) -> np.ndarray:
  """Real images of a split as uint8 [N, H, W, C], in a given view.

  ``view='model'``: the data as the model is trained on it, so a perfect
  model scores like the data: with ``config.data.binarize='dynamic'`` one
  Bernoulli(pixel/255) draw with `key` as {0, 255}; 'fixed': the source's
  binarized pixels; 'none': the 8-bit pixels. ``view='raw'``: always the
  8-bit pixels. `exp` is the run's `jaxgen.train.Experiment`.
  """
  if view not in VIEWS:
    raise ConfigError(f'reference view {view!r} is not one of {VIEWS}.')
  d = exp.config.data
  if view == 'raw' and d.binarize == 'fixed':
    source = data_lib.load_dataset(**_data_kwargs(d, 'none')).splits[split]
  else:
    source = exp.dataset.splits[split]
  images = whole_split(source)['image']
  if view == 'model' and d.binarize == 'dynamic':
    images = binarized_uint8(images, key)
  return images


def _write_json(path: str, payload: Mapping[str, Any]) -> str:
  """Atomic JSON write; non-finite floats become null (strict JSON)."""
  return workdir_lib.write_json(path, dict(payload), strict=True)


def _toy_scores(exp: Any, samples: np.ndarray, split: str, seed: int,
                min_count: int) -> dict[str, Any]:
  """The toy-points scores of `evaluate_workdir` (its docstring)."""
  rng = np.random.default_rng(seed)
  real = whole_split(exp.dataset.splits[split])['point']
  rows = rng.permutation(len(real))[:len(samples)]
  reference = real[rows]
  out: dict[str, Any] = {
      'energy_distance': metrics_lib.energy_distance(samples, reference),
      'data/reference/num_samples': int(len(rows))}
  other = 'train' if split != 'train' else 'test'
  if other in exp.dataset.splits:
    pts = whole_split(exp.dataset.splits[other])['point']
    pts = pts[rng.permutation(len(pts))[:len(samples)]]
    out[f'data/{other}_vs_{split}/energy_distance'] = (
        metrics_lib.energy_distance(pts, reference))
    out[f'data/{other}_vs_{split}/num_samples'] = int(len(pts))
  try:
    centers, std = data_lib.toy_modes(exp.config.data.name)
  except ConfigError:  # no discrete modes (moons, checkerboard, ...)
    return out
  out.update(metrics_lib.toy_mode_coverage(samples, centers, std,
                                           min_count=min_count))
  for k, v in metrics_lib.toy_mode_coverage(reference, centers, std,
                                            min_count=min_count).items():
    out[f'data/reference/{k}'] = v
  return out


def quality_path(workdir: str, step: int, view: str = 'model') -> str:
  """``<workdir>/eval/quality_step<step>[_raw].json``."""
  suffix = '' if view == 'model' else f'_{view}'
  return os.path.join(workdir, 'eval', f'quality_step{step:07d}{suffix}.json')


def evaluate_workdir(exp: Any, state: Any,
                     classifier: FeatureClassifier | str | None, *,
                     num_samples: int | None = None, view: str = 'model',
                     split: str | None = None, seed: int = 0,
                     min_count: int = 1, write: bool = True
                     ) -> dict[str, Any]:
  """Sample-quality scores of a trained run's samples; written as JSON.

  The caller builds the run (`jaxgen.train.Experiment` over its workdir)
  and restores the state to score (`Experiment.restore`). This draws
  `num_samples` samples with ``exp.sample_images`` (the evaluated
  parameters: the EMA when the run keeps one; key ``fold_in(sample_key,
  step)``) and scores them against the real images of `split` (default
  ``config.eval.split``) in the given `view` (`reference_images`). Also
  scores the data itself (see the module docstring):
  ``data/train_vs_test/*`` (as many random training images as samples,
  against the same reference) and ``data/half_vs_half/fid_style``. `seed`
  fixes the reference binarization and the data subsets.

  Toy 2-D runs (``exp.points``, samples float32 [N, 2]) need no
  classifier; `num_samples` defaults to `TOY_NUM_SAMPLES` (the 2,500 of
  VEEGAN and PacGAN). Their samples get ``energy_distance`` to as many
  random real points of `split` (the reference), the same distance from as
  many random points of the other split (``data/train_vs_<split>/
  energy_distance``: the floor of two real samples), and on mixtures with
  discrete modes (``toy:ring8``, ``toy:grid25``) `toy_mode_coverage` of
  the samples and of the reference (``data/reference/*``).

  Args:
    exp: the run, a built `jaxgen.train.Experiment` (its config, dataset,
      family, workdir and ``sample_images``).
    state: its state to score, e.g. ``exp.restore(step)[0]``.
    classifier: a `FeatureClassifier` or the workdir of one; None for toy
      points.
    num_samples: default: the size of the reference split (images) or
      `TOY_NUM_SAMPLES` (points).
    view: 'model' or 'raw' (`reference_images`).
    split: the reference split.
    seed: seed of the reference binarization and subsets.
    min_count: samples a class (or mode) needs to count as covered.
    write: write ``<workdir>/eval/quality_step<step>[_raw].json`` (process
      0 only).

  Returns:
    The flat results dict (also written), with the scores at top level.
  """
  config = exp.config
  if exp.family.sample is None:
    raise ConfigError(f'family {config.family!r} cannot sample: nothing to '
                      'score.')
  split = split or config.eval.split
  if split not in exp.dataset.splits:
    raise ConfigError(f'split {split!r} is not among config.data.splits '
                      f'{sorted(exp.dataset.splits)}.')
  if view not in VIEWS:
    raise ConfigError(f'reference view {view!r} is not one of {VIEWS}.')
  points = getattr(exp, 'points', False)
  num_ref = len(exp.dataset.splits[split])
  default = TOY_NUM_SAMPLES if points else num_ref
  n = default if num_samples is None else int(num_samples)
  if n < 2:
    raise ConfigError(f'num_samples={n} must be >= 2.')
  clf = None
  if not points:
    if classifier is None:
      raise ConfigError(f'{config.data.name!r} holds images: scoring them '
                        'needs a classifier (experiments.train_classifier).')
    clf = (classifier if isinstance(classifier, FeatureClassifier)
           else load_classifier(classifier))
    check_same_data(config.data, clf.config.data, split)
  step = int(state.step)
  write = write and exp.is_main
  workdir = exp.workdir
  results: dict[str, Any] = {
      'step': step, 'family': config.family, 'dataset': config.data.name,
      'split': split, 'num_samples': n}
  samples = exp.sample_images(state, n, step)
  if points:
    results.update(_toy_scores(exp, samples, split, seed, min_count))
    if write:
      results['path'] = _write_json(quality_path(workdir, step), results)
    return results

  results['note'] = NOT_INCEPTION
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
