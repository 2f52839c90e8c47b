"""One trainer for every family: the loop, checkpoints, evaluation.

`Experiment` turns a locked ``ml_collections`` config into the pieces of a
run and checks them before anything is compiled: the family, the dataset,
the preprocessing, the device mesh, the model, the optimizer. Its methods
are the things a user does with a workdir: `train`, `evaluate`, `sample`.

`Experiment.write_curves` draws the workdir's metrics.jsonl as
``images/curves.png`` (experiments.main calls it when training finishes).
``config.train.profile_steps`` = N > 0 traces N steps with
``jax.profiler`` into ``<workdir>/profile`` (`_Profile`).

Mixed precision: ``config.train.compute_dtype = 'bfloat16'`` runs the
Net's activations and matmuls in the train step in bfloat16, through
`jaxgen.steps.ComputeDtypeNet`; parameters, optimizer state, the loss and
its reduction stay float32, and evaluation, likelihoods and sampling
apply the float32 Net. The adversarial families' own steps build their
players through `jaxgen.steps.compute_module`, in the same dtype. A family
that computes in float32 only (its ``FLOAT32_ONLY`` says why: EM, K-means,
the Boltzmann machines), or whose own step never applies its Net, is
refused with a `ConfigError` before anything is compiled.

Randomness: one ``jax.random.key(config.seed)`` is split once into
(init, train, eval, sample) keys. Step s uses ``fold_in(train_key, s)``
inside the jitted step, eval batch i uses ``fold_in(eval_key, i)``, the grid
at step s uses ``fold_in(sample_key, s)``. No key is stored as state, so a
resumed run reproduces an uninterrupted one bitwise.

The step is generic (`jaxgen.steps.make_train_step`): it knows nothing of
any model. It preprocesses the uint8 batch on device (binarization,
dequantization: keyed), calls ``family.loss_fn`` and applies an optax
update, optionally with an EMA of the parameters. A family whose update is
not one gradient step on ``loss_fn`` provides ``make_train_step`` with the
same signature, built from `jaxgen.steps`, and everything else (sharding,
checkpoints, resume, logging, evaluation) stays the shared one: the GANs
(two players, k discriminator updates), the VQ models and the code prior
(`jaxgen.steps.make_variables_step`: the optax step on 'params', then the
EMA-codebook and dead-code updates outside the gradient), and the Gaussian
mixture and K-means (closed-form EM / Lloyd updates, no gradient).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import json
import math
import os
import signal
import threading
import time
from typing import Any, Callable, Iterator

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from jaxgen import checkpoint as ckpt_lib
from jaxgen import data as data_lib
from jaxgen import estimators as estimators_lib
from jaxgen import evaluate as eval_lib
from jaxgen import images as images_lib
from jaxgen import models
from jaxgen import parallel
from jaxgen import steps as steps_lib
from jaxgen import workdir as workdir_lib
from jaxgen import writers
from jaxgen.errors import ConfigError
from jaxgen.errors import WorkdirLockedError
from jaxgen.steps import TrainState


class NonFiniteError(FloatingPointError):
  """Training produced a NaN or inf; no checkpoint was written from it."""


@jax.jit
def _non_finite_on_device(tree: Any) -> dict[str, jax.Array]:
  return {jax.tree_util.keystr(path, simple=True, separator='/'):
          ~jnp.isfinite(leaf).all()
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
          if jnp.issubdtype(leaf.dtype, jnp.inexact)}


def non_finite_leaves(tree: Any) -> dict[str, bool]:
  """{leaf path: True where any entry is NaN/inf}, over the float leaves.

  Read on the host when every leaf is whole in this process (as the
  trainer's replicated state is, also over several processes: each reads
  its own copy), so no program is compiled for each new state structure;
  a leaf sharded over processes is checked by one jitted reduction instead.
  """
  leaves = [(jax.tree_util.keystr(path, simple=True, separator='/'), leaf)
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
            if jnp.issubdtype(leaf.dtype, jnp.inexact)]

  def local(leaf):
    if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable:
      return leaf
    if leaf.sharding.is_fully_replicated:
      return leaf.addressable_data(0)
    return None

  copies = [local(leaf) for _, leaf in leaves]
  if any(c is None for c in copies):
    return {k: bool(v) for k, v in
            jax.device_get(_non_finite_on_device(tree)).items()}
  return {name: not np.isfinite(np.asarray(copy)).all()
          for (name, _), copy in zip(leaves, jax.device_get(copies))}


class _TerminationFlag:
  """Says at which step to save and exit cleanly after a SIGTERM.

  One process: a SIGTERM handler sets a flag, read once per step. Several
  processes: each must save the same step (orbax's save is collective),
  whichever of them got the signal and whenever. jax.distributed's
  preemption service catches SIGTERM in any process, agrees with the others
  on a step, and `stop(step)` is True at that step in all of them
  (``multihost_utils.reached_preemption_sync_point``, asked every step).
  """

  def __init__(self):
    self.requested = False
    self._previous = None
    # (The service is on unless jax_enable_preemption_service is off.)
    self._multihost = (jax.process_count() > 1 and
                       jax.config.jax_enable_preemption_service)

  def __enter__(self):
    if (not self._multihost and
        threading.current_thread() is threading.main_thread()):
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def stop(self, step: int) -> bool:
    if self._multihost:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      return multihost_utils.reached_preemption_sync_point(step)
    return self.requested

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
    return False


PROFILE_DIR = 'profile'  # <workdir>/profile: the jax.profiler trace


class _Profile:
  """Traces `num_steps` training steps with ``jax.profiler``.

  The trace starts once the first step this process runs (which compiles
  the step) has finished, so compilation stays out of it, and covers the
  next `num_steps` iterations of the loop: their steps, data loading,
  logging and any evaluation or checkpoint among them. It stops when they
  are done (their computation finished) or when training ends first.
  ``jax.profiler`` writes it under `directory`, in
  ``plugins/profile/<date_time>/``: ``*.xplane.pb`` for TensorBoard's
  profile plugin (``tensorboard --logdir <workdir>/profile``) and
  ``perfetto_trace.json.gz`` for https://ui.perfetto.dev. Timing only:
  nothing computed changes.

  Args:
    directory: the trace's folder.
    num_steps: how many steps to trace; 0 traces nothing.
    first_step: the step number of the first step this process runs.
  """

  def __init__(self, directory: str, num_steps: int, first_step: int):
    self.directory = directory
    self.num_steps = num_steps
    self.start = first_step  # traced from the end of this step
    self.active = False

  def __enter__(self):
    return self

  def before_step(self, step: int, state: TrainState) -> None:
    """Starts or stops the trace ahead of step ``step + 1``."""
    if not self.num_steps:
      return
    if step == self.start:
      jax.block_until_ready(state)  # the compiling step's run stays out
      jax.profiler.start_trace(self.directory, create_perfetto_trace=True)
      self.active = True
    elif step == self.start + self.num_steps:
      self.stop(state)

  def stop(self, state: TrainState) -> None:
    """Ends the trace (if running) once `state` is computed."""
    if self.active:
      jax.block_until_ready(state)
      self.active = False
      jax.profiler.stop_trace()

  def __exit__(self, *exc):
    if self.active:  # an error or SIGTERM mid-trace: keep what was traced
      self.active = False
      jax.profiler.stop_trace()
    return False


def check_train_config(t: ml_collections.ConfigDict) -> None:
  """Raises `ConfigError` naming the ``config.train`` field that is off."""
  minimum = dict(num_steps=1, log_every_steps=1, checkpoint_every_steps=1,
                 max_to_keep=1, eval_every_steps=0, image_every_steps=0,
                 profile_steps=0)
  for field in tuple(minimum) + ('compute_dtype',):
    if field not in t:
      raise ConfigError(
          f'config.train.{field} is missing (a config.json read without '
          'jaxgen.workdir.load_config, which fills the fields added since '
          'it was written?).')
  for field, low in minimum.items():
    value = t[field]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
      raise ConfigError(f'config.train.{field}={value!r} must be an integer '
                        f'>= {low}.')
  if not 0.0 <= t.ema_decay < 1.0:
    raise ConfigError(f'config.train.ema_decay={t.ema_decay} must lie in '
                      '[0, 1) (0 disables the EMA).')
  steps_lib.check_compute_dtype(t.compute_dtype)


def _data_kwargs(data: ml_collections.ConfigDict) -> dict[str, Any]:
  """The fields of ``config.data`` that `jaxgen.data.load_dataset` takes."""
  return dict(name=data.name, data_dir=data.data_dir or None,
              splits=dict(data.splits),
              shuffle_before_split=data.shuffle_before_split,
              split_seed=data.split_seed, binarize=data.binarize,
              binarize_seed=data.binarize_seed, num_points=data.num_points)


def _tuples(tree: Any) -> Any:
  """Lists to tuples, recursively: Net fields from a JSON-loaded config."""
  if isinstance(tree, dict):
    return {k: _tuples(v) for k, v in tree.items()}
  if isinstance(tree, (list, tuple)):
    return tuple(_tuples(v) for v in tree)
  return tree


# log_likelihood(params, batch, key, *, net, **estimator arguments)
_LIKELIHOOD_POSITIONAL = ('params', 'batch', 'key', 'net')


def check_estimators(family, estimators: ml_collections.ConfigDict,
                     used: tuple[str, ...]) -> None:
  """Each used estimator's arguments against ``family.log_likelihood``.

  Unknown arguments, values outside ``family.ESTIMATOR_CHOICES`` (e.g. the
  VAE's bound), and k / chunk sizes the chunked estimators cannot use
  (`estimators.num_chunks`, the check they run when traced), are a
  ConfigError naming ``config.eval.estimators.<name>.<field>`` here,
  before training, instead of an error when the final evaluation is traced.
  """
  params = inspect.signature(family.log_likelihood).parameters
  accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD
                    for p in params.values())
  allowed = sorted(n for n in params if n not in _LIKELIHOOD_POSITIONAL)
  choices = getattr(family, 'ESTIMATOR_CHOICES', {})
  for name in dict.fromkeys(used):
    args = dict(estimators[name])
    field = f'config.eval.estimators.{name}'
    for key, value in args.items():
      if key not in params and not accepts_any:
        raise ConfigError(f'{field}.{key}: {family.__name__.split(".")[-1]}'
                          f'.log_likelihood takes no argument {key!r}; its '
                          f'estimator arguments are {allowed}.')
      if key in choices and value not in choices[key]:
        raise ConfigError(f'{field}.{key}={value!r} is not one of '
                          f'{choices[key]}.')
    k, chunk = args.get('num_samples'), args.get('chunk_size')
    if k is not None and chunk is not None:  # as the chunked estimators do
      estimators_lib.num_chunks(k, min(chunk, k) if isinstance(chunk, int)
                                else chunk, field)


def model_pieces(config: ml_collections.ConfigDict):
  """(family, net, preprocess, one preprocessed example batch) of a config,
  without loading data: what benchmarks and shape-only counts build on."""
  family = models.get_family(config.family)
  net = make_net(family, config.model)
  preprocess, _ = data_lib.make_preprocess(
      binarize=config.data.binarize, dequantize=config.data.dequantize,
      value_range=config.data.value_range)
  return family, net, preprocess, example_batch(config.model.image_shape,
                                                preprocess)


def make_tx(family, config: ml_collections.ConfigDict):
  """The optimizer the trainer uses: the family's ``make_optimizer`` when it
  has one, else the generic one built from ``config.optimizer``."""
  if hasattr(family, 'make_optimizer'):
    return family.make_optimizer(config)
  return steps_lib.make_optimizer(config.optimizer, config.train.num_steps)


def make_step(family, net, tx, preprocess: Callable,
              config: ml_collections.ConfigDict) -> Callable:
  """The train step ``(state, batch, train_key) -> (state, metrics)``, not
  jitted: the family's ``make_train_step`` when it has one, else the
  generic step on its ``loss_fn`` (`jaxgen.steps.make_train_step`).

  Either receives the Net in ``config.train.compute_dtype``
  (`jaxgen.steps.compute_net`: for 'bfloat16', a
  `jaxgen.steps.ComputeDtypeNet`).
  """
  net = steps_lib.compute_net(net, config.train.compute_dtype)
  builder = getattr(family, 'make_train_step', None)
  if builder is not None:
    return builder(net=net, tx=tx, preprocess=preprocess, config=config)
  loss = functools.partial(family.loss_fn, net=net, train=True)
  return steps_lib.make_train_step(loss, tx, preprocess=preprocess,
                                   ema_decay=config.train.ema_decay)


def make_net(family, model_config: ml_collections.ConfigDict):
  """The family's `Net` from ``config.model`` (lists become tuples)."""
  return family.Net(**_tuples(model_config.to_dict()))


def example_batch(image_shape, preprocess: Callable) -> dict[str, jax.Array]:
  """A one-example preprocessed batch of zeros: what `init` needs to trace.

  `image_shape` is the shape of one example: (H, W, C) gives an 'image'
  batch, (D,) a 'point' batch (float32 [1, D]).
  """
  raw = {'label': jnp.zeros((1,), jnp.int32), 'mask': jnp.ones((1,), bool)}
  if len(image_shape) == 1:
    raw['point'] = jnp.zeros((1,) + tuple(image_shape), jnp.float32)
  else:
    raw['image'] = jnp.zeros((1,) + tuple(image_shape), jnp.uint8)
  return preprocess(raw, jax.random.key(0))


def count_params(tree: Any) -> int:
  """Number of scalars in a pytree of arrays or shape structs."""
  return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


def count_trainable(tree: Any) -> int:
  """Scalars of ``TrainState.params`` that the optimizer trains.

  A family that keeps a Flax variables dict (or one per player) also holds
  non-trained state there: batch statistics, persistent Gibbs chains, image
  banks and histories. When any key on a leaf's path is ``'params'``, only
  leaves under such a key count; otherwise the whole tree does.
  """
  leaves = jax.tree_util.tree_leaves_with_path(tree)

  def trained(path) -> bool:
    return any(getattr(k, 'key', None) == 'params' for k in path)

  if not any(trained(path) for path, _ in leaves):
    return count_params(tree)
  return sum(math.prod(x.shape) for path, x in leaves if trained(path))


def _config_json(config: ml_collections.ConfigDict) -> str:
  return config.to_json_best_effort(indent=2, sort_keys=True)


@dataclasses.dataclass
class Experiment:
  """A configured run over a workdir: build once, then train/evaluate/sample.

  Everything that can be wrong with the config or the data is checked in
  the constructor, before any compilation.
  """
  config: ml_collections.ConfigDict
  workdir: str

  @classmethod
  def from_workdir(cls, workdir: str) -> 'Experiment':
    """The run a workdir holds, from its ``config.json``
    (`jaxgen.workdir.load_config`: fields added since it was written get
    their neutral values); nothing is restored yet (`restore`).

    Raises:
      FileNotFoundError: the workdir has no config.json (named).
      ConfigError, DataError: the saved config or its data cannot be used.
    """
    path = workdir_lib.config_path(workdir)
    if not os.path.isfile(path):
      raise FileNotFoundError(
          f'--workdir={workdir} holds no trained run (no {path}).')
    return cls(workdir_lib.load_config(workdir), workdir)

  def __post_init__(self):
    self._lock_held = False  # `locked`
    c = self.config
    parallel.initialize(c.parallel.num_processes, c.parallel.process_id,
                        c.parallel.coordinator_address,
                        c.parallel.local_device_count)
    self.family = models.get_family(c.family)
    check_train_config(c.train)
    steps_lib.check_hyperparameters(c)
    self.dataset = data_lib.load_dataset(**_data_kwargs(c.data))
    if 'train' not in self.dataset.splits:
      raise ConfigError("config.data.splits.train is empty: training needs a "
                        "'train' split.")
    self.points = self.dataset.image_shape is None
    if self.points and 'points' not in getattr(self.family, 'DATA',
                                               ('images',)):
      raise ConfigError(f'config.data.name={c.data.name!r} gives points, not '
                        f'images; family {c.family!r} models images.')
    # The shape of one example: (H, W, C) for images, (D,) for points.
    self.example_shape = ((self.dataset.point_dim,) if self.points else
                          tuple(self.dataset.image_shape))
    if tuple(c.model.image_shape) != self.example_shape:
      raise ConfigError(
          f'config.model.image_shape={tuple(c.model.image_shape)} does not '
          f'match dataset {c.data.name!r}, whose '
          f'{"points" if self.points else "images"} are '
          f'{self.example_shape}.')
    if hasattr(self.family, 'validate'):
      self.family.validate(c, self.dataset)
    self.preprocess, offset_per_dim = data_lib.make_preprocess(
        binarize=c.data.binarize, dequantize=c.data.dequantize,
        value_range=c.data.value_range, field_prefix='config.data.')
    self.num_dims = math.prod(self.example_shape)
    self.offset_nats = float(offset_per_dim) * self.num_dims
    self.mesh = parallel.make_mesh()
    self.local_batch_size = parallel.local_batch_size(c.train.batch_size,
                                                      self.mesh)
    self.local_eval_batch_size = parallel.local_batch_size(
        c.eval.batch_size, self.mesh, 'config.eval.batch_size')
    for split in (c.eval.split, c.eval.periodic_split):
      if split and split not in self.dataset.splits:
        raise ConfigError(
            f'evaluation asks for split {split!r} (config.eval.split / '
            f'config.eval.periodic_split) but config.data.splits gives only '
            f'{sorted(self.dataset.splits)}.')
    for name in tuple(c.eval.final_estimators) + tuple(
        c.eval.periodic_estimators):
      if name not in c.eval.estimators:
        raise ConfigError(f'estimator {name!r} (config.eval.*_estimators) is '
                          f'not defined in config.eval.estimators '
                          f'{sorted(c.eval.estimators)}.')
    if self.family.log_likelihood is None and len(c.eval.estimators):
      raise ConfigError(f'family {c.family!r} has no likelihood: leave '
                        'config.eval.estimators empty.')
    if self.family.log_likelihood is not None:
      check_estimators(self.family, c.eval.estimators,
                       tuple(c.eval.final_estimators) +
                       tuple(c.eval.periodic_estimators))
    self.net = make_net(self.family, c.model)
    root = jax.random.key(c.seed)
    self.init_key, self.train_key, self.eval_key, self.sample_key = (
        jax.random.split(root, 4))
    self.tx = make_tx(self.family, c)
    self.is_main = jax.process_index() == 0
    self._jitted: dict[str, Callable] = {}
    if c.train.compute_dtype != 'float32':
      self._check_step_applies_net()

  def _check_step_applies_net(self) -> None:
    """Raises `ConfigError` for a family that computes in float32 only:
    one that says why in its ``FLOAT32_ONLY`` (closed-form EM and Lloyd
    updates, the Boltzmann machines' Gibbs sweeps), or whose own step,
    traced (`jax.eval_shape`: nothing is compiled) with the Net in
    ``config.train.compute_dtype``, never applies it, so the compute dtype
    would change nothing."""
    c = self.config
    reason = getattr(self.family, 'FLOAT32_ONLY', None)
    if reason:
      raise ConfigError(
          f'config.train.compute_dtype={c.train.compute_dtype!r}: family '
          f'{c.family!r} computes in float32 only: {reason}; set '
          "config.train.compute_dtype='float32'.")
    net = steps_lib.compute_net(self.net, c.train.compute_dtype)
    step = make_step(self.family, net, self.tx, self.preprocess, c)
    raw = next(data_lib.eval_batches(self.dataset.splits['train'],
                                     batch_size=1))
    batch = {k: jax.ShapeDtypeStruct((c.train.batch_size,) + v.shape[1:],
                                     v.dtype) for k, v in raw.items()}
    state = jax.eval_shape(self._init_state, self.init_key)
    jax.eval_shape(step, state, batch, self.train_key)
    if not net.applied:
      raise ConfigError(
          f'config.train.compute_dtype={c.train.compute_dtype!r}: family '
          f'{c.family!r} trains with its own step, which never applies its '
          'Net through jaxgen.steps.ComputeDtypeNet, so it computes in '
          "float32 only; set config.train.compute_dtype='float32'.")

  def describe(self) -> str:
    """One line on what runs where: family, data, devices, processes."""
    return (f'{self.config.family} on {self.dataset.name} '
            f'{self.example_shape} '
            f'(train {len(self.dataset.splits["train"])} examples): '
            f'{jax.device_count()} {jax.devices()[0].platform} device(s), '
            f'{jax.process_count()} process(es), global batch '
            f'{self.config.train.batch_size}, workdir {self.workdir}')

  def keys(self, seed: int | None = None) -> tuple[jax.Array, ...]:
    """(init, train, eval, sample) keys of ``config.seed`` or of `seed`.

    Another seed gives the keys a run with ``config.seed = seed`` would
    use: evaluate and sample take their key from it.
    """
    if seed is None or seed == self.config.seed:
      return self.init_key, self.train_key, self.eval_key, self.sample_key
    return tuple(jax.random.split(jax.random.key(seed), 4))

  # ---------------------------------------------------------------- state
  def _init_state(self, key) -> TrainState:
    params = self.family.init(
        key, example_batch(self.example_shape, self.preprocess),
        net=self.net)
    ema = params if self.config.train.ema_decay else None
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state=self.tx.init(params), ema_params=ema)

  def init_state(self) -> TrainState:
    """Fresh state from the init key, replicated over the mesh.

    A family with ``data_init`` then has its parameters set from the first
    training batch (a fresh iterator's: the loop's own is not advanced),
    preprocessed with ``fold_in(init_key, 1)`` and passed
    ``fold_in(init_key, 2)``; the optimizer state (and EMA) are rebuilt
    from the result. Deterministic in the seed; a resumed run restores
    these values from its checkpoint instead.
    """
    rep = parallel.replicated(self.mesh)
    init = jax.jit(self._init_state, out_shardings=rep)
    state = init(self.init_key)
    data_init = getattr(self.family, 'data_init', None)
    if data_init is None:
      return state

    def with_data(state, batch, key):
      batch = self.preprocess(batch, jax.random.fold_in(key, 1))
      params = data_init(state.params, batch, jax.random.fold_in(key, 2),
                         net=self.net)
      ema = params if state.ema_params is not None else None
      return state.replace(params=params, opt_state=self.tx.init(params),
                           ema_params=ema)

    first = next(data_lib.train_iterator(
        self.dataset.splits['train'], batch_size=self.local_batch_size,
        seed=self.config.seed, process_index=jax.process_index(),
        process_count=jax.process_count(), num_threads=0,
        prefetch_buffer_size=0))
    batch = parallel.global_batch(first, self.mesh)
    step = jax.jit(with_data, in_shardings=(
        rep, parallel.data_sharded(self.mesh), rep), out_shardings=rep)
    return step(state, batch, self.init_key)

  def abstract_state(self) -> TrainState:
    shapes = jax.eval_shape(self._init_state, self.init_key)
    sharding = parallel.replicated(self.mesh)
    return jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
        shapes)

  def checkpointer(self, *, create: bool = False) -> ckpt_lib.Checkpointer:
    """The workdir's checkpoints; `create` makes the folder now (training),
    otherwise reading leaves the workdir as it is."""
    t = self.config.train
    return ckpt_lib.Checkpointer(
        os.path.join(self.workdir, workdir_lib.CHECKPOINT_DIR),
        max_to_keep=t.max_to_keep,
        save_every=t.checkpoint_every_steps, async_save=t.async_checkpointing,
        create=create)

  def train_iterator(self):
    return data_lib.train_iterator(
        self.dataset.splits['train'], batch_size=self.local_batch_size,
        seed=self.config.seed, process_index=jax.process_index(),
        process_count=jax.process_count())

  def restore(self, step: int | None = None, data_iterator=None):
    """(state, step) from the workdir's newest usable (or given) checkpoint.

    Each step is verified against its digest first. Without `step`, newer
    steps that are corrupt or unreadable are skipped, named in one warning
    line on stderr (`jaxgen.checkpoint.restore_newest`); nothing in the
    workdir is changed.

    Raises:
      FileNotFoundError: the workdir has no checkpoint.
      CheckpointError: the given step, or every step, cannot be used.
    """
    ckpt = self.checkpointer()
    try:
      if step is not None:
        return ckpt.restore(step, self.abstract_state(), data_iterator), step
      if ckpt.latest_step() is None:
        raise FileNotFoundError(
            f'No checkpoint in {ckpt.directory}: train first with '
            f'--workdir={self.workdir}.')
      restored = ckpt.restore_latest(self.abstract_state(), data_iterator)
      return restored.value, restored.step
    finally:
      ckpt.close()

  # ----------------------------------------------------------- compiled fns
  @property
  def train_step(self) -> Callable:
    """The jitted step, sharded: state replicated, batch on 'data'."""
    if 'train' not in self._jitted:
      step = make_step(self.family, self.net, self.tx, self.preprocess,
                       self.config)
      rep = parallel.replicated(self.mesh)
      self._jitted['train'] = jax.jit(
          step, in_shardings=(rep, parallel.data_sharded(self.mesh), rep),
          out_shardings=(rep, rep), donate_argnums=0)
    return self._jitted['train']

  def _eval_step(self, names) -> Callable:
    names = tuple(names)
    if ('eval', names) not in self._jitted:
      estimators = {n: dict(self.config.eval.estimators[n]) for n in names}
      step = eval_lib.make_eval_step(
          self.family, self.net, self.preprocess, estimators,
          num_dims=self.num_dims, offset_nats=self.offset_nats)
      rep = parallel.replicated(self.mesh)
      self._jitted[('eval', names)] = jax.jit(
          step, in_shardings=(rep, parallel.data_sharded(self.mesh), rep,
                              rep),
          out_shardings=rep)
    return self._jitted[('eval', names)]

  def _prepare_fn(self, names) -> Callable | None:
    """The jitted `eval_lib.make_prepare_fn` of these estimators, or None."""
    names = tuple(names)
    if ('prepare', names) not in self._jitted:
      estimators = {n: dict(self.config.eval.estimators[n]) for n in names}
      fn = eval_lib.make_prepare_fn(self.family, self.net, estimators)
      self._jitted[('prepare', names)] = None if fn is None else jax.jit(
          fn, out_shardings=parallel.replicated(self.mesh))
    return self._jitted[('prepare', names)]

  # ------------------------------------------------------------ evaluation
  def eval_params(self, state: TrainState):
    """The parameters to evaluate: the EMA when enabled, else the live ones."""
    if workdir_lib.uses_ema(self.config):
      return state.ema_params
    return state.params

  def evaluate(self, state: TrainState, *, split: str | None = None,
               estimators=None, progress: bool = False,
               seed: int | None = None) -> dict[str, float]:
    """Metrics and likelihood estimates over a whole split, exactly.

    With `seed`, the evaluation key is that of a run with ``config.seed =
    seed`` (`keys`).
    """
    c = self.config
    split = split or c.eval.split
    if split not in self.dataset.splits:
      raise ConfigError(f'split {split!r} is not among config.data.splits '
                        f'{sorted(self.dataset.splits)}.')
    names = c.eval.final_estimators if estimators is None else estimators
    source = self.dataset.splits[split]
    batches = functools.partial(
        data_lib.eval_batches, source, batch_size=self.local_eval_batch_size,
        process_index=jax.process_index(), process_count=jax.process_count())
    wrap = None
    if progress and self.is_main:
      total = data_lib.num_eval_batches(
          source, batch_size=self.local_eval_batch_size,
          process_index=jax.process_index(),
          process_count=jax.process_count())
      wrap = functools.partial(tqdm.tqdm, total=total, desc=f'eval {split}',
                               leave=False)
    return eval_lib.evaluate_split(
        self._eval_step(names), self.eval_params(state), batches,
        self.keys(seed)[2], self.mesh, progress=wrap,
        prepare=self._prepare_fn(names))

  def sample_images(self, state: TrainState, num: int,
                    step: int | None = None, *,
                    seed: int | None = None) -> np.ndarray | None:
    """Samples from ``fold_in(sample_key, step)``, or None.

    With `seed`, the sample key is that of ``config.seed = seed`` (`keys`).

    uint8 [num, H, W, C] for images; float32 [num, D] for points.
    """
    if self.family.sample is None:
      return None
    step = int(state.step) if step is None else step
    fn = self._jitted.get(('sample', num))
    if fn is None:
      fn = eval_lib.replicated_fn(self.family.sample, self.mesh, num=num,
                                  net=self.net)
      self._jitted[('sample', num)] = fn
    key = jax.random.fold_in(self.keys(seed)[3], step)
    return np.asarray(jax.device_get(fn(self.eval_params(state), key)))

  def batch(self, split: str | None = None, num: int | None = None,
            preprocess: bool = True) -> dict[str, Any]:
    """The first `num` examples of a split (default: all, eval split).

    Preprocessed with the eval key, as evaluation sees them (jax arrays),
    unless `preprocess` is False (then NumPy arrays of raw uint8 pixels).
    """
    source = self.dataset.splits[split or self.config.eval.split]
    n = len(source) if num is None else min(num, len(source))
    local = next(data_lib.eval_batches(source, batch_size=n))
    if not preprocess:
      return local
    batch = {k: jnp.asarray(v) for k, v in local.items()}
    return self.preprocess(batch, self.eval_key)

  def reconstruction_images(self, state: TrainState, num: int, *,
                            seed: int | None = None) -> np.ndarray | None:
    """uint8 [2 * num, H, W, C]: test inputs, then their reconstructions.

    Keyed by the evaluation key (of `seed`, if given: `keys`).
    """
    if getattr(self.family, 'reconstruct', None) is None:
      return None
    batch = self.batch(num=num, preprocess=False)
    n = len(batch['mask'])
    fn = self._jitted.get(('recon', n))
    if fn is None:
      def recon(params, batch, key):
        pre_key, rec_key = jax.random.split(key)
        pre = self.preprocess(batch, pre_key)
        return self.family.reconstruct(params, pre, rec_key, net=self.net)
      fn = self._jitted[('recon', n)] = jax.jit(recon)
    params = jax.device_get(self.eval_params(state))
    out = np.asarray(fn(params, batch, self.keys(seed)[2]))
    return np.concatenate([batch['image'], out])

  def write_images(self, state: TrainState, writer=None, *,
                   seed: int | None = None, num: int | None = None,
                   directory: str | None = None,
                   filename: Callable[[str], str] | None = None,
                   overwrite: bool = True) -> list[str]:
    """Sample and reconstruction figures as PNG under <workdir>/images.

    ``config.eval.num_grid_samples`` samples (points are drawn over as many
    points of the evaluation split) and, for families that reconstruct, 16
    evaluation inputs with their reconstructions; `jaxgen.images` chooses
    the drawing from the arrays. Each figure also goes to `writer`.

    Args:
      state: the state to draw from.
      writer: a `jaxgen.writers.MetricWriter`, or None.
      seed: the seed of the sample and evaluation keys (`keys`; default
        ``config.seed``).
      num: the number of samples (default ``config.eval.num_grid_samples``).
      directory: where to write (default ``<workdir>/images``).
      filename: the file name of a figure, from 'samples' or
        'reconstructions' (default ``<figure>_<step>.png``).
      overwrite: if False, no file is written when any name holds other
        contents: FileExistsError (`jaxgen.workdir.refuse_other_contents`).
    """
    step = int(state.step)
    num = self.config.eval.num_grid_samples if num is None else num
    samples = self.sample_images(state, num, step, seed=seed)
    if not self.is_main:
      # Every process runs the computation (collectives); one writes.
      return []
    recon = self.reconstruction_images(state, 16, seed=seed)
    directory = directory or os.path.join(self.workdir, 'images')
    filename = filename or (lambda name: f'{name}_{step:07d}.png')
    figures = []  # (name, figure, its enlargement in the PNG)
    if samples is not None:
      real = self.batch(num=num, preprocess=False)
      figures.append(('samples', images_lib.sample_figure(
          samples, real.get('point')), images_lib.display_scale(samples)))
    if recon is not None:
      n = len(recon) // 2
      figures.append(('reconstructions', images_lib.reconstruction_figure(
          recon[:n], recon[n:], labels=images_lib.RECONSTRUCTION_LABELS,
          scale=images_lib.display_scale(recon)), 1))
    files = [(os.path.join(directory, filename(name)),
              images_lib.png_bytes(figure, scale))
             for name, figure, scale in figures]
    if not overwrite:
      for path, data in files:
        workdir_lib.refuse_other_contents(path, data)
    for (name, figure, _), (path, data) in zip(figures, files):
      workdir_lib.atomic_write(path, data)
      if writer is not None:
        writer.write_image(step, name, figure)
    return [path for path, _ in files]

  # -------------------------------------------------------------- training
  def _save_config(self) -> None:
    if not self.is_main:
      return
    os.makedirs(self.workdir, exist_ok=True)
    path = workdir_lib.config_path(self.workdir)
    text = _config_json(self.config)
    if os.path.exists(path):
      with open(path) as f:
        if f.read() == text:
          return
      path = os.path.join(self.workdir,
                          f'config_{time.strftime("%Y%m%d-%H%M%S")}.json')
    workdir_lib.atomic_write(path, text)

  def _check_fits_checkpoint(self) -> None:
    """A model config that no longer fits the workdir's newest usable
    checkpoint (`Checkpointer.latest_usable_step`: digest and metadata
    intact) is refused (`ConfigError` naming the leaves) before anything is
    written. Unreadable arrays are left to `train`'s restore."""
    ckpt = self.checkpointer()
    try:
      latest = ckpt.latest_usable_step()
      if latest is not None:
        try:
          ckpt.check_compatible(latest, self.abstract_state())
        except ConfigError:
          raise
        except Exception:  # pylint: disable=broad-except
          pass
    finally:
      ckpt.close()

  def _lock_workdir(self, stack: contextlib.ExitStack) -> None:
    """Process 0 takes the workdir's lock for the life of `stack`; with
    several processes all of them learn whether it did, and all raise
    `WorkdirLockedError` if not (none waits in a collective alone)."""
    error = None
    if self.is_main:
      try:
        stack.enter_context(workdir_lib.exclusive(self.workdir))
      except WorkdirLockedError as e:
        error = e
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      held = multihost_utils.broadcast_one_to_all(np.int32(error is None))
      if not held and error is None:
        error = WorkdirLockedError(
            f'--workdir={self.workdir} is in use by another training run '
            '(process 0 could not take its lock).')
    if error is not None:
      raise error

  @contextlib.contextmanager
  def locked(self) -> Iterator[None]:
    """Holds the workdir's lock (`jaxgen.workdir.exclusive`, process 0) for
    the block; re-entrant within this Experiment, so a caller that reads
    the workdir's checkpoints before `train` (experiments.main's resume
    line) takes the lock first and `train` keeps it. Nothing in the
    checkpoints folder is read before the lock is held: a second run on a
    workdir in use is refused before it can see a step the first run is
    deleting.

    Raises:
      WorkdirLockedError: another run trains in this workdir.
    """
    if self._lock_held:
      yield
      return
    with contextlib.ExitStack() as stack:
      self._lock_workdir(stack)
      self._lock_held = True
      try:
        yield
      finally:
        self._lock_held = False

  def train(self) -> TrainState:
    """Trains to config.train.num_steps, resuming from the workdir.

    Logs to metrics.jsonl / TensorBoard, evaluates periodically, saves
    orbax checkpoints (periodic, final, and on SIGTERM), writes sample
    grids. With ``config.train.profile_steps`` = N > 0, process 0 traces
    N steps after its first (compiling) one into ``<workdir>/profile``
    (`_Profile`). Holds the workdir's lock
    (`jaxgen.workdir.exclusive`, process 0) throughout. Resumes from the
    newest usable checkpoint; newer ones that are corrupt or unreadable are
    named in one warning line and moved aside into ``checkpoints/corrupt/``
    (`Checkpointer.set_aside`), so their step numbers are saved afresh.

    Raises:
      WorkdirLockedError: another run trains in this workdir.
      ConfigError: the config does not fit the workdir's checkpoints.
      CheckpointError: the workdir has checkpoints, none usable.
      CheckpointSaveError: a save failed; training stopped at once.
      NonFiniteError: a NaN/inf metric or parameter (nothing saved from it).
    A locked workdir or a config that does not fit is refused before the
    workdir is touched.
    """
    c = self.config
    with self.locked():
      self._check_fits_checkpoint()
      ckpt = self.checkpointer(create=True)
      train_iter = self.train_iterator()
      writer = None
      try:
        latest = None
        if ckpt.all_steps():
          restored = ckpt.restore_latest(self.abstract_state(), train_iter)
          ckpt.set_aside(s for s, _ in restored.skipped)
          state, latest = restored.value, restored.step
          logging.info('Resuming from step %d', latest)
        self._save_config()
        writer = writers.MetricWriter(self.workdir, enabled=self.is_main,
                                      resume_step=latest)
        if latest is None:
          state = self.init_state()
          if self.is_main:
            writer.write_hparams(json.loads(_config_json(c)))
        state = self._loop(state, train_iter, ckpt, writer)
      finally:
        ckpt.close()
        if writer is not None:
          writer.close()
    return state

  def write_curves(self, path: str | None = None) -> str | None:
    """Draws the workdir's metrics.jsonl as training curves (process 0).

    One panel per logged metric against the step, the periodic evaluation's
    values as points (`jaxgen.writers.write_curves`), titled with the
    family and the workdir. experiments.main calls it once
    ``config.train.num_steps`` is reached (and ``--mode=evaluate`` again);
    it only reads metrics.jsonl, so training is unchanged.

    Args:
      path: the PNG (default ``<workdir>/images/curves.png``).

    Returns:
      The path written; None in other processes, and when metrics.jsonl is
      missing or empty (nothing is written).
    """
    if not self.is_main:
      return None
    return writers.write_curves(
        self.workdir, title=f'{self.config.family}: {self.workdir}',
        path=path)

  def _loop(self, state, train_iter, ckpt, writer) -> TrainState:
    c, t = self.config, self.config.train
    start = int(state.step)
    if start >= t.num_steps:
      logging.info('Already trained for %d >= %d steps.', start, t.num_steps)
      return state
    pending: list[tuple[int, dict[str, jax.Array]]] = []
    last_saved = ckpt.latest_step()

    def last_good() -> str:
      if last_saved is None:
        return f'no checkpoint in {ckpt.directory} yet: a rerun starts afresh'
      return (f'the last good checkpoint is step {last_saved} in '
              f'{ckpt.directory}: a rerun resumes there')

    bar = tqdm.tqdm(total=t.num_steps, initial=start, disable=not self.is_main,
                    desc=f'{c.family} train', unit='step', dynamic_ncols=True,
                    mininterval=0.5)
    tick, tick_step = time.perf_counter(), start

    def flush(step: int) -> None:
      nonlocal tick, tick_step
      if not pending:
        return
      host = jax.device_get([m for _, m in pending])
      for (s, _), values in zip(pending, host):
        for name, value in values.items():
          if not np.isfinite(value):
            raise NonFiniteError(
                f'Non-finite metric {name!r} = {float(value)} at step {s}. '
                f'Training stopped; no checkpoint was written from this '
                f'state ({last_good()}).')
      means = {k: float(np.mean([h[k] for h in host])) for k in host[-1]}
      now = time.perf_counter()
      means['steps_per_sec'] = (step - tick_step) / max(now - tick, 1e-9)
      tick, tick_step = now, step
      writer.write_scalars(step, means, split='train')
      bar.set_postfix(loss=f'{means["loss"]:.4g}', refresh=False)
      pending.clear()

    step = start
    profile = _Profile(
        os.path.join(self.workdir, PROFILE_DIR),
        t.profile_steps if self.is_main else 0, first_step=start + 1)
    with _TerminationFlag() as term, bar, profile:
      while step < t.num_steps:
        profile.before_step(step, state)
        ckpt.poll()  # a failed background save stops training here
        batch = parallel.global_batch(next(train_iter), self.mesh)
        state, metrics = self.train_step(state, batch, self.train_key)
        step += 1
        pending.append((step, metrics))
        bar.update(1)
        final = step == t.num_steps
        # Read the flag once: a SIGTERM landing later in this iteration is
        # handled (saved, then exit) at the end of the next one.
        stop = term.stop(step)
        save = final or stop or step % t.checkpoint_every_steps == 0
        if save or step % t.log_every_steps == 0:
          flush(step)
        if t.eval_every_steps and (step % t.eval_every_steps == 0 or final):
          if c.eval.periodic_split:
            results = self.evaluate(state, split=c.eval.periodic_split,
                                    estimators=c.eval.periodic_estimators)
            writer.write_scalars(step, results, split=c.eval.periodic_split)
        if t.image_every_steps and (step % t.image_every_steps == 0 or final):
          self.write_images(state, writer)
        if save:
          # The metrics are computed before the update: check what is
          # about to be written too (one host sync per checkpoint).
          bad = [k for k, v in non_finite_leaves(
              (state.params, state.ema_params)).items() if v]
          if bad:
            raise NonFiniteError(
                f'Non-finite parameters after step {step} '
                f'({", ".join(bad[:5])}{", ..." if len(bad) > 5 else ""}). '
                f'Training stopped; no checkpoint was written from this '
                f'state ({last_good()}).')
          if ckpt.save(step, state, train_iter, force=True):
            last_saved = step
        if stop:
          logging.warning('SIGTERM: saved step %d, exiting.', step)
          bar.write(f'SIGTERM received: checkpoint saved at step {step}.')
          break
      profile.stop(state)
    writer.flush()
    return state
