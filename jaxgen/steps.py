"""The step toolkit: train state, optimizers, the generic step, EMA, means.

Everything a train step is made of, below the families so that they build
their own steps from it and none of them imports the trainer:

- `TrainState`: what changes during training, checkpointed whole;
- `make_optimizer`: an optax optimizer from ``config.optimizer``;
- `check_hyperparameters`: the numeric fields of any family's config
  (finite, positive learning rates and batch sizes, optimizer ranges),
  checked before anything is built;
- `make_train_step`: the generic step, one optax update on a family's
  ``loss_fn`` over the whole parameter pytree;
- `make_variables_step`: the same step over a Flax variables dict, the
  optimizer on ``variables['params']`` and any other collection left to the
  family (EMA codebooks, frozen sub-models);
- `ema_update` and `masked_mean`: the parameter EMA and the per-example
  mean over unmasked rows that every step (generic or a family's own)
  shares;
- `ComputeDtypeNet`: a family's Net whose ``apply`` computes in
  ``config.train.compute_dtype`` (mixed precision), for the train step;
  `compute_module` gives the modules a family's own step builds from that
  Net (a GAN's players) the same dtype.

Both steps share the key schedule ``fold_in(train_key, state.step)``, the
gradient update (`apply_gradients`) and the bookkeeping after it
(`finish_step`: EMA, metric means, the next state), so the step is written
once.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgen.errors import ConfigError

OPTIMIZERS = ('adam', 'adamw', 'sgd', 'rmsprop')
SCHEDULES = ('constant', 'cosine')
# Values of config.train.compute_dtype: the dtype of the Net's activations
# and matmuls in the train step (`ComputeDtypeNet`).
COMPUTE_DTYPES = ('float32', 'bfloat16')


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training; checkpointed whole.

  Attributes:
    step: int32 scalar, the number of updates applied.
    params: the model parameters.
    opt_state: the optax state.
    ema_params: exponential moving average of params, or None when off.
  """
  step: jax.Array
  params: Any
  opt_state: Any
  ema_params: Any = None


# Optimizer fields and the interval [low, high) their values must lie in.
# Any sub-config with a 'learning_rate' and a 'name' is an optimizer
# (config.optimizer, a GAN's config.d_optimizer).
_OPTIMIZER_RANGES = {
    'b1': (0.0, 1.0), 'b2': (0.0, 1.0), 'momentum': (0.0, 1.0),
    'eps': (0.0, math.inf), 'weight_decay': (0.0, math.inf),
    'grad_clip_norm': (0.0, math.inf),
}


def _config_leaves(tree: Any, prefix: str = 'config'):
  """(dotted path, value) of every leaf of a (nested) config dict."""
  for key, value in tree.items():
    path = f'{prefix}.{key}'
    if isinstance(value, (dict, ml_collections.ConfigDict)):
      yield from _config_leaves(value, path)
    else:
      yield path, value


def _is_number(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_hyperparameters(config: ml_collections.ConfigDict) -> None:
  """Raises `ConfigError` naming the first hyper-parameter that cannot train.

  Generic over families, on every field of the config:

  - a float field must be finite (a NaN or inf passes every comparison and
    would only show as a diverged run);
  - a field named ``*learning_rate`` must be > 0;
  - a tuple of numbers holds numbers only (an override such as
    ``(3,x)`` parses 'x' as a string);
  - a field named ``*batch_size``, ``num_steps`` or ``num_grid_samples``
    must be an integer >= 1, ``seed`` or ``*_seed`` an integer >= 0;
  - in an optimizer (a sub-config with ``name`` and ``learning_rate``,
    e.g. ``config.optimizer``, ``config.d_optimizer``): b1, b2 and momentum
    in [0, 1), eps, weight_decay and grad_clip_norm >= 0, warmup_steps an
    integer >= 0.
  """
  for path, value in _config_leaves(config):
    if isinstance(value, float) and not math.isfinite(value):
      raise ConfigError(f'{path}={value} must be a finite number.')
    if isinstance(value, (list, tuple)):
      for i, v in enumerate(value):
        if isinstance(v, float) and not math.isfinite(v):
          raise ConfigError(f'{path}[{i}]={v} must be a finite number.')
      if (any(_is_number(v) for v in value) and
          any(isinstance(v, str) for v in value)):
        raise ConfigError(f'{path}={tuple(value)!r} mixes numbers and '
                          'strings: expected numbers only (a typo in a '
                          'tuple override?).')
    name = path.rsplit('.', 1)[-1]
    if name.endswith('learning_rate') and (not _is_number(value) or
                                           value <= 0):
      raise ConfigError(f'{path}={value!r} must be a number > 0.')
    if (name.endswith('batch_size') or name in ('num_steps',
                                                'num_grid_samples')) and (
        not _is_number(value) or int(value) != value or value < 1):
      raise ConfigError(f'{path}={value!r} must be an integer >= 1.')
    if (name == 'seed' or name.endswith('_seed')) and (
        not _is_number(value) or int(value) != value or value < 0):
      raise ConfigError(f'{path}={value!r} must be an integer >= 0.')
    parent = path.rsplit('.', 1)[0]
    node = config
    for key in parent.split('.')[1:]:
      node = node[key]
    if 'learning_rate' in node and 'name' in node:
      if name in _OPTIMIZER_RANGES and _is_number(value):
        low, high = _OPTIMIZER_RANGES[name]
        if not low <= value < high:
          expected = (f'lie in [{low:g}, {high:g})' if math.isfinite(high)
                      else f'be >= {low:g}')
          raise ConfigError(f'{path}={value!r} must {expected}.')
      if name == 'warmup_steps' and (not _is_number(value) or
                                     int(value) != value or value < 0):
        raise ConfigError(f'{path}={value!r} must be an integer >= 0.')


def make_optimizer(opt: ml_collections.ConfigDict,
                   num_steps: int) -> optax.GradientTransformation:
  """An optax optimizer from ``config.optimizer``.

  Fields: name ('adam', 'adamw', 'sgd', 'rmsprop'), learning_rate,
  schedule ('constant' or 'cosine' decay to 0 over num_steps),
  warmup_steps (linear warm-up from 0), b1, b2, eps, weight_decay (adamw),
  momentum (sgd, rmsprop), grad_clip_norm (0 disables clipping).
  """
  if opt.name not in OPTIMIZERS:
    raise ConfigError(f'config.optimizer.name={opt.name!r} is not one of '
                      f'{OPTIMIZERS}.')
  if opt.schedule not in SCHEDULES:
    raise ConfigError(f'config.optimizer.schedule={opt.schedule!r} is not one '
                      f'of {SCHEDULES}.')
  if not opt.learning_rate > 0:  # NaN too
    raise ConfigError(
        f'config.optimizer.learning_rate={opt.learning_rate} must be > 0.')
  lr = opt.learning_rate
  if opt.schedule == 'cosine':
    lr = optax.cosine_decay_schedule(lr, max(num_steps - opt.warmup_steps, 1))
  if opt.warmup_steps:
    warm = optax.linear_schedule(0.0, opt.learning_rate, opt.warmup_steps)
    lr = optax.join_schedules(
        [warm, lr if callable(lr) else optax.constant_schedule(lr)],
        [opt.warmup_steps])
  if opt.name == 'adam':
    tx = optax.adam(lr, b1=opt.b1, b2=opt.b2, eps=opt.eps)
  elif opt.name == 'adamw':
    tx = optax.adamw(lr, b1=opt.b1, b2=opt.b2, eps=opt.eps,
                     weight_decay=opt.weight_decay)
  elif opt.name == 'sgd':
    tx = optax.sgd(lr, momentum=opt.momentum or None)
  else:
    tx = optax.rmsprop(lr, momentum=opt.momentum)
  if opt.grad_clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(opt.grad_clip_norm), tx)
  return tx


def masked_mean(values: jax.Array, mask: jax.Array | None) -> jax.Array:
  """Mean of per-example `values` [B] over rows where `mask` [B] is True.

  Padded rows (the last evaluation batch, a partial training batch) carry
  mask False and do not count; a batch with no unmasked row gives 0. With
  no mask every row counts.
  """
  if mask is None:
    return values.mean()
  mask = mask.astype(values.dtype)
  return (values * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def ema_update(ema: Any, params: Any, decay: float) -> Any:
  """One step of the exponential moving average of a pytree.

  Returns ``decay * ema + (1 - decay) * params``, leaf by leaf (`ema` and
  `params` have the same structure).
  """
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)


def apply_gradients(objective: Callable, tx: optax.GradientTransformation,
                    params: Any, opt_state: Any):
  """One optax update of `params` on ``objective(params) -> (loss, aux)``.

  Returns:
    ((loss, aux), grads, new params, new optimizer state).
  """
  (loss, aux), grads = jax.value_and_grad(objective, has_aux=True)(params)
  updates, opt_state = tx.update(grads, opt_state, params)
  return (loss, aux), grads, optax.apply_updates(params, updates), opt_state


def finish_step(state: TrainState, params: Any, opt_state: Any, *,
                loss: jax.Array, per_example: dict[str, jax.Array],
                grads: Any, mask: jax.Array, ema_decay: float = 0.0,
                extra: dict[str, jax.Array] | None = None):
  """The next state and the step's scalar metrics after an update.

  Args:
    state: the incoming state.
    params: the updated parameters (what `TrainState.params` holds next).
    opt_state: the updated optimizer state.
    loss: the scalar the gradients were taken of.
    per_example: {name: [B]} metrics, averaged over the rows where `mask`
      [B] is True (`masked_mean`).
    grads: the gradients, reported as their global norm 'grad_norm'.
    mask: bool [B], the batch's real rows.
    ema_decay: 0 keeps ``state.ema_params`` as is; else it moves by
      `ema_update` towards the new `params`.
    extra: scalar metrics passed through unchanged.

  Returns:
    (state with step + 1, {per-example means, extra, 'loss', 'grad_norm'}).
  """
  ema = state.ema_params
  if ema_decay:
    ema = ema_update(ema, params, ema_decay)
  metrics = {k: masked_mean(v, mask) for k, v in per_example.items()}
  metrics.update(extra or {})
  metrics['loss'] = loss
  metrics['grad_norm'] = optax.tree.norm(grads)
  new_state = state.replace(step=state.step + 1, params=params,
                            opt_state=opt_state, ema_params=ema)
  return new_state, metrics


def make_train_step(loss_fn: Callable, tx: optax.GradientTransformation, *,
                    preprocess: Callable, ema_decay: float = 0.0) -> Callable:
  """The generic step ``(state, batch, train_key) -> (state, metrics)``.

  Args:
    loss_fn: ``(params, batch, key) -> (scalar, {name: [B]})`` with the
      family's net and ``train=True`` already bound.
    tx: the optax optimizer.
    preprocess: ``(batch, key) -> batch``, the device-side data transform.
    ema_decay: 0 disables the EMA; else ema <- d * ema + (1 - d) * params.

  Returns:
    A pure function to `jax.jit`. The key ``fold_in(train_key, state.step)``
    is split into (preprocess, loss). Its metrics are scalars: 'loss',
    'grad_norm' and the mean of each per-example metric over unmasked rows.
  """

  def train_step(state: TrainState, batch, train_key):
    key = jax.random.fold_in(train_key, state.step)
    pre_key, loss_key = jax.random.split(key)
    batch = preprocess(batch, pre_key)
    (loss, per_example), grads, params, opt_state = apply_gradients(
        lambda p: loss_fn(p, batch, loss_key), tx, state.params,
        state.opt_state)
    return finish_step(state, params, opt_state, loss=loss,
                       per_example=per_example, grads=grads,
                       mask=batch['mask'], ema_decay=ema_decay)

  return train_step


def params_optimizer(tx: optax.GradientTransformation
                     ) -> optax.GradientTransformation:
  """`tx` acting on ``variables['params']`` only.

  ``init(variables)`` initialises on the 'params' subtree; ``update`` takes
  that subtree's gradients and values, as `make_variables_step` passes them.
  The trainer calls ``tx.init(state.params)`` with the whole variables dict.
  """
  return optax.GradientTransformation(lambda v: tx.init(v['params']),
                                      tx.update)


def make_variables_step(objective: Callable, tx, preprocess: Callable, *,
                        ema_decay: float = 0.0,
                        update_state: Callable | None = None) -> Callable:
  """The generic step over a variables dict: optax on 'params' only.

  ``TrainState.params`` holds a Flax variables dict; the gradient step
  moves ``variables['params']`` and leaves every other collection as it
  is, for `update_state` (the family's) to change outside the gradient.

  Args:
    objective: (variables, batch, key) -> (scalar loss, (per-example
      metrics {name: [B]}, aux)); differentiated w.r.t. variables['params'].
    tx: an optimizer on the 'params' subtree (`params_optimizer`).
    preprocess: the device-side data transform (batch, key) -> batch.
    ema_decay: config.train.ema_decay (EMA of the whole variables dict).
    update_state: optional (variables, aux, batch, key) -> (variables,
      {name: scalar}) applied after the optimizer step; its metrics join
      the step's.

  Returns:
    step(state, batch, train_key) -> (state, scalar metrics), the generic
    step's signature; key ``fold_in(train_key, step)`` split into
    (preprocess, loss, state update).
  """

  def step(state: TrainState, batch, train_key):
    key = jax.random.fold_in(train_key, state.step)
    pre_key, loss_key, state_key = jax.random.split(key, 3)
    batch = preprocess(batch, pre_key)
    variables = state.params
    (loss, (per_example, aux)), grads, params, opt_state = apply_gradients(
        lambda p: objective({**variables, 'params': p}, batch, loss_key), tx,
        variables['params'], state.opt_state)
    variables = {**variables, 'params': params}
    extra = {}
    if update_state is not None:
      variables, extra = update_state(variables, aux, batch, state_key)
    return finish_step(state, variables, opt_state, loss=loss,
                       per_example=per_example, grads=grads,
                       mask=batch['mask'], ema_decay=ema_decay, extra=extra)

  return step


def check_compute_dtype(value: Any) -> None:
  """Raises `ConfigError` unless `value` is one of `COMPUTE_DTYPES`."""
  if not isinstance(value, str) or value not in COMPUTE_DTYPES:
    raise ConfigError(f'config.train.compute_dtype={value!r} is not one of '
                      f'{COMPUTE_DTYPES}.')


# Keyword arguments of flax's Module.apply that are not model inputs.
_APPLY_OPTIONS = ('method', 'mutable', 'rngs', 'capture_intermediates')


class ComputeDtypeNet:
  """A family's Net whose ``apply`` computes in a lower precision.

  Mixed precision at the Net's boundary. ``apply(variables, *args,
  **kwargs)`` casts the float32 leaves of ``variables['params']`` and of
  the inputs (arrays among `args` and `kwargs`) to `dtype`, and so again
  the float32 inputs of every module call inside the Net
  (``flax.linen.intercept_methods``: a float32 constant of the Net's own,
  a mask say, would otherwise promote the next layer back to float32); it
  casts the `dtype` leaves of what the Net returns (outputs, updated
  collections such as batch statistics) back to float32. So the layers'
  activations and matmuls run in `dtype`, while everything the family
  computes from the Net's outputs (the likelihood terms, the loss and its
  reduction) and everything the trainer keeps (parameters, optimizer
  state, EMA, batch statistics) stays float32. Integer and boolean inputs
  (pixel levels, labels, masks) and PRNG keys are passed unchanged; other
  collections than 'params' are read in float32. Used inside the
  differentiated function, the gradients arrive in float32 through the
  casts. What a Net sums inside one module in `dtype` stays in `dtype`
  (between modules, a float32 accumulator such as a flow's log-determinant
  stays float32). XLA's CPU backend sums a bfloat16 reduction in bfloat16,
  so on CPU the gradient of a broadcast parameter (a bias, summed over the
  batch and positions) carries that rounding.

  Any other attribute is the wrapped Net's (its fields), so a family's
  ``loss_fn`` or ``make_train_step`` takes it in place of the Net. The
  trainer wraps the Net for the train step only: evaluation, likelihoods
  and sampling apply the plain float32 Net.

  A family whose step applies modules it builds from the Net's fields (the
  adversarial families' players) builds them through `compute_module`,
  which wraps each one like this and counts its applications here.

  Attributes:
    net: the wrapped Net (or module).
    dtype: the compute dtype, e.g. ``jnp.bfloat16``.
    applied: how many times ``apply`` ran (traced) through this wrapper or
      a module wrapped by `compute_module` from it: 0 after tracing a step
      means the step never applied the Net, so the compute dtype changed
      nothing.
    owner: the `ComputeDtypeNet` whose ``applied`` also counts this
      wrapper's applications (`compute_module`), or None.
  """

  def __init__(self, net, dtype, owner: ComputeDtypeNet | None = None):
    self.net = net
    self.dtype = jnp.dtype(dtype)
    self.applied = 0
    self.owner = owner

  def __getattr__(self, name: str) -> Any:
    # Only called for names not found on the wrapper: the Net's fields.
    return getattr(self.__dict__['net'], name)

  def _to_compute(self, tree: Any) -> Any:
    def cast(x):
      if isinstance(x, jax.Array) and x.dtype == jnp.float32:
        return x.astype(self.dtype)
      return x
    return jax.tree.map(cast, tree)

  def _to_float32(self, tree: Any) -> Any:
    def cast(x):
      if isinstance(x, jax.Array) and x.dtype == self.dtype:
        return x.astype(jnp.float32)
      return x
    return jax.tree.map(cast, tree)

  def apply(self, variables, *args, **kwargs):
    """``net.apply`` with params and inputs in `dtype`, outputs in float32."""
    self.applied += 1
    if self.owner is not None:
      self.owner.applied += 1
    variables = dict(variables)
    if 'params' in variables:
      variables['params'] = self._to_compute(variables['params'])
    options = {k: kwargs.pop(k) for k in _APPLY_OPTIONS if k in kwargs}

    def inputs_in_dtype(next_fun, args, kwargs, context):
      if context.method_name == 'setup':
        return next_fun(*args, **kwargs)
      return next_fun(*self._to_compute(args), **self._to_compute(kwargs))

    with flax.linen.intercept_methods(inputs_in_dtype):
      out = self.net.apply(variables, *self._to_compute(args),
                           **self._to_compute(kwargs), **options)
    return self._to_float32(out)


def compute_net(net, compute_dtype: str):
  """`net` for a train step in ``config.train.compute_dtype``: the Net
  itself for 'float32', else a `ComputeDtypeNet` (one already wrapped is
  returned as it is)."""
  check_compute_dtype(compute_dtype)
  if compute_dtype == 'float32' or isinstance(net, ComputeDtypeNet):
    return net
  return ComputeDtypeNet(net, compute_dtype)


def compute_module(net, module):
  """`module` applied in `net`'s compute dtype.

  For a family whose step applies modules it builds from the Net's fields
  (a GAN's generator and discriminator): when the trainer passed `net` as
  a `ComputeDtypeNet`, a `ComputeDtypeNet` of `module` in the same dtype
  whose applications count in ``net.applied``; for a plain Net (float32
  training, evaluation, sampling), `module` itself.
  """
  if isinstance(net, ComputeDtypeNet):
    return ComputeDtypeNet(module, net.dtype, owner=net)
  return module


def float32_module(module):
  """The plain float32 module behind a `compute_module` (or `module`)."""
  return module.net if isinstance(module, ComputeDtypeNet) else module
