"""The notebooks as stored: rendered with small outputs and no errors.

`python -m experiments.render_notebooks` executes each notebook and stores
its outputs (the test suite executes them again with ``--nbmake``, which
ignores what is stored). These checks read the files only: every code cell
ran, in order, none stored an error or a temporary directory's path, each
notebook shows figures, and the figures stay small enough to keep in git.
"""

from __future__ import annotations

import base64
import glob
import io
import json
import os
import re

import nbformat
import numpy as np
from PIL import Image
import pytest

from experiments import render_notebooks
from tests import helpers

NOTEBOOKS = sorted(glob.glob(os.path.join(helpers.REPO_ROOT, 'notebooks',
                                          '*.ipynb')))
# One stored PNG at most (decoded bytes), and all notebooks together.
MAX_PNG_BYTES = 120_000
MAX_TOTAL_BYTES = 2_500_000


def _code_cells(path: str) -> list[dict]:
  with open(path, encoding='utf-8') as f:
    return [c for c in json.load(f)['cells'] if c['cell_type'] == 'code']


def test_there_are_notebooks_and_they_stay_small():
  assert len(NOTEBOOKS) >= 10
  total = sum(os.path.getsize(p) for p in NOTEBOOKS)
  assert total < MAX_TOTAL_BYTES, total


@pytest.mark.parametrize('path', NOTEBOOKS, ids=os.path.basename)
def test_stored_notebook_ran_every_cell_without_error(path):
  cells = _code_cells(path)
  assert [c['execution_count'] for c in cells] == list(
      range(1, len(cells) + 1)), 'not rendered top to bottom'
  outputs = [o for c in cells for o in c['outputs']]
  assert not [o for o in outputs if o['output_type'] == 'error']
  assert not [o for o in outputs if o.get('name') == 'stderr']
  pngs = [base64.b64decode(o['data']['image/png']) for o in outputs
          if 'image/png' in o.get('data', {})]
  assert pngs, 'no figure stored'
  for png in pngs:
    assert png.startswith(b'\x89PNG') and len(png) < MAX_PNG_BYTES, len(png)
  for c in cells:
    assert 'execution' not in c['metadata']  # no timestamps
  # Nothing machine-specific: workdirs print as <tmp>/<name>, not as the
  # temporary directory's path.
  text = ''.join(''.join(o.get('text', '')) + ''.join(
      o.get('data', {}).get('text/plain', '')) for o in outputs)
  assert not re.search(r'/tmp/|\\Temp\\|/var/folders/', text), re.findall(
      r'\S*(?:/tmp/|\\Temp\\|/var/folders/)\S*', text)


def test_render_keeps_outputs_small():
  """The renderer's post-processing: stderr and timings dropped, PNGs
  flattened to a palette of at most `colors` colours."""
  rgba = np.random.default_rng(0).integers(0, 256, (20, 30, 4), np.uint8)
  buf = io.BytesIO()
  Image.fromarray(rgba, 'RGBA').save(buf, 'PNG')
  png = base64.b64encode(buf.getvalue()).decode('ascii')
  cell = nbformat.v4.new_code_cell('print(1)', execution_count=1)
  cell.metadata['execution'] = {'iopub.status.busy': '2026-01-01T00:00:00'}
  cell.outputs = [
      nbformat.v4.new_output('stream', name='stdout', text='1\n'),
      nbformat.v4.new_output('stream', name='stderr', text='progress\n'),
      nbformat.v4.new_output('display_data', data={'image/png': png}),
  ]
  nb = render_notebooks.keep_small(nbformat.v4.new_notebook(cells=[cell]),
                                   colors=16)
  outs = nb.cells[0].outputs
  assert [o.output_type for o in outs] == ['stream', 'display_data']
  assert 'execution' not in nb.cells[0].metadata
  small = Image.open(io.BytesIO(base64.b64decode(outs[1].data['image/png'])))
  assert small.mode == 'P' and small.size == (30, 20)
  assert len(small.getcolors()) <= 16
  assert render_notebooks.shrink_png(png, 0) == png
