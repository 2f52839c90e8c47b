"""Data parallelism with `jax.jit` and `NamedSharding`, and multi-host start-up.

One mesh axis, ``'data'``, spans every device of every process. Batches are
sharded along it (``P('data')``), parameters and optimizer state are
replicated (``P()``), and a plain `jax.jit` lets XLA insert the gradient
all-reduce. The same code runs on a laptop CPU, one GPU, or a pod slice.

Each process loads its own share of a batch (``global_batch_size /
process_count`` examples) and `global_batch` assembles the global array with
`jax.make_array_from_process_local_data`.
"""

from __future__ import annotations

from typing import Any, Mapping

from absl import logging
import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np

from jaxgen.errors import ConfigError

DATA_AXIS = 'data'


def initialize(num_processes: int = 1, process_id: int = 0,
               coordinator_address: str = '',
               local_device_count: int = 0) -> None:
  """Starts `jax.distributed` when the config names several processes.

  Must run before anything touches a JAX backend.

  Args:
    num_processes: total processes in the job; 1 means single-process.
    process_id: this process's index in [0, num_processes).
    coordinator_address: 'host:port' of process 0; required when
      num_processes > 1 unless the platform auto-detects it (TPU, SLURM).
    local_device_count: CPU only: devices to expose per process (0 leaves
      the platform default); lets one machine emulate a multi-host job.
  """
  if local_device_count:
    jax.config.update('jax_num_cpu_devices', int(local_device_count))
  if num_processes <= 1:
    return
  if not 0 <= process_id < num_processes:
    raise ConfigError(
        f'config.parallel.process_id={process_id} must lie in '
        f'[0, config.parallel.num_processes={num_processes}).')
  kwargs = dict(num_processes=num_processes, process_id=process_id)
  if coordinator_address:
    kwargs['coordinator_address'] = coordinator_address
  logging.info('Starting jax.distributed: %s', kwargs)
  jax.distributed.initialize(**kwargs)


def make_mesh() -> Mesh:
  """A one-axis mesh named 'data' over every device of every process."""
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def local_batch_size(global_batch_size: int, mesh: Mesh,
                     field: str = 'config.train.batch_size') -> int:
  """The per-process batch size; errors name `field` when it does not divide.

  Raises:
    ConfigError: if `global_batch_size` is not a positive multiple of the
      number of devices in the mesh.
  """
  num_devices = mesh.devices.size
  if global_batch_size <= 0 or global_batch_size % num_devices:
    raise ConfigError(
        f'{field}={global_batch_size} must be a positive multiple of the '
        f'number of devices ({num_devices}) so every device gets the same '
        'share of a batch.')
  return global_batch_size // jax.process_count()


def global_batch(local: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, Any]:
  """Assembles per-process NumPy batches into global arrays sharded on 'data'."""
  sharding = data_sharded(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in local.items()}


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places a host pytree, identical on every process, replicated on the mesh."""
  sharding = replicated(mesh)
  return jax.tree.map(lambda x: jax.device_put(x, sharding), tree)
