"""RESULTS.md and GALLERY.md as rendered from the committed records.

No training: the pages are rendered once from results/*.json and read as a
reader would (the summary, the tables by kind, the details, the gallery).
"""

import dataclasses
import os
import re

import pytest

from experiments import catalogue
from experiments.results import records as records_lib
from experiments.results import render as render_lib
from experiments.results import specs as specs_lib
from tests import helpers

# The longest table line either page may have (characters).
MAX_TABLE_LINE = 400


@pytest.fixture(scope='module')
def pages():
  """(RESULTS.md text, GALLERY.md text, records by name), rendered from the
  records in the repository root."""
  cwd = os.getcwd()
  os.chdir(helpers.REPO_ROOT)
  try:
    results = render_lib.render(specs_lib.DEFAULT_RUNS_DIR, quick=False,
                                records_dir=records_lib.DEFAULT_RECORDS_DIR)
    gallery = render_lib.render_gallery(
        specs_lib.DEFAULT_RUNS_DIR, quick=False,
        records_dir=records_lib.DEFAULT_RECORDS_DIR)
    records = render_lib._load(specs_lib.DEFAULT_RUNS_DIR, False,
                               records_lib.DEFAULT_RECORDS_DIR)
    with open('RESULTS.md') as f:
      committed_results = f.read()
    with open(render_lib.GALLERY_FILE) as f:
      committed_gallery = f.read()
  finally:
    os.chdir(cwd)
  assert records, 'no records under results/'
  return dict(results=results, gallery=gallery, records=records,
              committed_results=committed_results,
              committed_gallery=committed_gallery)


def _section(text, heading):
  return text.split(f'\n## {heading}\n', 1)[1].split('\n## ', 1)[0]


def _rows(section):
  """{header: cell} of each row of the first table in `section`."""
  lines = [l for l in section.splitlines() if l.startswith('|')]
  header = [c.strip() for c in lines[0].strip('|').split(' | ')]
  return [dict(zip(header, (c.strip() for c in l.strip('|').split(' | '))))
          for l in lines[2:]]


def _names(rows):
  return [r['Experiment'].strip('`') for r in rows
          if r['Experiment'].startswith('`')]


def test_committed_pages_are_the_rendering_of_the_records(pages):
  # Written by the script, never by hand: they must be exactly what
  # `python -m experiments.results --render_only` makes of results/.
  assert pages['committed_results'] == pages['results'], (
      'RESULTS.md differs from the rendering of results/*.json: run '
      '`python -m experiments.results --render_only`.')
  assert pages['committed_gallery'] == pages['gallery'], (
      'GALLERY.md differs from the rendering of results/*.json: run '
      '`python -m experiments.results --render_only`.')


def test_the_summary_comes_first_with_one_line_per_record(pages):
  text, records = pages['results'], pages['records']
  headings = re.findall(r'^## (.*)$', text, re.MULTILINE)
  assert headings[:2] == ['Summary', 'How to read these numbers']
  rows = _rows(_section(text, 'Summary'))
  assert _names(rows) == [s.name for s in catalogue.EXPERIMENTS
                          if s.name in records]
  for row in rows:
    spec = catalogue.BY_NAME[row['Experiment'].strip('`')]
    r = records[spec.name]
    number, kind = render_lib.headline(spec, r)
    assert row['Headline'] == f'**{number}**' and row['Kind'] == kind
    assert row['vs paper'] == render_lib.comparison(spec)
    figure = render_lib.paper_figure(spec.reference)
    assert row['Paper'] == (figure or '-')
    assert (row['Samples'] != '-') == os.path.exists(
        os.path.join(helpers.REPO_ROOT, r.get('samples_png') or 'none'))
  missing = [s.name for s in catalogue.EXPERIMENTS if s.name not in records]
  if missing:
    assert f'Not run yet: `{missing[0]}`' in text


def test_every_record_is_in_one_kind_table_and_in_the_details(pages):
  """A record's row is in the table of what it measures (its entry's
  table), once; it is in another table only where that table lists an
  evaluation the entry runs (e.g. sample quality)."""
  text, records = pages['results'], pages['records']
  tables = {n: [] for n in records}
  for key, table in catalogue.TABLES.items():
    layout = render_lib.LAYOUTS[table.layout]
    for name in _names(_rows(_section(text, table.heading))):
      if name in records and (not layout.needs
                              or layout.needs in records[name]):
        tables[name].append(key)
  for name, keys in tables.items():
    spec = catalogue.BY_NAME[name]
    assert keys.count(spec.table) == 1, (name, keys)
    runs = {e.name for e in spec.evaluations}
    assert all(catalogue.TABLES[k].evaluation in runs
               for k in keys if k != spec.table), (name, keys)
  details = _section(text, 'Details per run')
  for name, r in records.items():
    assert details.count(f'### `{name}`\n') == 1
    assert r['command'] in details
    if r.get('samples_png'):
      assert f']({r["samples_png"]})' in details
    for value in r.values():  # every figure is linked
      if isinstance(value, dict) and 'png' in value:
        assert f']({value["png"]})' in details


def test_table_lines_stay_short(pages):
  for page in ('results', 'gallery'):
    long = [l[:80] for l in pages[page].splitlines()
            if l.startswith('|') and len(l) > MAX_TABLE_LINE]
    assert not long, (page, long)


def test_the_cpu_budget_label_is_one_rule_everywhere(pages):
  text = pages['results']
  checked = 0
  for heading in ['Summary'] + [t.heading for t in catalogue.TABLES.values()]:
    for row in _rows(_section(text, heading)):
      name = row['Experiment'].strip('`')
      if name not in pages['records'] or row['Model'] == 'not run yet':
        continue
      expected = (render_lib.CPU_BUDGET
                  if specs_lib.cpu_budget(catalogue.BY_NAME[name]) else '-')
      assert row['Budget'] == expected, (heading, name)
      checked += 1
  assert checked >= len(pages['records'])
  # The labels state the configuration; the budget is the column's alone.
  for spec in catalogue.EXPERIMENTS:
    assert not re.search(r'CPU[- ](sized|budget)', spec.label), spec.name
  # The rule: a cut against the paper-data preset or the row's own preset.
  assert specs_lib.budget_cuts(catalogue.BY_NAME['vae_mlp_mnist8k']) == (
      'train.num_steps 20,000 < 100,000 (the binarized_mnist preset)',)
  assert 'train.num_steps 3,000 < 5,000 (the preset)' in specs_lib.budget_cuts(
      catalogue.BY_NAME['nice_digits'])
  assert not specs_lib.cpu_budget(catalogue.BY_NAME['nice_digits'])  # stated
  assert not specs_lib.budget_cuts(catalogue.BY_NAME['vae_mlp_digits'])


def test_papers_figures_are_like_for_like_or_for_scale():
  for spec in catalogue.EXPERIMENTS:
    figure = render_lib.paper_figure(spec.reference)
    if spec.reference and not spec.reference.startswith('none: '):
      assert figure and re.search(r'\d', figure) and len(figure) <= 20, (
          spec.name, spec.reference)
    assert not (spec.like_for_like and not figure), spec.name
  burda = catalogue.BY_NAME['vae_mlp_mnist8k']
  assert render_lib.paper_figure(burda.reference) == '86.76 nats'
  assert render_lib._paper_columns([burda]) == ['Paper, for scale']
  same = dataclasses.replace(burda, like_for_like=True)
  assert render_lib.comparison(same) == render_lib.LIKE_FOR_LIKE
  assert render_lib._paper_columns([burda, same]) == [
      'Paper, like-for-like', 'Paper, for scale']
  none = catalogue.BY_NAME['vae_mlp_digits']
  assert render_lib.comparison(none) == render_lib.NO_PAPER
  assert render_lib._paper_columns([none]) == []


def test_short_labels_cut_at_clauses_outside_brackets():
  short = render_lib.short_label
  assert short('NADE') == 'NADE'
  assert short('A, b (c, d, e), f', width=16) == 'A, b (c, d, e) …'
  assert short('A, b (c, d, e), f', width=12) == 'A …'
  assert short('Glow, 8 steps (actnorm, a very long list of things)',
               width=20) == 'Glow …'
  assert short('one two three four five', width=9) == 'one two …'


def test_the_gallery_shows_one_grid_per_family(pages):
  records = pages['records']
  with_grid = {}
  for spec in catalogue.EXPERIMENTS:
    r = records.get(spec.name)
    if r and r.get('samples_png') and os.path.exists(
        os.path.join(helpers.REPO_ROOT, r['samples_png'])):
      with_grid.setdefault(r['family'], []).append(spec.name)
  rows = _rows(pages['gallery'])
  assert [r['Family'] for r in rows] == list(with_grid)
  for row in rows:
    name = row['Record'].strip('`')
    assert name in with_grid[row['Family']]
    assert records[name]['samples_png'] in row['Samples']
    number, _ = render_lib.headline(catalogue.BY_NAME[name], records[name])
    assert row['Headline'] == f'**{number}**'
  assert '[GALLERY.md](GALLERY.md)' in pages['results'].split(
      '## Summary', 1)[0]


def test_toy_density_table_shows_sample_scores(pages):
  """Energy distance for every toy row and its data floor; mode coverage
  where the points have modes; '-' for a record without scores."""
  # Only the two rows below carry scores (the data rows come from them).
  records = {n: {k: v for k, v in r.items() if k != 'quality'}
             for n, r in pages['records'].items()}
  moons = {'num_samples': 2500, 'energy_distance': 0.01234,
           'data/reference/num_samples': 2500,
           'data/train_vs_test/energy_distance': -0.00021,
           'data/train_vs_test/num_samples': 2500}
  ring = dict(moons, energy_distance=0.5, modes_covered=7, num_modes=8,
              high_quality_share=0.91234,
              **{'data/train_vs_test/energy_distance': 0.00031,
                 'data/reference/modes_covered': 8,
                 'data/reference/high_quality_share': 0.98765})
  for name, q in (('glow_moons', moons), ('glow_ring8', ring)):
    assert name in records, name
    records[name] = dict(records[name], quality=q)
  records.pop('nice_moons', None)
  table = catalogue.TABLES[catalogue.TOY_DENSITY]
  lines = render_lib._kind_table(catalogue.TOY_DENSITY, table, records, {})
  rows = {r['Experiment'].strip('`') + r['Data']: r
          for r in _rows('\n'.join(lines))}
  moons_label = next(k for k in rows if k.startswith('glow_moons'))
  ring_label = next(k for k in rows if k.startswith('glow_ring8'))
  assert rows[moons_label]['Energy distance'] == '0.01234'
  assert rows[moons_label]['Modes covered'] == '-'
  assert rows[ring_label]['Energy distance'] == '0.50000'
  assert rows[ring_label]['Modes covered'] == '**7 / 8**'
  assert rows[ring_label]['High-quality share'] == '0.912'
  old = next(r for k, r in rows.items() if k.startswith('realnvp_moons'))
  assert old['Energy distance'] == old['Modes covered'] == '-'
  assert 'not run yet' in next(
      r for k, r in rows.items() if k.startswith('nice_moons'))['Model']
  data = [r for r in rows.values() if r['Experiment'] == 'data']
  assert sorted(r['Energy distance'] for r in data) == ['-0.00021', '0.00031']
  assert sorted(r['Modes covered'] for r in data) == ['-', '8 / 8']
  assert all(r['Model'].startswith('real points: the training split vs')
             for r in data)
  # The headline of a toy row stays its likelihood.
  number, kind = render_lib.headline(catalogue.BY_NAME['glow_moons'],
                                     records['glow_moons'])
  assert 'nats/point' in number and kind == 'exact'


def test_a_shorter_or_narrower_layer_list_is_a_budget_cut():
  smaller = specs_lib._smaller  # pylint: disable=protected-access
  assert smaller((16, 16), (64, 64, 64))  # fewer and narrower layers
  assert smaller((64, 64), (64, 64, 64))  # fewer layers
  assert smaller((32,), (64,)) and smaller((32, 64), (64, 64))
  assert not smaller((256,), (64, 64, 64))  # depth traded for width
  assert not smaller((64, 64, 64), (64, 64, 64))
  assert not smaller((64, 64, 64, 64), (64, 64, 64))
  assert ('model.hidden 16, 16 < 64, 64, 64 (the preset)'
          in specs_lib.budget_cuts(catalogue.BY_NAME['ffjord_mnist8k']))
  moons = catalogue.BY_NAME['ffjord_moons']
  assert not specs_lib.cpu_budget(moons)
  for hidden, cut in (((16, 16), True), ((256,), False)):
    spec = dataclasses.replace(moons, overrides=(('model.hidden', hidden),))
    assert specs_lib.cpu_budget(spec) == cut, hidden
