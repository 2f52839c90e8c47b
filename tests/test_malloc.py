"""experiments/malloc.py: importing the experiments package sets glibc's
malloc up so that XLA's per-execution temporaries stop page-faulting."""

import os
import subprocess
import sys

import pytest

from experiments import malloc
from tests import helpers

GLIBC = bool(os.confstr('CS_GNU_LIBC_VERSION')
             if 'CS_GNU_LIBC_VERSION' in os.confstr_names else '')

# A child process as `python -m experiments.<script>` starts one: the
# package first, then JAX. Its jitted function has a 48 MiB temporary
# (sin(x), 12,288 pages); it prints whether the settings were applied and
# the median minor page faults of a call over 20 calls after 5 warm-up
# calls (the heap grows over the first few, and now and then later: XLA
# frees a call's buffers after the call returns).
_CHILD = '''
import resource
import statistics
import experiments
import jax, jax.numpy as jnp
f = jax.jit(lambda x, v: (jnp.sin(x) @ v).sum())
x, v = jnp.ones((4096, 3072)), jnp.ones((3072, 8))
faults = []
for _ in range(25):
  start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  f(x, v).block_until_ready()
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
print(bool(experiments.APPLIED_MALLOC), statistics.median(faults[5:]))
'''


def _faults_per_call(**env):
  proc = subprocess.run([sys.executable, '-c', _CHILD],
                        cwd=helpers.REPO_ROOT,
                        env=helpers.subprocess_env(**env),
                        capture_output=True, text=True, timeout=300,
                        check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  applied, faults = proc.stdout.split()[-2:]
  return applied == 'True', float(faults)


def test_default_keeps_glibcs_settings():
  assert malloc.set_malloc({malloc.ENV: 'default'}) == {}


@pytest.mark.skipif(not GLIBC, reason='glibc only')
def test_every_setting_is_accepted():
  assert malloc.set_malloc({}) == {name: value
                                   for name, _, value in malloc.SETTINGS}


@pytest.mark.skipif(not GLIBC, reason='glibc only')
def test_repeated_executions_stop_page_faulting():
  """With the settings a warm program mostly touches no fresh page; with
  glibc's own (the control) it faults through its temporary every call."""
  applied, faults = _faults_per_call()
  assert applied and faults < 1_000
  applied, control = _faults_per_call(**{malloc.ENV: 'default'})
  assert not applied
  if control <= 6_000:
    # glibc mmaps blocks over its largest mmap threshold (32 MiB) afresh,
    # so the control faults; where it did not, the comparison says nothing.
    pytest.skip(f'the control (glibc\'s settings) faulted only {control:.0f} '
                'times per call: no comparison')
