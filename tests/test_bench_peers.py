"""experiments/bench_peers.py: the reference models have the peers'
parameter counts, the timing protocol runs its repeats, and the XLA-flag
A/B mode builds its two sides' flags, refuses what it cannot combine and
times two worker processes in turn."""

import types

from absl import app
import jax
import pytest

from experiments import bench_common
from experiments import bench_peers

# The PyTorch peers' parameter counts (../shared/bench/PARAMS.md).
PEER_PARAMS = {
    'vae': 1_379_152,
    'pixelcnn': 665_089,
    'gated_pixelcnn': 806_401,
    'dcgan': 1_728_128,
    'ddpm_unet': 583_713,
    'realnvp': 1_204_711,
}


@pytest.mark.parametrize('name', sorted(PEER_PARAMS))
def test_reference_model_has_the_peers_parameter_count(name):
  config = bench_peers.REFERENCES[name]()
  family, net, _, example = bench_common.train.model_pieces(config)
  shapes = jax.eval_shape(lambda k: family.init(k, example, net=net),
                          jax.random.key(0))
  assert bench_peers.trainable_params(shapes) == PEER_PARAMS[name]


def test_time_protocol_runs_between_three_and_seven_repeats():
  calls = []
  timing = bench_peers.time_protocol(lambda: calls.append(1),
                                     repeat_seconds=0.001, model_budget=0.0)
  assert len(timing['seconds']) == 3  # the minimum, budget spent at once
  assert timing['best_s'] <= timing['median_s']
  assert len(calls) == 1 + 3 * timing['calls_per_repeat']
  share = timing['others_share_median']
  assert share is None or 0.0 <= share <= 1.0


def test_ab_xla_flags_replace_the_flags_b_names():
  a, b = bench_peers.ab_xla_flags(
      '--xla_a=1 '
      '--xla_cpu_experimental_ynn_fusion_type=-individual_convolution',
      '--xla_cpu_experimental_ynn_fusion_type=+individual_convolution --xla_c')
  assert a == ('--xla_a=1 '
               '--xla_cpu_experimental_ynn_fusion_type=-individual_convolution')
  assert b == ('--xla_a=1 '
               '--xla_cpu_experimental_ynn_fusion_type=+individual_convolution'
               ' --xla_c')
  assert bench_peers.ab_xla_flags('', '--xla_c=2') == ('', '--xla_c=2')


def test_ab_run_times_both_workers_in_turn(monkeypatch):
  """Two worker processes (the MLP VAE's step, compiled once each), one
  round: a time per side, their ratio, B's flags in B's worker."""
  monkeypatch.setenv('JAX_PLATFORMS', 'cpu')
  extra = '--xla_cpu_enable_fast_min_max=false'
  result = bench_peers.ab_run(['vae'], extra, rounds=1,
                              repeat_seconds=0.001)
  assert result['xla_flags_b'].endswith(extra)
  assert extra not in result['xla_flags_a']
  r = result['models']['vae']
  assert len(r['a_s']) == len(r['b_s']) == 1
  assert r['steps_per_repeat'] >= 1
  assert r['a_s'][0] > 0 and r['b_s'][0] > 0
  assert r['ratio'] == r['a_median_s'] / r['b_median_s']
  assert r['flops_a'] > 0 and r['flops_b'] > 0


@pytest.mark.parametrize('overrides', [
    {'peer_json': '/tmp/peer.json'}, {'peer_python': 'python3'},
    {'ab_rounds': 0}])
def test_ab_xla_flags_refuses_peers_and_no_rounds(overrides):
  values = dict(models=['vae'], ab_worker=False, ab_xla_flags='--xla_c=1',
                ab_rounds=3, peer_python='', peer_json='')
  values.update(overrides)
  holders = {k: types.SimpleNamespace(value=v) for k, v in values.items()}
  with pytest.raises(app.UsageError, match='--ab_xla_flags'):
    bench_peers.main(['bench_peers'], holders)
