"""`records.git_revision`: the provenance written into every record."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from experiments.results import records

pytestmark = pytest.mark.skipif(shutil.which('git') is None,
                                reason='git is not installed')


def _git(cwd, *args):
  subprocess.run(['git', *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path, monkeypatch):
  """A one-commit repository with code, a record and the rendered pages."""
  os.makedirs(tmp_path / 'results')
  os.makedirs(tmp_path / 'pkg')
  for path in ('pkg/model.py', 'results/a.json', 'RESULTS.md', 'GALLERY.md'):
    (tmp_path / path).write_text('v1\n')
  _git(tmp_path, 'init', '-q')
  _git(tmp_path, 'add', '.')
  _git(tmp_path, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q',
       '-m', 'init')
  monkeypatch.chdir(tmp_path / 'pkg')  # the revision reads the whole checkout
  return tmp_path


def test_clean_checkout_has_no_dirty_mark(checkout):
  revision = records.git_revision()
  assert revision is not None and len(revision) == 12, revision


def test_rewritten_records_and_pages_are_outputs_not_code(checkout):
  for path in ('results/a.json', 'RESULTS.md', 'GALLERY.md'):
    (checkout / path).write_text('v2\n')
  (checkout / 'results' / 'new.json').write_text('untracked\n')
  assert not records.git_revision().endswith('+dirty')


def test_changed_code_is_dirty(checkout):
  (checkout / 'results' / 'a.json').write_text('v2\n')
  (checkout / 'pkg' / 'model.py').write_text('v2\n')
  assert records.git_revision().endswith('+dirty')
