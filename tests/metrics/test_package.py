"""jaxgen.metrics stands on its own: NumPy only, nothing from above it."""

import subprocess
import sys

import pytest

from tests import helpers

_CHECK = '''
import sys
import jaxgen.metrics as m
names = ('gaussian_statistics', 'frechet_distance_from_statistics',
         'frechet_distance', 'inception_style_score', 'label_distribution',
         'toy_mode_coverage', 'energy_distance')
assert all(callable(getattr(m, n)) for n in names)
loaded = sorted(k for k in sys.modules
                if k.split('.')[0] in ('flax', 'jax', 'optax', 'orbax')
                or k.startswith(('jaxgen.models', 'jaxgen.train',
                                 'jaxgen.data', 'jaxgen.quality',
                                 'jaxgen.nn')))
print(loaded)
'''


@pytest.mark.slow
def test_metrics_import_no_model_trainer_data_or_jax():
  proc = subprocess.run([sys.executable, '-c', _CHECK], cwd=helpers.REPO_ROOT,
                        env=helpers.subprocess_env(), capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.strip() == '[]'
