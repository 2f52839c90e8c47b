"""config.train.compute_dtype: bfloat16 training against float32.

One train step of a few representative families' smoke presets in float32
and in bfloat16, from the same initial state on the same batch
(`experiments.check_compute_dtype.compare`, which runs every family): the
loss (on the initial parameters, so the two differ by bfloat16 rounding
alone) agrees within `LOSS_RTOL`, everything is finite, the parameters and
optimizer state stay float32, and every matmul and convolution of the
bfloat16 step runs in bfloat16. A family whose own step never applies its
Net is refused before compiling.
"""

from __future__ import annotations

import ml_collections
import pytest

from experiments import check_compute_dtype
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


@pytest.mark.slow
def test_a_step_that_never_applies_its_net_is_refused_before_compiling():
  r = check_compute_dtype.compare('gan')  # the two-player step
  assert r['error'] is not None and set(r) == {'family', 'error'}
  assert "config.train.compute_dtype='bfloat16': family 'gan'" in r['error']
  assert "set config.train.compute_dtype='float32'" in r['error']


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
