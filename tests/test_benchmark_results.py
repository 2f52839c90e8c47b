"""experiments/benchmark.py and experiments.results, with tiny settings.

The benchmark's parameter count is checked for the reference MLP VAE, its
CLI runs on the smoke config; experiments.results runs three digits and toy
rows (a VAE scored for sample quality, K-means, a toy GAN) in --quick mode
into a tmp dir (never the project's RESULTS.md) and must reuse what it
finished instead of training again.
"""

import ast
import dataclasses
import inspect
import json
import os
import re
import shutil
import subprocess
import sys

from absl import app
import jax.numpy as jnp
import pytest

from experiments import benchmark
from experiments import catalogue
from experiments import machine
from experiments.configs import vae as vae_config
from experiments.results import records as records_lib
from experiments.results import render as render_lib
from experiments.results import run as run_lib
from experiments.results import specs as specs_lib
from jaxgen import evaluations
from jaxgen import models
from jaxgen import train
from jaxgen.data import sources as data_sources
from tests import helpers

# They train through the trainer or start processes.
pytestmark = pytest.mark.slow

# The --quick rows: a density with the sample-quality evaluation (and its
# classifier), a row without a density, and a toy row scored by modes.
VAE = 'vae_mlp_digits'
QUICK_ROWS = (VAE, 'kmeans_digits', 'gan_ring8')


def _mlp_vae_params(d, hidden, latent):
  """Dense layers by hand: encoder, (mean, log-variance) head, decoder."""
  widths = (d, *hidden)
  enc = sum(a * b + b for a, b in zip(widths, widths[1:]))
  head = hidden[-1] * 2 * latent + 2 * latent
  dec_widths = (latent, *reversed(hidden), d)
  dec = sum(a * b + b for a, b in zip(dec_widths, dec_widths[1:]))
  return enc + head + dec


def test_reference_parameter_count():
  config = vae_config.get_config('mnist8k')
  assert _mlp_vae_params(784, (512, 512), 32) == 1_379_152
  assert benchmark.count_params(config) == 1_379_152


def test_benchmark_cli_prints_every_field(tmp_path):
  path = tmp_path / 'bench.json'
  proc = subprocess.run(
      [sys.executable, '-m', 'experiments.benchmark',
       '--config=experiments/configs/vae.py:smoke', '--steps=3', '--warmup=1',
       '--repeats=1', '--num_batches=2', '--matmul_size=128',
       '--matmul_repeats=2', f'--json={path}'],
      cwd=helpers.REPO_ROOT, env=helpers.subprocess_env(), capture_output=True,
      text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = proc.stdout
  params = benchmark.count_params(vae_config.get_config('smoke'))
  assert f'{params:,}' in out
  for field in ('parameters', 'compile: first call', 'compile: AOT',
                'train step (device)', 'images/s', 'recompilation',
                'none after warm-up (jit cache size 1 -> 1',
                'data pipeline alone', 'end to end', 'FLOPs / step (XLA)',
                'GFLOP/s', 'f32 matmul', 'ratio achieved/matmul', 'device',
                'jax', 'CPU'):
    assert field in out, (field, out)
  r = json.loads(path.read_text())
  assert r['model']['params'] == params
  assert r['train_step']['recompiled'] is False
  assert r['train_step']['cache_size_after'] == 1
  assert r['train_step']['compilations_during_timing'] == 0
  assert r['flops']['per_step'] > 0
  assert r['flops']['achieved_gflops'] > 0
  assert r['flops']['ratio_to_matmul'] == pytest.approx(
      r['flops']['achieved_gflops'] / r['matmul']['gflops'])
  assert r['machine']['jax_version'] and r['machine']['cpu_count'] >= 1


@pytest.fixture(scope='module')
def quick_runs(tmp_path_factory):
  """The quick rows trained and evaluated once with --quick (in-process)."""
  root = tmp_path_factory.mktemp('results')
  runs_dir, out = root / 'runs', root / 'RESULTS.md'
  cwd = os.getcwd()
  os.chdir(helpers.REPO_ROOT)
  try:
    text = run_lib.run_all(list(QUICK_ROWS), runs_dir=str(runs_dir),
                           out=str(out), quick=True)
  finally:
    os.chdir(cwd)
  return runs_dir, out, text


def test_quick_results_write_the_table_and_warning(quick_runs):
  runs_dir, out, text = quick_runs
  assert out.read_text() == text
  assert 'QUICK SMOKE OUTPUT' in text and 'NOT RESULTS' in text
  assert 'STALE' not in text
  assert '| Experiment | Model | Data |' in text
  for name in QUICK_ROWS:
    r = json.loads((runs_dir / name / 'result.json').read_text())
    assert r['quick'] is True and r['step'] == specs_lib.QUICK_STEPS
    assert r['trained_steps_this_run'] == specs_lib.QUICK_STEPS
    assert f'`{name}`' in text and r['command'] in text
    assert f'--config.train.num_steps={specs_lib.QUICK_STEPS}' in (
        r['command'])
  r = json.loads((runs_dir / VAE / 'result.json').read_text())
  assert r['splits'] == {'train': 1258, 'validation': 180, 'test': 359}
  assert 0 < r['test_nll_nats'] <= r['test_neg_elbo_nats'] + 1.0
  assert r['test_bits_per_dim'] == pytest.approx(
      r['test_nll_nats'] / (64 * 0.6931471805599453))
  # The VAE row is also scored for sample quality, with the classifier
  # trained once into the runs dir; the data row scores real images.
  assert r['classifier']['workdir'] == str(runs_dir / 'classifier_digits')
  assert r['quality']['num_samples'] == 359
  assert r['quality']['fid_style'] >= 0.0
  assert f'**{r["quality"]["fid_style"]:.2f}**' in text
  assert '| data | real training images vs the test split |' in text
  assert 'not comparable with published' in text
  # mnist8k rows are listed, with the paper reference beside them.
  assert '`vae_mlp_mnist8k`' in text and '86.76' in text
  assert '7,000' in text and '60,000' in text


def test_second_invocation_reuses_results(quick_runs):
  runs_dir, _, _ = quick_runs
  before = {n: (runs_dir / n / 'result.json').stat().st_mtime_ns
            for n in QUICK_ROWS}
  out = runs_dir.parent / 'RESULTS_again.md'
  proc = subprocess.run(
      [sys.executable, '-m', 'experiments.results', '--quick',
       f'--only={",".join(QUICK_ROWS)}', f'--runs_dir={runs_dir}',
       f'--out={out}'],
      cwd=helpers.REPO_ROOT, env=helpers.subprocess_env(), capture_output=True,
      text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  for name in QUICK_ROWS:
    assert f'[{name}] reusing' in proc.stdout
    assert (runs_dir / name / 'result.json').stat().st_mtime_ns == (
        before[name])
  assert 'training' not in proc.stdout
  assert 'QUICK SMOKE OUTPUT' in out.read_text()


def test_finished_workdir_is_evaluated_not_retrained(quick_runs, repo_cwd):
  runs_dir, _, _ = quick_runs
  name = VAE
  workdir = runs_dir / name
  old = json.loads((workdir / 'result.json').read_text())
  metrics_lines = (workdir / 'metrics.jsonl').read_text()
  (workdir / 'result.json').unlink()
  text = run_lib.run_all([name], runs_dir=str(runs_dir),
                         out=str(runs_dir.parent / 'R3.md'), quick=True)
  new = json.loads((workdir / 'result.json').read_text())
  assert new['start_step'] == new['step'] == specs_lib.QUICK_STEPS
  assert new['trained_steps_this_run'] == 0
  assert (workdir / 'metrics.jsonl').read_text() == metrics_lines
  assert sorted(os.listdir(workdir / 'checkpoints')) == [
      str(specs_lib.QUICK_STEPS)]
  # Same checkpoint, same evaluation keys: the same numbers, bitwise.
  assert new['test_metrics'] == old['test_metrics']
  assert 'training not timed (checkpoint reused)' in text


def test_missing_evaluations_are_measured_from_the_checkpoint(quick_runs,
                                                             repo_cwd):
  runs_dir, _, _ = quick_runs
  path = runs_dir / VAE / 'result.json'
  old = json.loads(path.read_text())
  stripped = {k: v for k, v in old.items() if k != 'quality'}
  path.write_text(json.dumps(stripped))
  run_lib.run_all([VAE], runs_dir=str(runs_dir),
                  out=str(runs_dir.parent / 'R5.md'), quick=True)
  new = json.loads(path.read_text())
  # Same checkpoint, same sample and reference keys: the same scores.
  assert new['quality'] == old['quality']
  assert new['test_metrics'] == old['test_metrics']


def _table_row(text, heading, name):
  """The row of experiment `name` in the table under `heading`."""
  section = text.split(f'## {heading}\n', 1)[1].split('\n## ', 1)[0]
  return next(l for l in section.splitlines()
              if l.startswith(f'| `{name}` |'))


def test_discrete_table_row(quick_runs):
  runs_dir, _, text = quick_runs
  r = json.loads((runs_dir / 'kmeans_digits' / 'result.json').read_text())
  assert r['test_nll_nats'] is None  # K-means defines no density
  codes = catalogue.TABLES[catalogue.CODES].heading
  row = _table_row(text, codes, 'kmeans_digits')
  assert '| no density | - |' in row
  assert f'| {r["test_metrics"]["recon_error"]:.4f} |' in row
  assert '## Discrete latents and mixtures' in text
  # The codebook figure: all K = 10 centres in one grid, with the number of
  # training images each encodes (every one of them counted once).
  sizes = r['codebook']['sizes']
  assert len(sizes) == 10 and sum(sizes) == r['splits']['train']
  assert sizes == sorted(sizes, reverse=True)
  assert os.path.isfile(r['codebook']['png'])
  assert 'experiments.kmeans_codebook --workdir=' in text


def test_toy_quality_row(quick_runs):
  runs_dir, _, text = quick_runs
  r = json.loads((runs_dir / 'gan_ring8' / 'result.json').read_text())
  q = r['quality']
  assert q['num_modes'] == 8 and q['num_samples'] == 2500
  assert 'classifier' not in r  # toy points need none
  quality = catalogue.TABLES[catalogue.SAMPLE_QUALITY].heading
  row = _table_row(text, quality, 'gan_ring8')
  assert f'**{q["modes_covered"]} / 8**' in row
  assert f'| {q["high_quality_share"]:.3f} |' in row
  data = next(l for l in text.splitlines()
              if l.startswith('| data | real points'))
  assert f'{q["data/reference/modes_covered"]} / 8' in data
  assert ('sample quality (the same scores, standalone): `python -m '
          'experiments.sample_quality --workdir=') in text


def test_overrides_may_name_the_runs_dir():
  spec = catalogue.BY_NAME['code_prior_digits']
  cmd = specs_lib.command(spec, 'runs/results/code_prior_digits', quick=False)
  assert cmd.endswith('--config.model.vqvae_workdir=runs/results/vqvae2_digits')
  config = specs_lib.build_config(spec, quick=True, runs_dir='/tmp/elsewhere')
  assert config.model.vqvae_workdir == '/tmp/elsewhere/vqvae2_digits'


def test_quick_and_full_results_do_not_mix(quick_runs, repo_cwd):
  runs_dir, _, _ = quick_runs
  with pytest.raises(app.UsageError,
                     match='quick and full results do not mix'):
    run_lib.run_all([VAE], runs_dir=str(runs_dir),
                    out=str(runs_dir.parent / 'R4.md'), quick=False)


def test_mnist8k_rows_are_skipped_without_the_data(tmp_path, monkeypatch):
  # ../shared/data/mnist/mnist8k.npz is absent from both places looked at.
  monkeypatch.chdir(tmp_path)
  monkeypatch.setattr(data_sources, 'PROJECT_ROOT', str(tmp_path / 'root'))
  out = tmp_path / 'R.md'
  text = run_lib.run_all(['vae_mlp_mnist8k', 'vae_conv_mnist8k'],
                         runs_dir=str(tmp_path / 'runs'), out=str(out),
                         quick=True)
  assert 'skipped: data file `../shared/data/mnist/mnist8k.npz` not found' in (
      text)
  assert not (tmp_path / 'runs' / 'vae_mlp_mnist8k' / 'result.json').exists()


def test_reproduce_command_names_the_overrides():
  spec = catalogue.BY_NAME['vae_mlp_mnist8k']
  cmd = specs_lib.command(spec, 'runs/results/vae_mlp_mnist8k', quick=False)
  assert cmd == ('python -m experiments.main '
                 '--config=experiments/configs/vae.py:mnist8k '
                 '--workdir=runs/results/vae_mlp_mnist8k')
  config = specs_lib.build_config(spec, quick=True)
  assert config.train.num_steps == specs_lib.QUICK_STEPS
  assert config.eval.estimators.iwae.num_samples == 16


def test_fresh_deletes_only_workdirs(tmp_path):
  stranger = tmp_path / 'not_a_workdir'
  stranger.mkdir()
  (stranger / 'notes.txt').write_text('keep me')
  with pytest.raises(app.UsageError, match='does not look like a workdir'):
    run_lib.remove_workdir(str(stranger))
  assert (stranger / 'notes.txt').exists()
  workdir = tmp_path / 'run'
  (workdir / 'checkpoints').mkdir(parents=True)
  run_lib.remove_workdir(str(workdir))
  assert not workdir.exists()


def test_time_train_step_times_a_donated_step_without_recompiling():
  def step(state, batch, key):
    del key
    x = batch['image'].astype(jnp.float32).mean()
    return state + x, {'loss': x}

  batch = machine.random_batch((4, 4, 1), 8)
  assert batch['image'].dtype == jnp.uint8 and batch['image'].shape == (
      8, 4, 4, 1)
  r = machine.time_train_step(step, jnp.zeros(()), batch, steps=3, warmup=1)
  assert r['recompilations'] == 0
  assert r['images_per_s'] == pytest.approx(8 / r['step_s'])
  assert r['compile_s'] > 0 and r['step_s'] > 0
  assert float(r['metrics']['loss']) == pytest.approx(
      float(batch['image'].astype(jnp.float32).mean()))


def test_full_records_outlive_the_workdirs(tmp_path, repo_cwd, monkeypatch):
  """A full run's record lands in records_dir; RESULTS.md renders from it
  after the workdir is gone (a fresh clone), and nothing is retrained."""
  runs_dir, records = tmp_path / 'runs', tmp_path / 'records'
  name = 'kmeans_digits'  # the cheapest full experiment (Lloyd steps)
  # Without its sample-quality extra (a classifier trained for it: tested
  # with the quick runs above), and 4 of its 100 Lloyd steps (each a pass
  # over the whole training split): a full run is one without --quick, to
  # the num_steps of its spec.
  spec = catalogue.BY_NAME[name]
  monkeypatch.setitem(catalogue.BY_NAME, name, dataclasses.replace(
      spec, evaluations=(),
      overrides=spec.overrides + (('train.num_steps', 4),)))
  text = run_lib.run_all([name], runs_dir=str(runs_dir),
                         out=str(tmp_path / 'R.md'), quick=False,
                         records_dir=str(records))
  record = json.loads((records / f'{name}.json').read_text())
  assert record == json.loads((runs_dir / name / 'result.json').read_text())
  assert record['quick'] is False and record['step'] == record['num_steps']
  assert record['num_steps'] == 4 and '--config.train.num_steps=4' in (
      record['command'])
  row = _table_row(text, catalogue.TABLES[catalogue.CODES].heading, name)
  assert f'{record["test_metrics"]["recon_error"]:.4f}' in row
  assert f'from {records}/*.json' in text
  # The final sample grid is kept beside the record and linked.
  grid = records / f'{name}_samples.png'
  assert record['samples_png'] == str(grid) and grid.stat().st_size > 0
  assert f']({grid})' in text
  # ... shown as the summary's thumbnail and in the gallery beside R.md.
  assert f'<img src="{grid}" width="{render_lib.THUMB_WIDTH}">' in text
  gallery = (tmp_path / render_lib.GALLERY_FILE).read_text()
  assert f'| `{name}` |' in gallery and f'<img src="{grid}"' in gallery
  # A record stored before grids were kept gets its grid from the workdir.
  stripped = {k: v for k, v in record.items() if k != 'samples_png'}
  (records / f'{name}.json').write_text(json.dumps(stripped))
  grid.unlink()
  run_lib.run_all([name], runs_dir=str(runs_dir), out=str(tmp_path / 'R1.md'),
                  quick=False, records_dir=str(records))
  assert json.loads((records / f'{name}.json').read_text()) == record
  assert grid.exists()
  shutil.rmtree(runs_dir)
  again = run_lib.run_all([name], runs_dir=str(runs_dir),
                          out=str(tmp_path / 'R2.md'), quick=False,
                          records_dir=str(records))
  assert not runs_dir.joinpath(name).exists()  # reused, not retrained
  assert again == text


def test_quick_runs_keep_no_separate_records(tmp_path):
  with pytest.raises(app.UsageError, match='--records_dir'):
    run_lib.run_all(['kmeans_digits'], runs_dir=str(tmp_path / 'runs'),
                    out=str(tmp_path / 'R.md'), quick=True,
                    records_dir=str(tmp_path / 'records'))


def test_ordering_line_ranks_ours_beside_the_papers():
  specs = [catalogue.BY_NAME[n] for n in
           ('nade_mnist8k', 'pixelcnn_mnist8k', 'diagonal_bilstm_mnist8k')]
  records = {'nade_mnist8k': {'test_nll_nats': 90.0},
             'pixelcnn_mnist8k': {'test_nll_nats': 95.0},
             'diagonal_bilstm_mnist8k': {'test_nll_nats': 85.0}}
  (line, _) = render_lib.ordering_lines(records, specs)
  assert ('ours: `diagonal_bilstm_mnist8k` < `nade_mnist8k` < '
          '`pixelcnn_mnist8k`') in line
  assert ("papers': `diagonal_bilstm_mnist8k` < `pixelcnn_mnist8k` < "
          '`nade_mnist8k`') in line
  # (dbl, nade) and (dbl, pixelcnn) agree; (nade, pixelcnn) does not.
  assert '2 of 3 pairs' in line
  assert ('Out of order: `nade_mnist8k` vs `pixelcnn_mnist8k` (ours 90.00 '
          "vs 95.00, the papers' 88.33 vs 81.30)") in line
  assert line.count(' vs `') == 1
  assert render_lib.ordering_lines({'nade_mnist8k': {'test_nll_nats': 90.0}},
                                specs) == []
  # One published figure for both rows (the VAEs share Burda et al.'s):
  # no ranking to compare with.
  vaes = [catalogue.BY_NAME[n] for n in ('vae_mlp_mnist8k', 'vae_conv_mnist8k')]
  assert render_lib.ordering_lines({'vae_mlp_mnist8k': {'test_nll_nats': 93.0},
                                 'vae_conv_mnist8k': {'test_nll_nats': 88.0}},
                                vaes) == []


def test_a_run_stopped_early_writes_no_record(tmp_path, repo_cwd,
                                              monkeypatch):
  """SIGTERM makes the trainer save and return before num_steps: that run
  must not be evaluated and recorded as if it had finished."""
  original = train.Experiment.train

  def stopped_early(self):
    self.config.train.num_steps = 2  # where the signal stopped it
    return original(self)

  monkeypatch.setattr(train.Experiment, 'train', stopped_early)
  runs_dir, records = tmp_path / 'runs', tmp_path / 'records'
  with pytest.raises(run_lib.Interrupted, match='stopped at step 2 of 100'):
    run_lib.run_all(['kmeans_digits'], runs_dir=str(runs_dir),
                    out=str(tmp_path / 'R.md'), quick=False,
                    records_dir=str(records))
  assert not (runs_dir / 'kmeans_digits' / 'result.json').exists()
  assert not records.exists() or not list(records.iterdir())
  assert not (tmp_path / 'R.md').exists()


def test_a_neutral_field_added_later_does_not_stale_old_records(monkeypatch):
  spec = catalogue.BY_NAME['gan_ring8']
  current = specs_lib.config_dict(
      specs_lib.build_config(spec, False, specs_lib.DEFAULT_RUNS_DIR))
  old = json.loads(json.dumps(current))
  del old['model']['d_dropout']  # a record from before the field existed
  assert records_lib.stale_reason(spec, {'config': old}, False) is None
  old['model']['d_steps'] = 7
  assert 'model.d_steps' in records_lib.stale_reason(spec, {'config': old},
                                                      False)
  del old['model']['d_steps']
  old['model']['d_steps'] = current['model']['d_steps']
  # Once the preset sets the added field to another value, the record is.
  monkeypatch.setitem(catalogue.NEUTRAL_ADDED_FIELDS, 'model.d_dropout', 0.5)
  assert 'model.d_dropout' in records_lib.stale_reason(spec, {'config': old},
                                                   False)


def test_a_new_kind_of_row_fits_the_table_of_what_it_measures(
    tmp_path, repo_cwd, monkeypatch):
  """Tables are keyed by what a row measures, not by family: a bound on
  8-bit data (say, of a future family) is one catalogue entry in the 8-bit
  table, rendered by the same layout."""
  base = catalogue.BY_NAME['pixelcnnpp_digits']
  spec = dataclasses.replace(base, name='new_bound_digits', label='A bound',
                             nll_estimator='bound')
  monkeypatch.setattr(catalogue, 'EXPERIMENTS',
                      catalogue.EXPERIMENTS + (spec,))
  monkeypatch.setitem(catalogue.BY_NAME, spec.name, spec)
  with open(f'results/{base.name}.json') as f:
    record = json.load(f)
  record.update(name=spec.name, nll_estimator='bound',
                estimators={'bound': {'num_samples': 4}},
                test_nll_nats=123.456)
  records_dir = tmp_path / 'records'
  records_dir.mkdir()
  (records_dir / f'{spec.name}.json').write_text(json.dumps(record))
  text = render_lib.render(str(tmp_path / 'runs'), quick=False,
                           records_dir=str(records_dir))
  eight_bit = catalogue.TABLES[catalogue.EIGHT_BIT].heading
  section = text.split(f'## {eight_bit}', 1)[1].split('\n## ', 1)[0]
  row = next(l for l in section.splitlines()
             if l.startswith('| `new_bound_digits` |'))
  assert '| A bound | 572,847 |' in row
  assert '| **123.46** (BOUND k=4) |' in row
  # Its summary line names the same number as a bound.
  line = next(l for l in text.split('## Summary', 1)[1].splitlines()
              if l.startswith('| `new_bound_digits` |'))
  assert '| **123.46 nats (' in line and ' (BOUND k=4) |' in line
  assert 'STALE' not in text and 'Other result files' not in text
  for key, table in catalogue.TABLES.items():  # listed in its table only
    if key != catalogue.EIGHT_BIT:
      assert '`new_bound_digits`' not in text.split(
          f'## {table.heading}', 1)[1].split('\n## ', 1)[0]


def test_the_results_package_names_no_family():
  """What a row shows comes from the catalogue and its record: the code of
  experiments.results (docstrings aside) names no family. The feature
  classifier is the exception: the runner trains it for the sample-quality
  evaluation and records it as that evaluation's 'classifier'."""
  package = helpers.REPO_ROOT / 'experiments' / 'results'
  names = [n for n in models.FAMILIES if n != 'classifier']
  family = re.compile(r'\b(' + '|'.join(names) + r')\b', re.IGNORECASE)
  for path in sorted(package.glob('*.py')):
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef,
                                       ast.ClassDef)) and node.body
                  and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
      if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if id(node) not in docstrings:
          assert not family.search(node.value), (path.name, node.value)
      elif isinstance(node, (ast.Name, ast.Attribute, ast.alias,
                             ast.FunctionDef, ast.arg)):
        name = (getattr(node, 'id', None) or getattr(node, 'attr', None) or
                getattr(node, 'name', None) or getattr(node, 'arg', None))
        assert not family.search(name.replace('_', ' ')), (path.name, name)


def test_the_catalogue_names_known_tables_layouts_and_evaluations():
  names = [spec.name for spec in catalogue.EXPERIMENTS]
  assert len(set(names)) == len(names) == len(catalogue.BY_NAME)
  for table in catalogue.TABLES.values():
    assert table.layout in render_lib.LAYOUTS
    assert not table.evaluation or table.evaluation in evaluations.FIELDS
  for spec in catalogue.EXPERIMENTS:
    assert spec.table in catalogue.TABLES, spec.name
    for ev in spec.evaluations:
      fn = evaluations.get(ev.name)
      assert ev.name in evaluations.FIELDS
      # The options are the evaluation's keyword arguments (a classifier
      # named by its dataset is passed in as the trained classifier).
      inspect.signature(fn).bind(None, None, out_dir='', **dict(ev.options))
