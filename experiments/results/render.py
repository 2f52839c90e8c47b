"""RESULTS.md from the records: one table per kind of measurement.

A table (`catalogue.TABLES`) is keyed by what its rows measure, and drawn
with one of `LAYOUTS`: the likelihood columns (with the bound column or
without), the discrete-code columns, or the sample-quality columns. Nothing
here knows a family: what a row shows comes from its record and its
catalogue entry.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable

from experiments import catalogue
from experiments.catalogue import Spec
from experiments.results import records as records_lib
from experiments.results import specs as specs_lib

Record = dict[str, Any]


# --------------------------------------------------------------- cells
def duration(seconds: float | None) -> str:
  if seconds is None:
    return 'n/a'
  seconds = int(round(seconds))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  if h:
    return f'{h} h {m:02d} min'
  if m:
    return f'{m} min {s:02d} s'
  return f'{s} s'


def num(value: float | None, spec: str = '.2f') -> str:
  return 'n/a' if value is None else format(value, spec)


def _wall(r: Record) -> str:
  if r['trained_steps_this_run'] == 0:
    return (f'eval {duration(r["eval_seconds"])}; training not timed '
            '(checkpoint reused)')
  text = (f'{duration(r["train_seconds"] + r["eval_seconds"])} (train '
          f'{duration(r["train_seconds"])} + eval '
          f'{duration(r["eval_seconds"])})')
  if r['start_step']:
    text += f'; resumed at step {r["start_step"]}, so train time is partial'
  return text


def _machine(m: dict[str, Any]) -> str:
  return (f'{m["cpu_model"]}, {m["cpu_count"]} cores; {m["device_count"]} x '
          f'{m["device_kind"]}; jax {m["jax_version"]}')


def _splits(r: Record) -> str:
  short = {'validation': 'val'}
  return ' / '.join(f'{r["splits"][k]:,} {short.get(k, k)}'
                    for k in _split_order(r['splits']))


def _split_order(splits: dict[str, Any]) -> list[str]:
  first = [k for k in ('train', 'validation', 'test') if k in splits]
  return first + sorted(k for k in splits if k not in first)


def _machine_short(m: dict[str, Any]) -> str:
  load = m.get('load_average')
  load = '' if load is None else f'; load {load:.1f} at the end'
  return (f'{m["cpu_count"]}-core {m["cpu_model"]}; {m["device_count"]} x '
          f'{m["platform"]}; jax {m["jax_version"]}{load}')


def _k(r: Record) -> str:
  name = r['nll_estimator']
  est = r['estimators'].get(name, {})
  k = est.get('num_samples')
  if k:
    return f'{name.upper()} k={k:,}'
  log_z = r['test_metrics'].get(f'{name}/log_z')
  stderr = r['test_metrics'].get(f'{name}/log_z_stderr')
  if log_z is not None and stderr is not None:  # AIS, prepare_estimator
    return (f'{name.upper()}, {est.get("num_betas", 0):,} betas x '
            f'{est.get("num_chains", 0):,} chains, log Z = {log_z:.2f} '
            f'± {stderr:.2f}')
  return name


def _model_cell(spec: Spec, r: Record) -> str:
  return (f'{spec.label} ({r["params"]:,} params)' if spec.label
          else r['model'])


def _common_cells(spec: Spec, r: Record) -> list[str]:
  return [f'`{spec.name}`', _model_cell(spec, r), r['data'], _splits(r),
          str(r['seed']), f'{r["step"]:,} x {r["batch_size"]}']


_COMMON_COLS = ['Experiment', 'Model', 'Data', 'Split (rows)', 'Seed',
                'Steps x batch']


# -------------------------------------------------------------- layouts
@dataclasses.dataclass(frozen=True)
class Layout:
  """The columns of a table and how a record fills them.

  Attributes:
    columns: the header cells.
    row: (spec, record) -> the cells of its row.
    needs: a record field the row needs ('' = any record will do); without
      it the row reads as not run yet.
    reference: whether the last column is the published reference.
    data_rows: (records, specs, number of columns) -> extra Markdown rows
      after the experiments' rows, or None.
  """
  columns: list[str]
  row: Callable[[Spec, Record], list[str]]
  needs: str = ''
  reference: bool = True
  data_rows: Callable[[dict[str, Record], list[Spec], int],
                      list[str]] | None = None


def _likelihood_layout(bound: bool) -> Layout:
  """Test NLL (the headline estimator) and bits/dim, with the bound
  estimator's NLL as a column when `bound`."""

  def row(spec: Spec, r: Record) -> list[str]:
    cells = _common_cells(spec, r) + [
        f'**{num(r["test_nll_nats"])}** ({_k(r)})']
    if bound:
      cells.append(num(r['test_neg_elbo_nats']))
    return cells + [num(r['test_bits_per_dim'], '.4f'), _wall(r),
                    _machine_short(r['machine']), r['reference'] or '-']

  return Layout(
      _COMMON_COLS + ['Test NLL (nats)'] + (['-ELBO (nats)'] if bound else [])
      + ['bits/dim', 'Wall time', 'Machine', 'Reference'], row)


def _usage(r: Record) -> str:
  levels = r.get('code_usage')
  if not levels:
    return '-'
  names = ['top', 'bottom'] if len(levels) == 2 else [''] * len(levels)
  return '; '.join(
      f'{n + " " if n else ""}{u["perplexity"]:.1f} ({u["codes_used"]} / '
      f'{u["num_codes"]})' for n, u in zip(names, levels))


def _codes_row(spec: Spec, r: Record) -> list[str]:
  metrics = r['test_metrics']
  if r['test_nll_nats'] is None:
    nll, bpd = 'no density', '-'
  else:
    # A density of dequantized pixels bounds the 8-bit NLL from above.
    kind = ('upper bound, dequantized' if spec.nll_estimator == 'exact'
            else 'bound')
    nll = f'**{num(r["test_nll_nats"])}** ({kind})'
    bpd = num(r['test_bits_per_dim'], '.4f')
  recon = metrics.get('recon_error')
  return _common_cells(spec, r) + [
      nll, bpd, num(recon, '.4f'), _usage(r), _wall(r),
      _machine_short(r['machine']), r['reference'] or '-']


def _quality_row(spec: Spec, r: Record) -> list[str]:
  q = r['quality']
  toy = 'modes_covered' in q
  clf = r.get('classifier')
  return [
      f'`{spec.name}`', _model_cell(spec, r), r['data'], str(r['seed']),
      f'{r["step"]:,} x {r["batch_size"]}', f'{q["num_samples"]:,}',
      '-' if toy else f'**{q["fid_style"]:.2f}**',
      '-' if toy else f'{q["is_style"]:.2f}',
      '-' if toy else f'{q["classes_covered"]} / {len(q["class_counts"])}',
      '-' if toy else f'{q["label_kl_reference"]:.3f}',
      f'**{q["modes_covered"]} / {q["num_modes"]}**' if toy else '-',
      f'{q["high_quality_share"]:.3f}' if toy else '-',
      '-' if clf is None else (f'`{os.path.basename(clf["workdir"])}`, test '
                               f'accuracy {clf["test_accuracy"]:.3f}'),
      f'{_wall(r)}; quality {duration(r.get("quality_seconds"))}',
      _machine_short(r['machine'])]


def _quality_data_rows(records: dict[str, Record], specs: list[Spec],
                       num_cols: int) -> list[str]:
  """Real data scored like samples, once per data view: the floor."""
  out, seen = [], set()
  for spec in specs:
    r = records.get(spec.name)
    if r is None or 'quality' not in r or r['data'] in seen:
      continue
    seen.add(r['data'])
    q = r['quality']
    blank = ['-'] * (num_cols - 7)
    if 'modes_covered' in q:
      cells = ['data', 'real points of the test split', r['data'], '-', '-',
               f'{q["data/reference/num_samples"]:,}', '-', '-', '-', '-',
               f'{q["data/reference/modes_covered"]} / {q["num_modes"]}',
               f'{q["data/reference/high_quality_share"]:.3f}']
    else:
      cells = ['data', 'real training images vs the test split', r['data'],
               '-', '-',
               f'{q["data/train_vs_test/num_samples"]:,}',
               f'{q["data/train_vs_test/fid_style"]:.2f}',
               f'{q["data/train_vs_test/is_style"]:.2f}',
               f'{q["data/train_vs_test/classes_covered"]} / '
               f'{len(q["data/train_vs_test/class_counts"])}',
               f'{q["data/train_vs_test/label_kl_reference"]:.3f}', '-', '-']
    rows = [cells]
    if 'data/half_vs_half/fid_style' in q:
      rows.append(['data', 'one half of the test split vs the other',
                   r['data'], '-', '-',
                   f'{q["data/half_vs_half/num_samples"]:,}',
                   f'{q["data/half_vs_half/fid_style"]:.2f}', '-', '-', '-',
                   '-', '-'])
    for cells in rows:
      cells += blank[:num_cols - len(cells)]
      out.append('| ' + ' | '.join(cells) + ' |')
  return out


def _translation_row(spec: Spec, r: Record) -> list[str]:
  metrics = r['test_metrics']
  figure = r.get('translations')
  return _common_cells(spec, r) + [
      r['config']['model'].get('task', '-'),
      f'**{num(metrics.get("l1"), ".4f")}**', num(metrics.get('psnr')),
      f'[input / output / target]({figure["png"]})' if figure else '-',
      _wall(r), _machine_short(r['machine']), r['reference'] or '-']


def _samplers_row(spec: Spec, r: Record) -> list[str]:
  """One run's samplers side by side: each cell lists them in order."""
  s = r['samplers']
  rows = s['rows']
  join = lambda fmt: ' / '.join(fmt(x) for x in rows)
  clf = r.get('classifier')
  return [
      f'`{spec.name}`', _model_cell(spec, r), r['data'], str(r['seed']),
      f'{r["step"]:,} x {r["batch_size"]}', f'{s["num_samples"]:,}',
      join(lambda x: x['sampler']),
      join(lambda x: f'**{x["fid_style"]:.2f}**'),
      join(lambda x: f'{x["is_style"]:.2f}'),
      join(lambda x: f'{x["classes_covered"]} / {x["num_classes"]}'),
      join(lambda x: f'{x["label_kl_reference"]:.3f}'),
      join(lambda x: duration(x['seconds'])),
      f'[samples, one row per sampler]({s["png"]})',
      '-' if clf is None else (f'`{os.path.basename(clf["workdir"])}`, test '
                               f'accuracy {clf["test_accuracy"]:.3f}'),
      _machine_short(r['machine'])]


LAYOUTS = {
    'likelihood and bound': _likelihood_layout(bound=True),
    'likelihood': _likelihood_layout(bound=False),
    'codes': Layout(
        _COMMON_COLS + ['Test NLL (nats)', 'bits/dim', 'Recon. MSE / pixel',
                        'Code perplexity (codes used / K)', 'Wall time',
                        'Machine', 'Reference'], _codes_row),
    'sample quality': Layout(
        ['Experiment', 'Model', 'Data', 'Seed', 'Steps x batch', 'Samples',
         'FID-style', 'IS-style', 'Classes covered', 'Label KL (vs test)',
         'Modes covered', 'High-quality share', 'Classifier', 'Wall time',
         'Machine'], _quality_row, needs='quality', reference=False,
        data_rows=_quality_data_rows),
    'samplers': Layout(
        ['Experiment', 'Model', 'Data', 'Seed', 'Steps x batch',
         'Samples per sampler', 'Samplers', 'FID-style', 'IS-style',
         'Classes covered', 'Label KL (vs test)', 'Sampling time',
         'Figure', 'Classifier', 'Machine'], _samplers_row, needs='samplers',
        reference=False),
    'translation': Layout(
        _COMMON_COLS + ['Task', 'Test L1 / pixel', 'Test PSNR (dB)',
                        'Figure', 'Wall time', 'Machine', 'Reference'],
        _translation_row),
}


def table_specs(key: str, table: catalogue.Table) -> list[Spec]:
  """The catalogue's rows of a table, in catalogue order."""
  return [s for s in catalogue.EXPERIMENTS
          if (table.evaluation and
              table.evaluation in (e.name for e in s.evaluations))
          or (not table.evaluation and s.table == key)]


# ------------------------------------------------------------- ordering
def _reference_nats(reference: str) -> float | None:
  """The published figure a reference string starts with ('81.30 nats: ...')."""
  head = reference.split(' nats', 1)[0]
  try:
    return float(head)
  except ValueError:
    return None


def ordering_lines(records: dict[str, Record], specs: list[Spec]) -> list[str]:
  """Our ranking by test NLL next to the papers', for the rows of a table
  that carry a published nats figure and have run; [] when no pair of
  them has two different published figures."""
  rows = [(s.name, records[s.name]['test_nll_nats'],
           _reference_nats(s.reference)) for s in specs
          if s.name in records and _reference_nats(s.reference) is not None
          and records[s.name].get('test_nll_nats') is not None]
  if len(rows) < 2:
    return []
  # Pairs the papers give one figure (a shared reference) are not ranked.
  pairs = [(a, b) for i, a in enumerate(rows) for b in rows[i + 1:]
           if a[2] != b[2]]
  if not pairs:
    return []
  ours = [n for n, _, _ in sorted(rows, key=lambda r: r[1])]
  paper = [n for n, _, _ in sorted(rows, key=lambda r: r[2])]
  discordant = [(a, b) for a, b in pairs
                if (a[1] - b[1]) * (a[2] - b[2]) <= 0]
  agree = len(pairs) - len(discordant)
  fmt = lambda names: ' < '.join(f'`{n}`' for n in names)
  line = (f'Ordering by test NLL (best first), ours: {fmt(ours)}; the '
          f'papers\': {fmt(paper)}. {agree} of {len(pairs)} pairs are in '
          'the papers\' order.')
  if discordant:
    line += (' Out of order: ' + '; '.join(
        f'`{a[0]}` vs `{b[0]}` (ours {a[1]:.2f} vs {b[1]:.2f}, the '
        f'papers\' {a[2]:.2f} vs {b[2]:.2f})' for a, b in discordant) +
             '. Read the labels first: these rows train on 7,000 images '
             '(the papers: 50,000-60,000) on unequal CPU budgets and net '
             'sizes, so the ranking measures the budgets as much as the '
             'models.')
  return [line, '']


# ------------------------------------------------------------ reproduce
def _quality_commands(r: Record) -> list[str]:
  """The Reproduce lines of a row's sample-quality scores."""
  clf = r.get('classifier')
  cmd = f'python -m experiments.sample_quality --workdir={r["workdir"]}'
  if clf:
    return [f'- classifier: `{clf["command"]}` (test accuracy '
            f'{clf["test_accuracy"]:.3f})',
            f'- sample quality (the same scores, standalone): '
            f'`{cmd} --classifier={clf["workdir"]}`']
  return [f'- sample quality (the same scores, standalone): `{cmd}`']


def _codebook_lines(r: Record) -> list[str]:
  """The Reproduce line of a row's codebook figure."""
  c = r['codebook']
  module = catalogue.FIGURE_COMMANDS['codebook']
  return [f'- codebook, the {len(c["sizes"])} centres by training-set '
          f'usage, largest first (`python -m {module} '
          f'--workdir={r["workdir"]}`): [{c["png"]}]({c["png"]})']


def _samplers_lines(r: Record) -> list[str]:
  """The Reproduce lines of a row's samplers side by side."""
  s = r['samplers']
  clf = r.get('classifier')
  lines = []
  if clf and not r.get('quality'):
    lines.append(f'- classifier: `{clf["command"]}` (test accuracy '
                 f'{clf["test_accuracy"]:.3f})')
  return lines + [
      f'- samplers side by side ({", ".join(x["sampler"] for x in s["rows"])}'
      f'; {s["num_samples"]:,} samples each, one row each): '
      f'[{s["png"]}]({s["png"]})']


def _reproduce(spec: Spec, r: Record) -> list[str]:
  return [
      f'### `{spec.name}`', '', '```sh', r['command'], '```', '',
      f'- preset `{r["preset"]}`, overrides: ' + (
          ', '.join(f'`{k}={v}`' for k, v in r['overrides']) or 'none'),
      f'- {r["params"]:,} parameters; estimators: ' + (', '.join(
          f'{n} {json.dumps(a, sort_keys=True)}'
          for n, a in r['estimators'].items()) or 'none (no likelihood)'),
      '- splits: ' + ', '.join(
          f'{k} `{r["split_specs"][k]}` ({r["splits"][k]:,} rows)'
          for k in _split_order(r['split_specs'])
          if r['split_specs'][k]) + (
              ', rows shuffled with the split seed first'
              if r['config']['data']['shuffle_before_split'] else
              ', in file order'),
      f'- test: {r["test_num_examples"]:,} '
      + ('points' if r['config']['data']['name'].startswith('toy:')
         else 'images') + (
          '' if r['test_neg_elbo_bits_per_dim'] is None else
          f'; -ELBO {r["test_neg_elbo_bits_per_dim"]:.4f} bits/dim'),
      f'- machine: {_machine(r["machine"])}',
      f'- code: git {r["git"] or "unknown"}; finished {r["finished_utc"]}',
  ] + ([f'- samples (seed {r["seed"]}, step {r["step"]}): '
        f'[{r["samples_png"]}]({r["samples_png"]})']
       if r.get('samples_png') else []) + (
           _quality_commands(r) if r.get('quality') else []) + (
               _codebook_lines(r) if r.get('codebook') else []) + (
                   _samplers_lines(r) if r.get('samplers') else []) + (
                   [f'- test images as input / output / target rows: '
                    f'[{r["translations"]["png"]}]({r["translations"]["png"]})']
                   if r.get('translations') else []) + ['']


# ------------------------------------------------------------------ page
def render(runs_dir: str, *, quick: bool,
           notes: dict[str, str] | None = None,
           note: str | None = None, records_dir: str | None = None) -> str:
  """RESULTS.md from every record: ``<records_dir>/*.json`` when given, else
  ``<runs_dir>/*/result.json``."""
  notes = dict(notes or {})
  records = {}
  for spec in catalogue.EXPERIMENTS:
    r = records_lib.load_result(runs_dir, spec.name, records_dir)
    if r is not None:
      records[spec.name] = r
      reason = records_lib.stale_reason(spec, r, quick, runs_dir)
      if reason:
        notes.setdefault(spec.name, 'STALE: ' + reason +
                         '; pass --rerun/--fresh with --only=' + spec.name)
  source, found = records_lib.record_names(runs_dir, records_dir)
  extra = sorted(n for n in found if n not in catalogue.BY_NAME)

  lines = ['# Results', '',
           '<!-- Generated by `python -m experiments.results` from '
           f'{source}. Do not edit by hand: rerun it. -->',
           '']
  if quick:
    lines += [
        '> **⚠️ QUICK SMOKE OUTPUT — NOT RESULTS. ⚠️**',
        f'> Written by `python -m experiments.results --quick`: every run is '
        f'cut to {specs_lib.QUICK_STEPS} training steps and a tiny IWAE k. '
        'These numbers only show that the machinery runs end to end; they '
        'say nothing about the models. Never cite or commit them.',
        '']
  lines += [
      'Each row is one run of `python -m experiments.results`, reproducible '
      'with the command listed under it (see "Reproduce" below).', '']
  for key, table in catalogue.TABLES.items():
    specs = table_specs(key, table)
    if not specs:
      continue
    layout = LAYOUTS[table.layout]
    cols = layout.columns
    lines += [f'## {table.heading}', '', table.text, '']
    lines += ['| ' + ' | '.join(cols) + ' |',
              '|' + '---|' * len(cols)]
    for spec in specs:
      r = records.get(spec.name)
      if r is None or (layout.needs and layout.needs not in r):
        why = notes.get(spec.name, 'not run yet')
        last = (spec.reference or '-') if layout.reference else '-'
        lines.append(f'| `{spec.name}` | {why} |' + ' |' * (len(cols) - 3) +
                     f' {last} |')
        continue
      lines.append('| ' + ' | '.join(layout.row(spec, r)) + ' |')
    if layout.data_rows:
      lines += layout.data_rows(records, specs, len(cols))
    lines.append('')
    lines += ordering_lines(records, specs)
  lines += ['## How to read these numbers', '']
  lines += [f'- {text}' for text in catalogue.READING_NOTES] + ['']
  if note:
    lines[-1:] = [f'- {note}', '']
  if notes:
    lines += ['## Notes', '']
    lines += [f'- `{n}`: {t}' for n, t in notes.items()]
    lines += ['']
  lines += ['## Reproduce', '']
  for spec in catalogue.EXPERIMENTS:
    r = records.get(spec.name)
    if r is not None:
      lines += _reproduce(spec, r)
  if extra:
    lines += ['## Other result files', '',
              f'Found in {source} but not among the listed experiments '
              '(not shown above): ' + ', '.join(f'`{e}`' for e in extra), '']
  return '\n'.join(lines)
