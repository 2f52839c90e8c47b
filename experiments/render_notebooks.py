r"""Executes the notebooks in place and stores their outputs, kept small.

  python -m experiments.render_notebooks
  python -m experiments.render_notebooks --only=vae,gans --dpi=50

Run from the project root. For each notebook under ``--notebooks_dir``
(or those named by ``--only``, without ``.ipynb``), clears its outputs,
executes it top to bottom with nbclient in a fresh ``python3`` kernel whose
working directory is the notebooks folder (as ``jupyter lab notebooks/``
and the test suite run it), and writes it back with the outputs. The
cells' sources are not changed.

Kept small and stable:

- figures: before the first cell the kernel runs `_SETUP` (not stored in
  the notebook), which sets matplotlib's inline backend to PNG at
  ``--dpi`` dots per inch through its rcParams, so no notebook needs its
  own setting; each PNG is then flattened onto white and stored with a
  palette of at most ``--colors`` colours (`shrink_png`);
- stderr streams (the trainer's progress bars and log lines) are dropped;
  stdout, results, figures and errors are kept;
- no execution timestamps (``record_timing`` off) and the notebook's own
  metadata is kept as it was, so a re-render differs from the stored file
  only where an output differs (printed wall times and figures change from
  run to run; the notebooks print their temporary workdirs as
  ``<tmp>/<name>``, never the machine's path).

A notebook whose cell raises is not written and the script exits with
status 1 after the others have run. The test suite executes the notebooks
itself (``--nbmake`` ignores stored outputs); tests/test_notebooks_stored.py
checks that the stored ones have outputs, no errors and small images.
"""

from __future__ import annotations

import base64
import copy
import io
import os
import sys
import time
from typing import Any

from absl import app
from absl import flags
import nbclient
import nbformat
from PIL import Image

from experiments import entry

# Run in the kernel before the first cell; not stored in the notebook.
_SETUP = '''\
%config InlineBackend.figure_formats = ['png']
%config InlineBackend.rc = {{'figure.dpi': {dpi}, 'savefig.dpi': {dpi}}}
import matplotlib
matplotlib.rcParams['figure.dpi'] = {dpi}
matplotlib.rcParams['savefig.dpi'] = {dpi}
'''


def notebook_paths(directory: str, only: list[str] | None = None
                   ) -> list[str]:
  """The ``*.ipynb`` files of `directory` (sorted), or those in `only`.

  Raises:
    entry.UsageError: a name in `only` has no notebook.
  """
  names = sorted(f[:-len('.ipynb')] for f in os.listdir(directory)
                 if f.endswith('.ipynb'))
  if only:
    unknown = sorted(set(only) - set(names))
    if unknown:
      raise entry.UsageError(f'--only: no notebook {unknown} in '
                             f'{directory!r}; there are {names}.')
    names = [n for n in names if n in only]
  return [os.path.join(directory, f'{n}.ipynb') for n in names]


def strip_outputs(nb: Any) -> Any:
  """A copy of `nb` without outputs and execution counts."""
  nb = copy.deepcopy(nb)
  for cell in nb.cells:
    if cell.cell_type == 'code':
      cell.outputs = []
      cell.execution_count = None
      cell.metadata.pop('execution', None)
  return nb


def shrink_png(data: str, colors: int) -> str:
  """A base64 PNG flattened onto white, with a palette of `colors` colours.

  Plots and sample grids need few colours; the palette PNG is a third to a
  half of matplotlib's RGBA one. ``colors = 0`` returns `data` unchanged.
  """
  if not colors:
    return data
  image = Image.open(io.BytesIO(base64.b64decode(data)))
  flat = Image.new('RGB', image.size, (255, 255, 255))
  flat.paste(image.convert('RGBA'), mask=image.convert('RGBA').getchannel('A'))
  small = flat.quantize(colors=colors, method=Image.Quantize.MEDIANCUT,
                        dither=Image.Dither.NONE)
  out = io.BytesIO()
  small.save(out, 'PNG', optimize=True)
  return base64.b64encode(out.getvalue()).decode('ascii')


def keep_small(nb: Any, colors: int) -> Any:
  """Drops stderr streams and execution timing metadata and shrinks PNG
  outputs (`shrink_png`), in place."""
  for cell in nb.cells:
    if cell.cell_type != 'code':
      continue
    cell.metadata.pop('execution', None)
    cell.outputs = [o for o in cell.outputs
                    if not (o.output_type == 'stream' and o.name == 'stderr')]
    for out in cell.outputs:
      if 'image/png' in out.get('data', {}):
        out.data['image/png'] = shrink_png(out.data['image/png'], colors)
  return nb


def render(path: str, *, dpi: int, colors: int, timeout: int) -> Any:
  """`path` executed with outputs kept small (not written).

  Raises:
    nbclient.exceptions.CellExecutionError: a cell raised.
  """
  original = nbformat.read(path, as_version=4)
  nb = strip_outputs(original)
  setup = nbformat.v4.new_code_cell(_SETUP.format(dpi=dpi))
  nb.cells.insert(0, setup)
  client = nbclient.NotebookClient(
      nb, timeout=timeout, kernel_name='python3', record_timing=False,
      resources={'metadata': {'path': os.path.dirname(path) or '.'}})
  client.execute()
  nb.cells.pop(0)
  offset = 1  # the setup cell took execution count 1
  for cell in nb.cells:
    if cell.cell_type == 'code' and cell.execution_count is not None:
      cell.execution_count -= offset
      for out in cell.outputs:
        if 'execution_count' in out and out.execution_count is not None:
          out.execution_count -= offset
  nb.metadata = original.metadata
  return keep_small(nb, colors)


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      notebooks_dir=flags.DEFINE_string('notebooks_dir', 'notebooks',
                                        'The folder of the notebooks.'),
      only=flags.DEFINE_list('only', [], 'Notebooks to render, by name '
                             'without .ipynb (default: all).'),
      dpi=flags.DEFINE_integer('dpi', 50, "Figures' dots per inch.",
                               lower_bound=10),
      colors=flags.DEFINE_integer('colors', 128, 'Palette size of stored '
                                  'PNGs (0: as matplotlib writes them).',
                                  lower_bound=0, upper_bound=256),
      timeout=flags.DEFINE_integer('timeout', 1800, 'Seconds one cell may '
                                   'run.', lower_bound=1))


def main(argv, flag_values: dict[str, Any]) -> int:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  f = {name: holder.value for name, holder in flag_values.items()}
  if not os.path.isdir(f['notebooks_dir']):
    raise entry.UsageError(f'--notebooks_dir={f["notebooks_dir"]!r} is not '
                           'a folder (run from the project root).')
  failed = []
  for path in notebook_paths(f['notebooks_dir'], f['only']):
    start = time.time()
    try:
      nb = render(path, dpi=f['dpi'], colors=f['colors'],
                  timeout=f['timeout'])
    except nbclient.exceptions.CellExecutionError as e:
      failed.append(path)
      print(f'{path}: FAILED, not written: {e}', flush=True)
      continue
    nbformat.write(nb, path)
    print(f'{path}: {time.time() - start:.0f} s, '
          f'{os.path.getsize(path) / 1024:.0f} KiB', flush=True)
  if failed:
    print(f'failed: {failed}', file=sys.stderr, flush=True)
    return 1
  return 0


if __name__ == '__main__':
  _FLAGS = define_flags()
  entry.run(lambda argv: main(argv, _FLAGS))
