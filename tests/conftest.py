"""Fixtures shared across the test suite."""

import pytest

from tests import helpers


@pytest.fixture
def repo_cwd(monkeypatch):
  """Runs the test from the repository root (relative data paths)."""
  monkeypatch.chdir(helpers.REPO_ROOT)
  return helpers.REPO_ROOT
