r"""Runs an experiment: train (resuming), evaluate or sample, over a workdir.

  python -m experiments.main --config=experiments/configs/vae.py:digits \
      --workdir=runs/vae
  python -m experiments.main --workdir=runs/vae --mode=evaluate \
      [--step=N] [--seed=S] [--split=NAME] [--out=DIR]
  python -m experiments.main --workdir=runs/vae --mode=sample \
      [--step=N] [--seed=S] [--num=N] [--out=DIR]

Override any config field on the command line
(``--config.train.num_steps=100``); a mistyped field is an error. Without
--config, evaluate and sample read ``<workdir>/config.json``, written by
training; a --config that differs from it is refused (they evaluate the run
that was trained), save in the named evaluations (below). The workdir
holds orbax checkpoints (checkpoints/), metrics.jsonl, TensorBoard events
(tensorboard/), PNG grids (images/) and evaluation results (eval/).

Training writes ``images/samples_<step>.png``,
``images/reconstructions_<step>.png`` and ``eval/<split>_step<step>.json``
with the config's seed, and ``images/curves.png``, metrics.jsonl drawn
against the step, which evaluate without --out redraws.
``--config.train.profile_steps=N`` traces N training steps with
jax.profiler into ``profile/``. Evaluate and sample restore the newest
checkpoint (or ``--step``) and use ``--seed`` (default: the config's seed)
where training uses ``config.seed``: the evaluation key (estimators,
reconstructions) and the sampling key. Their files are named by everything
that determines them, so two different results never share a name and an
identical rerun writes identical bytes:

  <out>/<split>_step<step>_seed<seed>.json           (evaluate; out: eval/)
  <out>/samples_step<step>_seed<seed>_num<num>.png   (sample; out: images/)
  <out>/reconstructions_step<step>_seed<seed>.png    (sample, 16 test inputs)

An existing file with other contents under such a name is never
overwritten: that is an error.

The named evaluations of ``config.eval.evaluations``
(`jaxgen.evaluations`, with ``config.eval.evaluation_options``) run after
training's final evaluation and in evaluate, on the same split and with the
same evaluation and sampling keys; their fields are printed and go into the
evaluation JSON (wall-clock fields, ``*_seconds``, are printed only, so an
identical rerun writes identical bytes). Their figures go to ``images/``
after training and to ``<out>/<split>_step<step>_seed<seed>/`` in evaluate.

Exit status:

  0    done: trained (then evaluated), evaluated, or sampled.
  1    a bug: anything not listed here ends with a traceback.
  2    bad input: a flag, a config field, a data file, the workdir, a
       missing checkpoint or step (found before anything is compiled), an
       existing different result (found before anything is written). One
       ``error:`` line on stderr names the flag, field or file and what
       was expected.
  3    training diverged: a NaN or inf metric or parameter. One ``error:``
       line names the metric (or parameters), the step and the last good
       checkpoint; nothing was saved from the bad state, so the workdir
       resumes from that checkpoint (e.g. with a lower learning rate).
  143  stopped by SIGTERM (128 + 15): the current step was saved and not
       evaluated; the same command resumes.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import signal
import sys
import time
from typing import Any, Sequence

from absl import flags
from absl import logging
import ml_collections
from ml_collections import config_flags

from experiments import entry
from jaxgen import evaluate as eval_lib
from jaxgen import evaluations as evaluations_lib
from jaxgen import train
from jaxgen import workdir as workdir_lib
from jaxgen.errors import ConfigError
from jaxgen.errors import DataError

EXIT_OK = 0
EXIT_BAD_INPUT = entry.EXIT_BAD_INPUT
EXIT_DIVERGED = 3
EXIT_SIGTERM = 128 + signal.SIGTERM

# Flags of evaluate and sample only.
_RESTORE_FLAGS = ('step', 'seed', 'num', 'out')


# A command line the entry point cannot run; the message is one line.
UsageError = entry.UsageError
_error = entry.error


def _estimator_label(name: str, args: Any) -> str:
  """'iwae[bound=iwae, num_samples=5000]': an estimator and its arguments."""
  args = dict(args or {})
  inner = ', '.join(f'{k}={v}' for k, v in sorted(args.items())
                    if k != 'chunk_size')  # chunking changes no value
  return f'{name}[{inner}]' if inner else name


def result_lines(step: int, split: str, results: dict[str, float],
                 estimators: Any = None, seed: int | None = None) -> list[str]:
  """The printed summary of an evaluation, one estimator a line.

  The first line holds the per-example metrics of the family's ``loss_fn``
  (with train=False), the training loss's own terms: e.g. a VAE's
  ``elbo`` there is the one-sample ELBO the training loss uses. Each
  following line is one named likelihood estimator of
  ``config.eval.estimators`` with its arguments (e.g.
  ``iwae[bound=iwae, num_samples=5000]``): ``<name>/log_likelihood``, the
  mean log p(x) in nats (exact or a bound, as the family documents), and
  the negative log-likelihood in nats and in bits per dimension. Every
  value is printed under its key in the evaluation JSON.
  """
  estimators = estimators or {}
  count = results.get('num_examples')
  about = ([f'{int(count)} examples'] if count is not None else []) + (
      [f'seed {seed}'] if seed is not None else [])
  head = f'step {step} {split}' + (f' ({", ".join(about)})' if about else '')
  own = {k: v for k, v in results.items()
         if '/' not in k and k != 'num_examples'}
  lines = []
  if own:
    lines.append(f'{head}: loss_fn metrics (the training loss\'s terms, '
                 'computed as in training): ' + ', '.join(
                     f'{k}={v:.4f}' for k, v in sorted(own.items())))
  for name in sorted({k.split('/')[0] for k in results if '/' in k}):
    values = ', '.join(f'{name}/{key}={results[f"{name}/{key}"]:.4f}'
                       for key in ('log_likelihood', 'nll_nats',
                                   'bits_per_dim')
                       if f'{name}/{key}' in results)
    lines.append(f'{head}: estimator '
                 f'{_estimator_label(name, estimators.get(name))}: {values}')
  return lines


def _print_results(step: int, split: str, results: dict[str, float],
                   estimators: Any = None, seed: int | None = None) -> None:
  for line in result_lines(step, split, results, estimators, seed):
    print(line, flush=True)


@dataclasses.dataclass
class Trained:
  """What `train_and_evaluate` did.

  Attributes:
    state: the trained state.
    start_step: the checkpoint step training resumed from (0: fresh).
    num_steps: the steps training was asked to reach.
    train_seconds: wall time of `Experiment.train`.
    split: the split to evaluate.
    results: its evaluation (`Experiment.evaluate`), None when training
      stopped early (SIGTERM) and nothing was evaluated.
    paths: the files written: image grids, then (process 0) the eval JSON.
    eval_seconds: wall time of `Experiment.evaluate`.
    fields: the record fields of the config's named evaluations
      (`run_evaluations`), also in the eval JSON.
  """
  state: Any
  start_step: int
  num_steps: int
  train_seconds: float
  split: str
  results: dict[str, float] | None = None
  paths: list[str] = dataclasses.field(default_factory=list)
  eval_seconds: float = 0.0
  fields: dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def step(self) -> int:
    return int(self.state.step)


def run_evaluations(exp: train.Experiment, state: Any, split: str, *,
                    out_dir: str, seed: int | None = None) -> dict[str, Any]:
  """Runs the config's named evaluations (`jaxgen.evaluations.from_config`).

  An evaluation with a `split` option that the config leaves unset measures
  `split`; with `seed`, they use the evaluation and sampling keys of
  ``config.seed = seed`` (`Experiment.keys`), as `Experiment.evaluate` does.
  Collective: every process calls it.

  Returns:
    Their record fields, merged in order.
  """
  named = evaluations_lib.from_config(exp.config)
  if not named:
    return {}
  fields: dict[str, Any] = {}
  saved = exp.eval_key, exp.sample_key
  _, _, exp.eval_key, exp.sample_key = exp.keys(seed)
  try:
    for name, options in named:
      fn = evaluations_lib.get(name)
      if 'split' in inspect.signature(fn).parameters:
        options.setdefault('split', split)
      fields.update(evaluations_lib.run(name, exp, state, out_dir=out_dir,
                                        **options))
  finally:
    exp.eval_key, exp.sample_key = saved
  return fields


def _recorded(fields: dict[str, Any]) -> dict[str, Any]:
  """The fields that go into the eval JSON: all but wall-clock times."""
  return {k: v for k, v in fields.items() if not k.endswith('_seconds')}


def evaluation_lines(step: int, split: str, fields: dict[str, Any]
                     ) -> list[str]:
  """The printed fields of the named evaluations, one field a line."""
  return [f'step {step} {split}: evaluation field {k}: '
          f'{json.dumps(v, sort_keys=True)}' for k, v in fields.items()]


def train_and_evaluate(exp: train.Experiment,
                       split: str | None = None) -> Trained:
  """Trains `exp` (resuming), then evaluates `split` and writes its files.

  Writes the sample (and reconstruction) grids and
  ``<workdir>/eval/<split>_step<step>.json`` (`jaxgen.evaluate`), which
  also holds the fields of the config's named evaluations
  (`run_evaluations`; their figures go to ``<workdir>/images``). When
  training was stopped by SIGTERM before ``config.train.num_steps``, the
  trainer has saved that step and nothing is evaluated (``results`` is
  None). Holds the workdir's lock throughout (`Experiment.locked`), so
  nothing is read from a workdir another run trains in.
  """
  with exp.locked():
    return _train_and_evaluate(exp, split or exp.config.eval.split)


def _train_and_evaluate(exp: train.Experiment, split: str) -> Trained:
  num_steps = exp.config.train.num_steps
  ckpt = exp.checkpointer()
  try:
    # The step training resumes from: corrupt newer steps are skipped.
    start_step = ckpt.latest_usable_step() or 0
  finally:
    ckpt.close()
  if start_step and exp.is_main:
    if start_step < num_steps:
      print(f'resuming from step {start_step} of {num_steps} in '
            f'{exp.workdir}', flush=True)
    else:
      print(f'already trained to step {start_step} (of {num_steps}) in '
            f'{exp.workdir}: evaluating', flush=True)
  start = time.perf_counter()
  state = exp.train()
  trained = Trained(state=state, start_step=start_step, num_steps=num_steps,
                    split=split, train_seconds=time.perf_counter() - start)
  if trained.step < num_steps:
    return trained
  start = time.perf_counter()
  trained.results = exp.evaluate(state, split=split, progress=True)
  trained.eval_seconds = time.perf_counter() - start
  trained.paths = exp.write_images(state)
  curves = exp.write_curves()
  if curves:
    trained.paths.append(curves)
  trained.fields = run_evaluations(
      exp, state, split, out_dir=os.path.join(exp.workdir, 'images'))
  if exp.is_main:
    trained.paths.append(eval_lib.write_eval_json(
        exp.workdir, trained.step, split,
        {**trained.results, **_recorded(trained.fields)}))
  return trained


def _check_step(exp: train.Experiment, step: int | None) -> int | None:
  """`step` when the workdir saved it (None: the newest usable one, which
  `Experiment.restore` picks, skipping corrupt steps); FileNotFoundError
  when there is no checkpoint or none at `step`."""
  ckpt = exp.checkpointer()
  try:
    steps = sorted(ckpt.all_steps())
  finally:
    ckpt.close()
  if not steps:
    raise FileNotFoundError(
        f'no checkpoint in {os.path.join(exp.workdir, "checkpoints")}: train '
        f'first with --workdir={exp.workdir}.')
  if step is not None and step not in steps:
    raise FileNotFoundError(
        f'--step={step}: no checkpoint at step {step} in '
        f'{os.path.join(exp.workdir, "checkpoints")}; the saved steps are '
        f'{steps}.')
  return step


def sample_filename(kind: str, step: int, seed: int, num: int) -> str:
  """The file name `--mode=sample` gives a figure: every input in it."""
  if kind == 'samples':
    return f'samples_step{step:07d}_seed{seed}_num{num}.png'
  return f'{kind}_step{step:07d}_seed{seed}.png'


def eval_filename(split: str, step: int, seed: int) -> str:
  """The file name `--mode=evaluate` gives its results."""
  return f'{split}_step{step:07d}_seed{seed}.json'


def run(config: ml_collections.ConfigDict, workdir: str, mode: str,
        split: str | None = None, *, step: int | None = None,
        seed: int | None = None, num: int | None = None,
        out: str | None = None) -> dict[str, float] | list[str] | None:
  """What `main` does, callable from Python (tests, notebooks).

  Args:
    config: the run's config (for evaluate and sample: its config.json).
    workdir: the run's directory.
    mode: 'train', 'evaluate' or 'sample'.
    split: the split to evaluate (default ``config.eval.split``).
    step: evaluate / sample: the checkpoint step (default: the newest).
    seed: evaluate / sample: the seed of the evaluation and sampling keys
      (default ``config.seed``, as training used).
    num: sample: the number of samples (default
      ``config.eval.num_grid_samples``).
    out: evaluate / sample: the output directory (default
      ``<workdir>/eval`` or ``<workdir>/images``).

  Returns:
    The evaluation results (train, evaluate; with the named evaluations'
    fields), the written paths (sample),
    or None when training was stopped by SIGTERM before
    ``config.train.num_steps``: the trainer has saved that step, and nothing
    is evaluated, so the job exits promptly (the same command resumes it).

  Raises:
    ConfigError, DataError: bad config or data, before compilation (also an
      unknown name in ``config.eval.evaluations``).
    FileNotFoundError: no checkpoint, or none at `step`.
    FileExistsError: an output name holds a different result.
    jaxgen.train.NonFiniteError: training diverged.
  """
  evaluations_lib.from_config(config)  # names checked before anything runs
  exp = train.Experiment(config, workdir)
  if exp.is_main:
    print(exp.describe(), flush=True)
  split = split or config.eval.split
  estimators = config.eval.estimators.to_dict()
  if mode == 'train':
    trained = train_and_evaluate(exp, split)
    if trained.results is None:
      if exp.is_main:
        print(f'stopped at step {trained.step} of {trained.num_steps} '
              '(SIGTERM): checkpoint saved, not evaluated; the same command '
              'resumes.', flush=True)
      return None
    if exp.is_main:
      _print_results(trained.step, split, trained.results, estimators,
                     config.seed)
      for line in evaluation_lines(trained.step, split, trained.fields):
        print(line, flush=True)
      for p in trained.paths:
        print(f'wrote {p}', flush=True)
    return {**trained.results, **trained.fields}
  seed = config.seed if seed is None else seed
  step = _check_step(exp, step)
  if mode == 'sample':
    num = config.eval.num_grid_samples if num is None else num
    directory = out or os.path.join(workdir, 'images')
    state, step = exp.restore(step)
    paths = exp.write_images(
        state, seed=seed, num=num, directory=directory,
        filename=lambda kind: sample_filename(kind, step, seed, num),
        overwrite=False)
    for p in paths:
      print(f'wrote {p}', flush=True)
    return paths
  directory = out or os.path.join(workdir, 'eval')
  state, step = exp.restore(step)
  path = os.path.join(directory, eval_filename(split, step, seed))
  results = exp.evaluate(state, split=split, progress=True, seed=seed)
  fields = run_evaluations(exp, state, split, seed=seed, out_dir=os.path.join(
      directory, eval_filename(split, step, seed).removesuffix('.json')))
  if exp.is_main:
    eval_lib.write_eval_json(workdir, step, split,
                             {**results, **_recorded(fields)}, path=path,
                             overwrite=False)
    _print_results(step, split, results, estimators, seed)
    for line in evaluation_lines(step, split, fields):
      print(line, flush=True)
    print(f'wrote {path}', flush=True)
    # The workdir's own view of metrics.jsonl, redrawn as it is now; with
    # --out, evaluate writes nothing into the workdir.
    curves = None if out else exp.write_curves()
    if curves:
      print(f'wrote {curves}', flush=True)
  return {**results, **fields}


def define_flags(flag_values: flags.FlagValues = flags.FLAGS,
                 argv: Sequence[str] | None = None) -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import).

  Args:
    flag_values: where to define them (a fresh `flags.FlagValues` for an
      in-process command line, as `cli` builds).
    argv: the command line the ``--config.*`` overrides are read from
      (default: ``sys.argv`` at parse time).
  """
  fv = dict(flag_values=flag_values)
  return dict(
      config=config_flags.DEFINE_config_file(
          'config', None, 'Config file and argument, e.g. '
          'experiments/configs/vae.py:digits. Evaluate and sample read '
          '<workdir>/config.json without it.', lock_config=True,
          sys_argv=None if argv is None else list(argv), **fv),
      workdir=flags.DEFINE_string('workdir', None, 'Working directory.',
                                  required=True, **fv),
      mode=flags.DEFINE_enum('mode', 'train', ['train', 'evaluate', 'sample'],
                             'train (resumes from the workdir), evaluate a '
                             'checkpoint (and redraw the training curves), '
                             'or write sample grids.', **fv),
      split=flags.DEFINE_string('split', None, 'Split to evaluate (default: '
                                'config.eval.split).', **fv),
      step=flags.DEFINE_integer('step', None, 'evaluate / sample: the '
                                'checkpoint step (default: the newest).',
                                lower_bound=0, **fv),
      seed=flags.DEFINE_integer('seed', None, 'evaluate / sample: seed of the '
                                'evaluation and sampling keys (default: '
                                'config.seed, as in training).',
                                lower_bound=0, **fv),
      num=flags.DEFINE_integer('num', None, 'sample: number of samples '
                               '(default: config.eval.num_grid_samples).',
                               lower_bound=1, **fv),
      out=flags.DEFINE_string('out', None, 'evaluate / sample: output '
                              'directory (default: <workdir>/eval or '
                              '<workdir>/images).', **fv))


def parse_command_line(argv: Sequence[str],
                       flag_values: flags.FlagValues = flags.FLAGS
                       ) -> list[str]:
  """Parses `argv` into `flag_values` and loads the config file
  (`experiments.entry.parse_command_line`).

  Returns:
    The arguments that are not flags (the program name first).

  Raises:
    UsageError: one line naming the flag or config field and what was
      expected (absl's, ml_collections' and the config file's own errors).
  """
  return entry.parse_command_line(
      argv, flag_values, override_hint='evaluate and sample use '
      '<workdir>/config.json as it is')


def _flat(tree: Any, prefix: str = 'config') -> dict[str, Any]:
  if isinstance(tree, dict):
    out = {}
    for k, v in tree.items():
      out.update(_flat(v, f'{prefix}.{k}'))
    return out
  return {prefix: tree}


# Config fields that choose what evaluate measures, not what was trained.
_EVALUATION_FIELDS = ('config.eval.evaluations',
                      'config.eval.evaluation_options')
# Config fields that observe training without changing what it computes.
_OBSERVING_FIELDS = ('config.train.profile_steps',)


def check_same_config(config: ml_collections.ConfigDict, workdir: str,
                      mode: str) -> None:
  """Refuses a --config for evaluate / sample that differs from the run's.

  The named evaluations (``config.eval.evaluations`` and
  ``config.eval.evaluation_options``) measure the trained run without
  changing it, and ``config.train.profile_steps`` only traced it: they may
  differ. A config.json written before a field existed is read with the
  field's neutral value (`jaxgen.config_fields`, filled by
  `jaxgen.workdir.read_config_dict`).

  Raises:
    UsageError: naming the first fields that differ.
  """
  def trained(flat):
    return {k: v for k, v in flat.items()
            if not k.startswith(_EVALUATION_FIELDS + _OBSERVING_FIELDS)}

  saved = trained(_flat(workdir_lib.read_config_dict(workdir)))
  given = trained(_flat(json.loads(config.to_json_best_effort())))
  differ = [k for k in sorted(set(saved) | set(given))
            if saved.get(k, '<missing>') != given.get(k, '<missing>')]
  if not differ:
    return
  shown = ', '.join(f'{k} ({saved.get(k, "<missing>")!r} in config.json, '
                    f'{given.get(k, "<missing>")!r} here)' for k in differ[:3])
  more = f' and {len(differ) - 3} more' if len(differ) > 3 else ''
  raise UsageError(
      f'--config differs from {workdir_lib.config_path(workdir)} in '
      f'{shown}{more}: --mode={mode} uses the trained run\'s config. Drop '
      '--config (pass --seed=S for another evaluation/sampling seed), or '
      'train a new --workdir.')


def check_writable_dir(path: str, flag: str) -> None:
  """`path` is, or can be created as, a writable directory (not created).

  Raises:
    UsageError: `path` or a parent is a file, or the nearest existing
      directory is not writable (permissions, a read-only file system).
  """
  probe = os.path.abspath(path)
  while not os.path.exists(probe):
    parent = os.path.dirname(probe)
    if parent == probe:
      break
    probe = parent
  if not os.path.isdir(probe):
    what = 'is' if probe == os.path.abspath(path) else f'is inside {probe},'
    raise UsageError(f'{flag}={path} {what} a regular file, not a '
                     'directory.')
  if not os.access(probe, os.W_OK | os.X_OK):
    raise UsageError(f'{flag}={path}: {probe} is not writable (permissions '
                     'or a read-only file system).')


def _check_options(f: dict[str, Any]) -> None:
  mode = f['mode']
  if mode == 'train':
    given = [name for name in _RESTORE_FLAGS if f[name] is not None]
    if given:
      raise UsageError(
          f'--{given[0]} applies to --mode=evaluate and --mode=sample; '
          'training takes its seed and outputs from the config (e.g. '
          '--config.seed=1) and always continues from the newest '
          'checkpoint.')
  elif mode == 'evaluate' and f['num'] is not None:
    raise UsageError('--num (the number of samples) applies to --mode=sample '
                     'only.')
  if mode == 'sample' and f['split'] is not None:
    raise UsageError('--split applies to --mode=evaluate and --mode=train.')


def main(argv: Sequence[str], flag_values: dict[str, Any]) -> int:
  """Runs the parsed command line; returns the exit status (module doc)."""
  if len(argv) > 1:
    return _error(f'unexpected arguments {list(argv[1:])}: every option is '
                  'a flag, --name=value.')
  logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in flag_values.items()}
  workdir, mode = f['workdir'], f['mode']
  try:
    if not workdir.strip():
      raise UsageError('--workdir is empty: name the run\'s directory, e.g. '
                       '--workdir=runs/vae.')
    _check_options(f)
    if os.path.exists(workdir) and not os.path.isdir(workdir):
      raise UsageError(f'--workdir={workdir} is a regular file, not a '
                       'directory.')
    config = f['config']
    if mode == 'train':
      if config is None:
        raise UsageError('--config is required to train (e.g. '
                         '--config=experiments/configs/vae.py:digits).')
      check_writable_dir(workdir, '--workdir')
    else:
      if not os.path.isfile(workdir_lib.config_path(workdir)):
        raise UsageError(
            f'--workdir={workdir} holds no trained run (no '
            f'{workdir_lib.config_path(workdir)}): train there first with '
            '--config=FILE.')
      if config is None:
        config = workdir_lib.load_config(workdir)
      else:
        check_same_config(config, workdir, mode)
      default_out = os.path.join(workdir,
                                 'images' if mode == 'sample' else 'eval')
      check_writable_dir(f['out'] or default_out,
                         '--out' if f['out'] else '--workdir')
    result = run(config, workdir, mode, f['split'], step=f['step'],
                 seed=f['seed'], num=f['num'], out=f['out'])
  except train.NonFiniteError as e:
    print(f'error: {" ".join(str(e).split())}', file=sys.stderr, flush=True)
    return EXIT_DIVERGED
  except (UsageError, ConfigError, DataError, FileNotFoundError,
          FileExistsError) as e:
    # Bad input (found before anything is compiled) or nothing to restore:
    # one line naming the field, no traceback.
    return _error(e)
  if result is None:
    return EXIT_SIGTERM  # stopped by SIGTERM, after saving
  return EXIT_OK


def cli(argv: Sequence[str]) -> int:
  """The whole command line in this process: parse `argv`, then `main`.

  `argv` starts with the program name, as ``sys.argv``. Flags go into a
  fresh `flags.FlagValues`, so tests and notebooks can call it repeatedly.
  Returns the exit status; errors are printed as one ``error:`` line.
  """
  flag_values = flags.FlagValues()
  holders = define_flags(flag_values, argv)
  try:
    rest = parse_command_line(argv, flag_values)
  except UsageError as e:
    return _error(e)
  return main(rest, holders)


if __name__ == '__main__':
  _FLAGS = define_flags()
  entry.run(lambda argv: main(argv, _FLAGS), parse=parse_command_line)
