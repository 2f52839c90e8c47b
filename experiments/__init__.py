"""The experiments' scripts. Importing the package sets up glibc's malloc
for XLA's per-step buffers (`experiments.malloc`), before any script
imports JAX."""

from experiments import malloc as _malloc

APPLIED_MALLOC = _malloc.set_malloc()
