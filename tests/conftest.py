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

The tests' programs are small and most run a handful of times, so the
time XLA:CPU spends generating fast code costs far more than it saves: the
session compiles with ``--xla_backend_optimization_level=0`` (no LLVM
optimisation of the machine code) and ``--xla_cpu_use_fusion_emitters=false``
(fusions emitted by the elemental IR emitter instead of the MLIR fusion
emitters, which roughly halves the backend's compile time of the smoke
models) (`helpers.COMPILE_XLA_FLAGS`, added to ``XLA_FLAGS`` before any
backend starts and passed on to the processes the tests start, so the test
process and its subprocesses compile alike). The HLO passes (fusion,
layout) still run; only how their result becomes machine code changes,
which changes speed, not the semantics the tests check. The session also
adds the XLA options every experiment runs with
(`experiments.entry.missing_xla_flags`), so that the tests compute as the
scripts they start do. A flag the caller's ``XLA_FLAGS`` already sets is
left as the caller set it. The notebooks' kernels start without the added
flags: they train hundreds of steps and time the samplers, so they run as
a reader runs them.

With ``-n N`` and no ``--dist``, xdist's default scheduling deals the first
tests out one by one, so most modules' tests would be split over the
workers and each worker would build the module's fixtures and compile its
programs again; the session schedules whole modules instead (``loadscope``).
xdist would queue those units by their number of tests; the session queues
them heaviest first instead, by measured seconds (`tests.suite_order`), so
that no long module or notebook starts last while the other workers idle.
A ``--dist`` or ``--(no-)loadscope-reorder`` on the command line is left
alone.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import jax
import pytest

from experiments import entry
from tests import helpers
from tests import suite_order

_CACHE_ENV = 'JAX_COMPILATION_CACHE_DIR'
_ADDED_FLAGS_ENV = 'JAXGEN_TEST_ADDED_XLA_FLAGS'  # what pytest_configure added
_WEIGHTED_ORDER = 'jaxgen_weighted_order'  # a worker's workerinput key
_OWNED_CACHE = None


def _dist_chosen(config) -> bool:
  """Whether the command line names an xdist scheduling (--dist, -d)."""
  return any(a == '-d' or a.startswith('--dist')
             for a in config.invocation_params.args)


def _reorder_chosen(config) -> bool:
  """Whether the command line says how xdist orders loadscope units."""
  return any(a in ('--loadscope-reorder', '--no-loadscope-reorder')
             for a in config.invocation_params.args)


def pytest_configure(config):
  global _OWNED_CACHE
  config.pluginmanager.register(_NotebookFlags(), 'jaxgen_notebook_flags')
  if hasattr(config, 'workerinput'):  # an xdist worker: inherits the env
    return
  if getattr(config.option, 'dist', 'no') == 'load' and not _dist_chosen(
      config):
    # `-n N` alone: whole modules go to one worker (and each notebook), so
    # a module's shared fixtures (trained smoke states, compiled
    # functions) are built once, not once per worker that runs a share.
    config.option.dist = 'loadscope'
    if not _reorder_chosen(config):
      # xdist keeps the collected order of the units, which the workers
      # sort heaviest first (pytest_collection_modifyitems).
      config.option.loadscopereorder = False
      config.pluginmanager.register(_WeightedOrder(), _WEIGHTED_ORDER)
  if not os.environ.get(_CACHE_ENV):
    _OWNED_CACHE = tempfile.mkdtemp(prefix='jaxgen-test-xla-cache-')
    os.environ[_CACHE_ENV] = _OWNED_CACHE
  flags = os.environ.get('XLA_FLAGS', '')
  os.environ.pop(_ADDED_FLAGS_ENV, None)
  given = {helpers.flag_name(f) for f in flags.split()}
  added = _known_flags(tuple(f for f in helpers.COMPILE_XLA_FLAGS
                             if helpers.flag_name(f) not in given))
  added += entry.missing_xla_flags(flags)
  if added:
    os.environ['XLA_FLAGS'] = ' '.join((flags,) + added).strip()
    os.environ[_ADDED_FLAGS_ENV] = ' '.join(added)
  # This process may have imported jax before the variable was set.
  jax.config.update('jax_compilation_cache_dir', os.environ[_CACHE_ENV])


def _known_flags(flags: tuple[str, ...]) -> tuple[str, ...]:
  """`flags`, less the newer ones if this XLA does not know them.

  XLA aborts on an unknown flag, and a later jaxlib may retire
  `helpers.NEWER_XLA_FLAGS`: one child process tries them first.
  """
  newer = tuple(f for f in flags if f in helpers.NEWER_XLA_FLAGS)
  if not newer:
    return flags
  env = dict(os.environ, XLA_FLAGS=' '.join(newer), JAX_PLATFORMS='cpu')
  probe = subprocess.run(
      [sys.executable, '-c', 'import jax; jax.jit(lambda x: x + 1)(1.0)'],
      env=env, capture_output=True, check=False, timeout=120)
  if probe.returncode == 0:
    return flags
  return tuple(f for f in flags if f not in newer)


def pytest_unconfigure(config):
  if hasattr(config, 'workerinput') or _OWNED_CACHE is None:
    return
  shutil.rmtree(_OWNED_CACHE, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
  """In the workers of a weighted loadscope run: units heaviest first."""
  if not getattr(config, 'workerinput', {}).get(_WEIGHTED_ORDER):
    return
  order = suite_order.order_units([item.nodeid for item in items],
                                  suite_order.load_weights())
  items[:] = [items[i] for i in order]


class _WeightedOrder:
  """Tells each xdist worker to sort its collection (the workers collect;
  xdist queues the units in the order they did). Registered only when xdist
  runs the session."""

  def pytest_configure_node(self, node):
    node.workerinput[_WEIGHTED_ORDER] = True


class _NotebookFlags:
  """A notebook's kernel inherits XLA_FLAGS without the session's additions.

  Registered as a plugin, not a conftest hook: this conftest's own hooks
  reach only the items under tests/.
  """

  @pytest.hookimpl(hookwrapper=True)
  def pytest_runtest_call(self, item):
    added = os.environ.get(_ADDED_FLAGS_ENV, '').split()
    if item.path.suffix != '.ipynb' or not added:
      yield
      return
    flags = os.environ['XLA_FLAGS']
    kept = ' '.join(f for f in flags.split() if f not in added)
    if kept:
      os.environ['XLA_FLAGS'] = kept
    else:
      del os.environ['XLA_FLAGS']
    try:
      yield
    finally:
      os.environ['XLA_FLAGS'] = flags


@pytest.fixture
def repo_cwd(monkeypatch):
  """Runs the test from the repository root (relative data paths)."""
  monkeypatch.chdir(helpers.REPO_ROOT)
  return helpers.REPO_ROOT
