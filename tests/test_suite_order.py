"""The suite's unit order under ``-n N`` (tests/suite_order.py): the sort,
the weights table, and the simulation of xdist's loadscope scheduling
against xdist's own scheduler."""

from __future__ import annotations

import random
import types

import pytest
from xdist.scheduler import loadscope

from tests import suite_order


def test_units_go_heaviest_first_and_keep_their_tests_in_order():
  nodeids = ['tests/a.py::t1', 'tests/a.py::t2', 'tests/b.py::t1',
             'tests/c.py::K::t1', 'tests/c.py::t3', 'tests/c.py::K::t2',
             'nb/x.ipynb::x.ipynb', 'tests/d.py::t1']
  weights = {'tests/a.py': 1.0, 'tests/b.py': 5.0, 'tests/c.py::K': 3.0,
             'tests/c.py': 1.0, 'nb/x.ipynb': 9.0}
  order = suite_order.order_units(nodeids, weights)
  # d.py is missing: it weighs the median (3.0) and ties with c.py::K,
  # which was collected first; a.py and c.py tie at 1.0 likewise.
  assert [nodeids[i] for i in order] == [
      'nb/x.ipynb::x.ipynb', 'tests/b.py::t1', 'tests/c.py::K::t1',
      'tests/c.py::K::t2', 'tests/d.py::t1', 'tests/a.py::t1',
      'tests/a.py::t2', 'tests/c.py::t3']
  assert sorted(order) == list(range(len(nodeids)))
  assert suite_order.scope_of('tests/m.py::test_f[a-b]') == 'tests/m.py'


def test_the_committed_table_names_units_of_the_suite():
  weights = suite_order.load_weights()
  root = suite_order.REPO_ROOT
  # The notebooks are the heaviest units: a new one must be measured, not
  # weighed at the median and handed out last.
  notebooks = sorted(p.relative_to(root).as_posix()
                     for p in (root / 'notebooks').glob('*.ipynb'))
  assert notebooks and set(notebooks) <= set(weights)
  for unit in weights:
    assert (root / unit.split('::')[0]).is_file(), unit
  # The table is sorted heaviest first, as `weights_of` writes it.
  assert list(weights.values()) == sorted(weights.values(), reverse=True)


def test_bad_table_is_one_clear_error(tmp_path):
  path = tmp_path / 'w.json'
  path.write_text('{"tests/a.py": "slow"}')
  with pytest.raises(ValueError, match='unit -> seconds'):
    suite_order.load_weights(path)


def test_junit_report_gives_each_unit_its_seconds(tmp_path):
  (tmp_path / 'tests' / 'models').mkdir(parents=True)
  (tmp_path / 'tests' / 'models' / 'test_m.py').touch()
  report = tmp_path / 'suite.xml'
  report.write_text(
      '<testsuites><testsuite>'
      '<testcase classname="tests.models.test_m" name="test_a" time="1.5"/>'
      '<testcase classname="notebooks.vae.ipynb" name="vae.ipynb" time="30"/>'
      '<testcase classname="tests.models.test_m.Case" name="test_b" '
      'time="0.25"/>'
      '<testcase classname="tests.models.test_m" name="test_c[x]" time="2"/>'
      '</testsuite></testsuites>')
  units = suite_order.read_junit(report, root=tmp_path)
  assert units == [('tests/models/test_m.py', [1.5, 2.0]),
                   ('notebooks/vae.ipynb', [30.0]),
                   ('tests/models/test_m.py::Case', [0.25])]
  assert list(suite_order.weights_of(units).items()) == [
      ('notebooks/vae.ipynb', 30.0), ('tests/models/test_m.py', 3.5),
      ('tests/models/test_m.py::Case', 0.2)]


def test_xdist_default_queue_counts_tests():
  nodeids = ['a.py::1', 'b.py::1', 'b.py::2', 'c.ipynb::c', 'd.py::1']
  assert suite_order.xdist_default_queue(nodeids) == [
      'b.py', 'a.py', 'c.ipynb', 'd.py']


class _Node:
  """A stand-in xdist worker: records the test indices it is sent."""

  def __init__(self, name):
    self.gateway = types.SimpleNamespace(id=name)
    self.shutting_down = False
    self.sent: list[int] = []

  def send_runtest_some(self, indices):
    self.sent.extend(indices)

  def shutdown(self):
    self.shutting_down = True


def _xdist_makespan(units, num_workers):
  """Runs xdist's LoadScopeScheduling on a clock: each node runs what it
  was sent, in order, reporting each test as it finishes."""
  option = types.SimpleNamespace(loadscopereorder=False)
  config = types.SimpleNamespace(option=option,
                                 getvalue=lambda name: ['popen'] * num_workers)
  sched = loadscope.LoadScopeScheduling(config)
  nodes = [_Node(f'gw{i}') for i in range(num_workers)]
  collection = [f'{u}::{j}' for u, times in units for j in range(len(times))]
  seconds = [t for _, times in units for t in times]
  for node in nodes:
    sched.add_node(node)
    sched.add_node_collection(node, collection)
  sched.schedule()
  clock, done = [0.0] * num_workers, [0] * num_workers
  while True:
    busy = [w for w in range(num_workers) if done[w] < len(nodes[w].sent)]
    if not busy:
      return max(clock)
    w = min(busy, key=lambda w: (clock[w] + seconds[nodes[w].sent[done[w]]],
                                 w))
    index = nodes[w].sent[done[w]]
    clock[w] += seconds[index]
    done[w] += 1
    sched.mark_test_complete(nodes[w], index)


def test_simulation_matches_xdists_scheduler():
  # Hand-checked: the first worker takes `a`, then `c` at once (one test
  # pending); the second takes `b` and finds the queue empty.
  assert suite_order.simulate([('a', [1.0]), ('b', [1.0]), ('c', [10.0])]
                              ) == (11.0, [11.0, 1.0])
  rng = random.Random(0)
  for trial in range(30):
    units = [(f'u{i}.py', [round(rng.expovariate(1.0), 2)
                           for _ in range(rng.choice([1, 1, 2, 3, 6]))])
             for i in range(rng.randint(2, 25))]
    workers = 2 + trial % 2
    makespan, _ = suite_order.simulate(units, workers)
    assert makespan == pytest.approx(_xdist_makespan(units, workers)), units


def test_weighted_order_beats_a_heavy_unit_last():
  units = [('a', [1.0] * 4), ('b', [1.0] * 3), ('c', [0.5]), ('d', [6.0])]
  by_count = dict(units)
  default = [(u, by_count[u]) for u in suite_order.xdist_default_queue(
      [f'{u}::{i}' for u, t in units for i in range(len(t))])]
  weights = suite_order.weights_of(units)
  heavy = sorted(units, key=lambda e: -weights[e[0]])
  assert suite_order.simulate(default)[0] == 10.0
  assert suite_order.simulate(heavy)[0] == 9.0


def test_conftest_sorts_only_a_weighted_workers_items(monkeypatch):
  from tests import conftest  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(suite_order, 'load_weights', lambda: {
      'tests/test_a.py': 1.0, 'notebooks/vae.ipynb': 30.0})
  items = [types.SimpleNamespace(nodeid=n) for n in (
      'tests/test_a.py::t', 'notebooks/vae.ipynb::vae.ipynb')]
  plain = types.SimpleNamespace()
  conftest.pytest_collection_modifyitems(plain, items)
  assert items[0].nodeid.startswith('tests/')
  worker = types.SimpleNamespace(workerinput={'jaxgen_weighted_order': True})
  conftest.pytest_collection_modifyitems(worker, items)
  assert items[0].nodeid.startswith('notebooks/')
