"""The uses of a trained model: Bayes' rule, probes, and the commands."""

from __future__ import annotations

import json
import math
import os

import jax
import numpy as np
import pytest
from scipy import stats

from experiments import uses as uses_cli
from experiments.configs import autoencoder as autoencoder_config
from experiments.configs import gan as gan_config
from experiments.configs import gmm as gmm_config
from experiments.configs import rbm as rbm_config
from experiments.configs import vqvae as vqvae_config
from jaxgen import train
from jaxgen import images
from jaxgen import workdir as workdir_lib
from jaxgen.errors import ConfigError
from jaxgen.uses import bayes
from jaxgen.uses import probe
from jaxgen.uses import reports
from jaxgen.uses import scoring
from tests import helpers

# ------------------------------------------------------------ pure parts


def test_bayes_rule_on_two_gaussians_reaches_the_bayes_optimal_accuracy():
  # Classes N(-mu, 1) and N(mu, 1) with prior (p, 1 - p): the optimal rule
  # thresholds x at t = log(p / (1 - p)) / (2 mu), and its accuracy is
  # p Phi(t + mu) + (1 - p) (1 - Phi(t - mu)).
  mu, p, n = 1.0, 0.3, 400_000
  rng = np.random.default_rng(0)
  y = (rng.random(n) >= p).astype(int)
  x = rng.standard_normal(n) + np.where(y == 1, mu, -mu)
  means = np.array([-mu, mu])
  class_nlls = 0.5 * (x[:, None] - means[None]) ** 2 + 0.5 * math.log(
      2 * math.pi)
  result = bayes.classify(class_nlls, np.array([p, 1 - p]), y)
  t = math.log(p / (1 - p)) / (2 * mu)
  optimal = p * stats.norm.cdf(t + mu) + (1 - p) * stats.norm.sf(t - mu)
  assert result['accuracy'] == pytest.approx(optimal, abs=3e-3)
  # The posterior is the logistic function of the log-odds; calibrated.
  log_post, log_px = bayes.log_posterior(class_nlls[:5], [p, 1 - p])
  logit = 2 * mu * x[:5] + math.log((1 - p) / p)
  np.testing.assert_allclose(np.exp(log_post[:, 1]), 1 / (1 + np.exp(-logit)),
                             rtol=1e-10)
  mixture = p * stats.norm.pdf(x[:5], -mu) + (1 - p) * stats.norm.pdf(x[:5],
                                                                       mu)
  np.testing.assert_allclose(log_px, np.log(mixture), rtol=1e-10)
  assert result['ece'] < 0.01
  # Refusing the least likely inputs: outliers far out go first.
  far = np.full(1000, -0.5 * 30.0 ** 2)
  curve = bayes.reject_by_likelihood(result['log_px'][:4000],
                                     result['correct'][:4000], far,
                                     coverages=[0.8, 1.0])
  assert curve['ood_kept'][0] == 0.0 and curve['ood_kept'][1] == 0.2
  assert curve['accuracy'][0] == pytest.approx(
      result['correct'][:4000].mean(), abs=0.02)
  # The baseline fitted by EM (one component per class is the true family)
  # also reaches the optimum.
  fitted = bayes.gmm_class_nlls(x[:20_000, None], y[:20_000],
                                x[20_000:60_000, None], num_classes=2,
                                num_components=1)
  baseline = bayes.classify(fitted, np.array([p, 1 - p]), y[20_000:60_000])
  assert baseline['accuracy'] == pytest.approx(optimal, abs=6e-3)


def test_a_linear_probe_separates_linearly_separable_features():
  rng = np.random.default_rng(0)
  centres = rng.normal(0, 10, (4, 6))
  y_train, y_test = rng.integers(0, 4, 400), rng.integers(0, 4, 200)
  x_train = centres[y_train] + rng.normal(0, 0.5, (400, 6))
  x_test = centres[y_test] + rng.normal(0, 0.5, (200, 6))
  curve = probe.probe_curve(x_train, y_train, x_test, y_test,
                            num_labels=(40, 0), seed=0)
  assert [r['num_labels'] for r in curve] == [40, 400]
  assert [r['accuracy'] for r in curve] == [1.0, 1.0]
  # Features that carry no label: chance.
  noise = probe.probe_curve(rng.normal(size=(400, 6)), y_train,
                            rng.normal(size=(200, 6)), y_test,
                            num_labels=(0,))
  assert noise[0]['accuracy'] < 0.45
  small = probe.labelled_subset(y_train, 10, seed=1)
  assert set(small) <= set(probe.labelled_subset(y_train, 40, seed=1))


def test_kmeans_triangle_features():
  centres = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
  x = np.array([[0.0, 0.0], [3.0, 4.0]])
  # Distances: [0, 5, 10] (mean 5) and [5, 0, 5] (mean 10 / 3).
  np.testing.assert_allclose(np.asarray(probe.triangle(centres, x)),
                             [[5.0, 0.0, 0.0], [0.0, 10 / 3, 0.0]],
                             rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------- features


@pytest.fixture(scope='module')
def untrained_features(tmp_path_factory):
  """Features of 40 smoke digits under freshly initialised DCGAN, VQ-VAE
  and RBM runs, computed twice (one compile per family), with the
  experiments, their parameters and the images."""
  root = tmp_path_factory.mktemp('features')
  out = {}
  for name, module in (('gan', gan_config), ('vqvae', vqvae_config),
                       ('rbm', rbm_config)):
    exp = train.Experiment(module.get_config('smoke'), str(root / name))
    params = exp.eval_params(exp.init_state())
    x, _ = scoring.split_images(exp, 'test', 40)
    key = jax.random.key(3)
    # Batches of 16 rows: the last one is padded.
    first, second = (scoring.features(exp, params, x, key, batch_size=16)
                     for _ in range(2))
    out[name] = dict(exp=exp, params=params, images=x, first=first,
                     second=second)
  return out


def test_feature_registry_shapes_and_determinism(untrained_features):
  f = untrained_features
  widths = {'gan': 2 * 2 * 8,  # 8x8 -> 4 -> 2, 8 channels
            'vqvae': 4 * 4 * 4,  # one downsampling, code_dim 4
            'rbm': 16}  # hidden units
  for name, want in widths.items():
    assert f[name]['first'].shape == (40, want), name
    assert f[name]['first'].dtype == np.float32, name
    np.testing.assert_array_equal(f[name]['first'], f[name]['second'])
    assert np.isfinite(f[name]['first']).all() and f[name]['first'].std() > 0
  assert set(probe.FEATURES) >= {'vae', 'autoencoder', 'kmeans', 'gmm',
                                 'gan', 'vqvae', 'rbm'}


def test_gan_features_are_the_input_of_the_last_layer(untrained_features):
  # The last DCGAN layer is a VALID convolution over the whole map, no
  # bias: the logit is the features' dot product with its kernel.
  f = untrained_features['gan']
  exp, params = f['exp'], f['params']
  d = params['discriminator']
  kernel = np.asarray(d['params']['conv_2']['kernel'], np.float64)
  pre = exp.preprocess({'image': f['images'][:16],
                        'label': np.zeros(16, np.int32)}, jax.random.key(0))
  logits = exp.family.discriminator_module(exp.net).apply(
      d, pre['image'], None, train=False)
  np.testing.assert_allclose(f['first'][:16].astype(np.float64) @
                             kernel.reshape(-1), np.asarray(logits),
                             rtol=1e-4, atol=1e-5)
  # LeakyReLU output with slope 0.2: negative values are 0.2 x negative.
  assert (f['first'] < 0).any() and (f['first'] > 0).any()


def test_vqvae_and_rbm_features_against_numpy(untrained_features):
  f = untrained_features['vqvae']
  # Every quantized vector is one of the (EMA) codebook's rows.
  book = np.asarray(f['params']['codebook_ema']['vq']['codebook'],
                    np.float64)
  vectors = f['first'].reshape(-1, 4).astype(np.float64)
  dist = ((vectors[:, None] - book[None]) ** 2).sum(-1)
  assert dist.min(1).max() < 1e-10
  # RBM: sigmoid(v W + c) of the binarized images, in float64.
  r = untrained_features['rbm']
  p = r['params']['params']
  pre = r['exp'].preprocess({'image': r['images'][:16],
                             'label': np.zeros(16, np.int32)},
                            jax.random.fold_in(jax.random.key(3), 0))
  v = np.asarray(pre['image'], np.float64).reshape(16, -1)
  want = 1 / (1 + np.exp(-(v @ np.asarray(p['w'], np.float64) +
                           np.asarray(p['c'], np.float64))))
  np.testing.assert_allclose(r['first'][:16], want, rtol=1e-5, atol=1e-6)


def test_code_histogram_against_numpy():
  rng = np.random.default_rng(0)
  indices = rng.integers(0, 7, (5, 3, 4))
  got = np.asarray(probe.code_histogram(indices, 7))
  want = np.stack([np.bincount(row.ravel(), minlength=7) / 12.0
                   for row in indices.astype(np.int64)])
  assert got.shape == (5, 7) and got.dtype == np.float32
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)
  np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-6)


def test_vqvae_code_histogram_features_count_the_encoders_codes(
    untrained_features):
  # The 'histogram' features of a VQ-VAE are the bincount, in float64, of
  # the code indices its encoder gives the same preprocessed images.
  f = untrained_features['vqvae']
  exp, params, x = f['exp'], f['params'], f['images'][:16]
  key = jax.random.key(3)
  got = scoring.features(exp, params, x, key, batch_size=16,
                         name='histogram')
  batch = exp.preprocess({'image': x, 'label': np.zeros(16, np.int32),
                          'mask': np.ones(16, bool)},
                         jax.random.fold_in(key, 0))
  (codes,) = exp.family.encode_codes(params, batch, net=exp.net)
  codes = np.asarray(codes, np.int64).reshape(16, -1)
  k = exp.net.num_codes
  want = np.stack([np.bincount(c, minlength=k) / c.size for c in codes])
  assert got.shape == (16, k)
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)
  np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-6)


def test_probe_report_names_other_features_after_the_family(
    untrained_features):
  f = untrained_features['vqvae']
  exp = f['exp']
  report = reports.probe_report(exp, exp.init_state(), num_labels=(10,),
                                features='histogram')
  assert set(report['curves']) == {'vqvae histogram', 'pixels'}
  assert report['feature_name'] == 'histogram'
  assert report['feature_dim'] == exp.net.num_codes
  with pytest.raises(ConfigError, match="--features='codes'"):
    reports.probe_report(exp, exp.init_state(), features='codes')


def test_histogram_image_draws_both_sets_apart():
  figure = images.histogram_image(np.zeros(50), np.full(50, 9.0), bins=10,
                                  size=(100, 60), caption='x')
  assert figure.shape == (60, 100, 3) and figure.dtype == np.uint8
  plot = figure[:46]
  grey = (plot == 170).all(-1)
  blue = (plot == (31, 90, 200)).all(-1)
  # The reference fills the first bin; the other set's outline the last.
  assert grey[:, :10].any() and not grey[:, 20:].any()
  assert blue[:, 90:].any() and not blue[:40, 10:80].any()


# --------------------------------------------------------------- commands


def _train(workdir, config):
  """Two training steps of `config`, checkpointed; no evaluation or grids."""
  config = config.unlock()
  config.train.num_steps = 2
  config.train.image_every_steps = 0
  train.Experiment(config.lock(), str(workdir)).train()
  return str(workdir)


@pytest.fixture(scope='module')
def smoke_runs(tmp_path_factory):
  """A Gaussian mixture (a density with features) and a class-conditional
  VAE, two smoke steps each on 8x8 digits."""
  root = tmp_path_factory.mktemp('uses')
  return {'gmm': _train(root / 'gmm', gmm_config.get_config('smoke')),
          'cond': _train(root / 'cond', helpers.smoke_config('smoke,cond'))}


def _cli(command, *flags_):
  return uses_cli.cli(['uses', command, *flags_])


@pytest.mark.slow
def test_ood_command_writes_metrics_and_histograms(smoke_runs, tmp_path,
                                                   capsys):
  out = tmp_path / 'out'
  sets = 'flip,noise,constant'
  assert _cli('ood', f'--workdir={smoke_runs["gmm"]}', f'--sets={sets}',
              '--num=40', '--typicality_batch=4', f'--out={out}') == 0
  files = sorted(os.listdir(out))
  assert len(files) == 4 and files[0].endswith('.json')
  report = json.loads((out / files[0]).read_text())
  assert report['sets'] == sets.split(',')
  for s in report['sets']:
    kinds = report['metrics'][s]
    assert set(kinds) == {'likelihood', 'typicality', 'complexity',
                          'typicality_m4'}
    for m in kinds.values():
      assert 0.0 <= m['auroc'] <= 1.0 and 0.0 <= m['fpr95'] <= 1.0
  # Uniform noise is far from digits even after two EM steps.
  assert report['metrics']['noise']['likelihood']['auroc'] > 0.9
  assert report['summary']['test']['num'] == 40
  assert 'AUROC' in capsys.readouterr().out
  table = uses_cli.render(str(out))
  assert '| flip |' in table and '| noise |' in table


@pytest.mark.slow
def test_bayes_command_on_a_conditional_run(smoke_runs, tmp_path, capsys):
  out = tmp_path / 'out'
  assert _cli('bayes', f'--workdir={smoke_runs["cond"]}', '--sets=noise',
              '--num=40', '--estimator=iwae', '--num_samples=4',
              f'--out={out}') == 0
  # The VAE says nothing of its estimator: the common-random-numbers
  # sentence alone (the contract's optional describe_estimator).
  assert 'class scores: every class of an image' in capsys.readouterr().out
  (path,) = out.iterdir()
  assert path.name.endswith('_estiwae_k4.json')
  report = json.loads(path.read_text())
  assert set(report['draws']) == {'note'}
  assert report['estimator']['arguments']['num_samples'] == 4
  assert 0.0 <= report['ood_auroc_max_joint'] <= 1.0
  assert 0.0 <= report['gmm_baseline']['ood_auroc_log_px'] <= 1.0
  table = uses_cli.render(str(out))
  assert "'num_samples': 4" in table and 'max_y log p(x, y)' in table
  assert 0.0 <= report['accuracy'] <= 1.0 and report['num'] == 40
  assert report['num_ood'] == 40
  assert report['reject_with_ood']['coverage'][-1] == 1.0
  assert sum(report['prior']) == pytest.approx(1.0)
  assert 0.0 <= report['gmm_baseline']['accuracy'] <= 1.0
  # Every OOD input kept at full coverage is wrong: accuracy halves.
  assert report['reject_with_ood']['accuracy'][-1] == pytest.approx(
      report['reject_clean']['accuracy'][-1] / 2)
  assert report['classifier_reference'] is None
  # The reference must be a classifier's workdir, and is bayes' option.
  for command in ('bayes', 'ood'):
    assert _cli(command, f'--workdir={smoke_runs["cond"]}',
                f'--classifier={smoke_runs["gmm"]}', f'--out={out}') == 2
  assert "not a 'classifier'" in capsys.readouterr().err


@pytest.mark.slow
def test_likelihood_ratio_against_a_background_run(smoke_runs, tmp_path):
  data = tmp_path / 'bg' / 'perturbed.npz'
  assert _cli('perturb', f'--workdir={smoke_runs["gmm"]}', '--rate=0.3',
              '--copies=2', f'--out={data}') == 0
  with np.load(data, allow_pickle=False) as f:
    images, labels = f['images'], f['labels']
  assert images.shape == (2 * 256 + 80, 8, 8, 1) and len(labels) == 592
  exp = scoring.build_run(smoke_runs['gmm'])
  train_x, _ = scoring.split_images(exp, 'train')
  test_x, _ = scoring.split_images(exp, 'test')
  np.testing.assert_array_equal(images[512:], test_x)
  changed = (images[:256] != train_x).mean()
  assert 0.2 < changed < 0.3  # round(0.3 * 64) = 19 of 64 values drawn
  config = gmm_config.get_config('smoke').unlock()
  config.data.name = f'npz:{data}'
  config.data.shuffle_before_split = False
  config.data.splits.update(train='all[0:512]', validation='',
                            test='all[512:592]')
  config.eval.periodic_split = ''
  background = _train(tmp_path / 'bg_run', config)
  out = tmp_path / 'out'
  assert _cli('ood', f'--workdir={smoke_runs["gmm"]}', '--sets=noise,flip',
              '--num=40', f'--background={background}', f'--out={out}') == 0
  (path,) = out.glob('*.json')
  assert path.name.endswith('_bgbg_run.json')
  report = json.loads(path.read_text())
  assert report['background']['workdir'] == background
  for s in ('noise', 'flip'):
    assert 0.0 <= report['metrics'][s]['likelihood_ratio']['auroc'] <= 1.0
  assert 'AUROC likelihood ratio' in uses_cli.render(str(out))
  # A background of another family is refused before anything is scored.
  assert _cli('ood', f'--workdir={smoke_runs["gmm"]}',
              f'--background={smoke_runs["cond"]}', f'--out={out}') == 2


@pytest.mark.slow
def test_probe_command_and_refusals(smoke_runs, tmp_path, capsys):
  out = tmp_path / 'out'
  assert _cli('probe', f'--workdir={smoke_runs["gmm"]}',
              '--num_labels=10,0', f'--out={out}') == 0
  (path,) = out.iterdir()
  report = json.loads(path.read_text())
  assert set(report['curves']) == {'gmm', 'pixels'}
  assert [r['num_labels'] for r in report['curves']['pixels']] == [10, 256]
  assert '| 256 |' in uses_cli.render(str(out))
  capsys.readouterr()
  # A conditional run has no unconditional code; an unconditional one no
  # classes.
  assert _cli('probe', f'--workdir={smoke_runs["cond"]}') == 2
  assert 'class-conditional' in capsys.readouterr().err
  assert _cli('bayes', f'--workdir={smoke_runs["gmm"]}') == 2
  assert 'num_classes is 0' in capsys.readouterr().err


def _untrained(path, config):
  os.makedirs(path)
  workdir_lib.write_json(workdir_lib.config_path(str(path)),
                         json.loads(config.to_json_best_effort()))
  return str(path)


def test_bad_input_is_one_error_line(tmp_path, capsys):
  no_ckpt = _untrained(tmp_path / 'vae', helpers.smoke_config())
  autoencoder = _untrained(tmp_path / 'ae',
                           autoencoder_config.get_config('smoke'))
  exact = _untrained(tmp_path / 'gmm', gmm_config.get_config('smoke'))
  cond = _untrained(tmp_path / 'cvae', helpers.smoke_config('smoke,cond'))
  cases = [
      (['ood', f'--workdir={tmp_path / "none"}'], 'holds no trained run'),
      (['ood', f'--workdir={no_ckpt}'], 'no checkpoint'),
      (['ood', f'--workdir={autoencoder}'], 'no log_likelihood'),
      (['probe', f'--workdir={autoencoder}'], 'no checkpoint'),
      (['ood', f'--workdir={no_ckpt}', '--sets=flip,svhn'], 'svhn'),
      (['ood', f'--workdir={no_ckpt}', '--estimator=exact'],
       "--estimator='exact'"),
      (['bayes', f'--workdir={exact}', '--num_samples=8'],
       "no argument 'num_samples'"),
      (['perturb', f'--workdir={no_ckpt}', '--out=x.txt'], 'FILE.npz'),
      (['probe', f'--workdir={no_ckpt}', '--num_labels=ten'],
       '--num_labels'),
      (['probe', f'--workdir={autoencoder}', '--features=histogram'],
       "--features='histogram'"),
      (['ood', f'--workdir={no_ckpt}', '--features=mean'],
       '--features is an option of probe only'),
      # A conditional VAE's posterior mean is given the label.
      (['probe', f'--workdir={cond}'], 'not a label-free feature'),
      (['sample', f'--workdir={no_ckpt}'], 'expected one command'),
      (['ood'], '--workdir is required'),
  ]
  for argv, expected in cases:
    assert uses_cli.cli(['uses', *argv]) == 2, argv
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: '), (argv, err)
    assert expected in err[0], (argv, err)
