"""The catalogue of RESULTS.md: named experiments, their tables, references.

Data only: each `Spec` names a config preset, the overrides that cut it to
a CPU budget, the published figure beside it, the table its row belongs to
and the evaluations measured beyond the likelihood (names of
`jaxgen.evaluations.EVALUATIONS`, with their options). `experiments.results`
runs and renders whatever is listed here; adding an experiment, or a family,
is an entry in `EXPERIMENTS` (and a `Table` when a row measures something no
table holds yet).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxgen import config_fields


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """One evaluation of `jaxgen.evaluations.EVALUATIONS`, with its options.

  An option named 'classifier' names the dataset of the sample-quality
  feature classifier: the runner trains it once per runs directory
  (``<runs_dir>/classifier_<dataset>``) and passes it in.
  """
  name: str
  options: tuple[tuple[str, Any], ...] = ()


@dataclasses.dataclass(frozen=True)
class Table:
  """A table of RESULTS.md. Its rows share what they measure and its units.

  Attributes:
    heading: the section heading.
    text: the paragraph under it.
    layout: the columns, a key of `experiments.results.render.LAYOUTS`.
    evaluation: when set, the table lists every experiment that runs this
      evaluation, whatever its own table.
    kind: what its rows' headline number is, in a few words ('exact',
      'bound', ...), for the summary; '' leaves it to the layout.
  """
  heading: str
  text: str
  layout: str
  evaluation: str = ''
  kind: str = ''


# Table keys: what a row measures.
BOUND_BINARY = 'bound, binary data'
EXACT_BINARY = 'exact NLL, binary data'
ESTIMATE_BINARY = 'AIS estimate, binary data'
EIGHT_BIT = 'bits/dim, 8-bit data'
BOUND_EIGHT_BIT = 'bound, 8-bit data'
DEQUANTIZED = 'continuous density, dequantized 8-bit data'
TOY_DENSITY = 'exact, toy 2-D points'
CODES = 'discrete codes'
SAMPLE_QUALITY = 'sample quality'
SAMPLERS = 'samplers side by side'
TRANSLATION = 'image-to-image translation'


@dataclasses.dataclass(frozen=True)
class Spec:
  """One named experiment: a config preset plus overrides.

  Attributes:
    name: the workdir name under --runs_dir and the --only key.
    config: 'path/to/config.py:arg', as for `experiments.main --config`.
    overrides: (dotted field, value) pairs applied after the preset, exactly
      as ``--config.<field>=<value>`` would.
    reference: the published number beside ours, '<figure>: <source>'
      (e.g. '86.76 nats: Burda et al. 2016, ...'; the figure is what the
      tables show, the source goes to the run's details), or 'none: <why>',
      or '' (no published figure).
    like_for_like: whether `reference` measures the same quantity on the
      same data and protocol as the row; otherwise it is shown for scale.
    nll_estimator: estimator whose NLL is the headline (test NLL).
    bound_estimator: estimator shown as the ELBO column ('' = none).
    table: which table of RESULTS.md the row belongs to (a key of `TABLES`).
    label: short model name for the table ('' = the record's description).
    evaluations: measurements beyond `Experiment.evaluate`, run after it on
      the trained state, their fields kept in the record (a figure also
      as ``results/<name>_<field>.png``).
    cpu_budget: whether the row runs smaller or shorter than the paper's
      setting; None derives it from the config
      (`experiments.results.specs.budget_cuts`), True or False states it
      (say why beside the entry).

  Override values may name ``{runs_dir}`` (e.g. a frozen VQ run that
  another experiment trains).
  """
  name: str
  config: str
  overrides: tuple[tuple[str, Any], ...] = ()
  reference: str = ''
  nll_estimator: str = 'iwae'
  bound_estimator: str = 'elbo'
  table: str = BOUND_BINARY
  label: str = ''
  evaluations: tuple[Evaluation, ...] = ()
  like_for_like: bool = False
  cpu_budget: bool | None = None


def sample_quality(classifier: str = '') -> Evaluation:
  """Sample-quality scores; `classifier`: the dataset of the feature
  classifier for images, '' for toy 2-D points (no classifier)."""
  return Evaluation('sample_quality', (('classifier', classifier),)
                    if classifier else ())


def samplers(classifier: str, num_samples: int | None = None,
             ddim_steps: int = 50) -> Evaluation:
  """DDPM's ancestral sampler (all T steps) beside `ddim_steps`-step DDIM:
  the same number of samples from the same key, scored with the feature
  classifier of `classifier` (`jaxgen.evaluations.sampler_quality`)."""
  options = (('classifier', classifier),
             ('samplers', (('ancestral', 0), ('ddim', ddim_steps))))
  if num_samples:
    options += (('num_samples', num_samples),)
  return Evaluation('sampler_quality', options)


# Test images as input / output / target rows.
TRANSLATIONS = Evaluation('translation_figure')

# Completions of the bottom half given the top, and the exact mean
# -log p(bottom | top) on the test split.
INPAINTING = Evaluation('inpainting_figure')
# Sub-grids x_s of test images, samples of x given x_s, the truth.
SUPERRES = Evaluation('superres_figure')

# Codebook usage on the test split.
CODE_USAGE = Evaluation('code_usage', (('split', 'test'),))
# The centres as one grid, by training-set usage.
CODEBOOK = Evaluation('codebook_figure')

BURDA = ('86.76 nats: Burda et al. 2016 (IWAE paper), Table 1, VAE with one '
         'stochastic layer, k=1 training, MNIST with 60,000 training images')
MADE_ONE_MASK = ('88.40 nats: Germain et al. 2015 (MADE paper), one hidden '
                 'layer, one mask, binarized MNIST with 50,000 training '
                 'images')
# The reference PixelCNN (h=128, 12 blocks) narrowed and shortened for CPU.
PIXELCNN_CPU = (('model.features', 64), ('model.num_blocks', 6),
                ('model.output_features', (64,)))
REALNVP_CPU = (('model.hidden', 32), ('model.depth', 1),
               ('train.batch_size', 32), ('train.num_steps', 1500),
               ('train.eval_every_steps', 500))
GLOW_CPU = (('model.hidden', 32), ('train.num_steps', 3000))
# One CNF of 2 x 16 channels solved at tolerances 1e-3 in training (the
# evaluation keeps the preset's 1e-5), 300 steps of 32.
FFJORD_CPU = (('model.hidden', (16, 16)), ('model.rtol', 1e-3),
              ('model.atol', 1e-3), ('train.batch_size', 32),
              ('train.num_steps', 300), ('train.image_every_steps', 300),
              ('train.checkpoint_every_steps', 100))
DDPM_CPU = (('train.num_steps', 600), ('train.ema_decay', 0.99),
            ('train.eval_every_steps', 0),
            ('eval.estimators.bound.num_timesteps', 20),
            ('eval.estimators.bound.chunk_size', 20),
            ('model.sample_steps', 50))
VQVAE = ('4.67 bits/dim: van den Oord et al. 2017 (VQ-VAE paper), section '
         '4.1, CIFAR-10 (other data)')
RBM_MNIST = ('about 86 nats: Salakhutdinov & Murray 2008, RBM with 500 '
             'hidden units trained by CD-25 on full MNIST (60,000 images, '
             'stochastic binarization), AIS with 14,500 betas; other training '
             'set and algorithm')
# Full 8-bit MNIST (60,000 training, 10,000 test images), other nets and
# schedules: for scale, beside the flows' and DDPM's mnist8k rows.
_FFJORD_TABLE = ('Grathwohl et al. 2019 (FFJORD paper), Table 2, MNIST '
                 'column (RealNVP 1.06, Glow 1.05, FFJORD 0.99 bits/dim)')
_FULL_MNIST = ('full 8-bit MNIST, 60,000 training and 10,000 test images, '
               'the papers\' nets and schedules; these rows train on 7,000 '
               'images')
REALNVP_MNIST = f'1.06 bits/dim: {_FFJORD_TABLE}; {_FULL_MNIST}'
GLOW_MNIST = f'1.05 bits/dim: {_FFJORD_TABLE}; {_FULL_MNIST}'
FFJORD_MNIST = (f'0.99 bits/dim: {_FFJORD_TABLE}, the multi-scale FFJORD; '
                f'{_FULL_MNIST}')
DDPM_CIFAR = ('<= 3.70 bits/dim: Ho et al. 2020, Table 1, CIFAR-10 test set '
              '(other data), trained on the true bound L with fixed '
              'isotropic variances (their L_simple model: <= 3.75)')
NO_REFERENCE_DIGITS = ('none: sklearn 8x8 digits (1,797 images) is not a '
                       'published likelihood benchmark')


def _pixelrnn_table4(model: str, nats: str) -> str:
  return (f'{nats} nats: van den Oord et al. 2016 (PixelRNN paper), Table 4, '
          f'{model} on binarized MNIST with 50,000 training images')


def _exact(name: str, config: str, label: str, table: str = EXACT_BINARY,
           nll_estimator: str = 'exact', classifier: str = '',
           reference: str = '',
           overrides: tuple[tuple[str, Any], ...] = (),
           evaluations: tuple[Evaluation, ...] = (),
           cpu_budget: bool | None = None) -> Spec:
  if not reference and name.endswith('_digits'):
    reference = NO_REFERENCE_DIGITS
  return Spec(name, config, overrides=overrides, reference=reference,
              nll_estimator=nll_estimator, bound_estimator='', table=table,
              label=label, evaluations=evaluations + (
                  # Toy points are scored without a classifier.
                  (sample_quality(classifier),)
                  if classifier or table == TOY_DENSITY else ()),
              cpu_budget=cpu_budget)


def _discrete(name: str, config: str, label: str, *,
              nll_estimator: str = 'bound',
              evaluations: tuple[Evaluation, ...] = (),
              overrides: tuple[tuple[str, Any], ...] = (),
              reference: str = '', quality: bool = False) -> Spec:
  """A discrete-latent or mixture row; `quality` also scores its samples
  with the classifier of its dataset."""
  dataset = name.rsplit('_', 1)[-1]
  return Spec(name, config, overrides=overrides,
              reference=reference or (NO_REFERENCE_DIGITS
                                      if name.endswith('_digits') else ''),
              nll_estimator=nll_estimator, bound_estimator='', table=CODES,
              label=label, evaluations=evaluations + (
                  (sample_quality(dataset),) if quality else ()))


def _quality(name: str, config: str, label: str, classifier: str = '',
             overrides: tuple[tuple[str, Any], ...] = ()) -> Spec:
  return Spec(name, config, overrides=overrides, reference='',
              nll_estimator='', bound_estimator='', table=SAMPLE_QUALITY,
              label=label, evaluations=(sample_quality(classifier),))


EXPERIMENTS = (
    Spec('vae_mlp_mnist8k', 'experiments/configs/vae.py:mnist8k',
         reference=BURDA,
         label='VAE, MLP 784-512-512, 32-d latent, bernoulli decoder',
         evaluations=(sample_quality('mnist8k'),)),
    Spec('vae_conv_mnist8k', 'experiments/configs/vae.py:mnist8k,conv',
         reference=BURDA,
         label='VAE, conv 32-32-64-64 channels, strides 2,2,1,1, 4x4 '
         'kernels, 32-d latent, bernoulli decoder'),
    Spec('vae_mlp_digits', 'experiments/configs/vae.py:digits',
         reference=NO_REFERENCE_DIGITS,
         label='VAE, MLP 64-256-256, 8-d latent, bernoulli decoder',
         evaluations=(sample_quality('digits'),)),
    Spec('vae_conv_digits', 'experiments/configs/vae.py:digits,conv',
         reference=NO_REFERENCE_DIGITS,
         label='VAE, conv 32-32-64-64 channels, strides 2,1,2,1, 3x3 '
         'kernels, 8-d latent, bernoulli decoder'),
    _exact('nade_digits', 'experiments/configs/nade.py:digits', 'NADE'),
    _exact('made_digits', 'experiments/configs/made.py:digits',
           'MADE, one mask, natural order', nll_estimator='single'),
    _exact('made_agnostic_digits',
           'experiments/configs/made.py:digits,agnostic',
           'MADE, order-agnostic, ensemble of its 16 masks',
           nll_estimator='ensemble'),
    _exact('pixelcnn_digits', 'experiments/configs/pixelcnn.py:digits',
           'PixelCNN', evaluations=(INPAINTING,)),
    _exact('multiscale_pixelcnn_digits',
           'experiments/configs/multiscale_pixelcnn.py:digits',
           'Multi-scale PixelCNN: Gated PixelCNN of the 4x4 sub-grid, then '
           'of the 8x8 image given it; p=32, 6 layers each, 1,500 steps '
           '(half the Gated PixelCNN row\'s 3,000)',
           overrides=(('train.num_steps', 1500),),
           evaluations=(SUPERRES,)),
    _exact('gated_pixelcnn_digits',
           'experiments/configs/gated_pixelcnn.py:digits', 'Gated PixelCNN',
           classifier='digits'),
    _exact('row_lstm_digits', 'experiments/configs/pixelrnn.py:digits,row',
           'PixelRNN, Row LSTM'),
    _exact('diagonal_bilstm_digits',
           'experiments/configs/pixelrnn.py:digits,diagonal',
           'PixelRNN, Diagonal BiLSTM'),
    _exact('wavenet_digits', 'experiments/configs/wavenet.py:digits',
           'WaveNet on raster-order pixels'),
    _exact('pixelcnn_8bit_digits',
           'experiments/configs/pixelcnn.py:digits,categorical',
           'PixelCNN, 256-way softmax', table=EIGHT_BIT),
    _exact('pixelcnnpp_digits', 'experiments/configs/pixelcnnpp.py:digits',
           'PixelCNN++', table=EIGHT_BIT),
    # Boltzmann machines: -F(x) - log Z with log Z by AIS.
    _exact('rbm_digits', 'experiments/configs/rbm.py:digits',
           'RBM, 200 binary hidden units, PCD-1', table=ESTIMATE_BINARY,
           nll_estimator='ais', classifier='digits'),
    _exact('rbm_mnist8k', 'experiments/configs/rbm.py:mnist8k',
           'RBM, 500 binary hidden units, PCD-1', table=ESTIMATE_BINARY,
           nll_estimator='ais', reference=RBM_MNIST, classifier='mnist8k'),
    _exact('dbm_digits', 'experiments/configs/dbm.py:digits',
           'DBM, hidden layers of 200 and 100 units, persistent chains, '
           'no pre-training: minus the variational bound',
           table=ESTIMATE_BINARY, nll_estimator='ais', classifier='digits'),
    _exact('dbm_mnist8k', 'experiments/configs/dbm.py:mnist8k',
           'DBM, hidden layers of 500 and 1,000 units, greedy layer-wise '
           'pre-training (5,000 + 5,000 CD-1 steps), then 10,000 joint '
           'steps with persistent chains: minus the variational bound',
           table=ESTIMATE_BINARY, nll_estimator='ais', classifier='mnist8k'),
    # The Gaussian-Bernoulli RBM: a density of dequantized pixels, beside
    # the flows, with log Z by AIS.
    _exact('rbm_gaussian_mnist8k',
           'experiments/configs/rbm.py:mnist8k,gaussian',
           'Gaussian-Bernoulli RBM, 500 binary hidden units, unit-variance '
           'Gaussian visibles on the pixels standardised per pixel (mean and '
           'std of the first training batch, std floored at 0.05), PCD-1; '
           'log p(y) = -F(v) - log Z plus the standardisation\'s '
           'log-Jacobian, log Z by AIS: an estimate, not exact',
           table=DEQUANTIZED, nll_estimator='ais', classifier='mnist8k'),
    # Flows (exact densities of dequantized pixels, or of toy points) and
    # diffusion (a bound on the discrete likelihood).
    _exact('realnvp_digits', 'experiments/configs/realnvp.py:digits',
           'RealNVP, 2 scales, ResNet coupling nets of 32 channels',
           table=DEQUANTIZED, classifier='digits'),
    _exact('nice_digits', 'experiments/configs/nice.py:digits',
           'NICE, 4 additive couplings, MLPs of 4 x 256 units, logistic '
           'prior, 3,000 steps (the validation NLL rises after that)',
           table=DEQUANTIZED, classifier='digits',
           overrides=(('train.num_steps', 3000),),
           cpu_budget=False),  # early stopping, not a budget
    _exact('nice_mnist8k', 'experiments/configs/nice.py:mnist8k',
           'NICE, 4 additive couplings, MLPs of 5 x 1000 units (the '
           "paper's MNIST layout), logistic prior, 10,000 steps",
           table=DEQUANTIZED),
    # 28x28 flows on a CPU budget: the presets' layouts narrowed (coupling
    # nets of 32 channels, one residual block for RealNVP), fewer steps.
    _exact('realnvp_mnist8k', 'experiments/configs/realnvp.py:mnist8k',
           'RealNVP, 2 scales (8 couplings), ResNet coupling nets '
           'of 32 channels and 1 residual block, 1,500 steps of 32',
           table=DEQUANTIZED, classifier='mnist8k', reference=REALNVP_MNIST,
           overrides=REALNVP_CPU),
    _exact('glow_mnist8k', 'experiments/configs/glow.py:mnist8k',
           'Glow, L = 2 levels of K = 8 steps, coupling nets of '
           '32 channels, 3,000 steps', table=DEQUANTIZED,
           classifier='mnist8k', reference=GLOW_MNIST, overrides=GLOW_CPU),
    _exact('ffjord_mnist8k', 'experiments/configs/ffjord.py:mnist8k',
           'FFJORD, one CNF with conv dynamics of 2 x 16 softplus '
           'channels, Dopri5 at tolerances 1e-3, Hutchinson trace, 300 '
           'steps of 32; test log p by Hutchinson at tolerances 1e-5, one '
           'probe per image', table=DEQUANTIZED, nll_estimator='hutchinson',
           classifier='mnist8k', reference=FFJORD_MNIST,
           overrides=FFJORD_CPU),
    _exact('glow_digits', 'experiments/configs/glow.py:digits',
           'Glow, L = 2 levels of K = 4 steps, coupling nets of 32 '
           'channels, 3,000 steps', table=DEQUANTIZED, classifier='digits',
           overrides=(('train.num_steps', 3000),)),
    Spec('ddpm_digits', 'experiments/configs/ddpm.py:digits',
         overrides=(('train.num_steps', 2500),
                    ('eval.estimators.bound.num_timesteps', 50)),
         reference=NO_REFERENCE_DIGITS, nll_estimator='bound',
         bound_estimator='', table=BOUND_EIGHT_BIT,
         label='DDPM, U-Net of 32/64 channels, T = 1,000, linear schedule, '
         '2,500 steps; bound estimated from L_0 and 49 '
         'stratified timesteps per image (num_timesteps = 50)',
         evaluations=(samplers('digits'),)),
    # The U-Net preset on a CPU budget of 600 steps (EMA decay 0.99, so
    # that the EMA averages the end of the run); the bound from L_0 and 19
    # stratified timesteps per image; grids and scores by 50-step DDIM (500
    # samples); ancestral vs DDIM on 50 samples.
    Spec('ddpm_mnist8k', 'experiments/configs/ddpm.py:mnist8k',
         overrides=DDPM_CPU, reference=DDPM_CIFAR, nll_estimator='bound',
         bound_estimator='', table=BOUND_EIGHT_BIT,
         label='DDPM, U-Net of 32/64 channels, T = 1,000, linear schedule, '
         '600 steps of 64 (EMA 0.99); bound estimated from '
         'L_0 and 19 stratified timesteps per image (num_timesteps = 20); '
         'samples by 50-step DDIM',
         evaluations=(Evaluation('sample_quality',
                                 (('classifier', 'mnist8k'),
                                  ('num_samples', 500))),
                      samplers('mnist8k', num_samples=50))),
    _exact('realnvp_moons', 'experiments/configs/realnvp.py:moons',
           'RealNVP, 8 affine couplings, MLPs of 2 x 64 units',
           table=TOY_DENSITY),
    _exact('nice_moons', 'experiments/configs/nice.py:moons',
           'NICE, 4 additive couplings, MLPs of 3 x 64 units, Gaussian '
           'prior', table=TOY_DENSITY),
    _exact('glow_moons', 'experiments/configs/glow.py:moons',
           'Glow, 8 steps (actnorm, invertible 2x2 linear map, affine '
           'coupling with MLPs of 2 x 64 units)', table=TOY_DENSITY),
    _exact('realnvp_ring8', 'experiments/configs/realnvp.py:ring8',
           'RealNVP, 8 affine couplings, MLPs of 2 x 64 units',
           table=TOY_DENSITY),
    _exact('nice_ring8', 'experiments/configs/nice.py:ring8',
           'NICE, 4 additive couplings, MLPs of 3 x 64 units, Gaussian '
           'prior', table=TOY_DENSITY),
    _exact('glow_ring8', 'experiments/configs/glow.py:ring8',
           'Glow, 8 steps (actnorm, invertible 2x2 linear map, affine '
           'coupling with MLPs of 2 x 64 units)', table=TOY_DENSITY),
    _exact('realnvp_checkerboard',
           'experiments/configs/realnvp.py:checkerboard',
           'RealNVP, 8 affine couplings, MLPs of 2 x 64 units',
           table=TOY_DENSITY),
    _exact('nice_checkerboard', 'experiments/configs/nice.py:checkerboard',
           'NICE, 4 additive couplings, MLPs of 3 x 64 units, Gaussian '
           'prior', table=TOY_DENSITY),
    _exact('glow_checkerboard', 'experiments/configs/glow.py:checkerboard',
           'Glow, 8 steps (actnorm, invertible 2x2 linear map, affine '
           'coupling with MLPs of 2 x 64 units)', table=TOY_DENSITY),
    _exact('ffjord_moons', 'experiments/configs/ffjord.py:moons',
           'FFJORD, ConcatSquash MLP dynamics of 3 x 64 tanh units, T = '
           '0.5, Dopri5 (training tolerances 1e-3, exact trace; evaluation '
           'tolerances 1e-5)', table=TOY_DENSITY),
    _exact('ffjord_ring8', 'experiments/configs/ffjord.py:ring8',
           'FFJORD, ConcatSquash MLP dynamics of 3 x 64 tanh units, T = '
           '0.5, Dopri5 (training tolerances 1e-3, exact trace; evaluation '
           'tolerances 1e-5)', table=TOY_DENSITY),
    _exact('ffjord_checkerboard', 'experiments/configs/ffjord.py:checkerboard',
           'FFJORD, ConcatSquash MLP dynamics of 3 x 64 tanh units, T = '
           '0.5, Dopri5 (training tolerances 1e-3, exact trace; evaluation '
           'tolerances 1e-5)', table=TOY_DENSITY),
    # mnist8k, beside the PixelRNN paper's Table 4.
    # The convolutional and recurrent presets are the papers' sizes, days
    # of training on 2 CPU cores; these rows run CPU-sized cuts (fewer
    # steps, narrower or shallower nets: the overrides are in each row's
    # command) of about half an hour each (RESULTS.md labels them CPU
    # budget: `experiments.results.specs.budget_cuts`).
    _exact('nade_mnist8k', 'experiments/configs/nade.py:mnist8k',
           'NADE, 500 hidden units, 3,000 steps',
           reference=_pixelrnn_table4('NADE', '88.33'),
           overrides=(('train.num_steps', 3000),)),
    _exact('made_mnist8k', 'experiments/configs/made.py:mnist8k',
           'MADE, 500 hidden units, one mask, natural order',
           nll_estimator='single', reference=MADE_ONE_MASK),
    _exact('made_agnostic_mnist8k',
           'experiments/configs/made.py:mnist8k,agnostic',
           'MADE, 500 hidden units, order-agnostic, ensemble of its 32 '
           'masks', nll_estimator='ensemble',
           reference=_pixelrnn_table4('MADE (32-mask ensemble)', '86.64')),
    _exact('pixelcnn_mnist8k', 'experiments/configs/pixelcnn.py:mnist8k',
           'PixelCNN, h=64, 6 residual blocks, 4,000 steps',
           reference=_pixelrnn_table4('PixelCNN', '81.30'),
           overrides=PIXELCNN_CPU + (('train.num_steps', 4000),)),
    _exact('gated_pixelcnn_mnist8k',
           'experiments/configs/gated_pixelcnn.py:mnist8k',
           'Gated PixelCNN, p=32, 8 layers, 2,500 steps',
           classifier='mnist8k',
           overrides=(('model.features', 32), ('model.num_layers', 8),
                      ('model.output_features', (64,)),
                      ('train.num_steps', 2500))),
    _exact('multiscale_pixelcnn_mnist8k',
           'experiments/configs/multiscale_pixelcnn.py:mnist8k',
           'Multi-scale PixelCNN: Gated PixelCNN of the 14x14 '
           'sub-grid, then of the 28x28 image given it, p=32, 6 layers '
           'each, 1,500 steps (the Gated PixelCNN row: one net of 8 '
           'layers, 2,500 steps; not like-for-like)',
           overrides=(('model.features', 32), ('model.num_layers', 6),
                      ('model.low_features', 32), ('model.low_layers', 6),
                      ('model.output_features', (64,)),
                      ('model.cond_features', 16),
                      ('train.num_steps', 1500)),
           evaluations=(SUPERRES,)),
    _exact('row_lstm_mnist8k', 'experiments/configs/pixelrnn.py:mnist8k,row',
           'PixelRNN, Row LSTM, 4 layers of 16 units, 2,500 steps',
           reference=_pixelrnn_table4('Row LSTM', '80.54'),
           overrides=(('train.num_steps', 2500),)),
    _exact('diagonal_bilstm_mnist8k',
           'experiments/configs/pixelrnn.py:mnist8k,diagonal',
           'PixelRNN, Diagonal BiLSTM, 4 layers of 16 units, 2,000 steps',
           reference=_pixelrnn_table4('Diagonal BiLSTM', '79.20'),
           overrides=(('train.num_steps', 2000),)),
    _exact('wavenet_mnist8k', 'experiments/configs/wavenet.py:mnist8k',
           'WaveNet on raster-order pixels, 10 blocks, 2,500 steps',
           overrides=(('train.num_steps', 2500),)),
    _exact('pixelcnn_8bit_mnist8k',
           'experiments/configs/pixelcnn.py:mnist8k,categorical',
           'PixelCNN, 256-way softmax, h=64, 6 residual blocks, '
           '2,500 steps', table=EIGHT_BIT,
           overrides=PIXELCNN_CPU + (('train.num_steps', 2500),)),
    _exact('pixelcnnpp_mnist8k', 'experiments/configs/pixelcnnpp.py:mnist8k',
           'PixelCNN++, 32 filters, 1,000 steps (EMA 0.995)',
           table=EIGHT_BIT,
           overrides=(('train.num_steps', 1000), ('train.ema_decay', 0.995),
                      ('train.eval_every_steps', 1000))),
    # Discrete latents and mixtures.
    _discrete('vqvae_digits', 'experiments/configs/vqvae.py:digits',
              'VQ-VAE, EMA codebook, uniform prior over codes',
              evaluations=(CODE_USAGE,)),
    _discrete('vqvae2_digits', 'experiments/configs/vqvae2.py:digits',
              'VQ-VAE-2-style two levels, EMA codebooks, uniform prior',
              evaluations=(CODE_USAGE,)),
    _discrete('code_prior_digits', 'experiments/configs/code_prior.py:digits',
              'Gated PixelCNN prior over the frozen codes of '
              '`vqvae2_digits` (top, then bottom given top)',
              overrides=(('model.vqvae_workdir', '{runs_dir}/vqvae2_digits'),),
              quality=True),
    _discrete('code_prior_cond_digits',
              'experiments/configs/code_prior.py:digits,cond',
              'Class-conditional Gated PixelCNN prior over the frozen codes '
              'of `vqvae2_digits`: a bound on -log p(x | label), up to '
              'ln 10 = 2.30 nats below an unconditional one',
              overrides=(('model.vqvae_workdir', '{runs_dir}/vqvae2_digits'),),
              quality=True),
    _discrete('gmm_digits', 'experiments/configs/gmm.py:digits',
              'Gaussian mixture, K = 10, diagonal covariances, EM',
              nll_estimator='exact',
              quality=True),
    _discrete('kmeans_digits', 'experiments/configs/kmeans.py:digits',
              'K-means, K = 10 (Lloyd, k-means++ seeding)', nll_estimator='',
              evaluations=(CODEBOOK,), quality=True),
    _discrete('vqvae_mnist8k', 'experiments/configs/vqvae.py:mnist8k',
              'VQ-VAE, EMA codebook, uniform prior over codes',
              evaluations=(CODE_USAGE,), reference=VQVAE),
    _discrete('vqvae2_mnist8k', 'experiments/configs/vqvae2.py:mnist8k',
              'VQ-VAE-2-style two levels, EMA codebooks, uniform prior',
              evaluations=(CODE_USAGE,)),
    _discrete('code_prior_mnist8k',
              'experiments/configs/code_prior.py:mnist8k',
              'Gated PixelCNN prior over the frozen codes of '
              '`vqvae2_mnist8k` (top, then bottom given top), 2,000 steps',
              overrides=(('model.vqvae_workdir',
                          '{runs_dir}/vqvae2_mnist8k'),
                         ('train.num_steps', 2000)),
              quality=True),
    _discrete('gmm_k10_mnist8k', 'experiments/configs/gmm.py:mnist8k,k10',
              'Gaussian mixture, K = 10, diagonal covariances, EM',
              nll_estimator='exact'),
    _discrete('gmm_mnist8k', 'experiments/configs/gmm.py:mnist8k,k64',
              'Gaussian mixture, K = 64, diagonal covariances, EM',
              nll_estimator='exact',
              quality=True),
    _discrete('kmeans_k10_mnist8k',
              'experiments/configs/kmeans.py:mnist8k,k10',
              'K-means, K = 10 (Lloyd, k-means++ seeding)', nll_estimator=''),
    _discrete('kmeans_mnist8k', 'experiments/configs/kmeans.py:mnist8k,k64',
              'K-means, K = 64 (Lloyd, k-means++ seeding)', nll_estimator='',
              evaluations=(CODEBOOK,), quality=True),
    # Models without a likelihood: sample quality only.
    _quality('gan_ring8', 'experiments/configs/gan.py:ring8',
             'GAN, non-saturating, MLP'),
    _quality('gan_minimax_ring8', 'experiments/configs/gan.py:ring8,minimax',
             'GAN, minimax, MLP'),
    _quality('wgan_ring8', 'experiments/configs/gan.py:ring8,wgan',
             'WGAN (weight clipping), MLP'),
    _quality('wgan_gp_ring8', 'experiments/configs/gan.py:ring8,wgan-gp',
             'WGAN-GP, MLP'),
    _quality('lsgan_ring8', 'experiments/configs/gan.py:ring8,lsgan',
             'LSGAN, MLP'),
    _quality('gan_grid25', 'experiments/configs/gan.py:grid25',
             'GAN, non-saturating, MLP'),
    _quality('gan_minimax_grid25',
             'experiments/configs/gan.py:grid25,minimax', 'GAN, minimax, MLP'),
    _quality('wgan_grid25', 'experiments/configs/gan.py:grid25,wgan',
             'WGAN (weight clipping), MLP'),
    _quality('lsgan_grid25', 'experiments/configs/gan.py:grid25,lsgan',
             'LSGAN, MLP'),
    _quality('wgan_gp_grid25', 'experiments/configs/gan.py:grid25,wgan-gp',
             'WGAN-GP, MLP'),
    _quality('gsn_ring8', 'experiments/configs/gsn.py:ring8',
             'GSN, DAE chain (K = 1), Gaussian corruption, MLP'),
    _quality('dcgan_digits', 'experiments/configs/gan.py:digits',
             'DCGAN, non-saturating', classifier='digits'),
    _quality('wgan_gp_digits', 'experiments/configs/gan.py:digits,wgan-gp',
             'DCGAN nets, WGAN-GP', classifier='digits'),
    _quality('lsgan_digits', 'experiments/configs/gan.py:digits,lsgan',
             'DCGAN nets, LSGAN', classifier='digits'),
    _quality('cgan_digits', 'experiments/configs/gan.py:digits,cond',
             'DCGAN, class-conditional', classifier='digits'),
    _quality('began_digits', 'experiments/configs/began.py:digits', 'BEGAN',
             classifier='digits'),
    _quality('gsn_digits', 'experiments/configs/gsn.py:digits',
             'GSN, walkback DAE chain (K = 3), salt-and-pepper, MLP',
             classifier='digits'),
    _quality('gsn_latent_digits', 'experiments/configs/gsn.py:digits,latent',
             'GSN with a latent state: 512 tanh units, Gaussian noise of std '
             '1 before and after the tanh, decoder MLP 512-512-64, walkback '
             'chain (K = 3), salt-and-pepper', classifier='digits'),
    # The 28x28 GSN on a CPU budget: 4,000 of the preset's 10,000 steps.
    _quality('gsn_mnist8k', 'experiments/configs/gsn.py:mnist8k',
             'GSN, walkback DAE chain (K = 2), salt-and-pepper, MLP '
             '784-1000-1000-784, 4,000 steps', classifier='mnist8k',
             overrides=(('train.num_steps', 4000),)),
    # 28x28 GANs on a CPU budget: half the preset's 10,000 generator steps
    # (WGAN-GP: 1,000, each with 5 critic steps and the penalty's double
    # backward pass, about 5x the others' cost per step).
    _quality('dcgan_mnist8k', 'experiments/configs/gan.py:mnist8k',
             'DCGAN, non-saturating, 5,000 steps', classifier='mnist8k',
             overrides=(('train.num_steps', 5000),)),
    _quality('wgan_gp_mnist8k', 'experiments/configs/gan.py:mnist8k,wgan-gp',
             'DCGAN nets, WGAN-GP, 1,000 steps', classifier='mnist8k',
             overrides=(('train.num_steps', 1000),)),
    _quality('lsgan_mnist8k', 'experiments/configs/gan.py:mnist8k,lsgan',
             'DCGAN nets, LSGAN, 5,000 steps', classifier='mnist8k',
             overrides=(('train.num_steps', 5000),)),
    _quality('cgan_mnist8k', 'experiments/configs/gan.py:mnist8k,cond',
             'DCGAN, class-conditional, 5,000 steps', classifier='mnist8k',
             overrides=(('train.num_steps', 5000),)),
    _quality('began_mnist8k', 'experiments/configs/began.py:mnist8k',
             'BEGAN, n = N_z = N_h = 64, 1,000 steps',
             classifier='mnist8k', overrides=(('train.num_steps', 1000),)),
    # Image-to-image translation on a CPU budget of 1,000 steps of 64.
    Spec('pix2pix_mnist8k_edges',
         'experiments/configs/pix2pix.py:mnist8k,edges',
         overrides=(('train.num_steps', 1000),), nll_estimator='',
         bound_estimator='', table=TRANSLATION,
         label='pix2pix, U-Net 32/64 + PatchGAN 16x16, Sobel edges to '
         'digits, 1,000 steps; the count includes the 784,000 uint8 pixels '
         'of the 1,000-image bank that `sample` translates',
         evaluations=(TRANSLATIONS, sample_quality('mnist8k'))),
    Spec('pix2pix_mnist8k_inpaint',
         'experiments/configs/pix2pix.py:mnist8k,inpaint',
         overrides=(('train.num_steps', 1000),), nll_estimator='',
         bound_estimator='', table=TRANSLATION,
         label='pix2pix, U-Net 32/64 + PatchGAN 16x16, inpainting a 12x12 '
         'square at a random position (image + mask channel in), 1,000 '
         'steps',
         evaluations=(TRANSLATIONS, sample_quality('mnist8k'))),
    Spec('pix2pix_mnist8k_superres',
         'experiments/configs/pix2pix.py:mnist8k,superres',
         overrides=(('train.num_steps', 1000),), nll_estimator='',
         bound_estimator='', table=TRANSLATION,
         label='pix2pix, U-Net 32/64 + PatchGAN 16x16, 4x super-resolution '
         '(4x4 average-pooled digits, upsampled by repetition, in), 1,000 '
         'steps',
         evaluations=(TRANSLATIONS, sample_quality('mnist8k'))),
    # Colourisation: L1 / PSNR on the crops of a photo never seen in
    # training. No sample-quality scores: their classifier knows digits,
    # not photos.
    Spec('pix2pix_photos_colorize',
         'experiments/configs/pix2pix.py:photos,colorize',
         overrides=(('train.num_steps', 1000),), nll_estimator='',
         bound_estimator='', table=TRANSLATION,
         label='pix2pix, U-Net 32/64/128 + PatchGAN 16x16, colourisation '
         '(BT.601 luminance in, RGB out) of 32x32 crops of scikit-image\'s '
         'photos: trained on astronaut, coffee, rocket, motorcycle, '
         'immunohistochemistry and retina (1,313 crops), tested on the 273 '
         'crops of chelsea, 1,000 steps; no sample-quality score (the '
         'in-project classifier knows digits only)',
         evaluations=(TRANSLATIONS,)),
    # Unpaired thin <-> thick digits: L1 / PSNR of F (thick -> thin)
    # against the originals it never saw paired.
    Spec('cyclegan_mnist8k', 'experiments/configs/cyclegan.py:mnist8k',
         overrides=(('train.num_steps', 600),), nll_estimator='',
         bound_estimator='', table=TRANSLATION,
         label='CycleGAN, U-Nets 16/32 + PatchGANs 16x16, least squares, '
         'thin <-> thick (3x3 dilation) digits, unpaired, 600 steps; the '
         'count includes the 1,000-image bank (784,000 uint8 pixels) and '
         'the two 50-image histories (78,400 floats)',
         evaluations=(TRANSLATIONS, sample_quality('mnist8k'))),
)

TABLES = {
    BOUND_BINARY: Table(
        'Latent-variable models on binarized data: bounds on the NLL',
        'Test-split negative log-likelihood in nats per image (lower is '
        'better): the IWAE bound with k importance samples (an upper bound '
        'on the NLL, tight as k grows), the negative ELBO (a looser upper '
        'bound), and bits/dim = NLL / (D ln 2) from the IWAE number.',
        'likelihood and bound', kind='bound'),
    EXACT_BINARY: Table(
        'Autoregressive models on binarized data: exact NLL',
        'Test-split negative log-likelihood in nats per image, exact (each '
        'model defines a normalised distribution over binary images), and '
        'bits/dim = NLL / (D ln 2). Comparable with the bounds above on the '
        'same data.',
        'likelihood', kind='exact'),
    ESTIMATE_BINARY: Table(
        'Boltzmann machines on binarized data: AIS estimates of the NLL',
        'Test-split negative log-likelihood in nats per image, F(x) + '
        'log Z with the free energy F exact and log Z estimated once per '
        'evaluation by annealed importance sampling (Salakhutdinov & '
        'Murray 2008); the NLL column names the betas and chains and gives '
        'log Z with its standard error (delta method over the chains). The '
        'AIS weights estimate Z without bias, so log Z tends to come out '
        'low and the NLL optimistic: an estimate, neither exact nor a '
        'bound. The DBM row is minus the mean-field variational bound with '
        'its AIS log Z over (v, h2) (Salakhutdinov & Hinton 2009): an upper '
        'bound on the NLL up to the error of log Z. Comparable, with these '
        'caveats, with the tables above on the same data.',
        'likelihood', kind='AIS estimate'),
    EIGHT_BIT: Table(
        'Models of 8-bit pixels: exact NLL',
        'Test-split negative log-likelihood of the 8-bit images (256 levels '
        'per sub-pixel, no binarization), exact, in nats per image and in '
        'bits/dim. Not comparable with the binarized tables.',
        'likelihood', kind='exact'),
    BOUND_EIGHT_BIT: Table(
        'Models of 8-bit pixels: bounds on the NLL',
        'Test-split upper bound on the negative log-likelihood of the 8-bit '
        'images (256 levels per sub-pixel, a discrete likelihood: no '
        'dequantization, no offset), in nats per image and in bits/dim. '
        'Diffusion rows: the negative variational bound L_T + sum of L_t '
        '(1 <= t < T) + L_0 with a discretized Gaussian decoder L_0 (Ho et '
        'al. 2020, eq. 5), each term at one draw of x_t per image, L_T '
        'exact, with the EMA of the parameters. With the estimator option '
        'num_timesteps = k (in each row\'s label and its Reproduce entry) '
        'the terms are not all evaluated: L_0 and k - 1 stratified '
        'timesteps per image, weighted to an unbiased estimate of the same '
        'bound (a random figure whose mean is the bound); num_timesteps = 0 '
        'evaluates all T terms. These bound the quantity of the exact 8-bit '
        'table above, from above; not comparable with the binarized '
        'tables.',
        'likelihood', kind='bound'),
    DEQUANTIZED: Table(
        'Continuous densities of dequantized 8-bit pixels: an upper bound '
        'on the NLL',
        'Each model is an exact density p of the uniformly dequantized '
        'pixels y = (x + u) / 256, u ~ U[0, 1)^D, of an 8-bit image x '
        '(the estimator name "exact" in the NLL column says that p(y) is '
        'computed exactly). The column is the test-split mean of '
        '-log p(y) + D ln 256 in nats per image, and bits/dim = that / '
        '(D ln 2). With uniform dequantization, E_u[-log p(y)] + D ln 256 '
        'is an upper bound on the discrete NLL -log P(x) of the 8-bit image '
        '(Jensen\'s inequality; Theis et al. 2016), and it is estimated '
        'here with one noise draw u per test image (drawn with the '
        'evaluation key): an upper bound in expectation, not an exact NLL. '
        'It bounds the quantity of the exact 8-bit table above, from above; '
        'not comparable with the binarized tables. The Gaussian-Bernoulli '
        'RBM row is the exception to "exact": its p(y) is exp(-F(v)) / Z '
        'of the standardised pixels v times the standardisation\'s '
        'Jacobian, with log Z estimated by AIS as in the Boltzmann table '
        '(estimator "ais"), so its figure carries that estimate\'s '
        'optimism and is not a bound.',
        'likelihood', kind='upper bound, dequantized'),
    TOY_DENSITY: Table(
        'Densities of toy 2-D points: exact test log-likelihood',
        'Test-split negative log-likelihood -log p(x) of the 2-D points in '
        'nats per point (lower is better; it can be negative, as a density '
        'of continuous points can exceed 1), exact: the change of variables '
        'gives log p(x) in closed form, with no dequantization and no '
        'offset. bits/dim = NLL / (2 ln 2). Each toy density has its own '
        'scale: compare rows on the same data only. No published figure '
        'exists for these point sets. Samples (2,500 per row) are scored '
        'against as many random test points: the energy distance 2 E|X - Y| '
        '- E|X - X\'| - E|Y - Y\'| (Székely & Rizzo 2013; unbiased, 0 when '
        'the two distributions are equal, in the units of the points; lower '
        'is better), and on the mixture with modes (ring8) the modes '
        'covered and the share of samples within 3 standard deviations of '
        'a mode, as in the sample-quality table. The data rows give the '
        'energy distance of as many real training points to the same test '
        'points: the floor that sampling noise leaves.',
        'toy likelihood', kind='exact'),
    CODES: Table(
        'Discrete latents and mixtures',
        'VQ-VAE rows: the test NLL is the bound -log p(x | z_q(x)) + '
        'log K per code position (a uniform prior over codes, as the VQ-VAE '
        'paper reports it); the code-prior row replaces the uniform prior by '
        'the trained autoregressive prior (the two-stage bound). Those models '
        'see dynamically binarized images, so their numbers compare with the '
        'binarized tables. GMM rows: the exact density of the uniformly '
        'dequantized pixels (x + u) / 256, reported as -log p + D ln 256: an '
        'upper bound on the NLL of the 8-bit images (Theis et al. 2016), '
        'like the flows\' rows. '
        'K-means defines no density. Recon. MSE / pixel: squared error of '
        'the reconstruction on the [0, 1] scale (for binarized models, '
        'against the binarized image). Code perplexity: exp of the entropy '
        'of the test split\'s code frequencies (K when every code is equally '
        'used).',
        'codes'),
    SAMPLE_QUALITY: Table(
        'Sample quality (models with and without a likelihood)',
        'Scores of samples against the real test split. Images: FID-style = '
        'Fréchet distance of the penultimate features of a small classifier '
        'trained in this project (`experiments.train_classifier`; lower is '
        'better), IS-style = exp E KL(p(y|x) || p(y)) of its predictions, '
        'classes covered by the samples\' predicted labels and the KL of '
        'their label histogram to the test split\'s. **These are not '
        'Inception-based FID or IS and are not comparable with published '
        'values.** Toy 2-D points: the energy distance to as many random '
        'test points (Székely & Rizzo 2013; lower is better; \'-\' for a '
        'record scored before it was measured) and, on mixtures, modes '
        'covered by at least one sample within 3 standard deviations, and '
        'the share of such samples (Srivastava et al. 2017). The data rows '
        'score real images (or points) the same way. "Training images vs the test split" is what '
        'a model reproducing its training set exactly would score; "one '
        'half of the test split vs the other" compares two samples of the '
        'same unseen distribution, at half the sample size (which biases a '
        'Fréchet distance upwards). Where the first is well above the '
        'second (mnist8k), the classifier, trained on those training '
        'images, sets them apart from unseen ones in its features; where it '
        'is below (digits), the half-size bias dominates. The classifier '
        'is trained once per machine and runs directory by its command '
        '(seed 0); XLA:CPU numerics differ across CPUs, so rows whose '
        'classifier column shows another test accuracy were scored in a '
        'slightly different feature space: compare those with care.',
        'sample quality', evaluation='sample_quality'),
    SAMPLERS: Table(
        'Sample quality by sampler: ancestral vs DDIM',
        'One trained DDPM, two samplers: ancestral sampling over all T '
        'steps (Ho et al. 2020, Algorithm 2) and deterministic DDIM on an '
        'evenly spaced sub-sequence of the steps (Song et al. 2021, eta = '
        '0), the same number of samples from the same key (the same '
        'starting noise), scored as in the sample-quality table above '
        '(the in-project classifier\'s FID-style and IS-style scores, not '
        'Inception-based; the same caveats). Cells list the samplers in the '
        'order of the Samplers column. Sampling time is the wall time of '
        'drawing the samples, compilation included. With few samples the '
        'FID-style figure is biased upwards (compare the rows\' own '
        'samplers, at equal sample counts, not across tables).',
        'samplers', evaluation='sampler_quality'),
    TRANSLATION: Table(
        'Image-to-image translation',
        'Paired tasks built from the images themselves '
        '(`jaxgen.data.paired`: the input is made from each image, the '
        'image is the target): digits, and for colourisation 32x32 crops '
        'of scikit-image\'s bundled colour photos, split by whole photo. '
        'Test L1 = mean absolute error of the '
        'translation per pixel on the [0, 1] scale, PSNR = 10 log10(1 / '
        'MSE) in dB on the same scale, means over the test split, with the '
        'generator\'s dropout noise on (its test-time noise, as in Isola et '
        'al. 2017). CycleGAN rows: the task is unpaired (thin digits and '
        'the 3x3 dilations of other digits); L1 and PSNR are those of F, '
        'thick -> thin, against the original of each dilated test digit, a '
        'pairing the model never saw. The samples of every digit row are '
        'also scored in the sample-quality table: pix2pix translates the '
        'task inputs made from recent training images (its bank): their '
        'edges, their 4x4 average-pooled versions, or the images with a '
        'random 12x12 square masked out; CycleGAN\'s F translates the '
        'dilations of recent training images into thin digits. The '
        'sample-quality classifier knows digits, so the photo row has no '
        'such score. No published figure exists for these tasks.',
        'translation'),
}
BY_NAME = {s.name: s for s in EXPERIMENTS}

# Config fields added after some records ran, with the value that reproduces
# the behaviour those records ran with: jaxgen's registry of added fields
# (`jaxgen.config_fields`, every family's merged; a preset only holds its own
# family's). A record without such a field is not stale while the preset
# holds the neutral value.
NEUTRAL_ADDED_FIELDS = config_fields.all_added_fields()

# The standalone command of each figure a record keeps (record field -> the
# `python -m` module that writes it from a workdir).
FIGURE_COMMANDS = {'codebook': 'experiments.kmeans_codebook'}

# RESULTS.md's "How to read these numbers" section.
READING_NOTES = (
    '**mnist8k** is 8,000 real MNIST digits (the first 8,000 images of the '
    'MNIST test set; see ../shared/data/mnist/README.md): our models train '
    'on its 7,000 canonical training rows (0-6,999) and are tested on its '
    '1,000 test rows (7,000-7,999). The papers train on 50,000-60,000 '
    'images and test on 10,000, with their own nets and schedules: their '
    'figures (Burda et al. 2016\'s 86.76 nats, the PixelRNN paper\'s Table '
    '4, ...) are shown for scale, not as like-for-like comparisons.',
    '**digits** is scikit-learn\'s 1,797 8x8 digits (pixels 0..16 rescaled '
    'to 0..255), shuffled with the split seed and split 70/10/20: a much '
    'smaller dataset with no published likelihood, so its numbers only '
    'compare with each other.',
    'Dynamic binarization: each pixel is a Bernoulli draw with p = '
    'pixel/255, redrawn every training step; test images are drawn with '
    'the evaluation key (`fold_in(eval_key, batch)`), so a given seed '
    'always sees the same binarized test set.',
    'Wall time is measured on the machine named for the row and includes '
    'contention from anything else running there (the load average is in '
    'the run\'s details); a run that reused a finished checkpoint only '
    'times its evaluation.',
)
