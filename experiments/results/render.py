"""RESULTS.md and GALLERY.md from the records.

RESULTS.md reads top down: a summary (one line per record: its headline
number, what kind of number it is, whether a paper's figure beside it is
like-for-like or for scale, a thumbnail of its samples), how to read the
numbers, then one table per kind of measurement (`catalogue.TABLES`), with
the facts its rows share stated once above it, then each run's details
(command, seed, steps, machine, wall time, the full model description,
every figure). GALLERY.md shows one sample grid per family, from its main
record (`gallery_records`).

A table is drawn with one of `LAYOUTS`: the likelihood columns (with the
bound column or without, or with the toy points' sample-quality scores),
the discrete-code columns, the sample-quality columns, the sampler columns
or the translation columns. Nothing here knows a family: what a row shows
comes from its record and its catalogue entry.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Any, Callable

from experiments import catalogue
from experiments import uses as uses_lib
from experiments.catalogue import Spec
from experiments.results import records as records_lib
from experiments.results import specs as specs_lib
from jaxgen import workdir as workdir_lib

Record = dict[str, Any]

GALLERY_FILE = 'GALLERY.md'
# The uses page (`experiments.uses`): <records_dir>/USES_FILE, from the
# JSON under <records_dir>/USES_RECORDS.
USES_FILE, USES_RECORDS = 'USES.md', 'uses'
# The label of a row that runs smaller or shorter than the paper's setting
# (`specs.cpu_budget`), the same in every table.
CPU_BUDGET = 'CPU budget'
# Comparisons with a paper's figure (`comparison`).
LIKE_FOR_LIKE, FOR_SCALE, NO_PAPER = 'yes', 'for scale', 'no paper figure'
# Thumbnail and gallery widths of a sample grid, in pixels.
THUMB_WIDTH = 64
GALLERY_WIDTH = 192
# Longest short model name in a table before the label is cut.
SHORT_LABEL = 44


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


def _wall_short(r: Record) -> str:
  """The table cell: the total, flagged where training was not (all)
  timed (`_wall` in the details says why)."""
  if r['trained_steps_this_run'] == 0:
    return f'eval {duration(r["eval_seconds"])} only'
  total = duration(r['train_seconds'] + r['eval_seconds'])
  return total + (' (partial)' if r['start_step'] else '')


def _machine(m: dict[str, Any]) -> str:
  load = m.get('load_average')
  load = '' if load is None else f'; load {load:.1f} at the end'
  return (f'{m["cpu_model"]}, {m["cpu_count"]} cores; {m["device_count"]} x '
          f'{m["device_kind"]}; jax {m["jax_version"]}{load}')


def _machine_short(m: dict[str, Any]) -> str:
  return (f'{m["cpu_count"]}-core {m["cpu_model"]}; {m["device_count"]} x '
          f'{m["platform"]}; jax {m["jax_version"]}')


def _splits(r: Record) -> str:
  short = {'validation': 'val'}
  return ' / '.join(f'{r["splits"][k]:,} {short.get(k, k)}'
                    for k in _split_order(r['splits']))


def _split_order(splits: dict[str, Any]) -> list[str]:
  first = [k for k in ('train', 'validation', 'test') if k in splits]
  return first + sorted(k for k in splits if k not in first)


def _toy(r: Record) -> bool:
  return r['config']['data']['name'].startswith('toy:')


def _estimator_name(r: Record) -> str:
  """'IWAE k=5,000', or the estimator's name."""
  name = r['nll_estimator']
  k = r['estimators'].get(name, {}).get('num_samples')
  return f'{name.upper()} k={k:,}' if k else name


def _k(r: Record) -> str:
  name = r['nll_estimator']
  est = r['estimators'].get(name, {})
  log_z = r['test_metrics'].get(f'{name}/log_z')
  stderr = r['test_metrics'].get(f'{name}/log_z_stderr')
  if not est.get('num_samples') and log_z is not None and stderr is not None:
    # AIS (prepare_estimator)
    return (f'{name.upper()}, {est.get("num_betas", 0):,} betas x '
            f'{est.get("num_chains", 0):,} chains, log Z = {log_z:.2f} '
            f'± {stderr:.2f}')
  return _estimator_name(r)


def short_label(label: str, width: int = SHORT_LABEL) -> str:
  """The leading clauses of a model label (split at ', ', ': ' and '; '
  outside brackets) that fit in `width` characters, at least the first
  (cut at a word when it alone is longer); '…' marks a cut (the details
  give the whole label)."""
  clauses, depth, start = [], 0, 0
  for i, ch in enumerate(label):
    depth += {'(': 1, ')': -1}.get(ch, 0)
    if depth == 0 and label[i:i + 2] in (', ', ': ', '; '):
      clauses.append(label[start:i])
      start = i
  clauses.append(label[start:])
  out = clauses[0]
  if len(out) > width:
    words = out.split(' ')
    out = words[0]
    for word in words[1:]:
      if len(out) + 1 + len(word) > width:
        return out + ' …'
      out += ' ' + word
  for clause in clauses[1:]:
    if len(out) + len(clause) > width:
      return out + ' …'
    out += clause
  return out


def _model(spec: Spec, r: Record | None) -> str:
  label = spec.label or (r['model'] if r else '')
  return short_label(label)


def paper_figure(reference: str) -> str:
  """The published figure of a catalogue reference ('<figure>: <source>'),
  '' for none."""
  if not reference or reference.startswith('none'):
    return ''
  return reference.split(': ', 1)[0]


def comparison(spec: Spec) -> str:
  """LIKE_FOR_LIKE, FOR_SCALE or NO_PAPER: how the row's reference
  compares with it."""
  if not paper_figure(spec.reference):
    return NO_PAPER
  return LIKE_FOR_LIKE if spec.like_for_like else FOR_SCALE


def _classifier(r: Record) -> str:
  clf = r.get('classifier')
  return '-' if clf is None else (f'`{os.path.basename(clf["workdir"])}` '
                                  f'{clf["test_accuracy"]:.3f}')


def _thumb(path: str | None, width: int) -> str:
  if not path or not os.path.exists(path):
    return '-'
  return f'<img src="{path}" width="{width}">'


# -------------------------------------------------------------- layouts
Cell = Callable[[Spec, Record], str]


@dataclasses.dataclass(frozen=True)
class Layout:
  """The measurement columns of a table and how a record fills them.

  Attributes:
    columns: (header, (spec, record) -> cell) of what the rows measure;
      the shared columns (experiment, model, data, budget, wall time, ...)
      come around them.
    headline: (spec, record, table) -> (the headline number with its unit,
      what kind of number it is), for the summary and the gallery.
    needs: a record field the row needs ('' = any record will do); without
      it the row reads as not run yet.
    reference: whether the table shows the papers' figures.
    data_rows: (records, specs, data labels) -> extra rows after the
      experiments' rows, each {header: cell} (others read '-'), or None.
  """
  columns: tuple[tuple[str, Cell], ...]
  headline: Callable[[Spec, Record, catalogue.Table], tuple[str, str]]
  needs: str = ''
  reference: bool = True
  data_rows: Callable[[dict[str, Record], list[Spec],
                       dict[tuple[str, str], str]],
                      list[dict[str, str]]] | None = None


def _nll_headline(r: Record, kind: str) -> tuple[str, str]:
  unit = 'nats/point' if _toy(r) else 'nats'
  est = r['nll_estimator']
  if est == 'ais':  # log Z by AIS: an estimate in any table
    kind = kind.replace('upper bound', 'AIS estimate')
  if est not in ('exact',) and est.lower() not in kind.lower():
    kind += f' ({_estimator_name(r)})'
  return (f'{num(r["test_nll_nats"])} {unit} '
          f'({num(r["test_bits_per_dim"], ".4f")} bits/dim)', kind)


def _likelihood_layout(bound: bool) -> Layout:
  """Test NLL (the headline estimator) and bits/dim, with the bound
  estimator's NLL as a column when `bound`."""
  columns = [('Test NLL (nats)',
              lambda s, r: f'**{num(r["test_nll_nats"])}** ({_k(r)})')]
  if bound:
    columns.append(('-ELBO (nats)', lambda s, r: num(r['test_neg_elbo_nats'])))
  columns.append(('bits/dim',
                  lambda s, r: num(r['test_bits_per_dim'], '.4f')))
  return Layout(tuple(columns),
                lambda s, r, t: _nll_headline(r, t.kind or 'NLL'))


def _usage(r: Record) -> str:
  levels = r.get('code_usage')
  if not levels:
    return '-'
  names = ['top', 'bottom'] if len(levels) == 2 else [''] * len(levels)
  return '; '.join(
      f'{n + " " if n else ""}{u["perplexity"]:.1f} ({u["codes_used"]} / '
      f'{u["num_codes"]})' for n, u in zip(names, levels))


def _codes_kind(spec: Spec) -> str:
  # A density of dequantized pixels bounds the 8-bit NLL from above.
  return ('upper bound, dequantized' if spec.nll_estimator == 'exact'
          else 'bound')


def _codes_nll(spec: Spec, r: Record) -> str:
  if r['test_nll_nats'] is None:
    return 'no density'
  return f'**{num(r["test_nll_nats"])}** ({_codes_kind(spec)})'


def _codes_headline(spec: Spec, r: Record,
                    table: catalogue.Table) -> tuple[str, str]:
  del table
  if r['test_nll_nats'] is None:
    return (f'{num(r["test_metrics"].get("recon_error"), ".4f")} MSE/pixel',
            'reconstruction error (no density)')
  return _nll_headline(r, _codes_kind(spec))


def _toy_quality(q: dict[str, Any]) -> bool:
  """Whether sample-quality scores are those of toy points (no classifier
  features)."""
  return 'fid_style' not in q


def _quality_cell(toy_cell: Callable[[dict[str, Any]], str] | None,
                  image_cell: Callable[[dict[str, Any]], str] | None) -> Cell:
  """A sample-quality cell: toy points and images have their own scores
  ('-' for a record without them)."""
  def cell(spec: Spec, r: Record) -> str:
    del spec
    q = r.get('quality')
    if q is None:
      return '-'
    fn = toy_cell if _toy_quality(q) else image_cell
    return '-' if fn is None else fn(q)
  return cell


def _energy(q: dict[str, Any], prefix: str = '') -> str:
  value = q.get(prefix + 'energy_distance')
  return '-' if value is None else f'{value:.5f}'


# The toy-points columns of a sample-quality cell: the energy distance of
# every toy record that has one, mode coverage on mixtures with modes.
_ENERGY_CELL = ('Energy distance', _quality_cell(_energy, None))
_MODES_CELL = ('Modes covered', _quality_cell(
    lambda q: (f'**{q["modes_covered"]} / {q["num_modes"]}**'
               if 'modes_covered' in q else '-'), None))
_SHARE_CELL = ('High-quality share', _quality_cell(
    lambda q: (f'{q["high_quality_share"]:.3f}' if 'modes_covered' in q
               else '-'), None))


def _quality_headline(spec: Spec, r: Record,
                      table: catalogue.Table) -> tuple[str, str]:
  del spec, table
  q = r['quality']
  if 'modes_covered' in q:
    return (f'{q["modes_covered"]} / {q["num_modes"]} modes', 'modes covered')
  if _toy_quality(q):
    return _energy(q), 'energy distance to the test points'
  return f'{q["fid_style"]:.2f}', 'FID-style (in-project classifier)'


def _quality_data_rows(
    records: dict[str, Record], specs: list[Spec],
    labels: dict[tuple[str, str], str]) -> list[dict[str, str]]:
  """Real data scored like samples, once per data view: the floor."""
  out, seen = [], set()
  for spec in specs:
    r = records.get(spec.name)
    if r is None or 'quality' not in r or r['data'] in seen:
      continue
    seen.add(r['data'])
    q = r['quality']
    common = {'Experiment': 'data',
              'Data': labels.get((r['data'], _splits(r)), _data_name(r))}
    if _toy_quality(q):
      out.append(dict(common, **_toy_data_cells(q)))
      continue
    out.append(dict(common, **{
        'Model': 'real training images vs the test split',
        'Samples': f'{q["data/train_vs_test/num_samples"]:,}',
        'FID-style': f'{q["data/train_vs_test/fid_style"]:.2f}',
        'IS-style': f'{q["data/train_vs_test/is_style"]:.2f}',
        'Classes covered': (f'{q["data/train_vs_test/classes_covered"]} / '
                            f'{len(q["data/train_vs_test/class_counts"])}'),
        'Label KL (vs test)':
            f'{q["data/train_vs_test/label_kl_reference"]:.3f}'}))
    if 'data/half_vs_half/fid_style' in q:
      out.append(dict(common, **{
          'Model': 'one half of the test split vs the other',
          'Samples': f'{q["data/half_vs_half/num_samples"]:,}',
          'FID-style': f'{q["data/half_vs_half/fid_style"]:.2f}'}))
  return out


def _toy_data_cells(q: dict[str, Any]) -> dict[str, str]:
  """The real-points row of toy sample-quality scores: random test points
  for the modes, random training points against the test points for the
  energy distance (its floor)."""
  cells = {'Model': 'real points of the test split',
           'Samples': f'{q["data/reference/num_samples"]:,}'}
  if 'data/train_vs_test/energy_distance' in q:
    cells['Model'] = ('real points: the training split vs the test split' +
                      ('; modes: the test split' if 'modes_covered' in q
                       else ''))
    cells['Energy distance'] = _energy(q, 'data/train_vs_test/')
  if 'modes_covered' in q:
    cells['Modes covered'] = (f'{q["data/reference/modes_covered"]} / '
                              f'{q["num_modes"]}')
    cells['High-quality share'] = (
        f'{q["data/reference/high_quality_share"]:.3f}')
  return cells


def _toy_density_data_rows(
    records: dict[str, Record], specs: list[Spec],
    labels: dict[tuple[str, str], str]) -> list[dict[str, str]]:
  """The toy-density table's real-points rows, once per data set."""
  return [row for row in _quality_data_rows(records, specs, labels)
          if 'Energy distance' in row]


def _toy_density_layout() -> Layout:
  """The likelihood columns with the toy sample-quality scores."""
  base = _likelihood_layout(bound=False)
  return dataclasses.replace(
      base, columns=base.columns + (_ENERGY_CELL, _MODES_CELL, _SHARE_CELL),
      data_rows=_toy_density_data_rows)


def _samplers_cell(fmt: Callable[[dict[str, Any]], str]) -> Cell:
  """One cell listing every sampler of the run, in order."""
  return lambda spec, r: '; '.join(fmt(x) for x in r['samplers']['rows'])


def _samplers_headline(spec: Spec, r: Record,
                       table: catalogue.Table) -> tuple[str, str]:
  del spec, table
  rows = r['samplers']['rows']
  return (' / '.join(f'{x["fid_style"]:.2f}' for x in rows),
          'FID-style of ' + ' / '.join(x['sampler'] for x in rows))


def _translation_headline(spec: Spec, r: Record,
                          table: catalogue.Table) -> tuple[str, str]:
  del spec, table
  m = r['test_metrics']
  return (f'{num(m.get("l1"), ".4f")} L1/pixel',
          f'test L1 (PSNR {num(m.get("psnr"))} dB)')


def _figure_link(field: str, text: str) -> Cell:
  def cell(spec: Spec, r: Record) -> str:
    del spec
    figure = r.get(field)
    return f'[{text}]({figure["png"]})' if figure else '-'
  return cell


LAYOUTS = {
    'likelihood and bound': _likelihood_layout(bound=True),
    'likelihood': _likelihood_layout(bound=False),
    'toy likelihood': _toy_density_layout(),
    'codes': Layout((
        ('Test NLL (nats)', _codes_nll),
        ('bits/dim', lambda s, r: '-' if r['test_nll_nats'] is None
         else num(r['test_bits_per_dim'], '.4f')),
        ('Recon. MSE / pixel',
         lambda s, r: num(r['test_metrics'].get('recon_error'), '.4f')),
        ('Code perplexity (codes used / K)', lambda s, r: _usage(r)),
    ), _codes_headline),
    'sample quality': Layout((
        ('Samples', lambda s, r: f'{r["quality"]["num_samples"]:,}'),
        ('FID-style', _quality_cell(
            None, lambda q: f'**{q["fid_style"]:.2f}**')),
        ('IS-style', _quality_cell(None, lambda q: f'{q["is_style"]:.2f}')),
        ('Classes covered', _quality_cell(
            None,
            lambda q: f'{q["classes_covered"]} / {len(q["class_counts"])}')),
        ('Label KL (vs test)', _quality_cell(
            None, lambda q: f'{q["label_kl_reference"]:.3f}')),
        _ENERGY_CELL, _MODES_CELL, _SHARE_CELL,
        ('Classifier, test acc.', lambda s, r: _classifier(r)),
    ), _quality_headline, needs='quality', reference=False,
        data_rows=_quality_data_rows),
    'samplers': Layout((
        ('Samples per sampler',
         lambda s, r: f'{r["samplers"]["num_samples"]:,}'),
        ('Samplers', _samplers_cell(lambda x: x['sampler'])),
        ('FID-style', _samplers_cell(lambda x: f'**{x["fid_style"]:.2f}**')),
        ('IS-style', _samplers_cell(lambda x: f'{x["is_style"]:.2f}')),
        ('Classes covered', _samplers_cell(
            lambda x: f'{x["classes_covered"]} / {x["num_classes"]}')),
        ('Label KL (vs test)', _samplers_cell(
            lambda x: f'{x["label_kl_reference"]:.3f}')),
        ('Sampling time', _samplers_cell(lambda x: duration(x['seconds']))),
        ('Figure', _figure_link('samplers', 'one row per sampler')),
        ('Classifier, test acc.', lambda s, r: _classifier(r)),
    ), _samplers_headline, needs='samplers', reference=False),
    'translation': Layout((
        ('Task', lambda s, r: str(r['config']['model'].get('task', '-'))),
        ('Test L1 / pixel',
         lambda s, r: f'**{num(r["test_metrics"].get("l1"), ".4f")}**'),
        ('Test PSNR (dB)', lambda s, r: num(r['test_metrics'].get('psnr'))),
        ('Figure', _figure_link('translations', 'input / output / target')),
    ), _translation_headline),
}


def table_specs(key: str, table: catalogue.Table) -> list[Spec]:
  """The catalogue's rows of a table, in catalogue order."""
  return [s for s in catalogue.EXPERIMENTS
          if (table.evaluation and
              table.evaluation in (e.name for e in s.evaluations))
          or (not table.evaluation and s.table == key)]


def headline(spec: Spec, r: Record) -> tuple[str, str]:
  """(number with its unit, kind) of a record, by its own table."""
  table = catalogue.TABLES[spec.table]
  return LAYOUTS[table.layout].headline(spec, r, table)


# ----------------------------------------------------------- data views
def _data_name(r: Record) -> str:
  """'mnist8k' of 'mnist8k, dynamically binarized (...)'."""
  return r['data'].split(', ', 1)[0]


def _pixels(r: Record) -> str:
  """'dynamically binarized' of 'mnist8k, dynamically binarized (...)'."""
  rest = r['data'].split(', ', 1)
  return rest[1].split(' (', 1)[0] if len(rest) > 1 else ''


def _data_labels(rows: list[Record]) -> dict[tuple[str, str], str]:
  """(data description, splits) -> the shortest label that tells the
  table's data views apart: the name, then with its pixels, then with its
  splits."""
  views = {(r['data'], _splits(r)): r for r in rows}
  levels = (lambda r: _data_name(r),
            lambda r: f'{_data_name(r)}, {_pixels(r)}',
            lambda r: f'{_data_name(r)}, {_pixels(r)}, {_splits(r)}')
  for level in levels:
    labels = {view: level(r) for view, r in views.items()}
    if len(set(labels.values())) == len(labels):
      return labels
  return {view: f'{r["data"]}; {view[1]}' for view, r in views.items()}


# --------------------------------------------------------------- tables
def _table(header: list[str], rows: list[dict[str, str]]) -> list[str]:
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for row in rows:
    lines.append('| ' + ' | '.join(row.get(h, '-') for h in header) + ' |')
  return lines


def _paper_columns(specs: list[Spec]) -> list[str]:
  """The papers' columns a table needs: like-for-like, for scale, or
  neither (each only where some row has such a figure)."""
  kinds = {comparison(s) for s in specs}
  return ([h for h, k in (('Paper, like-for-like', LIKE_FOR_LIKE),
                          ('Paper, for scale', FOR_SCALE)) if k in kinds])


def _paper_cells(spec: Spec) -> dict[str, str]:
  kind = comparison(spec)
  if kind == LIKE_FOR_LIKE:
    return {'Paper, like-for-like': paper_figure(spec.reference)}
  if kind == FOR_SCALE:
    return {'Paper, for scale': paper_figure(spec.reference)}
  return {}


def _kind_table(key: str, table: catalogue.Table, records: dict[str, Record],
                notes: dict[str, str]) -> list[str]:
  """One kind of measurement: its text, the facts its rows share, its rows."""
  specs = table_specs(key, table)
  layout = LAYOUTS[table.layout]
  ran = [s for s in specs if s.name in records
         and (not layout.needs or layout.needs in records[s.name])]
  rs = [records[s.name] for s in ran]
  labels = _data_labels(rs)
  shared = {
      'Seed': {str(r['seed']) for r in rs},
      'Machine': {_machine_short(r['machine']) for r in rs},
  }
  facts = []
  if rs:
    views = {}
    for r in rs:
      views.setdefault((r['data'], _splits(r)), r)
    if len(views) == 1:
      facts.append(f'- Data (every row): {", ".join(next(iter(views)))}.')
    else:
      facts.append('- Data: ' + '; '.join(
          f'`{labels[v]}`' + (f' = {v[0]}' if v[0] != labels[v] else '') +
          f', {v[1]}' for v in views) + '.')
    for name, values in shared.items():
      if len(values) == 1:
        facts.append(f'- {name} (every row): {next(iter(values))}.')
  header = ['Experiment', 'Model', 'Params']
  if len(labels) > 1 or not rs:
    header.append('Data')
  if len(shared['Seed']) > 1:
    header.append('Seed')
  header += ['Steps x batch', 'Budget'] + [h for h, _ in layout.columns]
  header.append('Wall time')
  if len(shared['Machine']) > 1:
    header.append('Machine')
  if layout.reference:
    header += _paper_columns(specs)
  rows = []
  for spec in specs:
    r = records.get(spec.name)
    paper = _paper_cells(spec) if layout.reference else {}
    if r is None or (layout.needs and layout.needs not in r):
      rows.append(dict(paper, **{'Experiment': f'`{spec.name}`',
                                 'Model': notes.get(spec.name,
                                                    'not run yet')}))
      continue
    row = dict(paper, **{
        'Experiment': f'`{spec.name}`', 'Model': _model(spec, r),
        'Params': f'{r["params"]:,}',
        'Data': labels[(r['data'], _splits(r))], 'Seed': str(r['seed']),
        'Steps x batch': f'{r["step"]:,} x {r["batch_size"]}',
        'Budget': CPU_BUDGET if specs_lib.cpu_budget(spec) else '-',
        'Wall time': _wall_short(r),
        'Machine': _machine_short(r['machine'])})
    row.update({h: fn(spec, r) for h, fn in layout.columns})
    rows.append(row)
  if layout.data_rows:
    rows += layout.data_rows(records, specs, labels)
  lines = [f'## {table.heading}', '', table.text, ''] + facts + ['']
  lines += _table(header, rows) + ['']
  return lines + ordering_lines(records, specs)


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


# -------------------------------------------------------------- summary
def _summary(records: dict[str, Record]) -> list[str]:
  """One line per record, in catalogue order."""
  header = ['Experiment', 'Model', 'Data', 'Headline', 'Kind', 'Budget',
            'vs paper', 'Paper', 'Samples']
  rows = []
  for spec in catalogue.EXPERIMENTS:
    r = records.get(spec.name)
    if r is None:
      continue
    number, kind = headline(spec, r)
    rows.append({
        'Experiment': f'`{spec.name}`', 'Model': _model(spec, r),
        'Data': _data_name(r), 'Headline': f'**{number}**', 'Kind': kind,
        'Budget': CPU_BUDGET if specs_lib.cpu_budget(spec) else '-',
        'vs paper': comparison(spec),
        'Paper': paper_figure(spec.reference) or '-',
        'Samples': _thumb(r.get('samples_png'), THUMB_WIDTH)})
  missing = [s.name for s in catalogue.EXPERIMENTS if s.name not in records]
  lines = ['## Summary', '',
           'One line per finished run; the tables below give every measured '
           'number, and "Details per run" how each was obtained.', '']
  lines += _table(header, rows) + ['']
  if missing:
    lines += ['Not run yet: ' + ', '.join(f'`{n}`' for n in missing) + '.',
              '']
  return lines


def _label_notes() -> list[str]:
  """The reading notes of the summary's and tables' labels."""
  return [
      '**Kind** of a headline: exact = the model\'s own normalised '
      'likelihood; bound = an upper bound on the NLL (IWAE with k samples, '
      'a variational bound); upper bound, dequantized = a continuous '
      'density of dequantized pixels, bounding the 8-bit NLL from above; '
      'AIS estimate = a partition function estimated by annealed '
      'importance sampling, neither exact nor a bound; FID-style and '
      'IS-style = scores from a classifier trained in this project, not '
      'Inception-based and not comparable with published FID or IS. Lower '
      'NLL, bits/dim, FID-style and L1 are better.',
      f'**{CPU_BUDGET}**: the run is smaller or shorter than the paper\'s '
      'setting (fewer steps, a smaller batch or a smaller net than the '
      'config\'s full-data preset, or than its own preset); its details '
      'list the cuts.',
      f'**vs paper**: {LIKE_FOR_LIKE} = the paper\'s figure measures the '
      f'same quantity on the same data and protocol; {FOR_SCALE} = a '
      'published figure on other data, another split or another training '
      f'set, shown for orientation only; {NO_PAPER} = none exists.',
  ]


# -------------------------------------------------------------- details
def _quality_commands(r: Record) -> list[str]:
  """The detail lines of a row's sample-quality scores."""
  clf = r.get('classifier')
  cmd = f'python -m experiments.sample_quality --workdir={r["workdir"]}'
  if clf:
    return [f'- classifier: `{clf["command"]}` (test accuracy '
            f'{clf["test_accuracy"]:.3f})',
            f'- sample quality (the same scores, standalone): '
            f'`{cmd} --classifier={clf["workdir"]}`']
  return [f'- sample quality (the same scores, standalone): `{cmd}`']


def _codebook_lines(r: Record) -> list[str]:
  """The detail line of a row's codebook figure."""
  c = r['codebook']
  module = catalogue.FIGURE_COMMANDS['codebook']
  return [f'- codebook, the {len(c["sizes"])} centres by training-set '
          f'usage, largest first (`python -m {module} '
          f'--workdir={r["workdir"]}`): [{c["png"]}]({c["png"]})']


def _samplers_lines(r: Record) -> list[str]:
  """The detail lines of a row's samplers side by side."""
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


# Figures the details describe in their own words (the others get a
# generic line).
_DESCRIBED_FIGURES = ('codebook', 'samplers', 'translations')


def _details(spec: Spec, r: Record) -> list[str]:
  number, kind = headline(spec, r)
  cuts = specs_lib.budget_cuts(spec)
  if specs_lib.cpu_budget(spec):
    budget = f'{CPU_BUDGET}: ' + ('; '.join(cuts) if cuts else
                                  'stated by the catalogue entry')
  else:
    budget = 'not a CPU budget' + (
        f' (the catalogue entry says so despite: {"; ".join(cuts)})'
        if cuts else '')
  reference = spec.reference or 'none'
  if paper_figure(spec.reference):
    reference += f' ({comparison(spec)})'
  lines = [
      f'### `{spec.name}`', '',
      f'- model: {spec.label or r["model"]} ({r["params"]:,} params)',
      f'- headline: {number}, {kind}',
      f'- paper: {reference}',
      f'- seed {r["seed"]}, {r["step"]:,} steps x {r["batch_size"]}; '
      f'{budget}',
      f'- data: {r["data"]}',
      '- splits: ' + ', '.join(
          f'{k} `{r["split_specs"][k]}` ({r["splits"][k]:,} rows)'
          for k in _split_order(r['split_specs'])
          if r['split_specs'][k]) + (
              ', rows shuffled with the split seed first'
              if r['config']['data']['shuffle_before_split'] else
              ', in file order'),
      f'- wall time: {_wall(r)}',
      f'- machine: {_machine(r["machine"])}',
      '', '```sh', r['command'], '```', '',
      f'- preset `{r["preset"]}`, overrides: ' + (
          ', '.join(f'`{k}={v}`' for k, v in r['overrides']) or 'none'),
      '- estimators: ' + (', '.join(
          f'{n} {json.dumps(a, sort_keys=True)}'
          for n, a in r['estimators'].items()) or 'none (no likelihood)'),
      f'- test: {r["test_num_examples"]:,} '
      + ('points' if _toy(r) else 'images') + (
          '' if r['test_neg_elbo_bits_per_dim'] is None else
          f'; -ELBO {r["test_neg_elbo_bits_per_dim"]:.4f} bits/dim'),
      f'- code: git {r["git"] or "unknown"}; finished {r["finished_utc"]}',
  ]
  if r.get('samples_png'):
    lines.append(f'- samples (seed {r["seed"]}, step {r["step"]}): '
                 f'[{r["samples_png"]}]({r["samples_png"]})')
  if r.get('quality'):
    lines += _quality_commands(r)
  if r.get('codebook'):
    lines += _codebook_lines(r)
  if r.get('samplers'):
    lines += _samplers_lines(r)
  if r.get('translations'):
    png = r['translations']['png']
    lines.append(f'- test images as input / output / target rows: '
                 f'[{png}]({png})')
  for field, value in sorted(r.items()):
    if (isinstance(value, dict) and 'png' in value
        and field not in _DESCRIBED_FIGURES):
      lines.append(f'- {field} figure: [{value["png"]}]({value["png"]})')
  return lines + ['']


# ---------------------------------------------------------------- pages
def _load(runs_dir: str, quick: bool, records_dir: str | None,
          notes: dict[str, str] | None = None) -> dict[str, Record]:
  """The records of the catalogue's experiments; given `notes`, stale ones
  get a note there."""
  records = {}
  for spec in catalogue.EXPERIMENTS:
    r = records_lib.load_result(runs_dir, spec.name, records_dir)
    if r is not None:
      records[spec.name] = r
      if notes is None:
        continue
      reason = records_lib.stale_reason(spec, r, quick, runs_dir)
      if reason:
        notes.setdefault(spec.name, 'STALE: ' + reason +
                         '; pass --rerun/--fresh with --only=' + spec.name)
  return records


def _quick_warning() -> list[str]:
  return [
      '> **⚠️ QUICK SMOKE OUTPUT — NOT RESULTS. ⚠️**',
      f'> Written by `python -m experiments.results --quick`: every run is '
      f'cut to {specs_lib.QUICK_STEPS} training steps and a tiny IWAE k. '
      'These numbers only show that the machinery runs end to end; they '
      'say nothing about the models. Never cite or commit them.',
      '']


def render(runs_dir: str, *, quick: bool,
           notes: dict[str, str] | None = None,
           note: str | None = None, records_dir: str | None = None) -> str:
  """RESULTS.md from every record: ``<records_dir>/*.json`` when given, else
  ``<runs_dir>/*/result.json``."""
  notes = dict(notes or {})
  records = _load(runs_dir, quick, records_dir, notes)
  source, found = records_lib.record_names(runs_dir, records_dir)
  extra = sorted(n for n in found if n not in catalogue.BY_NAME)

  lines = ['# Results', '',
           '<!-- Generated by `python -m experiments.results` from '
           f'{source}. Do not edit by hand: rerun it. -->',
           '']
  if quick:
    lines += _quick_warning()
  lines += [
      'Each row is one run of `python -m experiments.results`, reproducible '
      'with the command in its details (see "Details per run" below). One '
      f'sample grid per family: [{GALLERY_FILE}]({GALLERY_FILE}).', '']
  lines += _summary(records)
  lines += ['## How to read these numbers', '']
  lines += [f'- {text}' for text in
            _label_notes() + list(catalogue.READING_NOTES)]
  if note:
    lines.append(f'- {note}')
  lines.append('')
  for key, table in catalogue.TABLES.items():
    if table_specs(key, table):
      lines += _kind_table(key, table, records, notes)
  if notes:
    lines += ['## Notes', '']
    lines += [f'- `{n}`: {t}' for n, t in notes.items()]
    lines += ['']
  lines += ['## Details per run', '']
  for spec in catalogue.EXPERIMENTS:
    r = records.get(spec.name)
    if r is not None:
      lines += _details(spec, r)
  if extra:
    lines += ['## Other result files', '',
              f'Found in {source} but not among the listed experiments '
              '(not shown above): ' + ', '.join(f'`{e}`' for e in extra), '']
  return '\n'.join(lines)


def _data_size(r: Record) -> int:
  return sum(v for v in r['splits'].values() if isinstance(v, int))


def gallery_records(records: dict[str, Record]) -> dict[str, str]:
  """Family -> the name of its main record with a samples grid on disk.

  The main record of a family is its run on images rather than toy points,
  on the largest data set (most rows), first in catalogue order. Families
  come in the order of their first catalogue entry.
  """
  candidates: dict[str, list[tuple[Any, ...]]] = {}
  for i, spec in enumerate(catalogue.EXPERIMENTS):
    r = records.get(spec.name)
    if r is None or not r.get('samples_png') or not os.path.exists(
        r['samples_png']):
      continue
    family = r.get('family') or spec.name
    candidates.setdefault(family, []).append(
        (_toy(r), -_data_size(r), i, spec.name))
  return {family: min(ranked)[-1] for family, ranked in candidates.items()}


def render_gallery(runs_dir: str, *, quick: bool,
                   records_dir: str | None = None) -> str:
  """GALLERY.md: one sample grid per family (`gallery_records`)."""
  records = _load(runs_dir, quick, records_dir)
  source, _ = records_lib.record_names(runs_dir, records_dir)
  lines = ['# Gallery', '',
           '<!-- Generated by `python -m experiments.results` from '
           f'{source}. Do not edit by hand: rerun it. -->', '']
  if quick:
    lines += _quick_warning()
  lines += [
      'One sample grid per family, from its main record: its run on '
      'images rather than toy points, on the largest data set, first in '
      'catalogue order. What each number is, and every other run: '
      '[RESULTS.md](RESULTS.md).', '']
  chosen = gallery_records(records)
  if not chosen:
    return '\n'.join(lines + ['No record has a sample grid yet.', ''])
  rows = []
  for family, name in chosen.items():
    spec, r = catalogue.BY_NAME[name], records[name]
    number, kind = headline(spec, r)
    rows.append({
        'Family': family, 'Record': f'`{name}`', 'Model': _model(spec, r),
        'Data': _data_name(r), 'Headline': f'**{number}**', 'Kind': kind,
        'Budget': CPU_BUDGET if specs_lib.cpu_budget(spec) else '-',
        'Samples': _thumb(r['samples_png'], GALLERY_WIDTH)})
  header = ['Family', 'Record', 'Model', 'Data', 'Headline', 'Kind', 'Budget',
            'Samples']
  return '\n'.join(lines + _table(header, rows) + [''])


def gallery_path(out: str) -> str:
  """GALLERY.md beside the RESULTS.md written to `out`."""
  return os.path.join(os.path.dirname(out), GALLERY_FILE)


def uses_page(records_dir: str | None) -> tuple[str, str] | None:
  """(path, text) of the uses page: `experiments.uses.render` (the renderer
  of ``python -m experiments.uses render``) of the JSON under
  <records_dir>/`USES_RECORDS`, to be written to <records_dir>/`USES_FILE`;
  None without records or without such JSON."""
  if not records_dir:
    return None
  records = os.path.join(records_dir, USES_RECORDS)
  if not glob.glob(os.path.join(records, '**', '*.json'), recursive=True):
    return None
  out = os.path.join(records_dir, USES_FILE)
  return out, uses_lib.render(records, out=out)


def write_uses(records_dir: str | None) -> str | None:
  """Writes `uses_page`; returns its path (None when there is none)."""
  page = uses_page(records_dir)
  if page is None:
    return None
  workdir_lib.atomic_write(*page)
  return page[0]


def write(out: str, runs_dir: str, *, quick: bool,
          notes: dict[str, str] | None = None, note: str | None = None,
          records_dir: str | None = None) -> str:
  """Writes RESULTS.md to `out`, GALLERY.md beside it and the uses page
  (`write_uses`); returns the first."""
  text = render(runs_dir, quick=quick, notes=notes, note=note,
                records_dir=records_dir)
  workdir_lib.atomic_write(out, text)
  workdir_lib.atomic_write(gallery_path(out), render_gallery(
      runs_dir, quick=quick, records_dir=records_dir))
  write_uses(records_dir)
  return text
