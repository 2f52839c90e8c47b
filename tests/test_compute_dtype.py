"""config.train.compute_dtype: bfloat16 training against float32.

One train step of a few representative families' smoke presets in float32
and in bfloat16, from the same initial state on the same batch
(`experiments.check_compute_dtype.compare`, which runs every family): the
loss (on the initial parameters, so the two differ by bfloat16 rounding
alone) agrees within `LOSS_RTOL`, everything is finite, the parameters and
optimizer state stay float32, and the matmuls and convolutions of the
bfloat16 step run in bfloat16. The adversarial families' own two-player
steps likewise (the DCGAN, WGAN-GP, BEGAN, pix2pix and CycleGAN smoke
presets), with WGAN-GP's penalty and pix2pix's edge-map input in float32.
A family that computes in float32 only (EM, K-means, the Boltzmann
machines) is refused with its reason before compiling, as is a step that
never applies its Net.
"""

from __future__ import annotations

import importlib

import ml_collections
import pytest

from experiments import check_compute_dtype
from jaxgen import models
from jaxgen import steps
from jaxgen import train
from jaxgen.errors import ConfigError
from tests import helpers

# bfloat16 keeps 8 significant bits (a relative rounding of 2**-9); the
# losses are means over a batch of sums over pixels of float32 likelihood
# terms of bfloat16 activations, so their rounding errors mostly average
# out: a few units of 2**-9 at most.
LOSS_RTOL = 1e-2
# An MLP, masked convolutions, a flow of couplings (a log-determinant
# summed across modules); experiments.check_compute_dtype runs every family.
FAMILIES = ('vae', 'pixelcnn', 'realnvp')


@pytest.fixture(scope='module')
def compared():
  return {f: check_compute_dtype.compare(f) for f in FAMILIES}


@pytest.mark.slow
@pytest.mark.parametrize('family', FAMILIES)
def test_bfloat16_step_is_finite_close_and_keeps_float32_state(
    compared, family):
  r = compared[family]
  assert r['error'] is None
  assert r['finite'], r
  assert r['float32_state'], r
  assert r['loss_rel'] < LOSS_RTOL, r
  bf16, total = r['bf16_matmuls']
  assert total > 0 and bf16 == total, r  # every matmul in bfloat16


# The adversarial families' own steps (`jaxgen.steps.compute_module`), one
# smoke preset per step structure: the non-saturating DCGAN pair (batch
# norm), WGAN-GP's DCGAN pair (layer norm, the penalty's double backward; one
# critic update per step to keep the compile small), BEGAN's autoencoder
# discriminator and its control variable k, pix2pix's U-Net generator and
# PatchGAN discriminator, and CycleGAN's two generators and critics.
# case -> (family, get_config argument, overrides).
ADVERSARIAL = {'dcgan': ('gan', 'smoke', None),
               'wgan-gp': ('gan', 'smoke,wgan-gp', {'model.d_steps': 1}),
               'began': ('began', 'smoke', None),
               'pix2pix': ('pix2pix', 'smoke', None),
               'cyclegan': ('cyclegan', 'smoke', None)}


@pytest.fixture(scope='module')
def adversarial():
  return {case: check_compute_dtype.compare(*args)
          for case, args in ADVERSARIAL.items()}


@pytest.mark.slow
@pytest.mark.parametrize('case', sorted(ADVERSARIAL))
def test_adversarial_bfloat16_step_is_finite_close_and_keeps_float32_state(
    adversarial, case):
  r = adversarial[case]
  assert r['family'] == ADVERSARIAL[case][0]
  assert r['error'] is None, r
  assert r['finite'], r
  assert r['float32_state'], r
  assert r['loss_rel'] < LOSS_RTOL, r
  bf16, total = r['bf16_matmuls']
  if case == 'wgan-gp':
    # WGAN-GP's penalty: its critic pass and the gradient of its
    # input-gradient run in float32, every other layer in bfloat16.
    assert 0 < bf16 < total, r
  elif case == 'pix2pix':
    # The 'edges' task's input x = |Sobel gradient| of y: two float32
    # correlations of the data (`jaxgen.data.paired.sobel_magnitude`);
    # every layer of both players in bfloat16.
    assert bf16 == total - 2 > 0, r
  else:
    assert total > 0 and bf16 == total, r


@pytest.mark.parametrize('family', ['gmm', 'kmeans', 'rbm', 'dbm'])
def test_a_float32_only_family_is_refused_with_its_reason(family):
  config = importlib.import_module(
      f'experiments.configs.{family}').get_config('smoke')
  config.train.compute_dtype = 'bfloat16'
  reason = models.get_family(family).FLOAT32_ONLY
  with pytest.raises(ConfigError) as err:
    train.Experiment(config, workdir='unused')
  assert str(err.value) == (
      f"config.train.compute_dtype='bfloat16': family {family!r} computes "
      f"in float32 only: {reason}; set config.train.compute_dtype='float32'.")


def test_a_step_that_never_applies_its_net_is_refused_before_compiling(
    monkeypatch):
  # EM's step without its stated reason: the trace finds no Net applied.
  monkeypatch.delattr(models.get_family('gmm'), 'FLOAT32_ONLY')
  config = importlib.import_module('experiments.configs.gmm').get_config(
      'smoke')
  config.train.compute_dtype = 'bfloat16'
  with pytest.raises(ConfigError, match=(
      r"^config.train.compute_dtype='bfloat16': family 'gmm' trains with "
      r'its own step, which never applies its Net .* set '
      r"config.train.compute_dtype='float32'.$")):
    train.Experiment(config, workdir='unused')


def test_compute_module_follows_the_net():
  """A family's step builds its players with `steps.compute_module`: in
  the compute dtype (counted on the Net) when the trainer passed a
  `ComputeDtypeNet`, the plain module otherwise (evaluation, sampling)."""
  net, module = object(), object()
  assert steps.compute_module(net, module) is module
  wrapped = steps.compute_net(net, 'bfloat16')
  player = steps.compute_module(wrapped, module)
  assert isinstance(player, steps.ComputeDtypeNet)
  assert player.net is module and player.owner is wrapped
  assert player.dtype == wrapped.dtype
  assert steps.float32_module(player) is module
  assert steps.float32_module(module) is module


@pytest.mark.parametrize('value', ['float16', 'bf16', None, 32])
def test_compute_dtype_must_be_a_known_name(value):
  fields = helpers.smoke_config().train.to_dict()
  with pytest.raises(ConfigError, match=(
      rf"^config.train.compute_dtype={value!r} is not one of "
      rf"\('float32', 'bfloat16'\).$")):
    train.check_train_config(ml_collections.ConfigDict(
        dict(fields, compute_dtype=value)))


def test_float32_is_the_plain_net():
  """float32 (the default, and what config.json files from before the field
  get) trains the Net itself: bitwise the step without the field."""
  net = object()
  assert steps.compute_net(net, 'float32') is net
  wrapped = steps.compute_net(net, 'bfloat16')
  assert isinstance(wrapped, steps.ComputeDtypeNet) and wrapped.net is net
  assert steps.compute_net(wrapped, 'bfloat16') is wrapped
