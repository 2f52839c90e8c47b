r"""Runs the named experiments and writes RESULTS.md (never edit it by hand).

  python -m experiments.results                      # all, then RESULTS.md
  python -m experiments.results --only=vae_mlp_digits,vae_conv_digits
  python -m experiments.results --quick --runs_dir=/tmp/q --out=/tmp/q/R.md
  python -m experiments.results --render_only        # RESULTS.md, no runs

Run from the project root (configs name data paths relative to it).

Each experiment is a config preset plus overrides, trained in its own workdir
``<runs_dir>/<name>`` through the library (`Experiment.train`, then
`Experiment.evaluate` on the test split with the config's final estimators:
for the VAE, the ELBO and the IWAE bound with k = 5000). Its measured
numbers are saved as ``<runs_dir>/<name>/result.json`` and, for full runs,
copied to ``results/<name>.json`` (tracked in git: workdirs are not, so the
records are what RESULTS.md is rendered from and what survives a fresh
clone), with the spec's
extras (`Spec.extras`: codebook usage of VQ models; sample-quality scores
from `jaxgen.quality`, whose classifier is trained once into
``<runs_dir>/classifier_<dataset>``; a stored result that lacks an extra
gets it measured from its checkpoint while the workdir exists); RESULTS.md is
then regenerated from the records of every experiment, so results
accumulate across invocations and across clones:

- an experiment with a result.json is not run again (unless --rerun or
  --fresh);
- without one, it runs; a workdir whose checkpoint already reached
  num_steps is not retrained (the trainer resumes and stops at once), only
  evaluated, and its row says the training time was not measured;
- --rerun ignores existing results (resume + evaluate again);
  --fresh deletes the workdirs first and trains from scratch.

Each row names the exact `experiments.main` command that reproduces it (the
same training, and the same evaluation with the same keys).

--quick shrinks everything (a few steps, a small k) to check that the
machinery works; its RESULTS.md says so at the top, and by default it goes
to ``<runs_dir>/RESULTS.md`` (runs_dir defaulting to runs/results_quick),
never to the project's RESULTS.md. Quick and full results never mix in one
runs_dir.
"""

from __future__ import annotations

import dataclasses
import datetime
import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from typing import Any

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections

from experiments import machine
from experiments.configs import classifier as classifier_config
from jaxgen import evaluate as eval_lib
from jaxgen import quality
from jaxgen import train
from jaxgen import workdir as workdir_lib

BURDA = ('86.76 nats: Burda et al. 2016 (IWAE paper), Table 1, VAE with one '
         'stochastic layer, k=1 training, MNIST with 60,000 training images')


@dataclasses.dataclass(frozen=True)
class Spec:
  """One named experiment: a config preset plus overrides.

  Attributes:
    name: the workdir name under --runs_dir and the --only key.
    config: 'path/to/config.py:arg', as for `experiments.main --config`.
    overrides: (dotted field, value) pairs applied after the preset, exactly
      as ``--config.<field>=<value>`` would.
    reference: the published number to show beside ours ('' = none).
    nll_estimator: estimator whose NLL is the headline (test NLL).
    bound_estimator: estimator shown as the ELBO column ('' = none).
    table: which table of RESULTS.md the row belongs to (`TABLES`).
    label: short model name for the table ('' = derived from the config).
    extras: measurements beyond `Experiment.evaluate`: 'codebook' (the
      K-means / GMM centres as one grid, `experiments.kmeans_codebook`,
      kept as ``results/<name>_codebook.png``), 'code_usage' (the
      test split's codebook perplexity and codes used per level, VQ
      families) and 'quality' (sample-quality scores, `jaxgen.quality`;
      rows with it also appear in the sample-quality table).
    classifier: for 'quality' on images, the dataset of the feature
      classifier (trained once into ``<runs_dir>/classifier_<dataset>``);
      '' for toy 2-D runs, which need none.

  Override values may name ``{runs_dir}`` (e.g. a frozen VQ run that
  another experiment trains).
  """
  name: str
  config: str
  overrides: tuple[tuple[str, Any], ...] = ()
  reference: str = ''
  nll_estimator: str = 'iwae'
  bound_estimator: str = 'elbo'
  table: str = 'bounds'
  label: str = ''
  extras: tuple[str, ...] = ()
  classifier: str = ''


MADE_ONE_MASK = ('88.40 nats: Germain et al. 2015 (MADE paper), one hidden '
                 'layer, one mask, binarized MNIST with 50,000 training '
                 'images')
# The reference PixelCNN (h=128, 12 blocks) narrowed and shortened for CPU.
PIXELCNN_CPU = (('model.features', 64), ('model.num_blocks', 6),
                ('model.output_features', (64,)))
VQVAE = ('for scale only: 4.67 bits/dim, van den Oord et al. 2017 '
         '(VQ-VAE paper), section 4.1, CIFAR-10 (other data)')
NO_REFERENCE_DIGITS = ('none: sklearn 8x8 digits (1,797 images) is not a '
                       'published likelihood benchmark')


def _pixelrnn_table4(model: str, nats: str) -> str:
  return (f'{nats} nats: van den Oord et al. 2016 (PixelRNN paper), Table 4, '
          f'{model} on binarized MNIST with 50,000 training images')


def _exact(name: str, config: str, label: str, table: str = 'exact_binary',
           nll_estimator: str = 'exact', classifier: str = '',
           reference: str = '',
           overrides: tuple[tuple[str, Any], ...] = ()) -> Spec:
  if not reference and name.endswith('_digits'):
    reference = NO_REFERENCE_DIGITS
  return Spec(name, config, overrides=overrides, reference=reference,
              nll_estimator=nll_estimator, bound_estimator='', table=table,
              label=label, extras=('quality',) if classifier else (),
              classifier=classifier)


def _discrete(name: str, config: str, label: str, *,
              nll_estimator: str = 'bound', extras: tuple[str, ...] = (),
              overrides: tuple[tuple[str, Any], ...] = (),
              reference: str = '', quality: bool = False) -> Spec:
  """A discrete-latent or mixture row; `quality` also scores its samples
  with the classifier of its dataset."""
  dataset = name.rsplit('_', 1)[-1]
  return Spec(name, config, overrides=overrides,
              reference=reference or (NO_REFERENCE_DIGITS
                                      if name.endswith('_digits') else ''),
              nll_estimator=nll_estimator, bound_estimator='',
              table='discrete', label=label,
              extras=extras + (('quality',) if quality else ()),
              classifier=dataset if quality else '')


def _quality(name: str, config: str, label: str, classifier: str = '',
             overrides: tuple[tuple[str, Any], ...] = ()) -> Spec:
  return Spec(name, config, overrides=overrides, reference='',
              nll_estimator='',
              bound_estimator='', table='quality', label=label,
              extras=('quality',), classifier=classifier)


EXPERIMENTS = (
    Spec('vae_mlp_mnist8k', 'experiments/configs/vae.py:mnist8k',
         reference=BURDA, extras=('quality',), classifier='mnist8k'),
    Spec('vae_conv_mnist8k', 'experiments/configs/vae.py:mnist8k,conv',
         reference=BURDA),
    Spec('vae_mlp_digits', 'experiments/configs/vae.py:digits',
         reference=NO_REFERENCE_DIGITS, extras=('quality',),
         classifier='digits'),
    Spec('vae_conv_digits', 'experiments/configs/vae.py:digits,conv',
         reference=NO_REFERENCE_DIGITS),
    _exact('nade_digits', 'experiments/configs/nade.py:digits', 'NADE'),
    _exact('made_digits', 'experiments/configs/made.py:digits',
           'MADE, one mask, natural order', nll_estimator='single'),
    _exact('made_agnostic_digits',
           'experiments/configs/made.py:digits,agnostic',
           'MADE, order-agnostic, ensemble of its 16 masks',
           nll_estimator='ensemble'),
    _exact('pixelcnn_digits', 'experiments/configs/pixelcnn.py:digits',
           'PixelCNN'),
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
           'PixelCNN, 256-way softmax', table='exact_8bit'),
    _exact('pixelcnnpp_digits', 'experiments/configs/pixelcnnpp.py:digits',
           'PixelCNN++', table='exact_8bit'),
    # mnist8k (the comparison with the PixelRNN paper's Table 4).
    # The convolutional and recurrent presets are the papers' sizes, days
    # of training on 2 CPU cores; these rows run CPU-sized cuts (fewer
    # steps, narrower or shallower nets: the overrides are in each row's
    # command) of about half an hour each, and say so in their label.
    _exact('nade_mnist8k', 'experiments/configs/nade.py:mnist8k',
           'NADE, 500 hidden units, CPU budget of 3,000 steps',
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
           'PixelCNN, CPU-sized: h=64, 6 residual blocks, 4,000 steps',
           reference=_pixelrnn_table4('PixelCNN', '81.30'),
           overrides=PIXELCNN_CPU + (('train.num_steps', 4000),)),
    _exact('gated_pixelcnn_mnist8k',
           'experiments/configs/gated_pixelcnn.py:mnist8k',
           'Gated PixelCNN, CPU-sized: p=32, 8 layers, 2,500 steps',
           classifier='mnist8k',
           overrides=(('model.features', 32), ('model.num_layers', 8),
                      ('model.output_features', (64,)),
                      ('train.num_steps', 2500))),
    _exact('row_lstm_mnist8k', 'experiments/configs/pixelrnn.py:mnist8k,row',
           'PixelRNN, Row LSTM, 4 layers of 16 units, CPU budget of 2,500 '
           'steps', reference=_pixelrnn_table4('Row LSTM', '80.54'),
           overrides=(('train.num_steps', 2500),)),
    _exact('diagonal_bilstm_mnist8k',
           'experiments/configs/pixelrnn.py:mnist8k,diagonal',
           'PixelRNN, Diagonal BiLSTM, 4 layers of 16 units, CPU budget of '
           '2,000 steps',
           reference=_pixelrnn_table4('Diagonal BiLSTM', '79.20'),
           overrides=(('train.num_steps', 2000),)),
    _exact('wavenet_mnist8k', 'experiments/configs/wavenet.py:mnist8k',
           'WaveNet on raster-order pixels, 10 blocks, CPU budget of 2,500 '
           'steps', overrides=(('train.num_steps', 2500),)),
    _exact('pixelcnn_8bit_mnist8k',
           'experiments/configs/pixelcnn.py:mnist8k,categorical',
           'PixelCNN, 256-way softmax, CPU-sized: h=64, 6 residual blocks, '
           '2,500 steps', table='exact_8bit',
           overrides=PIXELCNN_CPU + (('train.num_steps', 2500),)),
    _exact('pixelcnnpp_mnist8k', 'experiments/configs/pixelcnnpp.py:mnist8k',
           'PixelCNN++, 32 filters, CPU budget of 1,000 steps (EMA 0.995)',
           table='exact_8bit',
           overrides=(('train.num_steps', 1000), ('train.ema_decay', 0.995),
                      ('train.eval_every_steps', 1000))),
    # Discrete latents and mixtures.
    _discrete('vqvae_digits', 'experiments/configs/vqvae.py:digits',
              'VQ-VAE, EMA codebook, uniform prior over codes',
              extras=('code_usage',)),
    _discrete('vqvae2_digits', 'experiments/configs/vqvae2.py:digits',
              'VQ-VAE-2-style two levels, EMA codebooks, uniform prior',
              extras=('code_usage',)),
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
              extras=('codebook',), quality=True),
    _discrete('vqvae_mnist8k', 'experiments/configs/vqvae.py:mnist8k',
              'VQ-VAE, EMA codebook, uniform prior over codes',
              extras=('code_usage',), reference=VQVAE),
    _discrete('vqvae2_mnist8k', 'experiments/configs/vqvae2.py:mnist8k',
              'VQ-VAE-2-style two levels, EMA codebooks, uniform prior',
              extras=('code_usage',)),
    _discrete('code_prior_mnist8k',
              'experiments/configs/code_prior.py:mnist8k',
              'Gated PixelCNN prior over the frozen codes of '
              '`vqvae2_mnist8k` (top, then bottom given top), CPU budget of '
              '2,000 steps',
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
              extras=('codebook',), quality=True),
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
             'BEGAN, n = N_z = N_h = 64, CPU budget of 1,000 steps',
             classifier='mnist8k', overrides=(('train.num_steps', 1000),)),
)
# Table id -> (heading, explanation). Rows of a table share their units.
TABLES = {
    'bounds': (
        'Latent-variable models on binarized data: bounds on the NLL',
        'Test-split negative log-likelihood in nats per image (lower is '
        'better): the IWAE bound with k importance samples (an upper bound '
        'on the NLL, tight as k grows), the negative ELBO (a looser upper '
        'bound), and bits/dim = NLL / (D ln 2) from the IWAE number.'),
    'exact_binary': (
        'Autoregressive models on binarized data: exact NLL',
        'Test-split negative log-likelihood in nats per image, exact (each '
        'model defines a normalised distribution over binary images), and '
        'bits/dim = NLL / (D ln 2). Comparable with the bounds above on the '
        'same data.'),
    'exact_8bit': (
        'Models of 8-bit pixels: exact NLL',
        'Test-split negative log-likelihood of the 8-bit images (256 levels '
        'per sub-pixel, no binarization), exact, in nats per image and in '
        'bits/dim. Not comparable with the binarized tables.'),
    'discrete': (
        'Discrete latents and mixtures',
        'VQ-VAE rows: the test NLL is the bound -log p(x | z_q(x)) + '
        'log K per code position (a uniform prior over codes, as the VQ-VAE '
        'paper reports it); the code-prior row replaces the uniform prior by '
        'the trained autoregressive prior (the two-stage bound). Those models '
        'see dynamically binarized images, so their numbers compare with the '
        'binarized tables. GMM rows: exact NLL of the 8-bit images (the '
        'density of the uniformly dequantized pixels (x + u) / 256, plus '
        'D ln 256). '
        'K-means defines no density. Recon. MSE / pixel: squared error of '
        'the reconstruction on the [0, 1] scale (for binarized models, '
        'against the binarized image). Code perplexity: exp of the entropy '
        'of the test split\'s code frequencies (K when every code is equally '
        'used).'),
    'quality': (
        'Sample quality (models with and without a likelihood)',
        'Scores of samples against the real test split. Images: FID-style = '
        'Fréchet distance of the penultimate features of a small classifier '
        'trained in this project (`experiments.train_classifier`; lower is '
        'better), IS-style = exp E KL(p(y|x) || p(y)) of its predictions, '
        'classes covered by the samples\' predicted labels and the KL of '
        'their label histogram to the test split\'s. **These are not '
        'Inception-based FID or IS and are not comparable with published '
        'values.** Toy 2-D mixtures: modes covered by at least one sample '
        'within 3 standard deviations, and the share of such samples '
        '(Srivastava et al. 2017). The data rows score real images (or '
        'points) the same way. "Training images vs the test split" is what '
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
        'slightly different feature space: compare those with care.'),
}
BY_NAME = {s.name: s for s in EXPERIMENTS}

# --quick: applied after each experiment's own overrides (only the fields a
# config has); small enough that every row runs in seconds.
QUICK_STEPS = 20
QUICK_OVERRIDES = (
    ('train.num_steps', QUICK_STEPS),
    ('train.log_every_steps', 10),
    ('train.eval_every_steps', 0),
    ('train.checkpoint_every_steps', QUICK_STEPS),
    ('eval.estimators.iwae.num_samples', 16),
    ('eval.estimators.iwae.chunk_size', 8),
    ('eval.num_grid_samples', 16),
)

RESULT_FILE = 'result.json'
FORMAT_VERSION = 1
DEFAULT_RUNS_DIR = 'runs/results'
DEFAULT_RECORDS_DIR = 'results'

_ONLY = flags.DEFINE_list('only', None, 'Experiments to run (default: all): '
                          + ', '.join(BY_NAME) + '. RESULTS.md still lists '
                          'every experiment.')
_QUICK = flags.DEFINE_bool('quick', False, 'Smoke mode: a few steps, small '
                           'k; RESULTS.md says so loudly.')
_RUNS_DIR = flags.DEFINE_string('runs_dir', None, 'Parent of the workdirs '
                                '(default runs/results, or '
                                'runs/results_quick with --quick).')
_NOTE = flags.DEFINE_string('note', None, 'A sentence added verbatim to '
                            "RESULTS.md's reading notes (e.g. on the "
                            'machine\'s load during the runs).')
_OUT = flags.DEFINE_string('out', None, 'Markdown file to write (default '
                           'RESULTS.md, or <runs_dir>/RESULTS.md with '
                           '--quick).')
_RERUN = flags.DEFINE_bool('rerun', False, 'Run the selected experiments even '
                           'when they have a result.json (training resumes '
                           'from the workdir; evaluation runs again).')
_RECORDS_DIR = flags.DEFINE_string(
    'records_dir', None, 'Where full runs keep one <name>.json record per '
    'experiment, the source of RESULTS.md (default results/, tracked in '
    'git). --quick keeps its records in the workdirs only.')
_FRESH = flags.DEFINE_bool('fresh', False, 'Delete the selected experiments\' '
                           'workdirs first and train from scratch.')
_RENDER_ONLY = flags.DEFINE_bool(
    'render_only', False, 'Run nothing: rewrite --out from the records in '
    '--records_dir (what RESULTS.md must equal; a test checks it).')


# ------------------------------------------------------------------ configs
def _config_module(path: str):
  """'experiments/configs/vae.py' -> the imported module."""
  import importlib  # pylint: disable=g-import-not-at-top
  module = os.path.splitext(os.path.normpath(path))[0].replace(os.sep, '.')
  return importlib.import_module(module)


def overrides_for(spec: Spec, quick: bool,
                  runs_dir: str = DEFAULT_RUNS_DIR) -> list[tuple[str, Any]]:
  """The (dotted field, value) pairs for `spec`, quick ones last."""
  pairs = [(k, v.format(runs_dir=runs_dir) if isinstance(v, str) else v)
           for k, v in spec.overrides]
  if quick:
    config = _preset(spec)
    pairs += [(k, v) for k, v in QUICK_OVERRIDES if _has_field(config, k)]
  return pairs


def _preset(spec: Spec) -> ml_collections.ConfigDict:
  path, _, arg = spec.config.partition(':')
  return _config_module(path).get_config(arg)


def _has_field(config: ml_collections.ConfigDict, dotted: str) -> bool:
  node = config
  for part in dotted.split('.'):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      return False
    node = node[part]
  return True


def build_config(spec: Spec, quick: bool,
                 runs_dir: str = DEFAULT_RUNS_DIR) -> ml_collections.ConfigDict:
  """The locked config of `spec` (preset, then overrides)."""
  config = _preset(spec)
  config.update_from_flattened_dict(dict(overrides_for(spec, quick,
                                                       runs_dir)))
  return config


def command(spec: Spec, workdir: str, quick: bool) -> str:
  """The `experiments.main` command line that reproduces the row."""
  parts = ['python', '-m', 'experiments.main', f'--config={spec.config}',
           f'--workdir={workdir}']
  runs_dir = os.path.dirname(workdir)
  parts += [f'--config.{k}={v}'
            for k, v in overrides_for(spec, quick, runs_dir)]
  return ' '.join(shlex.quote(p) for p in parts)


def missing_data(config: ml_collections.ConfigDict) -> str | None:
  """The path of a file-backed dataset that does not exist, else None."""
  name = config.data.name
  if name.startswith('npz:') and not os.path.exists(name[len('npz:'):]):
    return name[len('npz:'):]
  return None


def describe_model(config: ml_collections.ConfigDict, num_params: int) -> str:
  """e.g. 'VAE, MLP 784-512-512, 32-d latent, bernoulli decoder'."""
  m = config.model
  if config.family != 'vae':  # the other rows carry a `Spec.label`
    return f'{config.family} ({num_params:,} params)'
  family = config.family.upper()
  arch = m.get('architecture', '')
  d = 1
  for s in m.image_shape:
    d *= s
  if arch == 'mlp':
    body = 'MLP ' + '-'.join(str(x) for x in (d, *m.hidden_dims))
  elif arch == 'conv':
    body = (f'conv {"-".join(str(c) for c in m.conv_channels)} channels, '
            f'strides {",".join(str(s) for s in m.conv_strides)}, '
            f'{m.kernel_size}x{m.kernel_size} kernels')
  else:
    body = arch or 'model'
  bits = [family, body]
  if 'latent_dim' in m:
    bits.append(f'{m.latent_dim}-d latent')
  if 'likelihood' in m:
    bits.append(f'{m.likelihood} decoder')
  if m.get('num_classes', 0):
    bits.append(f'conditional on {m.num_classes} classes')
  return ', '.join(bits) + f' ({num_params:,} params)'


def describe_data(config: ml_collections.ConfigDict) -> str:
  d = config.data
  name = d.name
  if name.startswith('npz:'):
    name = os.path.splitext(os.path.basename(name))[0]
  if name.startswith('toy:'):
    return f'{name}, 2-D points'
  if d.binarize == 'dynamic':
    pixels = 'dynamically binarized (Bernoulli, p = pixel/255, redrawn each use)'
  elif d.binarize == 'fixed':
    pixels = f'binarized once (fixed, seed {d.binarize_seed})'
  elif d.dequantize:
    pixels = '8-bit, uniformly dequantized'
  else:
    pixels = '8-bit'
  return f'{name}, {pixels}'


# ------------------------------------------------------------------ machine
def git_revision() -> str | None:
  """'<short sha>' of the checkout, '+dirty' when tracked files changed."""
  try:
    sha = subprocess.run(['git', 'rev-parse', '--short=12', 'HEAD'],
                         capture_output=True, text=True, check=True,
                         timeout=10).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain',
                            '--untracked-files=no'], capture_output=True,
                           text=True, check=True, timeout=10).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None
  return sha + ('+dirty' if dirty else '')


# -------------------------------------------------------------------- runs
def result_path(runs_dir: str, name: str,
                records_dir: str | None = None) -> str:
  """The record of `name`: ``<records_dir>/<name>.json`` when records are
  kept apart (full runs), else ``<runs_dir>/<name>/result.json``."""
  if records_dir:
    return os.path.join(records_dir, f'{name}.json')
  return os.path.join(runs_dir, name, RESULT_FILE)


def load_result(runs_dir: str, name: str,
                records_dir: str | None = None) -> dict[str, Any] | None:
  path = result_path(runs_dir, name, records_dir)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _write_json(path: str, obj: Any) -> None:
  workdir_lib.write_json(path, obj)


def _config_dict(config: ml_collections.ConfigDict) -> dict[str, Any]:
  return json.loads(config.to_json_best_effort(sort_keys=True))


class Interrupted(RuntimeError):
  """Training stopped before num_steps (SIGTERM): nothing is recorded."""


def run_experiment(spec: Spec, runs_dir: str, quick: bool,
                   records_dir: str | None = None) -> dict[str, Any]:
  """Trains (resuming) and evaluates one experiment; writes its result.json.

  With `records_dir`, the record is also written to
  ``<records_dir>/<name>.json``.

  Raises:
    FileNotFoundError: the experiment's data file is absent.
  """
  config = build_config(spec, quick, runs_dir)
  missing = missing_data(config)
  if missing:
    raise FileNotFoundError(missing)
  workdir = os.path.join(runs_dir, spec.name)
  exp = train.Experiment(config, workdir)
  ckpt = exp.checkpointer()
  try:
    start_step = ckpt.latest_step() or 0
  finally:
    ckpt.close()
  num_steps = config.train.num_steps
  print(f'[{spec.name}] training {start_step} -> {num_steps} steps in '
        f'{workdir}', flush=True)
  start = time.perf_counter()
  state = exp.train()
  train_s = time.perf_counter() - start
  step = int(state.step)
  if step < num_steps:  # SIGTERM: the trainer saved and returned early
    raise Interrupted(f'[{spec.name}] training stopped at step {step} of '
                      f'{num_steps} (SIGTERM); checkpoint saved, no record '
                      'written. Run again to resume.')
  start = time.perf_counter()
  metrics = exp.evaluate(state, split='test', progress=True)
  eval_s = time.perf_counter() - start
  if not exp.is_main:
    return {}
  # The same file `experiments.main` writes after training.
  eval_lib.write_eval_json(workdir, step, 'test', metrics)
  images = exp.write_images(state)

  def nll(name, key):
    value = metrics.get(f'{name}/{key}')
    return None if value is None else float(value)

  estimators = {n: dict(config.eval.estimators[n])
                for n in config.eval.final_estimators}
  num_params = train.count_params(state.params)
  trained = step - start_step
  record = {
      'format_version': FORMAT_VERSION,
      'name': spec.name,
      'quick': quick,
      'preset': spec.config,
      'overrides': [[k, v] for k, v in overrides_for(spec, quick)],
      'command': command(spec, workdir, quick),
      'workdir': workdir,
      'model': describe_model(config, num_params),
      'family': config.family,
      'params': num_params,
      'data': describe_data(config),
      'dataset': config.data.name,
      'binarize': config.data.binarize,
      'splits': {k: len(v) for k, v in exp.dataset.splits.items()},
      'split_specs': dict(config.data.splits),
      'seed': config.seed,
      'num_steps': num_steps,
      'batch_size': config.train.batch_size,
      'step': step,
      'start_step': start_step,
      'trained_steps_this_run': trained,
      'estimators': estimators,
      'nll_estimator': spec.nll_estimator,
      'bound_estimator': spec.bound_estimator,
      'test_nll_nats': nll(spec.nll_estimator, 'nll_nats'),
      'test_bits_per_dim': nll(spec.nll_estimator, 'bits_per_dim'),
      'test_neg_elbo_nats': nll(spec.bound_estimator, 'nll_nats'),
      'test_neg_elbo_bits_per_dim': nll(spec.bound_estimator, 'bits_per_dim'),
      'test_num_examples': int(metrics['num_examples']),
      'test_metrics': metrics,
      'train_seconds': train_s,
      'eval_seconds': eval_s,
      'train_steps_per_second': trained / train_s if trained else None,
      'reference': spec.reference,
      'machine': machine.machine_info(),
      'git': git_revision(),
      'finished_utc': datetime.datetime.now(datetime.timezone.utc).strftime(
          '%Y-%m-%d %H:%M UTC'),
      'config': _config_dict(config),
  }
  record.update(measure_extras(spec, exp, state, runs_dir, quick,
                               records_dir))
  samples = [p for p in images
             if os.path.basename(p).startswith('samples_')]
  if records_dir and samples:
    record['samples_png'] = _keep_grid(samples[-1], records_dir, spec.name)
  _write_json(result_path(runs_dir, spec.name), record)
  if records_dir:
    os.makedirs(records_dir, exist_ok=True)
    _write_json(result_path(runs_dir, spec.name, records_dir), record)
  print(f'[{spec.name}] test NLL {_num(record["test_nll_nats"])} nats '
        f'({spec.nll_estimator or "none"}), -ELBO '
        f'{_num(record["test_neg_elbo_nats"])}; train {train_s:.0f} s, eval '
        f'{eval_s:.0f} s', flush=True)
  return record


def ensure_classifier(dataset: str, runs_dir: str,
                      quick: bool) -> tuple[Any, dict[str, Any]]:
  """The sample-quality classifier of `dataset`, trained once per runs_dir.

  Returns (the `quality.FeatureClassifier`, a record of how it was made).
  """
  config = classifier_config.get_config(dataset)
  if quick:
    config.train.num_steps = QUICK_STEPS
  workdir = os.path.join(runs_dir, f'classifier_{dataset}')
  clf = quality.train_classifier(config, workdir,
                                 log=lambda s: print(s, flush=True))
  cmd = ['python', '-m', 'experiments.train_classifier',
         f'--dataset={dataset}', f'--workdir={workdir}']
  if quick:
    cmd.append(f'--config.train.num_steps={QUICK_STEPS}')
  info = {k: v for k, v in clf.info.items()
          if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
  return clf, {'command': ' '.join(cmd), 'workdir': workdir, **info}


def measure_extras(spec: Spec, exp: train.Experiment, state, runs_dir: str,
                   quick: bool,
                   records_dir: str | None = None) -> dict[str, Any]:
  """The spec's extra measurements (`Spec.extras`), as record fields."""
  out: dict[str, Any] = {}
  if 'codebook' in spec.extras:
    from experiments import kmeans_codebook  # pylint: disable=g-import-not-at-top
    path, sizes = kmeans_codebook.write_codebook(exp.config, exp.workdir)
    if records_dir:
      path = _keep_grid(path, records_dir, spec.name, 'codebook')
    out['codebook'] = {'png': path,
                       'sizes': [int(round(float(v))) for v in sizes]}
  if 'code_usage' in spec.extras:
    from jaxgen.models import vqvae  # pylint: disable=g-import-not-at-top
    out['code_usage'] = [
        {'perplexity': level['perplexity'], 'codes_used': level['codes_used'],
         'num_codes': int(len(level['counts']))}
        for level in vqvae.split_code_usage(exp, state, 'test')]
  if 'quality' in spec.extras:
    start = time.perf_counter()
    clf = None
    if spec.classifier:
      clf, out['classifier'] = ensure_classifier(spec.classifier, runs_dir,
                                                 quick)
    scores = quality.evaluate_workdir(exp.workdir, clf)
    out['quality'] = {k: v for k, v in scores.items()
                      if isinstance(v, (int, float, str, list))}
    out['quality_seconds'] = time.perf_counter() - start
    print(f'[{spec.name}] quality: ' + ', '.join(
        f'{k}={_num(scores.get(k), ".3f")}' for k in _QUALITY_KEYS
        if k in scores), flush=True)
  return out


def _keep_grid(path: str, records_dir: str, name: str,
               kind: str = 'samples') -> str:
  """Copies a grid (samples, codebook) beside the records (workdirs are not
  tracked): ``<records_dir>/<name>_<kind>.png``."""
  os.makedirs(records_dir, exist_ok=True)
  grid = os.path.join(records_dir, f'{name}_{kind}.png')
  shutil.copyfile(path, grid)
  return grid


def attach_samples(spec: Spec, record: dict[str, Any], runs_dir: str,
                   records_dir: str | None) -> dict[str, Any]:
  """Keeps the final sample grid of a stored record that lacks it, when its
  workdir still holds the grid of the recorded step."""
  if not records_dir or record.get('samples_png'):
    return record
  path = os.path.join(runs_dir, spec.name, 'images',
                      f'samples_{record["step"]:07d}.png')
  if os.path.exists(path):
    record['samples_png'] = _keep_grid(path, records_dir, spec.name)
    _write_json(result_path(runs_dir, spec.name, records_dir), record)
  return record


def add_missing_extras(spec: Spec, record: dict[str, Any], runs_dir: str,
                       quick: bool,
                       records_dir: str | None = None) -> dict[str, Any]:
  """Measures the extras a stored result lacks, from its checkpoint.

  A record whose workdir is gone (a fresh clone) keeps what it has.
  """
  missing = [e for e in spec.extras if e not in record]
  if not missing:
    return record
  if not os.path.isdir(os.path.join(runs_dir, spec.name, 'checkpoints')):
    print(f'[{spec.name}] lacks {", ".join(missing)} and its workdir is not '
          f'under {runs_dir}: pass --rerun --only={spec.name} to measure '
          'them', flush=True)
    return record
  print(f'[{spec.name}] measuring {", ".join(missing)} from the stored '
        'checkpoint', flush=True)
  exp = train.Experiment(build_config(spec, quick, runs_dir),
                         os.path.join(runs_dir, spec.name))
  state, _ = exp.restore()
  partial = dataclasses.replace(spec, extras=tuple(missing))
  record.update(measure_extras(partial, exp, state, runs_dir, quick,
                               records_dir))
  _write_json(result_path(runs_dir, spec.name), record)
  if records_dir:
    _write_json(result_path(runs_dir, spec.name, records_dir), record)
  return record


_QUALITY_KEYS = ('fid_style', 'is_style', 'classes_covered', 'modes_covered',
                 'high_quality_share')


def _remove_workdir(workdir: str) -> None:
  """Deletes a workdir, refusing anything that does not look like one."""
  if not os.path.isdir(workdir):
    return
  markers = ('config.json', RESULT_FILE, 'checkpoints')
  if not any(os.path.exists(os.path.join(workdir, m)) for m in markers):
    raise app.UsageError(f'--fresh: {workdir} does not look like a workdir '
                         f'(none of {markers}); not deleting it.')
  print(f'--fresh: deleting {workdir}', flush=True)
  shutil.rmtree(workdir)


# Config fields added after some records ran, with the value that reproduces
# the behaviour those records ran with (bitwise: tested with the field).
# A record without such a field is not stale while the preset holds it.
NEUTRAL_ADDED_FIELDS = {
    'model.d_dropout': 0.0,  # GAN discriminator dropout (jaxgen.models.gan)
    'model.mask_unused_codes': False,  # code prior (jaxgen.models.code_prior)
}


def stale_reason(spec: Spec, record: dict[str, Any], quick: bool,
                 runs_dir: str = DEFAULT_RUNS_DIR) -> str | None:
  """Why a stored result no longer matches the current preset, or None."""
  try:
    current = _config_dict(build_config(spec, quick, runs_dir))
  except Exception as e:  # pylint: disable=broad-except
    return f'the preset no longer builds ({e})'
  stored = record.get('config') or {}
  changed = sorted(_diff(current, stored))
  changed = [f for f in changed
             if not (f in NEUTRAL_ADDED_FIELDS and _lookup(stored, f) is None
                     and _lookup(current, f) == NEUTRAL_ADDED_FIELDS[f])]
  if changed:
    return 'config changed since it ran: ' + ', '.join(changed[:6]) + (
        ', ...' if len(changed) > 6 else '')
  return None


def _lookup(tree: dict[str, Any], dotted: str) -> Any:
  for k in dotted.split('.'):
    if not isinstance(tree, dict) or k not in tree:
      return None
    tree = tree[k]
  return tree


def _diff(a: Any, b: Any, prefix: str = '') -> list[str]:
  if isinstance(a, dict) and isinstance(b, dict):
    out = []
    for k in sorted(set(a) | set(b)):
      out += _diff(a.get(k), b.get(k), f'{prefix}{k}.')
    return out
  return [] if a == b else [prefix.rstrip('.')]


def run_all(names: list[str], *, runs_dir: str, out: str, quick: bool,
            rerun: bool = False, fresh: bool = False,
            note: str | None = None, records_dir: str | None = None) -> str:
  """Runs what is missing among `names`, then writes `out`; returns its text.

  `records_dir` (full runs only): where the per-experiment records live
  apart from the workdirs; RESULTS.md is rendered from them.
  """
  if quick and records_dir:
    raise app.UsageError('--quick keeps its records in the workdirs: do not '
                         'pass --records_dir with it.')
  unknown = [n for n in names if n not in BY_NAME]
  if unknown:
    raise app.UsageError(f'unknown experiment(s) {unknown}; known: '
                         f'{", ".join(BY_NAME)}.')
  os.makedirs(runs_dir, exist_ok=True)
  for path in (glob.glob(os.path.join(runs_dir, '*', RESULT_FILE)) +
               glob.glob(os.path.join(records_dir or runs_dir, '*.json'))):
    with open(path) as f:
      was_quick = bool(json.load(f).get('quick'))
    if was_quick != quick:
      raise app.UsageError(
          f'{path} was written {"with" if was_quick else "without"} --quick; '
          'quick and full results do not mix: use another --runs_dir.')
  notes: dict[str, str] = {}
  for name in names:
    spec = BY_NAME[name]
    workdir = os.path.join(runs_dir, name)
    if fresh:
      _remove_workdir(workdir)
    record = load_result(runs_dir, name, records_dir)
    if record is not None and not rerun:
      print(f'[{name}] reusing {result_path(runs_dir, name, records_dir)} '
            '(pass --rerun to evaluate again, --fresh to retrain)',
            flush=True)
      if not stale_reason(spec, record, quick, runs_dir):
        add_missing_extras(spec, record, runs_dir, quick, records_dir)
        attach_samples(spec, record, runs_dir, records_dir)
      continue
    try:
      run_experiment(spec, runs_dir, quick, records_dir)
    except FileNotFoundError as e:
      notes[name] = (f'skipped: data file `{e.args[0]}` not found (run from '
                     'the project root, with ../shared/data/mnist/ present)')
      print(f'[{name}] {notes[name]}', flush=True)
  text = render(runs_dir, quick=quick, notes=notes, note=note,
                records_dir=records_dir)
  if jax.process_index() != 0:
    return text
  directory = os.path.dirname(os.path.abspath(out))
  os.makedirs(directory, exist_ok=True)
  with open(out, 'w') as f:
    f.write(text)
  print(f'wrote {out}', flush=True)
  return text


# ------------------------------------------------------------------ report
def _duration(seconds: float | None) -> str:
  if seconds is None:
    return 'n/a'
  seconds = int(round(seconds))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  if h:
    return f'{h} h {m:02d} min'
  if m:
    return f'{m} min {s:02d} s'
  return f'{s} s'


def _num(value: float | None, spec: str = '.2f') -> str:
  return 'n/a' if value is None else format(value, spec)


def _wall(r: dict[str, Any]) -> str:
  if r['trained_steps_this_run'] == 0:
    return (f'eval {_duration(r["eval_seconds"])}; training not timed '
            '(checkpoint reused)')
  text = (f'{_duration(r["train_seconds"] + r["eval_seconds"])} (train '
          f'{_duration(r["train_seconds"])} + eval '
          f'{_duration(r["eval_seconds"])})')
  if r['start_step']:
    text += f'; resumed at step {r["start_step"]}, so train time is partial'
  return text


def _machine(m: dict[str, Any]) -> str:
  return (f'{m["cpu_model"]}, {m["cpu_count"]} cores; {m["device_count"]} x '
          f'{m["device_kind"]}; jax {m["jax_version"]}')


def _splits(r: dict[str, Any]) -> str:
  short = {'validation': 'val'}
  return ' / '.join(f'{r["splits"][k]:,} {short.get(k, k)}'
                    for k in _split_order(r['splits']))


def _split_order(splits: dict[str, Any]) -> list[str]:
  first = [k for k in ('train', 'validation', 'test') if k in splits]
  return first + sorted(k for k in splits if k not in first)


def _machine_short(m: dict[str, Any]) -> str:
  load = m.get('load_average')
  load = '' if load is None else f'; load {load:.1f} at the end'
  return (f'{m["cpu_count"]}-core {m["cpu_model"]}; {m["device_count"]} x '
          f'{m["platform"]}; jax {m["jax_version"]}{load}')


def _k(r: dict[str, Any]) -> str:
  est = r['estimators'].get(r['nll_estimator'], {})
  k = est.get('num_samples')
  return f'{r["nll_estimator"].upper()} k={k:,}' if k else r['nll_estimator']


def _model_cell(spec: Spec, r: dict[str, Any]) -> str:
  return (f'{spec.label} ({r["params"]:,} params)' if spec.label
          else r['model'])


def _common_cells(spec: Spec, r: dict[str, Any]) -> list[str]:
  return [f'`{spec.name}`', _model_cell(spec, r), r['data'], _splits(r),
          str(r['seed']), f'{r["step"]:,} x {r["batch_size"]}']


_COMMON_COLS = ['Experiment', 'Model', 'Data', 'Split (rows)', 'Seed',
                'Steps x batch']


def _likelihood_cols(table: str) -> list[str]:
  return _COMMON_COLS + ['Test NLL (nats)'] + (
      ['-ELBO (nats)'] if table == 'bounds' else []) + [
          'bits/dim', 'Wall time', 'Machine', 'Reference']


def _likelihood_row(spec: Spec, r: dict[str, Any], table: str) -> list[str]:
  cells = _common_cells(spec, r) + [
      f'**{_num(r["test_nll_nats"])}** ({_k(r)})']
  if table == 'bounds':
    cells.append(_num(r['test_neg_elbo_nats']))
  return cells + [_num(r['test_bits_per_dim'], '.4f'), _wall(r),
                  _machine_short(r['machine']), r['reference'] or '-']


def _discrete_cols(table: str) -> list[str]:
  del table
  return _COMMON_COLS + ['Test NLL (nats)', 'bits/dim', 'Recon. MSE / pixel',
                         'Code perplexity (codes used / K)', 'Wall time',
                         'Machine', 'Reference']


def _usage(r: dict[str, Any]) -> str:
  levels = r.get('code_usage')
  if not levels:
    return '-'
  names = ['top', 'bottom'] if len(levels) == 2 else [''] * len(levels)
  return '; '.join(
      f'{n + " " if n else ""}{u["perplexity"]:.1f} ({u["codes_used"]} / '
      f'{u["num_codes"]})' for n, u in zip(names, levels))


def _discrete_row(spec: Spec, r: dict[str, Any], table: str) -> list[str]:
  del table
  metrics = r['test_metrics']
  if r['test_nll_nats'] is None:
    nll, bpd = 'no density', '-'
  else:
    kind = 'exact, dequantized' if spec.nll_estimator == 'exact' else 'bound'
    nll = f'**{_num(r["test_nll_nats"])}** ({kind})'
    bpd = _num(r['test_bits_per_dim'], '.4f')
  recon = metrics.get('recon_error')
  return _common_cells(spec, r) + [
      nll, bpd, _num(recon, '.4f'), _usage(r), _wall(r),
      _machine_short(r['machine']), r['reference'] or '-']


def _quality_cols(table: str) -> list[str]:
  del table
  return ['Experiment', 'Model', 'Data', 'Seed', 'Steps x batch', 'Samples',
          'FID-style', 'IS-style', 'Classes covered', 'Label KL (vs test)',
          'Modes covered', 'High-quality share', 'Classifier', 'Wall time',
          'Machine']


def _quality_row(spec: Spec, r: dict[str, Any], table: str) -> list[str]:
  del table
  q = r['quality']
  toy = 'modes_covered' in q
  clf = r.get('classifier')
  return [
      f'`{spec.name}`', _model_cell(spec, r), r['data'], str(r['seed']),
      f'{r["step"]:,} x {r["batch_size"]}', f'{q["num_samples"]:,}',
      '-' if toy else f'**{q["fid_style"]:.2f}**',
      '-' if toy else f'{q["is_style"]:.2f}',
      '-' if toy else f'{q["classes_covered"]} / {len(q["class_counts"])}',
      '-' if toy else f'{q["label_kl_reference"]:.3f}',
      f'**{q["modes_covered"]} / {q["num_modes"]}**' if toy else '-',
      f'{q["high_quality_share"]:.3f}' if toy else '-',
      '-' if clf is None else (f'`classifier_{spec.classifier}`, test '
                               f'accuracy {clf["test_accuracy"]:.3f}'),
      f'{_wall(r)}; quality {_duration(r.get("quality_seconds"))}',
      _machine_short(r['machine'])]


def _quality_data_rows(records: dict[str, Any], specs: list[Spec],
                       num_cols: int) -> list[str]:
  """Real data scored like samples, once per data view: the floor."""
  out, seen = [], set()
  for spec in specs:
    r = records.get(spec.name)
    if r is None or 'quality' not in r or r['data'] in seen:
      continue
    seen.add(r['data'])
    q = r['quality']
    blank = ['-'] * (num_cols - 7)
    if 'modes_covered' in q:
      cells = ['data', 'real points of the test split', r['data'], '-', '-',
               f'{q["data/reference/num_samples"]:,}', '-', '-', '-', '-',
               f'{q["data/reference/modes_covered"]} / {q["num_modes"]}',
               f'{q["data/reference/high_quality_share"]:.3f}']
    else:
      cells = ['data', 'real training images vs the test split', r['data'],
               '-', '-',
               f'{q["data/train_vs_test/num_samples"]:,}',
               f'{q["data/train_vs_test/fid_style"]:.2f}',
               f'{q["data/train_vs_test/is_style"]:.2f}',
               f'{q["data/train_vs_test/classes_covered"]} / '
               f'{len(q["data/train_vs_test/class_counts"])}',
               f'{q["data/train_vs_test/label_kl_reference"]:.3f}', '-', '-']
    rows = [cells]
    if 'data/half_vs_half/fid_style' in q:
      rows.append(['data', 'one half of the test split vs the other',
                   r['data'], '-', '-',
                   f'{q["data/half_vs_half/num_samples"]:,}',
                   f'{q["data/half_vs_half/fid_style"]:.2f}', '-', '-', '-',
                   '-', '-'])
    for cells in rows:
      cells += blank[:num_cols - len(cells)]
      out.append('| ' + ' | '.join(cells) + ' |')
  return out


_LIKELIHOOD_LAYOUT = (_likelihood_cols, _likelihood_row)
_TABLE_LAYOUT = {'discrete': (_discrete_cols, _discrete_row),
                 'quality': (_quality_cols, _quality_row)}


def _reference_nats(reference: str) -> float | None:
  """The published figure a reference string starts with ('81.30 nats: ...')."""
  head = reference.split(' nats', 1)[0]
  try:
    return float(head)
  except ValueError:
    return None


def ordering_lines(records: dict[str, Any], specs: list[Spec]) -> list[str]:
  """Our ranking by test NLL next to the papers', for the rows of a table
  that carry a published nats figure and have run; [] when no pair of
  them has two different published figures."""
  rows = [(s.name, records[s.name]['test_nll_nats'],
           _reference_nats(s.reference)) for s in specs
          if s.name in records and _reference_nats(s.reference) is not None
          and records[s.name].get('test_nll_nats') is not None]
  if len(rows) < 2:
    return []
  # Pairs the papers give one figure (a shared reference) are not ranked.
  pairs = [(a, b) for i, a in enumerate(rows) for b in rows[i + 1:]
           if a[2] != b[2]]
  if not pairs:
    return []
  ours = [n for n, _, _ in sorted(rows, key=lambda r: r[1])]
  paper = [n for n, _, _ in sorted(rows, key=lambda r: r[2])]
  discordant = [(a, b) for a, b in pairs
                if (a[1] - b[1]) * (a[2] - b[2]) <= 0]
  agree = len(pairs) - len(discordant)
  fmt = lambda names: ' < '.join(f'`{n}`' for n in names)
  line = (f'Ordering by test NLL (best first), ours: {fmt(ours)}; the '
          f'papers\': {fmt(paper)}. {agree} of {len(pairs)} pairs are in '
          'the papers\' order.')
  if discordant:
    line += (' Out of order: ' + '; '.join(
        f'`{a[0]}` vs `{b[0]}` (ours {a[1]:.2f} vs {b[1]:.2f}, the '
        f'papers\' {a[2]:.2f} vs {b[2]:.2f})' for a, b in discordant) +
             '. Read the labels first: these rows train on 7,000 images '
             '(the papers: 50,000-60,000) on unequal CPU budgets and net '
             'sizes, so the ranking measures the budgets as much as the '
             'models.')
  return [line, '']


def render(runs_dir: str, *, quick: bool,
           notes: dict[str, str] | None = None,
           note: str | None = None, records_dir: str | None = None) -> str:
  """RESULTS.md from every record: ``<records_dir>/*.json`` when given, else
  ``<runs_dir>/*/result.json``."""
  notes = dict(notes or {})
  records = {}
  for spec in EXPERIMENTS:
    r = load_result(runs_dir, spec.name, records_dir)
    if r is not None:
      records[spec.name] = r
      reason = stale_reason(spec, r, quick, runs_dir)
      if reason:
        notes.setdefault(spec.name, 'STALE: ' + reason +
                         '; pass --rerun/--fresh with --only=' + spec.name)
  if records_dir:
    source = f'{records_dir}/*.json'
    found = [os.path.splitext(os.path.basename(p))[0]
             for p in glob.glob(os.path.join(records_dir, '*.json'))]
  else:
    source = f'{runs_dir}/*/{RESULT_FILE}'
    found = [os.path.basename(os.path.dirname(p))
             for p in glob.glob(os.path.join(runs_dir, '*', RESULT_FILE))]
  extra = sorted(n for n in found if n not in BY_NAME)

  lines = ['# Results', '',
           '<!-- Generated by `python -m experiments.results` from '
           f'{source}. Do not edit by hand: rerun it. -->',
           '']
  if quick:
    lines += [
        '> **⚠️ QUICK SMOKE OUTPUT — NOT RESULTS. ⚠️**',
        f'> Written by `python -m experiments.results --quick`: every run is '
        f'cut to {QUICK_STEPS} training steps and a tiny IWAE k. These '
        'numbers only show that the machinery runs end to end; they say '
        'nothing about the models. Never cite or commit them.',
        '']
  lines += [
      'Each row is one run of `python -m experiments.results`, reproducible '
      'with the command listed under it (see "Reproduce" below).', '']
  for table, (heading, text) in TABLES.items():
    if table == 'quality':
      specs = [spec for spec in EXPERIMENTS if 'quality' in spec.extras]
    else:
      specs = [spec for spec in EXPERIMENTS if spec.table == table]
    if not specs:
      continue
    cols, row = _TABLE_LAYOUT.get(table, _LIKELIHOOD_LAYOUT)
    cols = cols(table)
    lines += [f'## {heading}', '', text, '']
    lines += ['| ' + ' | '.join(cols) + ' |',
              '|' + '---|' * len(cols)]
    for spec in specs:
      r = records.get(spec.name)
      if r is None or (table == 'quality' and 'quality' not in r):
        why = notes.get(spec.name, 'not run yet')
        last = '-' if table == 'quality' else spec.reference or '-'
        lines.append(f'| `{spec.name}` | {why} |' + ' |' * (len(cols) - 3) +
                     f' {last} |')
        continue
      lines.append('| ' + ' | '.join(row(spec, r, table)) + ' |')
    if table == 'quality':
      lines += _quality_data_rows(records, specs, len(cols))
    lines.append('')
    lines += ordering_lines(records, specs)
  lines += ['## How to read these numbers', '',
            '- **mnist8k** is 8,000 real MNIST digits (the first 8,000 images '
            'of the MNIST test set; see ../shared/data/mnist/README.md). Our '
            'models train on its 7,000 canonical training rows (0-6,999) and '
            'are tested on its 1,000 test rows (7,000-7,999). '
            '**Burda et al. (2016) train on the full 60,000-image MNIST '
            'training set and test on all 10,000 test images**, with their '
            'own network and schedule; their 86.76 nats is shown for scale, '
            'not as a like-for-like comparison. The same holds for the '
            'PixelRNN paper\'s Table 4 (statically binarized MNIST, 50,000 '
            'training images) beside the autoregressive rows.',
            '- **digits** is scikit-learn\'s 1,797 8x8 digits (pixels 0..16 '
            'rescaled to 0..255), shuffled with the split seed and split '
            '70/10/20. It is a different, much smaller dataset with no '
            'published likelihood; its numbers only compare with each other.',
            '- Dynamic binarization: each pixel is a Bernoulli draw with p = '
            'pixel/255, redrawn every training step; test images are drawn '
            'with the evaluation key (`fold_in(eval_key, batch)`), so a '
            'given seed always sees the same binarized test set.',
            '- Wall time is measured on the machine named in the row; a run '
            'that reused a finished checkpoint only times its evaluation. '
            'It includes contention from anything else running there (the '
            'load average is recorded where available).',
            '']
  if note:
    lines[-1:] = [f'- {note}', '']
  if notes:
    lines += ['## Notes', '']
    lines += [f'- `{n}`: {t}' for n, t in notes.items()]
    lines += ['']
  lines += ['## Reproduce', '']
  for spec in EXPERIMENTS:
    r = records.get(spec.name)
    if r is None:
      continue
    lines += [f'### `{spec.name}`', '', '```sh', r['command'], '```', '',
              f'- preset `{r["preset"]}`, overrides: ' + (
                  ', '.join(f'`{k}={v}`' for k, v in r['overrides'])
                  or 'none'),
              f'- {r["params"]:,} parameters; estimators: ' + (', '.join(
                  f'{n} {json.dumps(a, sort_keys=True)}'
                  for n, a in r['estimators'].items())
                  or 'none (no likelihood)'),
              '- splits: ' + ', '.join(
                  f'{k} `{r["split_specs"][k]}` ({r["splits"][k]:,} rows)'
                  for k in _split_order(r['split_specs'])
                  if r['split_specs'][k]) + (
                      ', rows shuffled with the split seed first'
                      if r['config']['data']['shuffle_before_split'] else
                      ', in file order'),
              f'- test: {r["test_num_examples"]:,} images' + (
                  '' if r['test_neg_elbo_bits_per_dim'] is None else
                  f'; -ELBO {r["test_neg_elbo_bits_per_dim"]:.4f} bits/dim'),
              f'- machine: {_machine(r["machine"])}',
              f'- code: git {r["git"] or "unknown"}; finished '
              f'{r["finished_utc"]}',
              ] + ([f'- samples (seed {r["seed"]}, step {r["step"]}): '
                    f'[{r["samples_png"]}]({r["samples_png"]})']
                   if r.get('samples_png') else []) + (
                       _quality_commands(r) if r.get('quality') else []) + (
                       [f'- codebook, the {len(r["codebook"]["sizes"])} '
                        'centres by training-set usage, largest first '
                        '(`python -m experiments.kmeans_codebook '
                        f'--workdir={r["workdir"]}`): '
                        f'[{r["codebook"]["png"]}]({r["codebook"]["png"]})']
                       if r.get('codebook') else []) + ['']
  if extra:
    lines += ['## Other result files', '',
              f'Found in {source} but not among the listed experiments '
              '(not shown above): ' + ', '.join(f'`{e}`' for e in extra), '']
  return '\n'.join(lines)


def _quality_commands(r: dict[str, Any]) -> list[str]:
  """The Reproduce lines of a row's sample-quality scores."""
  clf = r.get('classifier')
  cmd = f'python -m experiments.sample_quality --workdir={r["workdir"]}'
  if clf:
    return [f'- classifier: `{clf["command"]}` (test accuracy '
            f'{clf["test_accuracy"]:.3f})',
            f'- sample quality (the same scores, standalone): '
            f'`{cmd} --classifier={clf["workdir"]}`']
  return [f'- sample quality (the same scores, standalone): `{cmd}`']


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  quick = _QUICK.value
  runs_dir = _RUNS_DIR.value or ('runs/results_quick' if quick
                                 else DEFAULT_RUNS_DIR)
  out = _OUT.value or (os.path.join(runs_dir, 'RESULTS.md') if quick
                       else 'RESULTS.md')
  if quick and os.path.abspath(out) == os.path.abspath('RESULTS.md'):
    raise app.UsageError('--quick must not overwrite the project\'s '
                         'RESULTS.md: pass another --out.')
  records_dir = _RECORDS_DIR.value or (None if quick else DEFAULT_RECORDS_DIR)
  names = list(_ONLY.value) if _ONLY.value else list(BY_NAME)
  if _RENDER_ONLY.value:
    if _ONLY.value or _RERUN.value or _FRESH.value:
      raise app.UsageError('--render_only runs nothing: drop --only, '
                           '--rerun and --fresh.')
    with open(out, 'w') as f:
      f.write(render(runs_dir, quick=quick, note=_NOTE.value,
                     records_dir=records_dir))
    print(f'wrote {out}', flush=True)
    return
  try:
    run_all(names, runs_dir=runs_dir, out=out, quick=quick,
            note=_NOTE.value, rerun=_RERUN.value, fresh=_FRESH.value,
            records_dir=records_dir)
  except Interrupted as e:
    print(e, flush=True)
    raise SystemExit(128 + 15) from None


if __name__ == '__main__':
  sys.exit(app.run(main))
