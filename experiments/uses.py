r"""What a trained generative model is for: outliers, labels, features.

  python -m experiments.uses ood --workdir=runs/vae_mnist8k \
      [--sets=flip,noise,...] [--num=1000] [--estimator=NAME] [--out=DIR]
  python -m experiments.uses bayes --workdir=runs/vae_cond_mnist8k \
      [--sets=...] [--num=1000]
  python -m experiments.uses probe --workdir=runs/vae_mnist8k \
      [--num_labels=10,100,1000,0] [--features=NAME]
  python -m experiments.uses perturb --workdir=runs/vae_mnist8k \
      --out=runs/vae_mnist8k_background/perturbed.npz [--rate=0.2] \
      [--copies=10]
  python -m experiments.uses render --out=results/USES.md \
      [--records=results/uses] [--training=WORKDIR=COMMAND ...]

Each command builds the run from ``<workdir>/config.json``, restores its
newest (or --step) checkpoint through the trainer, and reports
(`jaxgen.uses.reports`):

* ``ood``: per-example -log p(x) (the family's ``log_likelihood`` with the
  first of ``config.eval.final_estimators``, or --estimator; the run's own
  preprocessing, see `jaxgen.uses.scoring`) on the first --num rows of
  the evaluation split and on each out-of-distribution set of
  `jaxgen.data.ood`; AUROC, AUPR-in, AUPR-out and FPR at 95% TPR of the
  likelihood, typicality and input-complexity scores (OOD = positive).
  Writes ``ood_<stem>.json`` and one histogram per set,
  ``ood_<stem>_<set>.png`` (-log p(x): evaluation rows grey, the set
  blue). With --background=W0, a run of the same config trained on
  perturbed inputs (``perturb`` below), also the likelihood-ratio score
  -[log p(x) - log p_W0(x)] (Ren et al. 2019).
* ``bayes``: a class-conditional run's Bayes classifier p(y|x) ∝ p(x|y) p(y)
  (prior: the training labels): accuracy, ECE, and accuracy against
  coverage when the least likely inputs are refused, with the OOD sets
  mixed in; beside it, one diagonal Gaussian mixture per class fitted to
  the training pixels (--gmm_components, scikit-learn: the project's GMM
  family fits one mixture to a whole split), and with --classifier a
  discriminative classifier's accuracy, ECE and refusal by its confidence
  on the same rows (the reference; `experiments.train_classifier` on the
  same data). Writes
  ``bayes_<stem>.json``. The K class scores of one image share their
  draws (`jaxgen.uses.scoring.class_draws`, the record's ``draws``), with
  what the family says of its estimator (its optional
  ``describe_estimator``): a DDPM's bounds use the same timesteps and noise
  for every class, and the record states the timesteps per image.
  --num_samples=K scores with K importance samples instead of the
  estimator's own number (a VAE's ``--estimator=iwae --num_samples=100``:
  IWAE-100 per class); --num_timesteps=K scores a diffusion bound with K
  terms per image instead of its configured number.
* ``probe``: logistic-regression probes on the family's features
  (`jaxgen.uses.probe.FEATURES`; --features picks one of several, e.g. a
  VQ-VAE's code ``histogram`` instead of its quantized ``latents``) and on
  raw pixels, against the number of training labels. Writes
  ``probe_<stem>.json`` (``_feat<name>`` added to the stem for features
  other than the family's first). A class-conditional run is refused: its
  encoder reads the label, so its code is not a feature of the image
  alone.
* ``perturb``: the training data of a likelihood-ratio background model:
  --copies perturbations (`jaxgen.data.ood.perturb`, a fraction --rate of
  each image's values replaced by uniform levels) of the run's training
  split, then its evaluation split unchanged, as one npz file at --out
  (uint8 ``images``, int32 ``labels``); prints the config overrides that
  train the run's config on it (``experiments.main --config.data.name=npz:
  ...``). Ren et al. perturb the inputs anew at every step; with --copies
  at least ``num_steps * batch_size / N`` (N training rows) the background
  run's one epoch over the file never presents a perturbed image twice,
  which draws the same way (the command prints the steps that hold for).

* ``render``: Markdown tables of every JSON the three commands wrote under
  --records (recursively), each with its command, into --out; under them
  the training commands of ``<records>/training.txt`` ("workdir=command"
  lines) and of --training. ``python -m experiments.results`` writes the
  same page (`render`) to ``results/USES.md`` from ``results/uses``.

``<stem>`` is ``step<step>_seed<seed>`` plus the options that change the
numbers, so reruns with other options keep their files. Output goes to
--out (default ``<workdir>/uses``); the workdir itself is only read.

Exit status: 0 done; 1 a bug (traceback); 2 bad input (an unknown command
or flag value, a workdir with no run or no checkpoint, a family without
log_likelihood or without features, an unconditional run for bayes): one
``error:`` line on stderr naming what is missing.
"""

from __future__ import annotations

import glob
import json
import os
import shlex
import sys
from typing import Any, Sequence

from absl import flags
from absl import logging
import numpy as np

from experiments import entry
from jaxgen import images as images_lib
from jaxgen import quality
from jaxgen.data import ood as ood_data
from jaxgen import workdir as workdir_lib
from jaxgen.errors import ConfigError
from jaxgen.errors import DataError
from jaxgen.uses import probe as probe_lib
from jaxgen.uses import reports
from jaxgen.uses import scoring

COMMANDS = ('ood', 'bayes', 'probe', 'perturb', 'render')
# Under --records: "workdir=command" lines, how the scored workdirs were
# trained, listed under the tables (`training_lines`).
TRAINING_FILE = 'training.txt'
EXIT_OK, EXIT_BAD_INPUT = 0, 2


class UsageError(ValueError):
  """A command line that cannot run; the message is one line."""


def define_flags(flag_values: flags.FlagValues = flags.FLAGS
                 ) -> dict[str, Any]:
  fv = dict(flag_values=flag_values)
  return dict(
      workdir=flags.DEFINE_string('workdir', None, 'A trained run.', **fv),
      step=flags.DEFINE_integer('step', None, 'Checkpoint step (default: '
                                'the newest).', lower_bound=0, **fv),
      seed=flags.DEFINE_integer('seed', None, 'Seed of the evaluation key, '
                                'the OOD sets and the labelled rows '
                                '(default: config.seed).', lower_bound=0,
                                **fv),
      sets=flags.DEFINE_list('sets', None, 'ood / bayes: out-of-distribution '
                             'sets of jaxgen.data.ood (default: all '
                             'available).', **fv),
      num=flags.DEFINE_integer('num', 1000, 'ood / bayes: evaluation rows '
                               'scored, and rows of each OOD set (0: the '
                               'whole split).', lower_bound=0, **fv),
      num_train=flags.DEFINE_integer('num_train', None, 'ood: training rows '
                                     'of the entropy estimate (default: '
                                     '--num).', lower_bound=1, **fv),
      typicality_batch=flags.DEFINE_integer(
          'typicality_batch', 10, 'ood: M of the batch typicality test.',
          lower_bound=1, **fv),
      estimator=flags.DEFINE_string('estimator', None, 'ood / bayes: a name '
                                    'in config.eval.estimators (default: '
                                    'the first final estimator).', **fv),
      num_samples=flags.DEFINE_integer(
          'num_samples', None, 'ood / bayes: importance samples K of the '
          "estimator (overrides its 'num_samples'; e.g. --estimator=iwae "
          '--num_samples=100).', lower_bound=1, **fv),
      num_timesteps=flags.DEFINE_integer(
          'num_timesteps', None, 'ood / bayes: terms per image of a '
          "diffusion bound (overrides its 'num_timesteps'; e.g. a DDPM's "
          '--estimator=bound20 --num_timesteps=50; 0: all T).',
          lower_bound=0, **fv),
      background=flags.DEFINE_string(
          'background', None, 'ood: a run of the same config trained on '
          'perturbed inputs (see perturb): adds the likelihood-ratio '
          'score.', **fv),
      rate=flags.DEFINE_float('rate', 0.2, 'perturb: the fraction of each '
                              "image's values replaced.", lower_bound=0.0,
                              upper_bound=1.0, **fv),
      copies=flags.DEFINE_integer('copies', 10, 'perturb: perturbed copies '
                                  'of the training split.', lower_bound=1,
                                  **fv),
      classifier=flags.DEFINE_string(
          'classifier', None, 'bayes: the discriminative reference, a '
          'workdir of experiments.train_classifier trained on the same '
          'data and splits.', **fv),
      gmm_components=flags.DEFINE_integer(
          'gmm_components', 10, 'bayes: components of the per-class '
          'Gaussian-mixture baseline (0: none).', lower_bound=0, **fv),
      features=flags.DEFINE_string(
          'features', None, "probe: which of the family's features "
          '(jaxgen.uses.probe.FEATURES, e.g. histogram for a VQ-VAE; '
          'default: its first).', **fv),
      num_labels=flags.DEFINE_list(
          'num_labels', [str(n) for n in probe_lib.NUM_LABELS],
          'probe: labelled training examples per probe (0: all).', **fv),
      out=flags.DEFINE_string('out', None, 'Output directory (default: '
                              '<workdir>/uses); render: the Markdown file.',
                              **fv),
      records=flags.DEFINE_string('records', 'results/uses', 'render: the '
                                  'folder searched (recursively) for the '
                                  'JSON the commands wrote.', **fv),
      training=flags.DEFINE_multi_string(
          'training', [], 'render: "workdir=command" lines, the commands '
          'that trained the workdirs, listed under the tables after those '
          f'of <records>/{TRAINING_FILE}.', **fv))


def _error(message: Any) -> int:
  print(f'error: {" ".join(str(message).split())}', file=sys.stderr,
        flush=True)
  return EXIT_BAD_INPUT


def _stem(step: int, seed: int, **options) -> str:
  extra = ''.join(f'_{k}{v}' for k, v in options.items() if v is not None)
  return f'step{step:07d}_seed{seed}{extra}'


def _num_labels(values: Sequence[str]) -> tuple[int, ...]:
  try:
    out = tuple(int(v) for v in values)
  except ValueError as e:
    raise UsageError(f'--num_labels={",".join(values)}: expected integers '
                     '(0: all labels), e.g. --num_labels=10,100,0.') from e
  if not out or any(n < 0 for n in out):
    raise UsageError(f'--num_labels={",".join(values)}: expected integers '
                     '>= 0.')
  return out


def _write(out: str, name: str, payload: dict[str, Any]) -> str:
  path = os.path.join(out, name)
  workdir_lib.write_json(path, payload)
  return path


def perturb(exp, f: dict[str, Any]) -> dict[str, Any]:
  """The ``perturb`` command: writes the npz, prints the overrides."""
  out = f['out']
  if not out or not out.endswith('.npz'):
    raise UsageError(f'perturb needs --out=FILE.npz, got --out={out}.')
  seed = exp.config.seed if f['seed'] is None else f['seed']
  split = exp.config.eval.split
  if split != 'test':
    raise UsageError(f'perturb: config.eval.split is {split!r}; the '
                     "overrides it prints assume 'test'.")
  train_x, train_y = scoring.split_images(exp, 'train')
  test_x, test_y = scoring.split_images(exp, split)
  images = np.concatenate([
      ood_data.perturbed_copies(train_x, f['rate'], f['copies'], seed),
      test_x])
  labels = np.concatenate([np.tile(train_y, f['copies']), test_y])
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  tmp = out[:-len('.npz')] + '.tmp.npz'
  np.savez(tmp, images=images, labels=labels.astype(np.int32))
  os.replace(tmp, out)
  n = len(train_x) * f['copies']
  overrides = [f'--config.data.name=npz:{out}',
               f"--config.data.splits.train='all[0:{n}]'",
               "--config.data.splits.validation=''",
               f"--config.data.splits.test='all[{n}:{len(images)}]'",
               '--config.data.shuffle_before_split=False']
  if exp.config.eval.periodic_split not in ('', 'test'):
    overrides.append("--config.eval.periodic_split=''")
  batch = exp.config.train.batch_size
  print(f'wrote {out}: {f["copies"]} perturbed copies (rate {f["rate"]}, '
        f'seed {seed}) of {len(train_x)} training rows, then {len(test_x)} '
        f'{split} rows unchanged; up to {n // batch:,} steps of batch '
        f'{batch} present every perturbed image at most once (a fresh '
        'perturbation each time). Train the background model with the '
        f'config of {exp.workdir} and:\n  ' + ' '.join(overrides),
        flush=True)
  return {'path': out, 'overrides': overrides}


def run(command: str, f: dict[str, Any]) -> dict[str, Any]:
  """One command with parsed flag values `f`; returns what it wrote."""
  workdir = f['workdir']
  exp = scoring.build_run(workdir)
  if exp.points:
    raise UsageError(f'--workdir={workdir} models toy 2-D points '
                     f'({exp.config.data.name}); these uses need images.')
  if command == 'perturb':
    return perturb(exp, f)
  # What the command needs from the family comes before the checkpoint.
  if command == 'probe':
    feature_name = scoring.check_features(exp, f['features'])
    num_labels = _num_labels(f['num_labels'])
  else:
    if f['features'] is not None:
      raise UsageError('--features is an option of probe only.')
    if f['sets'] is not None:
      reports.outlier_sets(exp, f['sets'])
    estimator = scoring.estimator_name(exp, f['estimator'])
    arguments = {k: f[k] for k in ('num_samples', 'num_timesteps')
                 if f[k] is not None}
    scoring.check_estimator_arguments(exp, estimator, arguments)
    classifier = None
    if command == 'bayes':
      scoring.require_classes(exp)
      if f['classifier']:
        classifier = quality.load_classifier(f['classifier'])
        classifier.workdir = f['classifier']  # as typed, for the record
        quality.check_same_data(exp.config.data, classifier.config.data,
                                exp.config.eval.split)
    elif f['classifier']:
      raise UsageError('--classifier is an option of bayes only.')
    background = None
    if f['background']:
      if command != 'ood':
        raise UsageError('--background is an option of ood only.')
      bg_exp = scoring.build_run(f['background'])
      reports.check_background(exp, bg_exp)
      scoring.estimator_name(bg_exp, estimator)
      background = (bg_exp, scoring.restore_run(bg_exp)[0])
  state, step = scoring.restore_run(exp, f['step'])
  seed = exp.config.seed if f['seed'] is None else f['seed']
  num = f['num'] or None
  out = f['out'] or os.path.join(workdir, 'uses')
  command_line = 'python -m experiments.uses ' + ' '.join(f['argv'][1:])
  if command == 'probe':
    report = reports.probe_report(exp, state, num_labels=num_labels,
                                  seed=seed, features=feature_name)
    for name, curve in report['curves'].items():
      print(f'probe {name}: ' + ', '.join(
          f'{r["num_labels"]} labels {r["accuracy"]:.4f}' for r in curve),
            flush=True)
    payload = {'command': command_line, 'workdir': workdir, 'step': step,
               **report}
    default = probe_lib.is_default(exp.config.family, feature_name)
    stem = _stem(step, seed, feat=None if default else feature_name)
    path = _write(out, f'probe_{stem}.json', payload)
    print(f'wrote {path}', flush=True)
    return payload
  sets = f['sets']
  stem = _stem(step, seed, num=num or 'all', est=estimator,
               k=f['num_samples'], t=f['num_timesteps'],
               bg=(os.path.basename(os.path.normpath(f['background']))
                   if background else None))
  if command == 'bayes':
    report = reports.bayes_report(exp, state, sets=sets, num=num,
                                  estimator=estimator, seed=seed,
                                  gmm_components=f['gmm_components'],
                                  arguments=arguments, classifier=classifier)
    print(f'bayes: accuracy {report["accuracy"]:.4f}, ECE '
          f'{report["ece"]:.4f}, -log p(y|x) {report["nll_labels"]:.4f} '
          f'nats on {report["num"]} {report["split"]} rows; AUROC of '
          f'-log p(x) against {report["num_ood"]} OOD rows '
          f'{report["ood_auroc_log_px"]:.4f}, of -max_y log p(x, y) '
          f'{report["ood_auroc_max_joint"]:.4f}', flush=True)
    print(f'class scores: {report["draws"]["note"]}', flush=True)
    if report['gmm_baseline']:
      b = report['gmm_baseline']
      print(f'baseline, {b["model"]}: accuracy {b["accuracy"]:.4f}, ECE '
            f'{b["ece"]:.4f}', flush=True)
    if report['classifier_reference']:
      c = report['classifier_reference']
      print(f'reference, the classifier {c["workdir"]}: accuracy '
            f'{c["accuracy"]:.4f}, ECE {c["ece"]:.4f}; AUROC of its '
            f'-max_y log p(y|x) against the OOD rows '
            f'{c["ood_auroc_max_prob"]:.4f}', flush=True)
    curve = report['reject_with_ood']
    print('with OOD mixed in, accuracy at coverage: ' + ', '.join(
        f'{c:.2f}: {a:.3f}' for c, a in zip(curve['coverage'],
                                            curve['accuracy'])
        if round(c * 20) % 4 == 0), flush=True)
    payload = {'command': command_line, 'workdir': workdir, 'step': step,
               **report}
    path = _write(out, f'bayes_{stem}.json', payload)
    print(f'wrote {path}', flush=True)
    return payload
  report = reports.ood_report(exp, state, sets=sets, num=num,
                              num_train=f['num_train'],
                              typicality_batch=f['typicality_batch'],
                              estimator=estimator, seed=seed,
                              arguments=arguments, background=background)
  arrays = report.pop('arrays')
  split = report['split']
  paths = []
  for s in report['sets']:
    metrics = report['metrics'][s]
    print(f'{s}: mean -log p {report["summary"][s]["mean_nll_nats"]:.1f} '
          f'nats (vs {report["summary"][split]["mean_nll_nats"]:.1f}); ' +
          '; '.join(f'{kind} AUROC {m["auroc"]:.3f} FPR95 {m["fpr95"]:.3f}'
                    for kind, m in metrics.items()), flush=True)
    a, b = arrays['nll'][split], arrays['nll'][s]
    what = '-log p(x), nats'
    low, high = min(a.min(), b.min()), max(a.max(), b.max())
    if low > 0 and high > 20 * low:  # decades apart: a log axis
      a, b, what = np.log10(a), np.log10(b), 'log10 of -log p(x) in nats'
    figure = images_lib.histogram_image(
        a, b, caption=f'{what}: {split} grey, {s} blue')
    paths.append(images_lib.save_png(
        os.path.join(out, f'ood_{stem}_{s}.png'), figure))
  payload = {'command': command_line, 'workdir': workdir, 'step': step,
             **report}
  paths.insert(0, _write(out, f'ood_{stem}.json', payload))
  for p in paths:
    print(f'wrote {p}', flush=True)
  payload['paths'] = paths
  return payload


def _fmt(x: float) -> str:
  return f'{x:.3f}'


# Short names of the outlier scores in the summary table.
_SHORT = {'likelihood': 'lik', 'typicality': 'typ', 'complexity': 'cx',
          'likelihood_ratio': 'LR'}


def _short(kind: str) -> str:
  return _SHORT.get(kind) or kind.replace('typicality_m', 'typM=')


def _run_label(r: dict[str, Any], extra: str = '') -> str:
  """`workdir` (estimator[, extra]) for a summary row."""
  said = [x for x in (r.get('estimator', {}).get('name'), extra) if x]
  return f'`{r["workdir"]}`' + (f' ({", ".join(said)})' if said else '')


def _coverage_index(curve: dict[str, Any], kept: float) -> int:
  return min(range(len(curve['coverage'])),
             key=lambda i: abs(curve['coverage'][i] - kept))


def summaries(found: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
  """The three tables that open the page, one row per record of `found`
  ((kind, record) in path order): per outlier set, the AUROC of -log p(x)
  and of the best score when it beats it; per Bayes record, accuracy,
  ECE, the AUROC of -log p(x) against the outliers and the accuracy at
  80% kept with them mixed in, beside its baseline and reference; per
  probe, accuracy against the labels used, with the pixel curves once per
  distinct curve."""
  lines = []
  ood = [r for k, r in found if k == 'ood']
  if ood:
    sets = []
    for r in ood:
      sets += [s for s in r['sets'] if s not in sets]
    lines += [
        '## Outliers at a glance', '',
        'AUROC of -log p(x) per set (0.5: chance; below 0.5: the set is '
        '*more* likely than the test digits), then, where another score '
        'does better by 0.01 or more, the best one: typ = typicality per '
        'example, typM=m = typicality of batches of m, cx = input '
        'complexity, LR = likelihood ratio. Details in the sections '
        'below.', '',
        '| Run (estimator) | ' + ' | '.join(sets) + ' |',
        '|---' * (len(sets) + 1) + '|']
    for r in ood:
      bg = r.get('background')
      label = _run_label(r, f'background `{bg["workdir"]}`' if bg else '')
      cells = []
      for s in sets:
        met = r['metrics'].get(s)
        if met is None:
          cells.append('')
          continue
        lik = met['likelihood']['auroc']
        best = max(met, key=lambda k: met[k]['auroc'])
        cell = _fmt(lik)
        if met[best]['auroc'] >= lik + 0.01:
          cell += f' → {_fmt(met[best]["auroc"])} {_short(best)}'
        cells.append(cell)
      lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    lines.append('')
  bayes = [r for k, r in found if k == 'bayes']
  if bayes:
    lines += [
        '## Bayes classifiers at a glance', '',
        'p(y|x) ∝ p(x|y) p(y) on the test rows; AUROC of -log p(x) against '
        'the outlier sets mixed in (about as many outliers as digits), and '
        'the accuracy when the 20% least likely of that mixture are '
        'refused (outliers count as errors: with as many outliers as '
        'digits, about 0.63 at best). Beside it, on the same rows, '
        'one diagonal Gaussian mixture per class and, where given, the '
        'discriminative classifier (refusing by max_y p(y|x)).', '',
        '| Run (estimator) | Test rows | Accuracy | ECE | AUROC -log p(x) '
        '| Accuracy at 80% kept | Per-class GMM accuracy | Classifier '
        'accuracy | Classifier at 80% kept |',
        '|---' * 9 + '|']
    for r in bayes:
      steps = r.get('draws', {}).get('timesteps_per_image')
      mixed = r['reject_with_ood']
      i = _coverage_index(mixed, 0.8)
      gmm = r.get('gmm_baseline')
      ref = r.get('classifier_reference')
      lines.append(
          f'| {_run_label(r, f"{steps:,} timesteps" if steps else "")} | '
          f'{r["num"]} | '
          f'{_fmt(r["accuracy"])} | {_fmt(r["ece"])} | '
          f'{_fmt(r["ood_auroc_log_px"])} | {_fmt(mixed["accuracy"][i])} | '
          + (_fmt(gmm['accuracy']) if gmm else '') + ' | ' +
          (_fmt(ref['accuracy']) if ref else '') + ' | ' +
          (_fmt(ref['reject_with_ood']['accuracy'][
              _coverage_index(ref['reject_with_ood'], 0.8)]) if ref else '')
          + ' |')
    lines.append('')
  probes = [r for k, r in found if k == 'probe']
  if probes:
    counts = [row['num_labels'] for row in probes[0]['curves']['pixels']]
    rows, pixel_curves = [], []
    for r in probes:
      for name, curve in r['curves'].items():
        if [row['num_labels'] for row in curve] != counts:
          continue
        acc = [row['accuracy'] for row in curve]
        if name == 'pixels':
          if acc in pixel_curves:
            continue
          pixel_curves.append(acc)
          label = f'raw pixels (beside `{r["workdir"]}`)'
        else:
          label = f'`{r["workdir"]}`: {name}'
        rows.append(f'| {label} | ' + ' | '.join(_fmt(a) for a in acc) +
                    ' |')
    lines += [
        '## Linear probes at a glance', '',
        'Test accuracy of a logistic regression on frozen features against '
        'the number of training labels used (the same labelled rows for '
        'every feature); raw pixels once per distinct curve.', '',
        '| Features | ' + ' | '.join(f'{n:,} labels' for n in counts) +
        ' |', '|---' * (len(counts) + 1) + '|'] + rows + ['']
  return lines


def training_lines(records: str) -> list[str]:
  """The "workdir=command" lines of `records`/`TRAINING_FILE` (none when
  the file is absent): the commands that trained the scored workdirs.

  Raises:
    UsageError: a non-blank line without '='.
  """
  path = os.path.join(records, TRAINING_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    lines = [l.strip() for l in f if l.strip()]
  bad = [l for l in lines if '=' not in l]
  if bad:
    raise UsageError(f'{path}: expected "workdir=command" lines, got '
                     f'{bad[0]!r}.')
  return lines


def render(records: str, training: Sequence[str] = (),
           command: str = '', out: str = 'results/USES.md') -> str:
  """Markdown tables of every ``ood_*``, ``bayes_*`` and ``probe_*`` JSON
  under `records`, in path order, each with the command that wrote it.

  The training commands of `records`/`TRAINING_FILE`, then the extra
  `training` lines ("workdir=command"), close the page, and then `command`
  (this render's own command line) when given, else the two commands that
  write the page, to `out`, from those files alone (``experiments.uses
  render`` and ``experiments.results``, which calls this function).
  """
  paths = sorted(glob.glob(os.path.join(records, '**', '*.json'),
                           recursive=True))
  if not paths:
    raise UsageError(f'--records={records}: no JSON written by '
                     'experiments.uses there.')
  training = training_lines(records) + list(training)
  lines = ['# Uses of the trained models', '',
           '<!-- Generated by `python -m experiments.uses render` from the '
           'JSON under ' + records + '. Do not edit by hand. -->', '',
           'Outlier scores are higher for "more likely out-of-distribution";'
           ' the out-of-distribution examples are the positives (AUROC, '
           'FPR at 95% TPR: the fraction of test digits flagged when 95% of '
           'the set is). Sets: `jaxgen.data.ood`. Scores: -log p(x) '
           '("likelihood"), |-log p(x) - H| per example and for batches of '
           'M ("typicality", "typicality M"), -log2 p(x) minus the PNG '
           'code length ("complexity"), and, where a background model was '
           'given, -[log p(x) - log p_0(x)] with p_0 the same config '
           'trained on perturbed inputs ("likelihood ratio", Ren et al. '
           '2019).', '']
  found = []
  for path in paths:
    with open(path) as f:
      found.append((os.path.basename(path).split('_')[0], json.load(f)))
  lines += summaries(found)
  for kind, r in found:
    est = r.get('estimator', {})
    head = (f'## {kind}: `{r["workdir"]}` (step {r["step"]}, '
            + (f'estimator {est["name"]} {est["arguments"]}, '
               f'{est["likelihood"]}' if est else '') + ')')
    lines += [head.replace(', )', ')'), '']
    if kind == 'ood':
      m = r['typicality_batch']
      bg = r.get('background')
      kinds = ['likelihood', 'typicality'] + (
          [f'typicality_m{m}'] if m > 1 else []) + ['complexity'] + (
              ['likelihood_ratio'] if bg else [])
      lines += [
          f'Test rows: {r["summary"][r["split"]]["num"]}, mean -log p '
          f'{r["summary"][r["split"]]["mean_nll_nats"]:.1f} nats; entropy '
          f'estimate H = {r["entropy_estimate_nats"]:.1f} nats from '
          f'{r["num_train"]} training rows.' + (
              f' Background model: `{bg["workdir"]}` (step {bg["step"]}, '
              f'data `{bg["data"]}`), mean -log p_0 of the test rows '
              f'{r["summary"][r["split"]]["mean_nll_background_nats"]:.1f}'
              ' nats.' if bg else ''), '',
          '| Set | mean -log p (nats) | ' + ' | '.join(
              f'AUROC {k.replace("_m", " M=").replace("_", " ")}'
              for k in kinds) +
          ' | AUPR-in / AUPR-out (likelihood) | FPR95 (likelihood) |',
          '|---' * (len(kinds) + 4) + '|']
      for s in r['sets']:
        met = r['metrics'][s]
        lines.append(
            f'| {s} | {r["summary"][s]["mean_nll_nats"]:.1f} | ' +
            ' | '.join(_fmt(met[k]['auroc']) for k in kinds) +
            f' | {_fmt(met["likelihood"]["aupr_in"])} / '
            f'{_fmt(met["likelihood"]["aupr_out"])} | '
            f'{_fmt(met["likelihood"]["fpr95"])} |')
    elif kind == 'bayes':
      curve = r['reject_with_ood']
      ref = r.get('classifier_reference')
      shown = [i for i, c in enumerate(curve['coverage'])
               if round(c * 20) in (10, 16, 18, 20)]
      lines += [
          f'Test rows: {r["num"]}; accuracy **{r["accuracy"]:.4f}**, ECE '
          f'{r["ece"]:.4f}, -log p(y|x) of the labels '
          f'{r["nll_labels"]:.4f} nats; AUROC of -log p(x) against '
          f'{r["num_ood"]} outliers ({", ".join(r["sets"])}): '
          f'{r["ood_auroc_log_px"]:.3f}' + (
              f', of -max_y log p(x, y): {r["ood_auroc_max_joint"]:.3f}'
              if 'ood_auroc_max_joint' in r else '') + '.' + (
              f' Baseline, {r["gmm_baseline"]["model"]}: accuracy '
              f'{r["gmm_baseline"]["accuracy"]:.4f}, ECE '
              f'{r["gmm_baseline"]["ece"]:.4f}' + (
                  ', AUROC of its -log p(x) against the same outliers '
                  f'{r["gmm_baseline"]["ood_auroc_log_px"]:.3f}'
                  if 'ood_auroc_log_px' in r['gmm_baseline'] else '') + '.'
              if r.get('gmm_baseline') else '') + (
              f' Class scores: {r["draws"]["note"]}.'
              if r.get('draws') else '') + (
              ' Reference, the discriminative classifier '
              f'`{ref["workdir"]}`: accuracy '
              f'{ref["accuracy"]:.4f}, ECE {ref["ece"]:.4f}, AUROC of its '
              '-max_y log p(y|x) against the same outliers '
              f'{ref["ood_auroc_max_prob"]:.3f}.' if ref else ''), '',
          '| Kept (of test + outliers) | ' + ' | '.join(
              f'{curve["coverage"][i]:.0%}' for i in shown) + ' |',
          '|---' * (len(shown) + 1) + '|',
          '| Accuracy | ' + ' | '.join(_fmt(curve['accuracy'][i])
                                       for i in shown) + ' |',
          '| Outliers among the kept | ' + ' | '.join(
              _fmt(curve['ood_kept'][i]) for i in shown) + ' |']
      joint = r.get('reject_with_ood_max_joint')
      if joint:
        lines += [
            '| Accuracy, refusing by max_y log p(x, y) | ' + ' | '.join(
                _fmt(joint['accuracy'][i]) for i in shown) + ' |',
            '| Outliers among the kept, by max_y log p(x, y) | ' +
            ' | '.join(_fmt(joint['ood_kept'][i]) for i in shown) + ' |']
      if ref:
        rc = ref['reject_with_ood']
        lines += [
            '| Accuracy, classifier refusing by max_y p(y|x) | ' + ' | '.join(
                _fmt(rc['accuracy'][i]) for i in shown) + ' |',
            '| Outliers among the kept, by the classifier | ' + ' | '.join(
                _fmt(rc['ood_kept'][i]) for i in shown) + ' |']
    elif kind == 'probe':
      names = list(r['curves'])
      lines += [
          f'Features: {r["features"]} ({r["feature_dim"]}-d) against raw '
          f'pixels; logistic regression on {r["num_train"]} training rows '
          f'at most, {r["num_test"]} test rows.', '',
          '| Labels | ' + ' | '.join(f'accuracy: {n}' for n in names) + ' |',
          '|---' * (len(names) + 1) + '|']
      for i, row in enumerate(r['curves'][names[0]]):
        lines.append(f'| {row["num_labels"]:,} | ' + ' | '.join(
            _fmt(r['curves'][n][i]['accuracy']) for n in names) + ' |')
    lines += ['', f'`{r["command"]}`', '']
  if training:
    lines += ['Training commands of the workdirs:', '']
    lines += [f'- `{t.split("=", 1)[0]}`: `{t.split("=", 1)[1]}`'
              for t in training]
    lines.append('')
  if command:
    lines += [f'This page: `{command}`', '']
  else:
    lines += [f'This page: `python -m experiments.uses render --records='
              f'{records} --out={out}`, or `python -m experiments.results '
              '--render_only` (every run of experiments.results writes it '
              'too); the training commands are those of '
              f'`{os.path.join(records, TRAINING_FILE)}`.', '']
  return '\n'.join(lines)


def main(argv: Sequence[str], holders: dict[str, Any],
         full_argv: Sequence[str] | None = None) -> int:
  """Runs the parsed command line (`full_argv`: as typed, for the record;
  default ``sys.argv``); returns the exit status."""
  logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in holders.items()}
  f['argv'] = list(sys.argv if full_argv is None else full_argv)
  try:
    if len(argv) != 2 or argv[1] not in COMMANDS:
      raise UsageError(f'expected one command, {" | ".join(COMMANDS)}, '
                       f'before the flags; got {list(argv[1:])}.')
    if argv[1] == 'render':
      if not f['out']:
        raise UsageError('render needs --out=FILE, e.g. --out=results/'
                         'USES.md.')
      # With only the files under --records, the page is the one
      # `experiments.results` writes; extra --training lines name this
      # command line.
      workdir_lib.atomic_write(f['out'], render(
          f['records'], f['training'],
          'python -m experiments.uses ' + ' '.join(
              shlex.quote(a) for a in f['argv'][1:])
          if f['training'] else '', out=f['out']))
      print(f'wrote {f["out"]}', flush=True)
      return EXIT_OK
    if not f['workdir'] or not f['workdir'].strip():
      raise UsageError('--workdir is required: a trained run, e.g. '
                       '--workdir=runs/vae_mnist8k.')
    if (argv[1] != 'perturb' and f['out'] is not None and
        os.path.isfile(f['out'])):
      raise UsageError(f'--out={f["out"]} is a regular file, not a '
                       'directory.')
    run(argv[1], f)
  except (UsageError, ConfigError, DataError, FileNotFoundError) as e:
    return _error(e)
  return EXIT_OK


def cli(argv: Sequence[str]) -> int:
  """The whole command line in this process (tests, notebooks): `argv`
  starts with the program name; returns the exit status."""
  flag_values = flags.FlagValues()
  holders = define_flags(flag_values)
  try:
    rest = flag_values(list(argv))
  except flags.Error as e:
    return _error(e)
  return main(rest, holders, argv)


if __name__ == '__main__':
  _HOLDERS = define_flags()
  entry.run(lambda argv: main(argv, _HOLDERS))
