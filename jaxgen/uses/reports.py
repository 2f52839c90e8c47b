"""The three uses as reports over a restored run: outliers, Bayes, probes.

Each function takes a built and restored run (`jaxgen.uses.scoring.load_run`)
and returns a JSON-able dict plus the arrays a figure needs (under
``'arrays'``, which the caller drops before writing JSON).

* `ood_report`: per-example -log p(x) on the first `num` rows of the
  evaluation split and on each out-of-distribution set
  (`jaxgen.data.ood`), and three outlier scores, each higher = more
  likely OOD:

  - ``likelihood``: -log p(x) in nats;
  - ``typicality``: | -log p(x) - H | per example, H the mean -log p(x)
    of `num_train` training rows (Nalisnick et al. 2019);
    ``typicality_m<M>``: the same for the mean over consecutive groups of
    M inputs of one set (one score per group);
  - ``complexity``: -log2 p(x) - L(x), L the PNG code length in bits of
    the image the model scored (Serrà et al. 2020);
  - ``likelihood_ratio`` (with a background run): -[log p(x) -
    log p_0(x)], p_0 the background model, the same family and config
    trained on perturbed inputs (Ren et al. 2019; `jaxgen.data.ood.perturb`),
    scored with the same estimator and keys, so a binary-data run's two
    models see the same binarization of each input;

  with AUROC, AUPR-in, AUPR-out and FPR at 95% TPR of every score against
  every set (`jaxgen.metrics.ood`: OOD examples are the positives).
* `bayes_report`: the Bayes classifier of a class-conditional run on the
  evaluation split (accuracy, ECE, NLL of the labels; optionally beside
  one Gaussian mixture per class fitted to the pixels) and the
  accuracy-coverage curve of refusing the least likely inputs, by
  log p(x) and by max_y log p(x, y), on the evaluation rows alone and with
  the OOD sets mixed in (`num` // len(sets) rows of each set, so about as
  many outliers as digits), with the AUROC of each rejection score
  against those outliers; beside them, optionally, a discriminative
  classifier's (`classifier_reference`). Its ``draws`` says what one
  image's class scores share (`jaxgen.uses.scoring.class_draws`: the same
  key, and what the family says of its estimator, e.g. a diffusion bound's
  timesteps per image).
* `probe_report`: linear-probe accuracy against the number of labels
  (`jaxgen.uses.probe`) on the family's features and on raw pixels.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from jaxgen.data import ood as ood_data
from jaxgen.errors import ConfigError
from jaxgen.metrics import ood as ood_metrics
from jaxgen.uses import bayes
from jaxgen.uses import probe
from jaxgen.uses import scoring

SCORES = ('likelihood', 'typicality', 'complexity', 'likelihood_ratio')


def _eval_key(exp, seed: int | None):
  return exp.keys(seed)[2]


def outlier_sets(exp, sets: Sequence[str] | None = None) -> list[str]:
  """The out-of-distribution sets of a run: `sets` (checked), or every
  available one (`jaxgen.data.ood.available_sets`).

  The 'digits' set is scikit-learn's digits, the very data of a run on
  ``config.data.name='digits'``: it is left out of the default there, and
  naming it is a `ConfigError`.
  """
  names = list(ood_data.available_sets() if sets is None else
               ood_data.check_names(sets, '--sets'))
  if exp.config.data.name == 'digits':
    if sets is not None and 'digits' in names:
      raise ConfigError(
          "--sets names 'digits', scikit-learn's digits, which are the "
          "data of this run (config.data.name='digits'), not outliers.")
    names = [n for n in names if n != 'digits']
  return names


def check_background(exp, background_exp) -> None:
  """ConfigError unless `background_exp` models the same inputs as `exp`
  the same way (shape, preprocessing, family, evaluation batch), as a
  likelihood-ratio background must."""
  a, b = exp.config, background_exp.config
  fields = {'family': (a.family, b.family),
            'model.image_shape': (exp.example_shape,
                                  background_exp.example_shape),
            'data.binarize': (a.data.binarize, b.data.binarize),
            'data.dequantize': (a.data.dequantize, b.data.dequantize),
            'data.value_range': (a.data.value_range, b.data.value_range),
            'eval.batch_size': (a.eval.batch_size, b.eval.batch_size),
            'model.num_classes': (scoring.num_classes(exp),
                                  scoring.num_classes(background_exp))}
  for field, (mine, theirs) in fields.items():
    if mine != theirs:
      raise ConfigError(
          f'--background={background_exp.workdir}: config.{field} is '
          f'{theirs!r} there but {mine!r} in {exp.workdir}; a background '
          'model is the same family and config trained on perturbed '
          'inputs.')


def ood_report(exp, state, *, sets: Sequence[str] | None = None,
               num: int | None = 1000, num_train: int | None = None,
               typicality_batch: int = 10, estimator: str | None = None,
               seed: int | None = None,
               arguments: dict[str, Any] | None = None,
               background: tuple[Any, Any] | None = None) -> dict[str, Any]:
  """Outlier detection by likelihood, typicality and input complexity.

  Args:
    exp, state: a restored run.
    sets: names of `jaxgen.data.ood.SETS` (default: the available ones).
    num: rows of the evaluation split scored, and rows of each OOD set
      (None: the whole split).
    num_train: training rows for the entropy estimate (default `num`).
    typicality_batch: M of the batch typicality test (1: per example only).
    estimator: a name in ``config.eval.estimators`` (default: the first
      final estimator).
    seed: the evaluation key's seed (default ``config.seed``); also the
      OOD sets' seed.
    arguments: overrides of the estimator's arguments
      (`jaxgen.uses.scoring.estimator_arguments`).
    background: (experiment, state) of a likelihood-ratio background run
      (`check_background`): adds the ``likelihood_ratio`` score.
  """
  names = outlier_sets(exp, sets)
  name = scoring.estimator_name(exp, estimator)
  if typicality_batch < 1:
    raise ConfigError(f'--typicality_batch={typicality_batch}: expected an '
                      'integer >= 1.')
  seed = exp.config.seed if seed is None else seed
  key = _eval_key(exp, seed)
  params = exp.eval_params(state)
  split = exp.config.eval.split
  test, _ = scoring.split_images(exp, split, num)
  train_images, _ = scoring.split_images(exp, 'train', num_train or len(test))
  outliers = ood_data.make_sets(test, names, num=len(test), seed=seed)
  score = lambda images: scoring.marginal_nll(exp, params, images, key,
                                              estimator=name,
                                              return_seen=True,
                                              arguments=arguments)
  if background is not None:
    bg_exp, bg_state = background
    check_background(exp, bg_exp)
    bg_params = bg_exp.eval_params(bg_state)
    bg_name = scoring.estimator_name(bg_exp, name)
  entropy = ood_metrics.entropy_estimate(score(train_images)[0])
  num_dims = math.prod(exp.example_shape)

  def scores_of(images):
    nll, seen = score(images)
    out = {'nll': nll, 'length': ood_metrics.png_code_length_bits(seen),
           'seen': seen}
    if background is not None:
      out['nll_background'] = scoring.marginal_nll(
          bg_exp, bg_params, images, key, estimator=bg_name,
          arguments=arguments)
    return out

  data = {split: scores_of(test)}
  for s in names:
    data[s] = scores_of(scoring.binarize_like_source(exp, outliers[s], s))

  def outlier_scores(d):
    out = {'likelihood': d['nll'],
           'typicality': ood_metrics.typicality(d['nll'], entropy),
           'complexity': ood_metrics.input_complexity(d['nll'],
                                                      d['length'])}
    if typicality_batch > 1 and len(d['nll']) >= typicality_batch:
      out[f'typicality_m{typicality_batch}'] = ood_metrics.typicality(
          d['nll'], entropy, typicality_batch)
    if 'nll_background' in d:  # -(log p(x) - log p_0(x))
      out['likelihood_ratio'] = d['nll'] - d['nll_background']
    return out

  all_scores = {s: outlier_scores(d) for s, d in data.items()}
  metrics = {}
  for s in names:
    metrics[s] = {kind: ood_metrics.detection_report(all_scores[split][kind],
                                                     values)
                  for kind, values in all_scores[s].items()
                  if kind in all_scores[split]}
  summary = {s: {'mean_nll_nats': float(d['nll'].mean()),
                 'mean_bits_per_dim': float(d['nll'].mean() /
                                            (num_dims * math.log(2))),
                 'mean_png_bits': float(d['length'].mean()),
                 'num': int(len(d['nll']))} for s, d in data.items()}
  if background is not None:
    for s, d in data.items():
      summary[s]['mean_nll_background_nats'] = float(
          d['nll_background'].mean())
  return {'estimator': scoring.estimator_record(exp, name, arguments),
          'background': None if background is None else {
              'workdir': bg_exp.workdir, 'step': int(bg_state.step),
              'data': bg_exp.config.data.name},
          'split': split, 'sets': list(names), 'seed': int(seed),
          'conditional': bool(scoring.num_classes(exp)),
          'entropy_estimate_nats': entropy,
          'num_train': int(len(train_images)),
          'typicality_batch': int(typicality_batch),
          'summary': summary, 'metrics': metrics,
          'arrays': {'nll': {s: d['nll'] for s, d in data.items()},
                     'images': {s: d['seen'] for s, d in data.items()}}}


def mid_bin(images: np.ndarray) -> np.ndarray:
  """8-bit pixels at the middle of their bins, (x + 0.5) / 256: float64
  [N, H * W * C]."""
  images = np.asarray(images)
  return (images.reshape(len(images), -1).astype(np.float64) + 0.5) / 256.0


def classifier_reference(classifier, test: np.ndarray, labels: np.ndarray,
                         outliers: np.ndarray) -> dict[str, Any]:
  """The discriminative reference of a Bayes classifier: a trained
  `jaxgen.quality.FeatureClassifier` on the same test rows and outliers.

  Its p(y | x) gives accuracy, ECE and the labels' NLL; having no p(x), it
  refuses inputs by its confidence max_y log p(y | x) (the maximum-softmax
  baseline of Hendrycks & Gimpel 2017), so the accuracy-coverage curve
  with the outliers mixed in and the AUROC against them use that score.
  """
  _, log_post = classifier.outputs(test)
  _, log_post_out = classifier.outputs(outliers)
  labels = np.asarray(labels)
  pred = log_post.argmax(1)
  correct = pred == labels
  conf, conf_out = log_post.max(1), log_post_out.max(1)
  curve = bayes.reject_by_likelihood(conf, correct, conf_out)
  return {'workdir': classifier.workdir,
          'data': classifier.config.data.name,
          'accuracy': float(correct.mean()),
          'ece': ood_metrics.expected_calibration_error(np.exp(log_post),
                                                        labels),
          'nll_labels': float(-np.mean(log_post[np.arange(len(labels)),
                                                labels])),
          'ood_auroc_max_prob': ood_metrics.auroc(-conf, -conf_out),
          'reject_with_ood': {k: [float(v) for v in curve[k]]
                              for k in curve}}


def bayes_report(exp, state, *, sets: Sequence[str] | None = None,
                 num: int | None = 1000, estimator: str | None = None,
                 seed: int | None = None, gmm_components: int = 0,
                 arguments: dict[str, Any] | None = None,
                 classifier=None) -> dict[str, Any]:
  """Bayes classification with a reject option (module docstring); with
  `gmm_components` > 0, also the per-class GMM baseline
  (`jaxgen.uses.bayes.gmm_class_nlls` on the training split's pixels,
  as the source gives them) on the same test rows and outliers; with
  `classifier` (a `jaxgen.quality.FeatureClassifier` trained on the same
  data), the discriminative reference (`classifier_reference`).
  `arguments` override the estimator's (e.g. ``{'num_samples': 64}``:
  IWAE-64 per class for a VAE; `jaxgen.uses.scoring.estimator_arguments`).
  """
  names = outlier_sets(exp, sets)
  name = scoring.estimator_name(exp, estimator)
  scoring.require_classes(exp)
  seed = exp.config.seed if seed is None else seed
  key = _eval_key(exp, seed)
  params = exp.eval_params(state)
  split = exp.config.eval.split
  test, labels = scoring.split_images(exp, split, num)
  prior = scoring.class_prior(exp)
  class_nll = lambda images: scoring.class_nll(
      exp, params, images, key, estimator=name, arguments=arguments)
  nlls_in = class_nll(test)
  result = bayes.classify(nlls_in, prior, labels)
  joint_in = bayes.max_log_joint(nlls_in, prior)
  per_set = max(1, len(test) // max(len(names), 1))
  outliers = ood_data.make_sets(test, names, num=min(per_set, len(test)),
                                seed=seed)
  outliers = np.concatenate([scoring.binarize_like_source(exp, outliers[s], s)
                             for s in names])
  nlls_out = class_nll(outliers)
  log_px_out = bayes.log_posterior(nlls_out, prior)[1]
  joint_out = bayes.max_log_joint(nlls_out, prior)
  baseline = None
  if gmm_components:
    train_images, train_labels = scoring.split_images(exp, 'train')
    k = scoring.num_classes(exp)
    gmm_nlls = bayes.gmm_class_nlls(
        mid_bin(train_images), train_labels,
        mid_bin(np.concatenate([test, outliers])), num_classes=k,
        num_components=gmm_components, seed=seed)
    gmm = bayes.classify(gmm_nlls[:len(test)], prior, labels)
    gmm_out = bayes.log_posterior(gmm_nlls[len(test):], prior)[1]
    baseline = {'model': f'per-class diagonal GMM, {gmm_components} '
                         'components, on mid-bin pixels (x + 0.5) / 256',
                'accuracy': gmm['accuracy'], 'ece': gmm['ece'],
                'nll_labels': gmm['nll_labels'],
                'ood_auroc_log_px': ood_metrics.auroc(-gmm['log_px'],
                                                      -gmm_out)}
  clean = bayes.reject_by_likelihood(result['log_px'], result['correct'])
  mixed = bayes.reject_by_likelihood(result['log_px'], result['correct'],
                                     log_px_out)
  mixed_joint = bayes.reject_by_likelihood(joint_in, result['correct'],
                                           joint_out)
  as_lists = lambda c: {k: [float(v) for v in c[k]] for k in c}
  return {'estimator': scoring.estimator_record(exp, name, arguments),
          'split': split, 'seed': int(seed), 'num': int(len(test)),
          'prior': [float(p) for p in prior],
          'accuracy': result['accuracy'], 'ece': result['ece'],
          'nll_labels': result['nll_labels'], 'sets': list(names),
          'num_ood': int(len(log_px_out)),
          'reject_clean': as_lists(clean), 'reject_with_ood': as_lists(mixed),
          'reject_with_ood_max_joint': as_lists(mixed_joint),
          'ood_auroc_log_px': ood_metrics.auroc(-result['log_px'],
                                                -log_px_out),
          'ood_auroc_max_joint': ood_metrics.auroc(-joint_in, -joint_out),
          'draws': scoring.class_draws(exp, name, arguments),
          'gmm_baseline': baseline,
          'classifier_reference': (
              None if classifier is None else
              classifier_reference(classifier, test, labels, outliers))}


def pixel_features(images: np.ndarray) -> np.ndarray:
  """Raw pixels / 255 as float32 [N, H * W * C]: the probe's baseline."""
  images = np.asarray(images)
  return images.reshape(len(images), -1).astype(np.float32) / 255.0


def probe_report(exp, state, *, num_labels: Sequence[int] = probe.NUM_LABELS,
                 seed: int | None = None,
                 features: str | None = None) -> dict[str, Any]:
  """Linear-probe accuracy against labels: the family's features
  `features` (None: its first, `jaxgen.uses.probe.extractor`) and pixels
  (module docstring). The training split gives the labelled pool, the
  evaluation split the test set; `seed` picks the labelled rows and the
  preprocessing key. The curve of the family's first features is named
  after the family, others ``'<family> <features>'``."""
  seed = exp.config.seed if seed is None else seed
  family = exp.config.family
  name = scoring.check_features(exp, features)
  key = _eval_key(exp, seed)
  params = exp.eval_params(state)
  train_images, train_labels = scoring.split_images(exp, 'train')
  split = exp.config.eval.split
  test_images, test_labels = scoring.split_images(exp, split)
  feats = [scoring.features(exp, params, x, key, name=name)
           for x in (train_images, test_images)]
  default = probe.is_default(family, name)
  curves = {
      family if default else f'{family} {name}': probe.probe_curve(
          feats[0], train_labels, feats[1], test_labels,
          num_labels=num_labels, seed=seed),
      'pixels': probe.probe_curve(
          pixel_features(train_images), train_labels,
          pixel_features(test_images), test_labels, num_labels=num_labels,
          seed=seed)}
  return {'features': probe.FEATURES[family][name].description,
          'feature_name': name,
          'feature_dim': int(feats[0].shape[1]), 'split': split,
          'seed': int(seed), 'num_train': int(len(train_labels)),
          'num_test': int(len(test_labels)), 'curves': curves}
