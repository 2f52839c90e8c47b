"""Evaluation: exact full-split means and the units."""

import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import data
from jaxgen import evaluate
from jaxgen import parallel


def _family(log_likelihood):
  return types.SimpleNamespace(
      loss_fn=lambda params, batch, key, *, net, train: (
          0.0, {'label_value': batch['label'].astype(jnp.float32)}),
      log_likelihood=log_likelihood)


@pytest.fixture(scope='module')
def split():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, size=(37, 4, 3, 1), dtype=np.uint8)
  labels = rng.integers(0, 10, size=37)
  return data.ArraySource(images, labels), labels


def _run(family, source, preprocess, offset, batch_size=16):
  mesh = parallel.make_mesh()
  step = jax.jit(evaluate.make_eval_step(family, None, preprocess,
                                         {'model': {}}, num_dims=12,
                                         offset_nats=offset))
  batches = lambda: data.eval_batches(source, batch_size=batch_size)
  return evaluate.evaluate_split(step, {}, batches, jax.random.key(0), mesh)


def test_uniform_over_256_levels_is_exactly_8_bits(split):
  source, labels = split
  preprocess, offset = data.make_preprocess(
      binarize='none', dequantize=False, value_range='unit')
  uniform = lambda params, batch, key, *, net: jnp.full(
      batch['image'].shape[:1], -12 * math.log(256.0))
  out = _run(_family(uniform), source, preprocess, 12 * offset)
  assert out['num_examples'] == 37  # 3 batches of 16, the last padded
  assert out['model/bits_per_dim'] == 8.0
  assert out['model/nll_nats'] == pytest.approx(12 * math.log(256.0), 1e-6)
  # Padding rows (copies of row 0, masked) do not count.
  assert out['label_value'] == pytest.approx(labels.mean(), 1e-12)


def test_dequantized_uniform_density_is_exactly_8_bits(split):
  source, _ = split
  preprocess, offset_per_dim = data.make_preprocess(
      binarize='none', dequantize=True, value_range='unit')
  # The uniform density on [0, 1)^D has log-density 0 everywhere.
  unit = lambda params, batch, key, *, net: jnp.zeros(
      batch['image'].shape[:1])
  out = _run(_family(unit), source, preprocess, 12 * offset_per_dim,
             batch_size=5)
  assert out['model/bits_per_dim'] == 8.0


def test_nll_report_units():
  report = evaluate.nll_report(jnp.array([-100.0, -50.0]), 784)
  np.testing.assert_allclose(report['nll_nats'], [100.0, 50.0])
  np.testing.assert_allclose(report['bits_per_dim'],
                             np.array([100, 50]) / (784 * math.log(2)),
                             rtol=1e-6)
  shifted = evaluate.nll_report(0.0, 10, offset_nats=10 * math.log(256))
  assert float(shifted['bits_per_dim']) == 8.0


def test_prepared_estimator_is_computed_once_and_shared_by_every_batch(split):
  """A family's prepare_estimator runs once per evaluation with its own
  key; every batch's log_likelihood sees the same value, and the value is
  reported in the results."""
  source, _ = split
  preprocess, _ = data.make_preprocess(
      binarize='none', dequantize=False, value_range='unit')
  calls = []

  def prepare_estimator(params, key, *, net, scale):
    calls.append(key)
    return {'shift': jax.random.uniform(key) * scale}

  def log_likelihood(params, batch, key, *, net, scale, shift=None):
    del key  # a per-batch key would change the value from batch to batch
    return jnp.full(batch['image'].shape[:1], -shift)

  family = _family(log_likelihood)
  family.prepare_estimator = prepare_estimator
  estimators = {'model': {'scale': 3.0}}
  mesh = parallel.make_mesh()
  step = jax.jit(evaluate.make_eval_step(family, None, preprocess,
                                         estimators, num_dims=12))
  prepare = evaluate.make_prepare_fn(family, None, estimators)
  batches = lambda: data.eval_batches(source, batch_size=8)
  out = evaluate.evaluate_split(step, {}, batches, jax.random.key(0), mesh,
                                prepare=prepare)
  assert len(calls) == 1
  shift = out['model/shift']
  assert 0.0 < shift < 3.0
  # 5 batches, the same shift in each: the mean NLL is that shift.
  assert out['model/nll_nats'] == pytest.approx(shift, rel=1e-6)
  assert evaluate.make_prepare_fn(_family(log_likelihood), None,
                                  estimators) is None
