"""Runs catalogue entries: train and evaluate like `experiments.main`, then
the entry's named evaluations, and keep one record per experiment."""

from __future__ import annotations

import datetime
import functools
import os
import shutil
import time
from typing import Any, Iterable

from absl import app
import jax

from experiments import catalogue
from experiments import machine
from experiments import main as main_lib
from experiments import train_classifier
from experiments.catalogue import Spec
from experiments.configs import classifier as classifier_config
from experiments.results import records
from experiments.results import render
from experiments.results import specs
from jaxgen import evaluations
from jaxgen import train
from jaxgen import workdir as workdir_lib


class Interrupted(RuntimeError):
  """Training stopped before num_steps (SIGTERM): nothing is recorded."""


def _has_field(config, dotted: str) -> bool:
  try:
    functools.reduce(lambda node, part: node[part], dotted.split('.'), config)
  except (KeyError, TypeError):
    return False
  return True


def ensure_classifier(dataset: str, runs_dir: str,
                      quick: bool) -> tuple[Any, dict[str, Any]]:
  """The sample-quality classifier of `dataset`, trained once per runs_dir.

  Trained through the shared trainer (`experiments.train_classifier`) into
  ``<runs_dir>/classifier_<dataset>``, with the quick overrides the
  classifier config has when `quick`; a workdir that already holds it is
  only loaded. An old-format classifier workdir there is a `ConfigError`
  (`quality.check_classifier_workdir`), never read.

  Returns (the `quality.FeatureClassifier`, a record of how it was made).

  Raises:
    Interrupted: its training stopped before num_steps (SIGTERM).
  """
  config = classifier_config.get_config(dataset)
  preset = f'experiments/configs/classifier.py:{dataset}'
  overrides = ([(k, v) for k, v in specs.QUICK_OVERRIDES
                if _has_field(config, k)] if quick else [])
  config.update_from_flattened_dict(dict(overrides))
  workdir = os.path.join(runs_dir, f'classifier_{dataset}')
  clf = train_classifier.train_classifier(config, workdir,
                                          log=lambda s: print(s, flush=True))
  if clf is None:
    raise Interrupted(f'the classifier in {workdir} stopped before '
                      f'{config.train.num_steps} steps (SIGTERM); run again to '
                      'resume.')
  cmd = ['python', '-m', 'experiments.train_classifier']
  cmd += ([f'--config={preset}'] + [f'--config.{k}={v}' for k, v in overrides]
          if overrides else [f'--dataset={dataset}'])
  cmd.append(f'--workdir={workdir}')
  info = {k: v for k, v in clf.info.items()
          if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
  return clf, {'command': ' '.join(cmd), 'workdir': workdir, **info}


def measure(spec: Spec, exp: train.Experiment, state, runs_dir: str,
            quick: bool, names: Iterable[str] | None = None) -> dict[str, Any]:
  """Runs the spec's evaluations (those in `names`, default all), in order;
  returns their record fields. A 'classifier' option (a dataset) becomes
  the classifier `ensure_classifier` trains, recorded as 'classifier'.
  Figures go to ``<workdir>/images``."""
  out: dict[str, Any] = {}
  for ev in spec.evaluations:
    if names is not None and ev.name not in names:
      continue
    options = dict(ev.options)
    if options.get('classifier'):
      options['classifier'], out['classifier'] = ensure_classifier(
          options['classifier'], runs_dir, quick)
    start = time.perf_counter()
    fields = evaluations.run(ev.name, exp, state,
                             out_dir=os.path.join(exp.workdir, 'images'),
                             **options)
    print(f'[{spec.name}] {ev.name}: {", ".join(sorted(fields))} '
          f'({time.perf_counter() - start:.0f} s)', flush=True)
    out.update(fields)
  return out


def keep_figures(fields: dict[str, Any], records_dir: str | None,
                 name: str) -> dict[str, Any]:
  """With `records_dir`, each field {'png': path, ...} points to a copy of
  its figure there (``<name>_<field>.png``) instead of the workdir's."""
  if not records_dir:
    return fields
  return {k: ({**v, 'png': records.keep_figure(v['png'], records_dir, name, k)}
              if isinstance(v, dict) and 'png' in v else v)
          for k, v in fields.items()}


def run_experiment(spec: Spec, runs_dir: str, quick: bool,
                   records_dir: str | None = None) -> dict[str, Any]:
  """Trains (resuming) and evaluates one experiment; writes its result.json.

  Training and the test-split evaluation are `experiments.main`'s
  (`main.train_and_evaluate`), then the spec's evaluations run. With
  `records_dir`, the record is also written to ``<records_dir>/<name>.json``.

  Raises:
    FileNotFoundError: the experiment's data file is absent.
    Interrupted: training stopped before num_steps (nothing recorded).
  """
  config = specs.build_config(spec, quick, runs_dir)
  missing = specs.missing_data(config)
  if missing:
    raise FileNotFoundError(missing)
  workdir = os.path.join(runs_dir, spec.name)
  exp = train.Experiment(config, workdir)
  num_steps = config.train.num_steps
  print(f'[{spec.name}] training to {num_steps} steps in {workdir}',
        flush=True)
  trained = main_lib.train_and_evaluate(exp, 'test')
  step = trained.step
  if trained.results is None:  # SIGTERM: the trainer saved and returned
    raise Interrupted(f'[{spec.name}] training stopped at step {step} of '
                      f'{num_steps} (SIGTERM); checkpoint saved, no record '
                      'written. Run again to resume.')
  extra = measure(spec, exp, trained.state, runs_dir, quick)
  if not exp.is_main:
    return {}
  metrics = trained.results

  def nll(name, key):
    value = metrics.get(f'{name}/{key}')
    return None if value is None else float(value)

  estimators = {n: dict(config.eval.estimators[n])
                for n in config.eval.final_estimators}
  num_params = train.count_trainable(trained.state.params)
  done = step - trained.start_step
  train_s, eval_s = trained.train_seconds, trained.eval_seconds
  record = {
      'format_version': records.FORMAT_VERSION,
      'name': spec.name,
      'quick': quick,
      'preset': spec.config,
      'overrides': [[k, v] for k, v in specs.overrides_for(spec, quick)],
      'command': specs.command(spec, workdir, quick),
      'workdir': workdir,
      'model': specs.describe_model(config, num_params),
      'family': config.family,
      'params': num_params,
      'data': specs.describe_data(config),
      'dataset': config.data.name,
      'binarize': config.data.binarize,
      'splits': {k: len(v) for k, v in exp.dataset.splits.items()},
      'split_specs': dict(config.data.splits),
      'seed': config.seed,
      'num_steps': num_steps,
      'batch_size': config.train.batch_size,
      'step': step,
      'start_step': trained.start_step,
      'trained_steps_this_run': done,
      'estimators': estimators,
      'nll_estimator': spec.nll_estimator,
      'bound_estimator': spec.bound_estimator,
      'test_nll_nats': nll(spec.nll_estimator, 'nll_nats'),
      'test_bits_per_dim': nll(spec.nll_estimator, 'bits_per_dim'),
      'test_neg_elbo_nats': nll(spec.bound_estimator, 'nll_nats'),
      'test_neg_elbo_bits_per_dim': nll(spec.bound_estimator, 'bits_per_dim'),
      'test_num_examples': int(metrics['num_examples']),
      'test_metrics': metrics,
      'train_seconds': train_s,
      'eval_seconds': eval_s,
      'train_steps_per_second': done / train_s if done else None,
      'reference': spec.reference,
      'machine': machine.machine_info(),
      'git': records.git_revision(),
      'finished_utc': datetime.datetime.now(datetime.timezone.utc).strftime(
          '%Y-%m-%d %H:%M UTC'),
      'config': specs.config_dict(config),
  }
  record.update(keep_figures(extra, records_dir, spec.name))
  samples = [p for p in trained.paths
             if os.path.basename(p).startswith('samples_')]
  if records_dir and samples:
    record['samples_png'] = records.keep_figure(samples[-1], records_dir,
                                                spec.name)
  records.save(runs_dir, spec.name, record, records_dir)
  print(f'[{spec.name}] test NLL {render.num(record["test_nll_nats"])} nats '
        f'({spec.nll_estimator or "none"}), -ELBO '
        f'{render.num(record["test_neg_elbo_nats"])}; train {train_s:.0f} s, '
        f'eval {eval_s:.0f} s', flush=True)
  return record


def attach_samples(spec: Spec, record: dict[str, Any], runs_dir: str,
                   records_dir: str | None) -> dict[str, Any]:
  """Keeps the final sample grid of a stored record that lacks it, when its
  workdir still holds the grid of the recorded step."""
  if not records_dir or record.get('samples_png'):
    return record
  path = os.path.join(runs_dir, spec.name, 'images',
                      f'samples_{record["step"]:07d}.png')
  if os.path.exists(path):
    record['samples_png'] = records.keep_figure(path, records_dir, spec.name)
    records.save(runs_dir, spec.name, record, records_dir)
  return record


def add_missing_evaluations(spec: Spec, record: dict[str, Any],
                            runs_dir: str, quick: bool,
                            records_dir: str | None = None) -> dict[str, Any]:
  """Runs the spec's evaluations a stored result lacks, from its checkpoint.

  A record whose workdir is gone (a fresh clone) keeps what it has.
  """
  missing = [ev.name for ev in spec.evaluations
             if evaluations.FIELDS[ev.name] not in record]
  if not missing:
    return record
  if not os.path.isdir(os.path.join(runs_dir, spec.name, 'checkpoints')):
    print(f'[{spec.name}] lacks {", ".join(missing)} and its workdir is not '
          f'under {runs_dir}: pass --rerun --only={spec.name} to measure '
          'them', flush=True)
    return record
  print(f'[{spec.name}] measuring {", ".join(missing)} from the stored '
        'checkpoint', flush=True)
  exp = train.Experiment(specs.build_config(spec, quick, runs_dir),
                         os.path.join(runs_dir, spec.name))
  state, _ = exp.restore()
  fields = measure(spec, exp, state, runs_dir, quick, names=missing)
  if exp.is_main:
    record.update(keep_figures(fields, records_dir, spec.name))
    records.save(runs_dir, spec.name, record, records_dir)
  return record


def remove_workdir(workdir: str) -> None:
  """Deletes a workdir, refusing anything that does not look like one."""
  if not os.path.isdir(workdir):
    return
  markers = ('config.json', records.RESULT_FILE, 'checkpoints')
  if not any(os.path.exists(os.path.join(workdir, m)) for m in markers):
    raise app.UsageError(f'--fresh: {workdir} does not look like a workdir '
                         f'(none of {markers}); not deleting it.')
  print(f'--fresh: deleting {workdir}', flush=True)
  shutil.rmtree(workdir)


def run_all(names: list[str], *, runs_dir: str, out: str, quick: bool,
            rerun: bool = False, fresh: bool = False,
            note: str | None = None, records_dir: str | None = None) -> str:
  """Runs what is missing among `names`, then writes `out`; returns its text.

  `records_dir` (full runs only): where the per-experiment records live
  apart from the workdirs; RESULTS.md is rendered from them.
  """
  if quick and records_dir:
    raise app.UsageError('--quick keeps its records in the workdirs: do not '
                         'pass --records_dir with it.')
  by_name = catalogue.BY_NAME
  unknown = [n for n in names if n not in by_name]
  if unknown:
    raise app.UsageError(f'unknown experiment(s) {unknown}; known: '
                         f'{", ".join(by_name)}.')
  os.makedirs(runs_dir, exist_ok=True)
  records.check_not_mixed(runs_dir, records_dir, quick)
  notes: dict[str, str] = {}
  for name in names:
    spec = by_name[name]
    workdir = os.path.join(runs_dir, name)
    if fresh:
      remove_workdir(workdir)
    record = records.load_result(runs_dir, name, records_dir)
    if record is not None and not rerun:
      print(f'[{name}] reusing '
            f'{records.result_path(runs_dir, name, records_dir)} (pass '
            '--rerun to evaluate again, --fresh to retrain)', flush=True)
      if not records.stale_reason(spec, record, quick, runs_dir):
        add_missing_evaluations(spec, record, runs_dir, quick, records_dir)
        attach_samples(spec, record, runs_dir, records_dir)
      continue
    try:
      run_experiment(spec, runs_dir, quick, records_dir)
    except FileNotFoundError as e:
      notes[name] = (f'skipped: data file `{e.args[0]}` not found (under '
                     'the working directory or the checkout root)')
      print(f'[{name}] {notes[name]}', flush=True)
  text = render.render(runs_dir, quick=quick, notes=notes, note=note,
                       records_dir=records_dir)
  if jax.process_index() != 0:
    return text
  workdir_lib.atomic_write(out, text)
  gallery = render.gallery_path(out)
  workdir_lib.atomic_write(gallery, render.render_gallery(
      runs_dir, quick=quick, records_dir=records_dir))
  print(f'wrote {out} and {gallery}', flush=True)
  uses = render.write_uses(records_dir)
  if uses:
    print(f'wrote {uses}', flush=True)
  return text
