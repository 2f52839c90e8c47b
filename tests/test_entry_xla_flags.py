"""experiments/entry.py's XLA options: added once, a user's own setting
kept, only under the jaxlib versions they were measured on, and in effect
in the scripts' processes."""

import subprocess
import sys

import jax
import pytest

from experiments import entry
from tests import helpers

FLAG = entry.DEFAULT_XLA_FLAGS[0]
MEASURED = entry.XLA_FLAGS_JAXLIBS[0]


def test_defaults_are_added_once_after_the_users_flags():
  assert entry.missing_xla_flags('', MEASURED) == (FLAG,)
  assert entry.missing_xla_flags('--xla_a=1 --xla_b', MEASURED) == (FLAG,)
  assert entry.missing_xla_flags(f'--xla_a=1 {FLAG}', MEASURED) == ()


def test_a_flag_the_user_names_keeps_the_users_value():
  for value in (f'{entry.YNN_FUSION_FLAG}=', f'{entry.YNN_FUSION_FLAG}=+'
                'individual_convolution', entry.YNN_FUSION_FLAG):
    assert entry.missing_xla_flags(f'--xla_a=1 {value}', MEASURED) == ()


def test_other_jaxlibs_get_no_flag():
  """XLA aborts on a flag it does not know: unmeasured jaxlibs get none."""
  for version in ('0.4.30', '0.10.1', '0.10.3', '0.11.0', '1.0.0'):
    assert entry.default_xla_flags(version) == ()
    assert entry.missing_xla_flags('--xla_a=1', version) == ()


def test_nothing_is_set_once_a_backend_has_started():
  jax.numpy.zeros(()).block_until_ready()  # this process's backend starts
  environ = {'XLA_FLAGS': '--xla_a=1'}
  assert entry.set_xla_flags(environ) == ()
  assert environ == {'XLA_FLAGS': '--xla_a=1'}


# A child that prints a digest of the compile options XLA built from the
# XLA_FLAGS it read, after the flags parser of the scripts has run.
_DIGEST = ('import hashlib; from jax._src.lib import _jax; '
           'print(hashlib.sha256(_jax.CompileOptions().SerializeAsString())'
           '.hexdigest())')
_THROUGH_RUN = ('from experiments import entry; import jax; '
                'entry.run(lambda argv: exec({!r}))')


def _digest(code, xla_flags):
  env = helpers.subprocess_env()
  env.pop('XLA_FLAGS', None)
  if xla_flags:
    env['XLA_FLAGS'] = xla_flags
  proc = subprocess.run([sys.executable, '-c', code], cwd=helpers.REPO_ROOT,
                        env=env, capture_output=True, text=True, timeout=120,
                        check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout.split()[-1]


@pytest.mark.skipif(not entry.default_xla_flags(),
                    reason='no XLA options for this jaxlib')
def test_run_puts_the_flags_in_effect():
  """A script's process (jax imported, then `entry.run`) compiles with the
  options XLA builds when the flags are in XLA_FLAGS from the start."""
  through_run = _digest(_THROUGH_RUN.format(_DIGEST), '')
  assert through_run == _digest(_DIGEST, ' '.join(entry.DEFAULT_XLA_FLAGS))
  assert through_run != _digest(_DIGEST, '')  # the flag changes something
