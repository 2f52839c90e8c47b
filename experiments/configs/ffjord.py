r"""FFJORD: a continuous normalizing flow solved by diffrax, exact likelihood.

Argument: one dataset option, e.g. ``ffjord.py:moons``:
- moons | ring8 | checkerboard: toy 2-D densities (`jaxgen.data.toy`);
  ConcatSquash MLP dynamics, exact trace, on the points themselves;
- digits (default; bundled 8x8) | smoke (tests): dequantized 8-bit images,
  y = (x + u) / 256, logit pre-processing with alpha = 0.05, small conv
  dynamics with t as an extra channel, Hutchinson's trace in training.

Training solves at loose tolerances (``model.rtol``, ``model.atol``);
evaluation reports the exact test log-likelihood ('exact': the exact trace,
tolerances 1e-5, `jaxgen.models.ffjord.log_likelihood`): nats per point, or
nats and bits/dim of the 8-bit images (the D ln 256 dequantization offset
added). The training metrics include ``nfe``, the dynamics' evaluations
per solve.

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/ffjord.py:moons \
      --workdir=runs/ffjord_moons
    ConcatSquash MLP of 3 x 64 tanh units, T = 0.5, Dopri5 at tolerances
    1e-3 in training, 1,500 steps of batch 256: a few minutes (ring8, whose
    modes are sharp, needs the most evaluations per solve); the sample PNG
    is a scatter plot over the data. Records `ffjord_moons`,
    `ffjord_ring8` and `ffjord_checkerboard` for the three toy options.

  python -m experiments.main --config=experiments/configs/ffjord.py:digits \
      --workdir=runs/ffjord_digits
    Conv dynamics of 2 x 32 softplus channels on 8x8 digits, T = 1,
    Hutchinson's trace with Rademacher noise in training, 1,000 steps of
    batch 64, then one evaluation with the exact trace (64 Jacobian-vector
    products per evaluation of f, so none during training): under an
    hour. No results record.
"""

from experiments.configs import common
from experiments.configs import realnvp

TOY = realnvp.TOY
ALLOWED = {'dataset': ('digits', 'smoke') + TOY}
DEFAULTS = {'dataset': 'digits'}


def get_config(arg: str = 'digits'):
  dataset = common.parse_arg(arg, ALLOWED, DEFAULTS)['dataset']
  toy = dataset in TOY
  c = realnvp.flow_config('ffjord', dataset, TOY)

  m = c.model
  m.image_shape = (2,) if toy else (8, 8, 1)
  m.hidden = (64, 64, 64) if toy else (32, 32)  # dynamics widths / channels
  m.activation = 'tanh' if toy else 'softplus'  # 'tanh' | 'softplus'
  m.time_length = 0.5 if toy else 1.0  # T: integrate over [0, T]
  m.logit_alpha = 0.0 if toy else 0.05  # images: logit(alpha + (1-2a) y)
  m.solver = 'dopri5'  # 'dopri5' | 'tsit5'
  m.rtol = 1e-3  # training (and sampling) tolerances of the PID controller
  m.atol = 1e-3
  m.max_steps = 200  # solver steps per solve; more gives a non-finite loss
  m.trace = 'exact' if toy else 'hutchinson'  # trace estimator in training
  m.noise = 'rademacher'  # 'rademacher' | 'gaussian' (Hutchinson)
  m.kinetic_weight = 0.0  # RNODE: weight of the integral of ||f||^2
  m.jacobian_weight = 0.0  # RNODE: weight of the integral of ||J eps||^2

  c.optimizer.learning_rate = 1e-3
  c.train.batch_size = 256 if toy else 64
  c.train.num_steps = 1500 if toy else 1000
  # Images: the exact-trace evaluation costs D products per step of f, so
  # it runs once, at the end.
  c.train.eval_every_steps = 500 if toy else 0
  c.train.image_every_steps = 500
  c.train.checkpoint_every_steps = 500
  # Evaluation: the exact trace at tighter tolerances than training's.
  c.eval.estimators = {'exact': {'trace': 'exact', 'rtol': 1e-5,
                                 'atol': 1e-5}}
  c.eval.final_estimators = ('exact',)
  c.eval.periodic_estimators = ('exact',)
  if dataset == 'smoke':
    m.hidden = (4,)
    m.max_steps = 50
  return common.finalize(c, dataset)
