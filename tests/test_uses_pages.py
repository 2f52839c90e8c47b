"""results/USES.md: one renderer, two commands (`experiments.uses render`
and `experiments.results`), and the committed page is their output."""

from __future__ import annotations

import glob
import os
import shutil

import pytest

from experiments import uses as uses_cli
from experiments.results import render as render_lib
from tests import helpers


@pytest.fixture(scope='module')
def pages(tmp_path_factory):
  """The page each command writes from a copy of results/uses (JSON and
  training commands), in a fresh folder laid out like the checkout."""
  root = tmp_path_factory.mktemp('uses_pages')
  source = os.path.join(helpers.REPO_ROOT, 'results', 'uses')
  for path in glob.glob(os.path.join(source, '**', '*.json'),
                        recursive=True) + [
                            os.path.join(source, uses_cli.TRAINING_FILE)]:
    dest = root / 'results' / 'uses' / os.path.relpath(path, source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, dest)
  cwd = os.getcwd()
  os.chdir(root)
  try:
    status = uses_cli.cli(['uses', 'render', '--out=results/USES.md'])
    with open('results/USES.md') as f:
      by_uses = f.read()
    os.remove('results/USES.md')
    written = render_lib.write_uses('results')
    with open('results/USES.md') as f:
      by_results = f.read()
  finally:
    os.chdir(cwd)
  with open(os.path.join(helpers.REPO_ROOT, 'results', 'USES.md')) as f:
    committed = f.read()
  return dict(status=status, by_uses=by_uses, by_results=by_results,
              written=written, committed=committed)


def test_both_commands_write_the_same_page(pages):
  assert pages['status'] == 0
  assert pages['written'] == os.path.join('results', 'USES.md')
  assert pages['by_uses'] == pages['by_results']


def test_committed_page_is_the_rendering_of_the_records(pages):
  assert pages['committed'] == pages['by_results'], (
      'results/USES.md differs from the rendering of results/uses: run '
      '`python -m experiments.results --render_only` (or `python -m '
      'experiments.uses render --out=results/USES.md`).')


def test_training_commands_come_from_the_file(pages):
  with open(os.path.join(helpers.REPO_ROOT, 'results', 'uses',
                         uses_cli.TRAINING_FILE)) as f:
    lines = [l.strip() for l in f if l.strip()]
  assert lines
  for line in lines:
    workdir, command = line.split('=', 1)
    assert f'- `{workdir}`: `{command}`' in pages['by_results']


def test_no_uses_records_no_page(tmp_path):
  assert render_lib.uses_page(None) is None
  assert render_lib.uses_page(str(tmp_path)) is None
  assert render_lib.write_uses(str(tmp_path)) is None
  assert not os.listdir(tmp_path)


def test_a_training_line_without_a_workdir_is_one_error(tmp_path, capsys):
  (tmp_path / 'probe_x.json').write_text('{}')
  (tmp_path / uses_cli.TRAINING_FILE).write_text('just a command\n')
  status = uses_cli.cli(['uses', 'render', f'--records={tmp_path}',
                         f'--out={tmp_path / "U.md"}'])
  err = capsys.readouterr().err.strip().splitlines()
  assert status == uses_cli.EXIT_BAD_INPUT and len(err) == 1
  assert err[0].startswith('error:') and 'workdir=command' in err[0]


def test_the_glance_tables_pick_the_best_score_and_dedupe_pixels():
  metrics = {'flip': {'likelihood': {'auroc': 0.4},
                      'typicality_m10': {'auroc': 0.9},
                      'complexity': {'auroc': 0.6}},
             'noise': {'likelihood': {'auroc': 1.0},
                       'complexity': {'auroc': 0.995}}}
  ood = {'workdir': 'w', 'estimator': {'name': 'exact'},
         'sets': ['flip', 'noise'], 'metrics': metrics}
  curve = lambda *acc: [{'num_labels': n, 'accuracy': a}
                        for n, a in zip((10, 100), acc)]
  probes = [{'workdir': f'p{i}', 'curves': {'ae': curve(0.5, 0.8 + i / 10),
                                            'pixels': curve(0.3, 0.6)}}
            for i in range(2)]
  lines = uses_cli.summaries([('ood', ood), ('probe', probes[0]),
                              ('probe', probes[1])])
  assert '| `w` (exact) | 0.400 → 0.900 typM=10 | 1.000 |' in lines
  assert '| `p0`: ae | 0.500 | 0.800 |' in lines
  assert '| `p1`: ae | 0.500 | 0.900 |' in lines
  assert sum(l.startswith('| raw pixels') for l in lines) == 1
