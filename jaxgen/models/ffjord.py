r"""FFJORD: a continuous normalizing flow, exact log-likelihood.

Grathwohl, Chen, Bettencourt, Sutskever & Duvenaud, "FFJORD: Free-form
Continuous Dynamics for Scalable Reversible Generative Models", ICLR 2019;
Chen, Rubanova, Bettencourt & Duvenaud, "Neural Ordinary Differential
Equations", NeurIPS 2018.

**The flow.** A time-conditioned network f(z, t) (`Net`) defines the ODE
dz/dt = f(z(t), t) on t in [0, T] (``T = time_length``, or learned with
``train_time``: below). The data x is z(0); the base variable is z(T) ~
N(0, I). By the instantaneous change of variables (Chen et al. 2018,
theorem 1),

    d log p(z(t)) / dt = -tr(df/dz(z(t), t)),

so the augmented state [z, L] with dL/dt = +tr(df/dz) and L(0) = 0 gives
``L(T) = log|det dz(T)/dx|`` and

    log p(x) = log N(z(T); 0, I) + L(T).

`forward` solves [z, L] from 0 to T (data to base); `inverse` solves z
alone from T back to 0 (base to data); `sample` draws z(T) ~ N(0, I) and
inverts it.

**The trace.** ``trace='exact'`` sums the diagonal of the Jacobian from D
forward-mode products J e_i (one `jax.linearize` of f, vmapped over the
basis vectors e_i; examples are independent, so one product with e_i
broadcast over the batch gives J_b e_i for every example b): D products
per evaluation of f, the choice for points (D = 2). ``trace='hutchinson'``
is Hutchinson's unbiased estimator tr(J) = E[eps^T J eps] (FFJORD's
section 3.1) with one noise draw eps per example (Rademacher or Gaussian,
``noise``), drawn from the loss's key and held fixed over the whole solve:
one product J eps per evaluation, the choice for images. Its log-density
is unbiased for the exact one.

**The solver.** `diffrax` solves the ODE adaptively: Dopri5 (FFJORD's
choice) or Tsit5 (``solver``), a PID step-size controller with the
relative and absolute tolerances ``rtol`` and ``atol``, at most
``max_steps`` steps. Gradients use diffrax's default
``RecursiveCheckpointAdjoint``: backpropagation through the solver's own
operations, with checkpointing of the steps. It gives the exact gradient
of the computed solution, which keeps training stable at the loose
training tolerances, and is faster than ``BacksolveAdjoint`` (the
continuous adjoint of the papers, which re-solves the ODE backwards and
whose gradient is only as accurate as that second solve) at the cost of
memory that grows with the number of steps; the models here are small
enough for that, and ``max_steps`` bounds it. A solve that would need more
than ``max_steps`` steps does not raise inside the compiled step: its
output is non-finite, so training stops with the trainer's non-finite
loss error and evaluation reports a non-finite figure.

**Cost metrics.** `loss_fn` returns, per example, ``nfe``: the number of
evaluations of f in the batch's solve, 6 per Dopri5 / Tsit5 step (first
same as last), accepted or rejected, plus 1 at the start (the batch is
solved as one ODE, so every example of a batch carries the batch's count),
and ``num_steps`` (accepted and rejected steps).

**Regularisation.** Optional, RNODE's (Finlay, Jacobsen, Nurbekyan &
Oberman, "How to train your neural ODE", ICML 2020): ``kinetic_weight``
times the kinetic energy integral of ||f||^2 dt and ``jacobian_weight``
times the integral of ||J eps||^2 dt (an unbiased estimate of the squared
Frobenius norm of the Jacobian, with the Hutchinson noise); both are
integrated with the state, in nats-per-example units of the loss.

**The end time.** T is ``time_length``, fixed, by default. With
``train_time`` it is a parameter, ``T = sqrt_end_time^2`` (FFJORD's
``train_T``: the square keeps it positive), initialised at
``time_length``; the gradient of the loss reaches it through the solve,
whose end point it is (diffrax differentiates through the solver's steps
up to t1), and the training metrics report it as ``end_time``.

**The dynamics networks.** Points [B, D]: an MLP of ConcatSquash layers
(FFJORD's toy models), ``h -> Dense(h) * sigmoid(Dense(t)) +
Dense_nobias(t)``, widths ``hidden`` with ``activation`` ('tanh' or
'softplus') between them and a ConcatSquash layer out to D. Images
[B, H, W, C]: 3x3 convolutions of widths ``hidden`` (then one to C) whose
input has t appended as an extra constant channel (FFJORD's ConcatConv),
softplus or tanh between them. Images are first mapped by RealNVP's logit
pre-processing ``logit(alpha + (1 - 2 alpha) y)`` of the dequantized
pixels y (``logit_alpha``), whose log-determinant joins the flow's; the
evaluator adds D ln 256, as for the other flows of dequantized pixels
(`jaxgen.models.realnvp`). Points are modelled as they are.

The family contract (`jaxgen.models`): `Net`, `init`, `loss_fn`,
`LIKELIHOOD`, `log_likelihood` (estimator arguments ``trace``, ``rtol``,
``atol``), `sample`, `validate`, `DATA`, `ESTIMATOR_CHOICES`. Pure
functions usable outside the trainer: `dynamics`, `forward(params, x, *,
net) -> (z, logdet)`, `inverse(params, z, *, net) -> (x, logdet)`,
`log_det(params, x, *, net) -> [B]`, `end_time(params, *, net)`.
"""

from __future__ import annotations

import math
from typing import Sequence

import diffrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import steps
from jaxgen.models import base
from jaxgen.errors import ConfigError
from jaxgen.models import realnvp
from jaxgen.nn import conv as conv_lib
from jaxgen.nn import flows

LIKELIHOOD = 'exact'  # up to the solver's tolerance; + D ln 256 for images
DATA = ('images', 'points')
TRACES = ('exact', 'hutchinson')
NOISES = ('rademacher', 'gaussian')
SOLVERS = ('dopri5', 'tsit5')
ACTIVATIONS = ('tanh', 'softplus')
ESTIMATOR_CHOICES = {'trace': TRACES}
# Evaluations of f in a compiled solve: 6 per step (both solvers have 7
# stages, the first the same as the last step's last), 1 at the start.
_EVALS_PER_STEP = 6
_EVALS_AT_START = 1
_LOG_256 = math.log(256.0)


class ConcatSquashDense(nn.Module):
  """``Dense(x) * sigmoid(Dense(t)) + Dense_nobias(t)`` (FFJORD's toy layer).

  Attributes:
    features: output width.
  """
  features: int

  @nn.compact
  def __call__(self, x: jax.Array, t: jax.Array) -> jax.Array:
    tt = jnp.reshape(t, (1, 1)).astype(x.dtype)
    gate = nn.sigmoid(nn.Dense(self.features, name='gate')(tt))
    bias = nn.Dense(self.features, use_bias=False, name='bias')(tt)
    return nn.Dense(self.features, name='layer')(x) * gate + bias


class ConcatConv(nn.Module):
  """A 3x3 'SAME' convolution of ``[x, t]``, t appended as a constant
  channel (FFJORD's ConcatConv2d).

  Written as shifted slices and one matmul (a Dense layer on the 3x3
  patches, `conv.patches`: its kernel is the convolution's [3, 3, C + 1, F]
  kernel reshaped to [9 (C + 1), F]): XLA:CPU differentiates `lax.conv`
  inside the solver's loop far more slowly than this same map.

  Attributes:
    features: output channels.
  """
  features: int

  @nn.compact
  def __call__(self, x: jax.Array, t: jax.Array) -> jax.Array:
    tt = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:-1] + (1,))
    return nn.Dense(self.features)(
        conv_lib.patches(jnp.concatenate([x, tt], axis=-1), (3, 3)))


class Net(nn.Module):
  """The dynamics f(z, t) and the solver settings; fields are
  ``config.model``.

  ``Net(...)(z, t)`` returns dz/dt, the shape of z: points [B, D] or
  images [B, H, W, C] (logit space). Rows are independent (no batch
  statistics), which the exact trace relies on.

  Attributes:
    image_shape: (H, W, C) of images, or (D,) of points.
    hidden: widths (points) or channels (images) of the hidden layers.
    activation: 'tanh' or 'softplus' between layers.
    time_length: T, the end of the integration interval [0, T].
    logit_alpha: alpha of the logit pre-processing of images; 0 for points.
    solver: 'dopri5' or 'tsit5', adaptive Runge-Kutta of order 5.
    rtol: relative tolerance of training, `forward`, `inverse`, `sample`.
    atol: absolute tolerance of the same.
    max_steps: the most solver steps of one solve.
    trace: 'exact' or 'hutchinson', the trace of training.
    noise: 'rademacher' or 'gaussian', Hutchinson's noise.
    kinetic_weight: RNODE's weight of the kinetic energy (0: none).
    jacobian_weight: RNODE's weight of the Jacobian norm (0: none).
    train_time: learn T as the parameter ``sqrt_end_time`` squared
      (initialised at ``time_length``) instead of fixing it.
  """
  image_shape: Sequence[int] = (2,)
  hidden: Sequence[int] = (64, 64, 64)
  activation: str = 'tanh'
  time_length: float = 1.0
  logit_alpha: float = 0.0
  solver: str = 'dopri5'
  rtol: float = 1e-5
  atol: float = 1e-5
  max_steps: int = 1000
  trace: str = 'exact'
  noise: str = 'rademacher'
  kinetic_weight: float = 0.0
  jacobian_weight: float = 0.0
  train_time: bool = False

  @nn.compact
  def __call__(self, z: jax.Array, t: jax.Array) -> jax.Array:
    if self.train_time:  # read by `end_time`, not by the dynamics
      self.param('sqrt_end_time', lambda _: jnp.sqrt(
          jnp.asarray(self.time_length, jnp.float32)))
    act = jnp.tanh if self.activation == 'tanh' else nn.softplus
    points = len(self.image_shape) == 1
    layer = ConcatSquashDense if points else ConcatConv
    h = z
    for width in self.hidden:
      h = act(layer(width)(h, t))
    return layer(z.shape[-1])(h, t)


def is_points(net: nn.Module) -> bool:
  """Whether the flow models points [B, D] (else images [B, H, W, C])."""
  return len(net.image_shape) == 1


def init(key: jax.Array, batch, *, net: nn.Module):
  """Initial parameters of the dynamics for a preprocessed batch."""
  return net.init(key, realnvp.inputs(batch), jnp.zeros(()))['params']


def end_time(params, *, net: nn.Module):
  """T: ``time_length`` (a Python float), or with ``train_time`` the
  learned ``sqrt_end_time ** 2`` (a scalar array)."""
  if net.train_time:
    return params['sqrt_end_time'] ** 2
  return float(net.time_length)


def dynamics(params, z: jax.Array, t, *, net: nn.Module) -> jax.Array:
  """f(z, t): dz/dt, the shape of z [B, ...]."""
  return net.apply({'params': params}, z, t)


def _sum(x: jax.Array) -> jax.Array:
  return jnp.sum(x.reshape(x.shape[0], -1), axis=-1)


def _exact_trace(f, z: jax.Array):
  """(f(z) [B, ...], tr(df/dz) [B]) from D Jacobian-vector products."""
  fz, jvp = jax.linearize(f, z)
  d = math.prod(z.shape[1:])
  basis = jnp.eye(d, dtype=z.dtype).reshape((d, 1) + z.shape[1:])
  cols = jax.vmap(lambda e: jvp(jnp.broadcast_to(e, z.shape)))(basis)
  cols = cols.reshape(d, z.shape[0], d)  # [i, b, j] = (J_b e_i)_j
  return fz, jnp.einsum('ibi->b', cols)


def _solver(name: str):
  return diffrax.Dopri5() if name == 'dopri5' else diffrax.Tsit5()


def _solve(params, z0: jax.Array, *, net: nn.Module, reverse: bool = False,
           trace: str | None = None, eps: jax.Array | None = None,
           rtol: float | None = None, atol: float | None = None,
           regularise: bool = False):
  """Solves the ODE from z0 over [0, T] (or back from T to 0).

  Args:
    params: the dynamics' parameters.
    z0: [B, ...] the start.
    net: the `Net`.
    reverse: integrate from T to 0 (base to data) instead of 0 to T.
    trace: None (z alone), 'exact' or 'hutchinson' (z and log-det).
    eps: Hutchinson's noise, the shape of z0 (for 'hutchinson' and for the
      Jacobian-norm regulariser).
    rtol: relative tolerance; None for ``net.rtol``.
    atol: absolute tolerance; None for ``net.atol``.
    regularise: also integrate RNODE's kinetic energy and Jacobian norm.

  Returns:
    (z at the end [B, ...], {'logdet', 'kinetic', 'jacobian': [B] integrals
    over the interval, as computed}, {'num_steps', 'nfe': int32 scalars}).
  """
  b = z0.shape[0]

  def field(t, state, args):
    z = state['z']
    f = lambda v: dynamics(args, v, t, net=net)
    out = {}
    if trace is None and not regularise:
      out['z'] = f(z)
      return out
    if trace == 'exact':
      fz, tr = _exact_trace(f, z)
      out['logdet'] = tr
      je = jax.jvp(f, (z,), (eps,))[1] if regularise else None
    else:
      fz, je = jax.jvp(f, (z,), (eps,))
      if trace == 'hutchinson':
        out['logdet'] = _sum(eps * je)
    out['z'] = fz
    if regularise:
      out['kinetic'] = _sum(fz * fz)
      out['jacobian'] = _sum(je * je)
    return out

  state = {'z': z0}
  if trace is not None:
    state['logdet'] = jnp.zeros((b,), z0.dtype)
  if regularise:
    state['kinetic'] = jnp.zeros((b,), z0.dtype)
    state['jacobian'] = jnp.zeros((b,), z0.dtype)
  t0, t1 = 0.0, end_time(params, net=net)
  if reverse:
    t0, t1 = t1, t0
  sol = diffrax.diffeqsolve(
      diffrax.ODETerm(field), _solver(net.solver), t0, t1, None, state,
      args=params,
      stepsize_controller=diffrax.PIDController(
          rtol=net.rtol if rtol is None else rtol,
          atol=net.atol if atol is None else atol),
      adjoint=diffrax.RecursiveCheckpointAdjoint(),
      max_steps=net.max_steps, throw=False)
  end = jax.tree.map(lambda y: y[-1], sol.ys)
  # A failed solve (max_steps reached) leaves non-finite values: make sure.
  ok = sol.result == diffrax.RESULTS.successful
  end = jax.tree.map(lambda y: jnp.where(ok, y, jnp.nan), end)
  num_steps = sol.stats['num_steps']
  stats = {'num_steps': num_steps,
           'nfe': _EVALS_PER_STEP * num_steps + _EVALS_AT_START}
  return end.pop('z'), end, stats


def _noise(key: jax.Array, shape, kind: str) -> jax.Array:
  if key is None:
    raise ValueError('the Hutchinson trace needs a PRNG key; got None.')
  if kind == 'rademacher':
    return jax.random.rademacher(key, shape, jnp.float32)
  return jax.random.normal(key, shape, jnp.float32)


def _pre(x: jax.Array, net: nn.Module):
  """The logit pre-processing of images: (logit y, its log-det [B])."""
  if net.logit_alpha and not is_points(net):
    return flows.logit_forward(x, net.logit_alpha)
  return x, jnp.zeros(x.shape[:1], jnp.float32)


def _flow(params, x, key, *, net, trace, rtol=None, atol=None,
          regularise=False):
  """(z(T), log|det dz/dx| [B] incl. the logit's, extras, stats)."""
  h, pre_ld = _pre(x, net)
  eps = None
  if trace == 'hutchinson' or regularise:
    eps = _noise(key, h.shape, net.noise)
  z, extra, stats = _solve(params, h, net=net, trace=trace, eps=eps,
                           rtol=rtol, atol=atol, regularise=regularise)
  return z, pre_ld + extra.pop('logdet'), extra, stats


def forward(params, x: jax.Array, *, net: nn.Module, key=None,
            trace: str = 'exact', rtol: float | None = None,
            atol: float | None = None):
  """Data to base: x [B, ...] -> (z(T) [B, D], log|det dz/dx| [B]).

  The exact trace by default (a `key` for ``trace='hutchinson'``);
  tolerances default to the net's. For images z is flattened and the
  log-det includes the logit pre-processing's.
  """
  z, logdet, _, _ = _flow(params, x, key, net=net, trace=trace, rtol=rtol,
                          atol=atol)
  return z.reshape(z.shape[0], -1), logdet


def log_det(params, x: jax.Array, *, net: nn.Module, **kwargs) -> jax.Array:
  """log|det dz(T)/dx| [B] of the forward map at x [B, ...] (arguments as
  `forward`'s)."""
  return forward(params, x, net=net, **kwargs)[1]


def _inverse_map(params, z: jax.Array, *, net: nn.Module, trace: bool,
                 rtol=None, atol=None):
  """(x [B, ...], log|det dx/dz| [B] with the exact `trace`, else None)."""
  shape = (z.shape[0],) + tuple(net.image_shape)
  h, extra, _ = _solve(params, z.reshape(shape), net=net, reverse=True,
                       trace='exact' if trace else None, rtol=rtol,
                       atol=atol)
  # Integrated from T back to 0, the trace gives -log|det dz/dh|.
  logdet = extra.get('logdet')
  if net.logit_alpha and not is_points(net):
    h, logit_ld = flows.logit_inverse(h, net.logit_alpha)
    logdet = None if logdet is None else logdet + logit_ld
  return h, logdet


def inverse(params, z: jax.Array, *, net: nn.Module,
            rtol: float | None = None, atol: float | None = None):
  """Base to data: z [B, D] -> (x [B, ...], log|det dx/dz| [B]), solving
  from T back to 0.

  As the other flows' ``inverse``. The log-det is the exact trace (D
  Jacobian-vector products per dynamics evaluation) integrated along the
  reverse solve, so at x = inverse(z) it is minus `forward`'s log-det up
  to the solver's error. For images the logit pre-processing is inverted
  last (its log-det included), giving the dequantized-scale values in
  [0, 1); tolerances default to the net's. `sample` solves without the
  trace.
  """
  return _inverse_map(params, z, net=net, trace=True, rtol=rtol, atol=atol)


def log_likelihood(params, batch, key, *, net: nn.Module,
                   trace: str = 'exact', rtol: float = 1e-5,
                   atol: float = 1e-5) -> jax.Array:
  """log p(x) [B] nats of the preprocessed batch, by the instantaneous
  change of variables.

  ``log N(z(T); 0, I) + integral of tr(df/dz) dt``, solved with tolerances
  `rtol` and `atol` (defaults 1e-5, tighter than training's) and the
  `trace`: 'exact' (the default; exact up to the solver's error) or
  'hutchinson' (an unbiased estimate, one noise draw per example from
  `key`). For images it is log p(y) of the dequantized pixels; the
  evaluator adds D ln 256 to the NLL.
  """
  z, logdet, _, _ = _flow(params, realnvp.inputs(batch), key, net=net,
                          trace=trace, rtol=rtol, atol=atol)
  return flows.gaussian_log_prob(z) + logdet


def loss_fn(params, batch, key, *, net: nn.Module, train: bool = True):
  """Maximum likelihood (plus RNODE's terms when weighted), with the net's
  trace and tolerances.

  Returns:
    (scalar: the mean over unmasked rows of -log p(x) + kinetic_weight *
    kinetic + jacobian_weight * jacobian, {'nll': -log p(x) [B] nats (with
    the Hutchinson trace, an unbiased estimate), 'logdet': log|det dz/dx|
    [B], 'nfe', 'num_steps': the batch solve's counts [B], 'kinetic' and
    'jacobian' [B] when regularised, 'end_time': T [B] when learned, and
    for images 'bits_per_dim': (nll + D ln 256) / (D ln 2) [B]}).
  """
  del train
  x = realnvp.inputs(batch)
  regularise = bool(net.kinetic_weight or net.jacobian_weight)
  z, logdet, extra, stats = _flow(params, x, key, net=net, trace=net.trace,
                                  regularise=regularise)
  nll = -(flows.gaussian_log_prob(z) + logdet)
  b = x.shape[0]
  metrics = {'nll': nll, 'logdet': logdet,
             'nfe': jnp.full((b,), stats['nfe'], jnp.float32),
             'num_steps': jnp.full((b,), stats['num_steps'], jnp.float32)}
  if net.train_time:
    metrics['end_time'] = jnp.full((b,), end_time(params, net=net),
                                   jnp.float32)
  objective = nll
  if regularise:
    metrics.update(extra)
    objective = (nll + net.kinetic_weight * extra['kinetic'] +
                 net.jacobian_weight * extra['jacobian'])
  if not is_points(net):
    d = math.prod(x.shape[1:])
    metrics['bits_per_dim'] = (nll + d * _LOG_256) / (d * math.log(2.0))
  return steps.masked_mean(objective, batch.get('mask')), metrics


def sample(params, key: jax.Array, num: int, *, net: nn.Module,
           temperature: float = 1.0):
  """z(T) ~ N(0, temperature^2 I), x = inverse(z).

  Returns uint8 [num, H, W, C] (``floor(256 y)``, clipped), or float32
  [num, D] points.
  """
  d = math.prod(net.image_shape)
  z = flows.sample_prior(key, (num, d), 'gaussian', temperature)
  x, _ = _inverse_map(params, z, net=net, trace=False)
  return x if is_points(net) else realnvp.to_uint8(x)


# ------------------------------------------------------------- validation
def _check_choice(value, field: str, allowed) -> None:
  if value not in allowed:
    raise ConfigError(f'{field}={value!r} must be one of {allowed}.')


def _check_positive(value, field: str) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
      value > 0 and math.isfinite(value)):
    raise ConfigError(f'{field}={value!r} must be a finite number > 0.')


def validate(config, dataset) -> None:
  """Raises `ConfigError` naming the field that does not fit FFJORD."""
  m = config.model
  hidden = tuple(m.get('hidden', (64,)))
  if not hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1
                       for h in hidden):
    raise ConfigError(
        f'config.model.hidden={hidden!r} must be a non-empty sequence of '
        'integers >= 1.')
  _check_choice(m.get('activation', 'tanh'), 'config.model.activation',
                ACTIVATIONS)
  _check_choice(m.get('solver', 'dopri5'), 'config.model.solver', SOLVERS)
  _check_choice(m.get('trace', 'exact'), 'config.model.trace', TRACES)
  _check_choice(m.get('noise', 'rademacher'), 'config.model.noise', NOISES)
  for name in ('time_length', 'rtol', 'atol'):
    if name in m:
      _check_positive(m[name], f'config.model.{name}')
  if not isinstance(m.get('train_time', False), bool):
    raise ConfigError(f'config.model.train_time={m.train_time!r} must be '
                      'True or False.')
  steps_ = m.get('max_steps', 1000)
  if isinstance(steps_, bool) or not isinstance(steps_, int) or steps_ < 1:
    raise ConfigError(
        f'config.model.max_steps={steps_!r} must be an integer >= 1.')
  for name in ('kinetic_weight', 'jacobian_weight'):
    w = m.get(name, 0.0)
    if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
      raise ConfigError(f'config.model.{name}={w!r} must be a number >= 0.')
  for name, args in config.eval.estimators.items():
    for tol in ('rtol', 'atol'):
      if tol in args:
        _check_positive(args[tol], f'config.eval.estimators.{name}.{tol}')
  alpha = m.get('logit_alpha', 0.0)
  if dataset.image_shape is None:  # points
    if alpha:
      raise ConfigError(
          f'config.model.logit_alpha={alpha}: points are not bounded to '
          '[0, 1]; set it to 0 (no logit pre-processing).')
    return
  if not 0.0 <= alpha < 0.5:
    raise ConfigError(
        f'config.model.logit_alpha={alpha} must lie in [0, 0.5).')
  base.check_dequantized_8bit(config, dataset)
