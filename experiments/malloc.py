"""glibc malloc settings for the experiments' processes (README "Performance").

XLA:CPU allocates the temporary buffers of every execution of a compiled
program anew (one block of hundreds of MiB for a PixelCNN train step) and
frees them when the execution returns. glibc's malloc serves a block of 32
MiB or more, and any block a thread's own arena cannot hold, with a fresh
mmap that free hands back to the system, so every train step page-faults
through all of its temporaries again while the kernel zeroes each page.
`set_malloc` makes every thread share the main heap (one arena), serves
large blocks from it (no mmap) and never trims it, so the blocks one step
frees are reused by the next: no page faults once the first steps have
run, and the same results (only where the memory comes from changes). The
cost: the process keeps its peak heap until it exits.

A thread keeps the arena it had at its first allocation, and importing JAX
starts threads, so the settings must come before JAX is imported:
importing the ``experiments`` package applies them (its ``__init__``), which
``python -m experiments.<script>`` does before the script's own imports.
This module imports nothing heavy for that reason.
"""

from __future__ import annotations

import ctypes
import os

# (name, mallopt parameter of glibc's malloc.h, value).
SETTINGS = (('M_ARENA_MAX', -8, 1), ('M_MMAP_MAX', -4, 0),
            ('M_TRIM_THRESHOLD', -1, 2**31 - 1))
# ``JAXGEN_MALLOC=default`` keeps glibc's own settings (an A/B, or memory
# that must go back to the system).
ENV = 'JAXGEN_MALLOC'


def set_malloc(environ: dict[str, str] | None = None) -> dict[str, int]:
  """Applies `SETTINGS` to this process's glibc malloc.

  Nothing is set outside glibc or when ``environ[ENV]`` (`os.environ`) is
  'default'.

  Returns:
    {name: value} of the settings glibc accepted.
  """
  environ = os.environ if environ is None else environ
  if environ.get(ENV, '') == 'default':
    return {}
  try:
    if not os.confstr('CS_GNU_LIBC_VERSION'):
      return {}
    mallopt = ctypes.CDLL(None).mallopt
  except (AttributeError, OSError, ValueError):
    return {}
  return {name: value for name, param, value in SETTINGS
          if mallopt(param, value) == 1}
