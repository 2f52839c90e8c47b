"""Fixtures shared across the test suite, and one compilation cache for it.

XLA compilation dominates the suite's time, and many tests compile the same
programs: the smoke configs' steps in several files, and every test that
starts a fresh process (resume, SIGTERM/SIGKILL, the CLI, two-process
runs, the notebooks' kernels). The session therefore points JAX's
persistent compilation cache at one temporary directory, shared by the
xdist workers and the processes they start (they inherit the environment
variable), and removes it at the end. A cached executable is the same
compiled program, so results are bitwise those of a fresh compile. A
``JAX_COMPILATION_CACHE_DIR`` set by the caller is left alone.
"""

import os
import shutil
import tempfile

import jax
import pytest

from tests import helpers

_CACHE_ENV = 'JAX_COMPILATION_CACHE_DIR'
_OWNED_CACHE = None


def pytest_configure(config):
  global _OWNED_CACHE
  if hasattr(config, 'workerinput'):  # an xdist worker: inherits the env
    return
  if not os.environ.get(_CACHE_ENV):
    _OWNED_CACHE = tempfile.mkdtemp(prefix='jaxgen-test-xla-cache-')
    os.environ[_CACHE_ENV] = _OWNED_CACHE
  # This process may have imported jax before the variable was set.
  jax.config.update('jax_compilation_cache_dir', os.environ[_CACHE_ENV])


def pytest_unconfigure(config):
  if hasattr(config, 'workerinput') or _OWNED_CACHE is None:
    return
  shutil.rmtree(_OWNED_CACHE, ignore_errors=True)


@pytest.fixture
def repo_cwd(monkeypatch):
  """Runs the test from the repository root (relative data paths)."""
  monkeypatch.chdir(helpers.REPO_ROOT)
  return helpers.REPO_ROOT
