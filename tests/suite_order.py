"""The order in which ``-n N`` runs the suite's units: heaviest first.

With ``-n N`` the session schedules xdist's ``loadscope`` units (a test
module, a test class, a notebook: `scope_of`, as xdist splits a test id).
xdist hands the units out in queue order, one more whenever a worker has at
most two tests left, and by default orders that queue by the number of
tests in each unit, which says little about their time: a notebook is one
test of half a minute, a module of fifty parameter cases may take two
seconds. A long unit handed out last keeps one worker busy while the others
idle. tests/conftest.py therefore turns xdist's reordering off and sorts the
collected items so that the units come heaviest first (longest processing
time first), by the seconds in `WEIGHTS_PATH`; a unit missing from the
table weighs the table's median (`default_weight`). Ties keep the
collection order, and so does every unit's own tests.

The table is measured, not hand-written. To regenerate it, run the whole
suite with a JUnit report and read the report::

  python -m pytest -n 2 --nbmake tests notebooks --junitxml=/tmp/suite.xml
  python -m tests.suite_order /tmp/suite.xml --write

which also prints what `simulate` predicts for two workers on those times:
xdist's default queue against the weighted one. The times of a loaded
machine do as well as a quiet one's: only their ratios order the units.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
from typing import Iterable, Sequence
from xml.etree import ElementTree

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
WEIGHTS_PATH = REPO_ROOT / 'tests' / 'suite_weights.json'


def scope_of(nodeid: str) -> str:
  """xdist's loadscope unit of a test id: all before its last ``::``."""
  return nodeid.rsplit('::', 1)[0]


def load_weights(path: str | pathlib.Path = WEIGHTS_PATH) -> dict[str, float]:
  """{unit: seconds} from the committed table."""
  with open(path, encoding='utf-8') as f:
    weights = json.load(f)
  if not isinstance(weights, dict) or not all(
      isinstance(v, (int, float)) and v >= 0 for v in weights.values()):
    raise ValueError(f'{path}: expected a JSON object of unit -> seconds '
                     '(numbers >= 0).')
  return {str(k): float(v) for k, v in weights.items()}


def default_weight(weights: dict[str, float]) -> float:
  """What a unit missing from the table weighs: the table's median."""
  return statistics.median(weights.values()) if weights else 0.0


def order_units(nodeids: Sequence[str], weights: dict[str, float],
                default: float | None = None) -> list[int]:
  """The indices of `nodeids` with their units heaviest first.

  A unit's tests stay together and in their order; units of equal weight
  keep the order of their first test.
  """
  if default is None:
    default = default_weight(weights)
  units: dict[str, list[int]] = {}
  for i, nodeid in enumerate(nodeids):
    units.setdefault(scope_of(nodeid), []).append(i)
  ranked = sorted(enumerate(units.items()),
                  key=lambda e: (-weights.get(e[1][0], default), e[0]))
  return [i for _, (_, members) in ranked for i in members]


def simulate(units: Sequence[tuple[str, Sequence[float]]],
             num_workers: int = 2) -> tuple[float, list[float]]:
  """Predicted wall time of xdist's loadscope run of `units`, in order.

  `units` is the queue: (unit, the seconds of each of its tests). As
  xdist's LoadScopeScheduling does, each worker gets one unit, then one
  more while it has at most two tests pending, and after each finished
  test one more unit whenever it has at most two tests left; a worker runs
  its tests in the order it got them. Start-up and collection are left
  out.

  Returns:
    (makespan, the time each worker finishes).
  """
  queue = [list(times) for _, times in units]
  pending: list[list[float]] = [[] for _ in range(num_workers)]
  clock = [0.0] * num_workers

  def assign(w: int) -> None:
    if queue:
      pending[w].extend(queue.pop(0))

  for w in range(num_workers):
    assign(w)
  for w in range(num_workers):
    if len(pending[w]) <= 2:
      assign(w)
  while any(pending):
    # The next test to finish, over all workers (ties: the lower worker).
    w = min((w for w in range(num_workers) if pending[w]),
            key=lambda w: (clock[w] + pending[w][0], w))
    clock[w] += pending[w].pop(0)
    if queue and len(pending[w]) <= 2:
      assign(w)
  return max(clock), clock


def xdist_default_queue(nodeids: Sequence[str]) -> list[str]:
  """The units in the order xdist queues them by default: more tests
  first, ties in collection order (``--loadscope-reorder``)."""
  counts: dict[str, int] = {}
  for nodeid in nodeids:
    scope = scope_of(nodeid)
    counts[scope] = counts.get(scope, 0) + 1
  return sorted(counts, key=lambda s: -counts[s])  # stable


def _scope_of_junit(classname: str, name: str, root: pathlib.Path) -> str:
  """The loadscope unit of a JUnit testcase (pytest writes the test id's
  path with '.' for '/' and no '.py' as the classname)."""
  if classname.endswith('.ipynb'):  # nbmake: <dir>.<name>.ipynb
    return classname[:-len('.ipynb')].replace('.', '/') + '.ipynb'
  parts = classname.split('.')
  for k in range(1, len(parts) + 1):
    path = '/'.join(parts[:k]) + '.py'
    if (root / path).is_file():
      return '::'.join([path] + parts[k:])
  raise ValueError(f'JUnit testcase {classname}::{name}: no test file '
                   f'{classname.replace(".", "/")}.py under {root}.')


def read_junit(path: str | pathlib.Path, root: pathlib.Path = REPO_ROOT
               ) -> list[tuple[str, list[float]]]:
  """[(unit, its tests' seconds)] from a pytest JUnit XML report, the units
  in the order of their first testcase."""
  units: dict[str, list[float]] = {}
  for case in ElementTree.parse(path).getroot().iter('testcase'):
    scope = _scope_of_junit(case.get('classname', ''), case.get('name', ''),
                            root)
    units.setdefault(scope, []).append(float(case.get('time', 0.0)))
  return list(units.items())


def weights_of(units: Iterable[tuple[str, Sequence[float]]]
               ) -> dict[str, float]:
  """{unit: total seconds, to 0.1 s}, heaviest first."""
  totals = {u: round(sum(t), 1) for u, t in units}
  return dict(sorted(totals.items(), key=lambda e: (-e[1], e[0])))


def collected(root: pathlib.Path = REPO_ROOT) -> list[str]:
  """The suite's test ids in collection order (a ``--collect-only`` run of
  README's test command, in one process: no reordering)."""
  proc = subprocess.run(
      [sys.executable, '-m', 'pytest', '--collect-only', '-q', '--nbmake',
       '-p', 'no:cacheprovider', 'tests', 'notebooks'],
      cwd=root, capture_output=True, text=True, check=True)
  return [line for line in proc.stdout.splitlines() if '::' in line]


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(
      prog='python -m tests.suite_order', description=__doc__.split('\n')[0])
  parser.add_argument('junitxml', help='a JUnit XML report of the suite')
  parser.add_argument('--write', action='store_true',
                      help=f'write the weights to {WEIGHTS_PATH}')
  parser.add_argument('--workers', type=int, default=2)
  args = parser.parse_args(argv)
  units = read_junit(args.junitxml)
  weights = weights_of(units)
  times = dict(units)
  nodeids = collected()
  missing = sorted({scope_of(n) for n in nodeids} - set(times))
  if missing:
    print(f'not in the report (left out of the simulation): {missing}')
  queues = {
      'xdist default order': xdist_default_queue(nodeids),
      'heaviest first': list(dict.fromkeys(
          scope_of(nodeids[i]) for i in order_units(nodeids, weights)))}
  total = sum(weights.values())
  print(f'{len(units)} units, {sum(len(t) for t in times.values())} tests, '
        f'{total:.1f} s in all ({total / args.workers:.1f} s per worker at '
        'best)')
  for label, queue in queues.items():
    makespan, clocks = simulate([(u, times[u]) for u in queue if u in times],
                                args.workers)
    print(f'{label}: predicted {makespan:.1f} s '
          f'(workers finish at {", ".join(f"{c:.1f}" for c in clocks)})')
  if args.write:
    with open(WEIGHTS_PATH, 'w', encoding='utf-8') as f:
      json.dump(weights, f, indent=1)
      f.write('\n')
    print(f'wrote {WEIGHTS_PATH}')


if __name__ == '__main__':
  main(sys.argv[1:])
