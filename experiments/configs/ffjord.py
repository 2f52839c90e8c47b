r"""FFJORD: a continuous normalizing flow solved by diffrax, exact likelihood.

Argument: one dataset option, e.g. ``ffjord.py:moons``:
- moons | ring8 | checkerboard: toy 2-D densities (`jaxgen.data.toy`);
  ConcatSquash MLP dynamics, exact trace, on the points themselves;
- digits (default; bundled 8x8) | mnist8k (../shared) | smoke (tests):
  dequantized 8-bit images, y = (x + u) / 256, logit pre-processing with
  alpha = 0.05, conv dynamics with t as an extra channel, Hutchinson's
  trace in training.

Training solves at loose tolerances (``model.rtol``, ``model.atol``);
``--config.model.train_time=True`` learns the end time T (FFJORD's
``train_T``: T = sqrt_end_time^2 from ``model.time_length``; the default
keeps T fixed). Evaluation reports the exact test log-likelihood ('exact':
the exact trace, tolerances 1e-5, `jaxgen.models.ffjord.log_likelihood`):
nats per point, or nats and bits/dim of the 8-bit images (the D ln 256
dequantization offset added). On 28x28 mnist8k the exact trace (784
Jacobian-vector products per evaluation of the dynamics) is out of reach,
and the estimator is 'hutchinson': the same solve at tolerances 1e-5 with
Hutchinson's trace, one Rademacher draw per test image. Its log-det, hence
its log p(x), is an unbiased estimate of the exact one, so the test figure
is the mean of 1,000 noisy unbiased per-image estimates (it moves a little
with the evaluation key), not an exact value. The training metrics include
``nfe``, the dynamics' evaluations per solve.

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

  python -m experiments.main --config=experiments/configs/ffjord.py:mnist8k \
      --workdir=runs/ffjord_mnist8k
    One CNF on 28x28 mnist8k: conv dynamics of 3 x 64 softplus channels,
    T = 1, Dopri5 at the tolerances 1e-5 of the paper's image runs in
    training and evaluation, Hutchinson's trace, 5,000 steps of batch 64,
    then the 'hutchinson' evaluation of the 1,000 test images: far beyond 2
    CPU cores. Record `ffjord_mnist8k` runs a CPU budget
    (``'--config.model.hidden=(16, 16)' --config.model.rtol=1e-3
    --config.model.atol=1e-3 --config.train.batch_size=32
    --config.train.num_steps=300``): of the order of half an hour.
    The paper's MNIST model (Grathwohl et al. 2019, section 5.1 and
    appendix B) is larger still: a multi-scale architecture (RealNVP's
    squeezes and factoring out) with four CNFs per scale, each with conv
    dynamics of 64 channels, trained on GPUs with Hutchinson's trace and
    solver tolerances 1e-5; this family stacks no scales. Compare
    with its Table 2: 0.99 bits/dim on the full MNIST test set.
"""

from experiments.configs import common
from experiments.configs import realnvp

TOY = realnvp.TOY
ALLOWED = {'dataset': ('digits', 'mnist8k', 'smoke') + TOY}
DEFAULTS = {'dataset': 'digits'}


def get_config(arg: str = 'digits'):
  dataset = common.parse_arg(arg, ALLOWED, DEFAULTS)['dataset']
  toy = dataset in TOY
  c = realnvp.flow_config('ffjord', dataset, TOY)

  m = c.model
  m.image_shape = (2,) if toy else common.IMAGE_SHAPES[dataset]
  m.hidden = (64, 64, 64) if toy else (32, 32)  # dynamics widths / channels
  m.activation = 'tanh' if toy else 'softplus'  # 'tanh' | 'softplus'
  m.time_length = 0.5 if toy else 1.0  # T: integrate over [0, T]
  m.train_time = False  # True: learn T = sqrt_end_time^2, from time_length
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
  if dataset == 'mnist8k':
    # One CNF of 3 x 64 softplus channels (the width of each of the paper's
    # multi-scale CNFs), trained at the paper's tolerances.
    m.hidden = (64, 64, 64)
    m.rtol = m.atol = 1e-5
    m.max_steps = 1000
    c.train.num_steps = 5000
    c.train.image_every_steps = 1000
    c.train.checkpoint_every_steps = 500
    # The exact trace costs 784 products per evaluation of f on 28x28:
    # Hutchinson's estimate of the test log-likelihood instead (unbiased
    # for log p, so the reported mean is a stochastic estimate), one
    # Rademacher draw per image, at tolerances 1e-5.
    c.eval.estimators = {'hutchinson': {'trace': 'hutchinson', 'rtol': 1e-5,
                                        'atol': 1e-5}}
    c.eval.final_estimators = ('hutchinson',)
    c.eval.periodic_estimators = ('hutchinson',)
  if dataset == 'smoke':
    m.hidden = (4,)
    m.max_steps = 50
    # Tests need finite numbers, not a tight solve: the exact trace at the
    # training tolerances.
    c.eval.estimators.exact.rtol = c.eval.estimators.exact.atol = 1e-3
  return common.finalize(c, dataset)
