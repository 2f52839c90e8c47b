r"""jaxgen's reference models beside their PyTorch CPU peers, in one run.

  python -m experiments.bench_peers --peer_python=/tmp/torchvenv/bin/python
  python -m experiments.bench_peers --models=realnvp,ddpm_unet \
      --peer_python=/tmp/torchvenv/bin/python --json=/tmp/peers.json
  python -m experiments.bench_peers --peer_json=/tmp/peer.json
  python -m experiments.bench_peers  # jaxgen's side only
  python -m experiments.bench_peers --models=realnvp,ddpm_unet \
      --ab_xla_flags=--xla_cpu_experimental_ynn_fusion_type=+individual_convolution

Run from the project root, on a quiet machine. The peers are the PyTorch
models of ``../shared/bench/peer_torch.py`` (its README gives their layer
tables and the timing protocol); PyTorch is no dependency of jaxgen, so it
lives in a virtual environment of its own, named by ``--peer_python``. The
peer runs first, in a subprocess, then jaxgen's models in this process, so
the two sides are measured back to back on the same machine and the ratios
printed at the end compare like with like.

jaxgen's side follows the peer's protocol: the family's own train step as
the trainer builds it (`jaxgen.train.make_step`: forward, loss, backward,
optimizer update; the EMA where the config keeps one), float32, on one
synthetic batch of 8-bit images made once and kept on the device; compiled
ahead of time (compilation excluded); 2 warm-up steps; one calibration
step sets the steps per repeat so a repeat lasts about
``--repeat_seconds``; 3 to 7 repeats, no new repeat after
``--model_budget`` seconds; images/s = batch / median seconds per step
(also from the fastest repeat). The share of the CPUs used by other
processes during each repeat is measured from /proc/stat, as the peer does;
a model whose median share is over 5% is flagged ``contended``. Like
every experiment, it runs with the XLA options `experiments.entry` adds to
``XLA_FLAGS`` (printed, and kept as ``xla_flags`` in the JSON); a flag
named in the caller's ``XLA_FLAGS`` keeps the caller's value (README
"Performance").

Reference models and their configs (the parameter counts must match the
peer's; the table prints both):

- ``vae``: MLP VAE 784-512-512, 32-d latent (vae.py:mnist8k), batch 128;
- ``pixelcnn``: PixelCNN (pixelcnn.py:mnist8k), batch 32;
- ``gated_pixelcnn``: Gated PixelCNN at the peer's layout
  (gated_pixelcnn.py:mnist8k,peer), batch 32;
- ``dcgan``: the reference DCGAN's D + G step (`bench_gan.reference_config`,
  non-saturating; the G update through the D step's fakes, as the peer's
  step does), batch 64;
- ``ddpm_unet``: the DDPM U-Net (ddpm.py:mnist8k), batch 64;
- ``realnvp``: RealNVP with 8 couplings (realnvp.py:mnist8k), batch 64.

With ``--ab_xla_flags=FLAGS`` it compares XLA options instead of peers:
the train steps of ``--models`` under this run's ``XLA_FLAGS`` (A) and
under the same with FLAGS (B; a flag named in both takes FLAGS' value), in
two worker processes started once, timed in turn round by round
(``--ab_rounds``, B first in odd rounds), ``--repeat_seconds`` of steps per
model, side and round; it prints the medians and their ratio. On a
machine shared with other jobs only such interleaved ratios mean anything.

With ``--sampling`` (default on), also the DDPM sampler for 16 images from
the reference U-Net: 1,000 ancestral steps and ``--ddim_steps`` DDIM steps,
each one jitted `lax.scan` (compilation excluded), beside the peer's
1,000-step loop (which the peer extrapolates from ``--ddpm-steps`` of its
steps).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections

from experiments import bench_common
from experiments import bench_gan
from experiments import entry
from experiments import machine
from experiments.configs import ddpm as ddpm_config
from experiments.configs import gated_pixelcnn as gated_config
from experiments.configs import pixelcnn as pixelcnn_config
from experiments.configs import realnvp as realnvp_config
from experiments.configs import vae as vae_config
from jaxgen import steps as steps_lib
from jaxgen import train
from jaxgen import workdir as workdir_lib
from jaxgen.models import ddpm

PEER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           os.pardir, os.pardir, 'shared', 'bench',
                           'peer_torch.py')
SAMPLED_IMAGES = 16
CONTENDED_SHARE = 0.05  # the peer's threshold on other processes' CPU share


def _with_batch(config: ml_collections.ConfigDict, batch_size: int):
  config.train.batch_size = batch_size
  return config


REFERENCES: dict[str, Callable[[], ml_collections.ConfigDict]] = {
    'vae': lambda: _with_batch(vae_config.get_config('mnist8k'), 128),
    'pixelcnn': lambda: _with_batch(pixelcnn_config.get_config('mnist8k'),
                                    32),
    'gated_pixelcnn': lambda: _with_batch(
        gated_config.get_config('mnist8k,peer'), 32),
    'dcgan': lambda: bench_gan.reference_config('nonsaturating', 64),
    'ddpm_unet': lambda: _with_batch(ddpm_config.get_config('mnist8k'), 64),
    'realnvp': lambda: _with_batch(realnvp_config.get_config('mnist8k'), 64),
}


# ------------------------------------------------------------ CPU sharing
def _busy_jiffies() -> tuple[float, float] | None:
  """(busy, total) jiffies of all CPUs from /proc/stat, or None."""
  try:
    with open('/proc/stat', encoding='ascii') as f:
      fields = [float(v) for v in f.readline().split()[1:]]
  except OSError:
    return None
  idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
  return sum(fields) - idle, sum(fields)


class OthersShare:
  """The share of all CPUs that other processes used between `start` and
  `stop`: busy time of the machine (/proc/stat) minus this process's CPU
  time (`os.times`), over the machine's total."""

  def start(self) -> None:
    self._machine = _busy_jiffies()
    t = os.times()
    self._own = t.user + t.system

  def stop(self) -> float | None:
    now = _busy_jiffies()
    if now is None or self._machine is None:
      return None
    t = os.times()
    own_s = t.user + t.system - self._own
    tick = os.sysconf('SC_CLK_TCK')
    busy = now[0] - self._machine[0]
    total = now[1] - self._machine[1]
    if total <= 0:
      return None
    return max(0.0, (busy - own_s * tick) / total)


# ------------------------------------------------------------------ timing
def _minor_faults() -> int | None:
  """This process's minor page faults so far (None where unknown)."""
  try:
    import resource  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_protocol(run: Callable[[], Any], *, repeat_seconds: float,
                  model_budget: float, min_repeats: int = 3,
                  max_repeats: int = 7) -> dict[str, Any]:
  """Times ``run()`` (one blocked step) by the peer's protocol, after the
  caller's warm-up: a calibration call sets the calls per repeat.

  Returns {'calls_per_repeat', 'seconds' (per call, per repeat),
  'median_s', 'best_s', 'others_share' (per repeat), 'others_share_median',
  'contended', 'minor_faults_per_call' (over the timed calls, as the
  peer's 'minor_page_faults_per_step'; None where unknown)}.
  """
  start = time.perf_counter()
  run()
  calibration = time.perf_counter() - start
  calls = max(1, round(repeat_seconds / max(calibration, 1e-9)))
  seconds, shares = [], []
  share = OthersShare()
  faults = _minor_faults()
  began = time.perf_counter()
  while len(seconds) < max_repeats and (
      len(seconds) < min_repeats or
      time.perf_counter() - began < model_budget):
    share.start()
    start = time.perf_counter()
    for _ in range(calls):
      run()
    seconds.append((time.perf_counter() - start) / calls)
    shares.append(share.stop())
  known = [s for s in shares if s is not None]
  others = statistics.median(known) if known else None
  if faults is not None:
    faults = (_minor_faults() - faults) / (calls * len(seconds))
  return {'calls_per_repeat': calls, 'seconds': seconds,
          'minor_faults_per_call': faults,
          'median_s': statistics.median(seconds), 'best_s': min(seconds),
          'others_share': shares, 'others_share_median': others,
          'contended': others is not None and others > CONTENDED_SHARE}


def trainable_params(variables: Any) -> int:
  """Scalars of `variables` outside any 'batch_stats' collection (running
  statistics are buffers, not parameters, in the peer's count too)."""
  leaves = jax.tree_util.tree_leaves_with_path(variables)
  return sum(int(x.size) for path, x in leaves
             if not any(getattr(k, 'key', None) == 'batch_stats'
                        for k in path))


def compile_train(name: str) -> tuple[Callable[[], Any], dict[str, Any]]:
  """(run, info) of a reference model's train step: ``run()`` takes one
  blocked step (the state, donated, and the last metrics are kept in
  ``info['holder']``); info also holds 'config', 'variables' (the initial
  ones), 'compiled' and 'compile_s'."""
  config = REFERENCES[name]()
  family, net, preprocess, variables = bench_common.setup(config)
  tx = train.make_tx(family, config)
  step = train.make_step(family, net, tx, preprocess, config)
  state = steps_lib.TrainState(
      step=jax.numpy.zeros((), jax.numpy.int32), params=variables,
      opt_state=jax.jit(tx.init)(variables),
      ema_params=(jax.tree.map(jax.numpy.copy, variables)
                  if config.train.ema_decay else None))
  batch = machine.random_batch(config.model.image_shape,
                               config.train.batch_size)
  key = jax.random.key(2)
  start = time.perf_counter()
  compiled = jax.jit(step, donate_argnums=0).lower(state, batch,
                                                   key).compile()
  compile_s = time.perf_counter() - start
  holder = {'state': state}

  def run():
    holder['state'], metrics = compiled(holder['state'], batch, key)
    jax.block_until_ready((holder['state'], metrics))
    holder['metrics'] = metrics

  return run, {'config': config, 'variables': variables,
               'compiled': compiled, 'compile_s': compile_s,
               'holder': holder}


def bench_train(name: str, *, repeat_seconds: float, model_budget: float,
                warmup: int = 2) -> dict[str, Any]:
  """One reference model's train step, timed by `time_protocol`."""
  run, info = compile_train(name)
  config, compiled, holder = info['config'], info['compiled'], info['holder']
  batch_size = config.train.batch_size
  for _ in range(warmup):
    run()
  before = machine.compilations()
  timing = time_protocol(run, repeat_seconds=repeat_seconds,
                         model_budget=model_budget)
  flops = machine.xla_flops(compiled)
  return {
      'model': name, 'family': config.family,
      'params': trainable_params(info['variables']),
      'batch_size': batch_size, 'compile_s': info['compile_s'], **timing,
      'images_per_s': batch_size / timing['median_s'],
      'images_per_s_best': batch_size / timing['best_s'],
      'flops_per_step': flops,
      'gflops_per_s': flops / timing['median_s'] / 1e9 if flops else None,
      'recompilations': machine.compilations() - before,
      'loss': float(holder['metrics']['loss'])
              if 'loss' in holder['metrics'] else None,
  }


def bench_ddpm_sampling(ddim_steps: int, ancestral_repeats: int,
                        ddim_repeats: int) -> dict[str, Any]:
  """Seconds for 16 images from the reference U-Net: all T ancestral steps
  and `ddim_steps` DDIM steps (one jitted scan each, compile excluded)."""
  config = REFERENCES['ddpm_unet']()
  _, net, _, variables = bench_common.setup(config)
  out = {'num_timesteps': int(net.num_timesteps), 'ddim_steps': ddim_steps}
  for method, steps, repeats in (
      ('ancestral', int(net.num_timesteps), ancestral_repeats),
      ('ddim', ddim_steps, ddim_repeats)):
    fn = jax.jit(lambda p, k, m=method, s=steps: ddpm.sample(
        p, k, SAMPLED_IMAGES, net=net, method=m, num_steps=s))
    key = jax.random.key(3)
    compiled = fn.lower(variables, key).compile()
    times = []
    share = OthersShare()
    shares = []
    for _ in range(max(repeats, 1)):
      share.start()
      start = time.perf_counter()
      jax.block_until_ready(compiled(variables, key))
      times.append(time.perf_counter() - start)
      shares.append(share.stop())
    out[method] = {'steps': steps, 'seconds': times,
                   'median_s': statistics.median(times),
                   'best_s': min(times), 'others_share': shares}
  out['speedup'] = out['ancestral']['median_s'] / out['ddim']['median_s']
  return out


# ------------------------------------------------ interleaved XLA-flag A/B
def ab_xla_flags(xla_flags: str, extra: str) -> tuple[str, str]:
  """(A, B) ``XLA_FLAGS`` of an A/B run: A is `xla_flags` (this process's);
  B is A without the flags `extra` names, then `extra`."""
  names = {entry.xla_flag_name(f) for f in extra.split()}
  kept = [f for f in xla_flags.split() if entry.xla_flag_name(f) not in names]
  return xla_flags, ' '.join(kept + extra.split())


AB_REPLY = 'ab_worker: '  # the prefix of a worker's replies on stdout


def ab_worker(models: list[str]) -> None:
  """The worker side of `ab_run` (``--ab_worker``): compiles `models`' train
  steps, takes 2 warm-up steps each, prints one JSON line {'ready': {model:
  {'compile_s', 'flops_per_step'}}}, then answers each stdin line ``MODEL
  STEPS`` with {'seconds': seconds per step of STEPS steps}; each reply
  is one line after `AB_REPLY`."""
  runs, ready = {}, {}
  for name in models:
    run, info = compile_train(name)
    for _ in range(2):
      run()
    runs[name] = run
    ready[name] = {'compile_s': info['compile_s'],
                   'flops_per_step': machine.xla_flops(info['compiled'])}
  print(AB_REPLY + json.dumps({'ready': ready}), flush=True)
  for line in sys.stdin:
    name, steps = line.split()
    start = time.perf_counter()
    for _ in range(int(steps)):
      runs[name]()
    print(AB_REPLY + json.dumps(
        {'seconds': (time.perf_counter() - start) / int(steps)}), flush=True)


class _Worker:
  """An `ab_worker` subprocess under given ``XLA_FLAGS``."""

  def __init__(self, models: list[str], xla_flags: str):
    env = dict(os.environ, XLA_FLAGS=xla_flags)
    self.proc = subprocess.Popen(
        [sys.executable, '-m', 'experiments.bench_peers', '--ab_worker',
         f"--models={','.join(models)}"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, env=env)

  def read(self) -> dict[str, Any]:
    """The worker's next reply (other lines it prints pass through)."""
    while True:
      line = self.proc.stdout.readline()
      if not line:
        raise RuntimeError(f'an A/B worker exited ({self.proc.wait()}): '
                           f'{" ".join(self.proc.args)}')
      if line.startswith(AB_REPLY):
        return json.loads(line[len(AB_REPLY):])
      print(line, end='')

  def time(self, name: str, steps: int) -> float:
    self.proc.stdin.write(f'{name} {steps}\n')
    self.proc.stdin.flush()
    return self.read()['seconds']

  def close(self) -> None:
    self.proc.stdin.close()
    self.proc.wait()


def ab_run(models: list[str], extra: str, *, rounds: int,
           repeat_seconds: float) -> dict[str, Any]:
  """Train steps under this process's ``XLA_FLAGS`` (A) against the same
  plus `extra` (B, `ab_xla_flags`), each side in a worker process of its
  own (compiled once), interleaved: every round times each model on A and
  on B in turn (B first in odd rounds), `repeat_seconds` of steps each (the
  steps per repeat from one step of A). Returns {'xla_flags_a',
  'xla_flags_b', 'rounds', 'models': {model: {'a_s', 'b_s' (seconds per
  step, per round), 'a_median_s', 'b_median_s', 'ratio' (A's median / B's:
  above 1, B is faster), 'ratio_best', 'steps_per_repeat', 'flops_a',
  'flops_b'}}, 'load_average' (before, after)}."""
  flags_a, flags_b = ab_xla_flags(bench_common.xla_flags(), extra)
  load = os.getloadavg()[0]
  workers = {'a': _Worker(models, flags_a), 'b': _Worker(models, flags_b)}
  try:
    ready = {side: w.read()['ready'] for side, w in workers.items()}
    out = {}
    for name in models:
      steps = max(1, round(repeat_seconds /
                           max(workers['a'].time(name, 1), 1e-9)))
      out[name] = {'a_s': [], 'b_s': [], 'steps_per_repeat': steps,
                   'flops_a': ready['a'][name]['flops_per_step'],
                   'flops_b': ready['b'][name]['flops_per_step']}
    for r in range(rounds):
      for name in models:
        for side in ('ab' if r % 2 == 0 else 'ba'):
          out[name][f'{side}_s'].append(
              workers[side].time(name, out[name]['steps_per_repeat']))
  finally:
    for w in workers.values():
      w.close()
  for r in out.values():
    r['a_median_s'] = statistics.median(r['a_s'])
    r['b_median_s'] = statistics.median(r['b_s'])
    r['ratio'] = r['a_median_s'] / r['b_median_s']
    r['ratio_best'] = min(r['a_s']) / min(r['b_s'])
  return {'xla_flags_a': flags_a, 'xla_flags_b': flags_b, 'rounds': rounds,
          'models': out, 'load_average': (load, os.getloadavg()[0])}


def print_ab(result: dict[str, Any]) -> None:
  """The table of an `ab_run`."""
  print(f"\nA/B, {result['rounds']} interleaved rounds, seconds per train "
        f"step (medians; A/B above 1: B faster; best: of the fastest "
        f"repeats):\n  A: XLA_FLAGS={result['xla_flags_a'] or '(none)'}"
        f"\n  B: XLA_FLAGS={result['xla_flags_b'] or '(none)'}")
  print(f"{'model':15s} {'A s/step':>9s} {'B s/step':>9s} {'A/B':>6s} "
        f"{'best':>6s}")
  for name, r in result['models'].items():
    print(f"{name:15s} {r['a_median_s']:9.4f} {r['b_median_s']:9.4f} "
          f"{r['ratio']:6.2f} {r['ratio_best']:6.2f}")
  before, after = result['load_average']
  print(f'load average {before:.2f} -> {after:.2f}')


# -------------------------------------------------------------------- peer
def run_peer(python: str, models: list[str], sampling: bool,
             quick: bool) -> dict[str, Any]:
  """The peer harness's JSON for `models` (its stderr passes through)."""
  if not os.path.exists(PEER_SCRIPT):
    raise FileNotFoundError(f'the peer harness {PEER_SCRIPT} is absent '
                            '(it lives in ../shared/bench).')
  cmd = [python, PEER_SCRIPT, '--models', ','.join(models), '--skip-matmul']
  if not sampling:
    cmd.append('--skip-sampling')
  if quick:
    cmd.append('--quick')
  proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
  if proc.returncode != 0:
    raise RuntimeError(f'the peer harness failed (exit {proc.returncode}): '
                       f'{" ".join(cmd)}')
  return json.loads(proc.stdout)


def _ratio(ours: float | None, theirs: float | None) -> str:
  if not ours or not theirs:
    return '-'
  return f'{ours / theirs:.2f}'


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      models=flags.DEFINE_list('models', list(REFERENCES),
                               f'Reference models to time, of '
                               f'{list(REFERENCES)}.'),
      peer_python=flags.DEFINE_string(
          'peer_python', '', 'Python of a virtual environment with torch: '
          'runs ../shared/bench/peer_torch.py first, in this run (empty: '
          'no peer run).'),
      peer_json=flags.DEFINE_string(
          'peer_json', '', "The peer harness's JSON from an earlier run "
          '(--out of peer_torch.py), instead of --peer_python; ratios '
          'across runs are only as good as the machine was quiet.'),
      peer_quick=flags.DEFINE_bool('peer_quick', False, "The peer's --quick "
                                   'smoke run (not a measurement).'),
      sampling=flags.DEFINE_bool('sampling', True, 'Also time DDPM sampling '
                                 'of 16 images (ancestral and DDIM).'),
      ddim_steps=flags.DEFINE_integer('ddim_steps', 50, 'DDIM steps timed '
                                      'against all ancestral steps.'),
      ancestral_repeats=flags.DEFINE_integer('ancestral_repeats', 1, 'Timed '
                                             'runs of the ancestral sampler.'),
      ddim_repeats=flags.DEFINE_integer('ddim_repeats', 3, 'Timed runs of '
                                        'the DDIM sampler.'),
      repeat_seconds=flags.DEFINE_float('repeat_seconds', 1.5, 'Target '
                                        'seconds of one timed repeat.'),
      model_budget=flags.DEFINE_float('model_budget', 25.0, 'No new repeat '
                                      'after this many seconds (at least 3 '
                                      'run).'),
      json=flags.DEFINE_string('json', None, 'Also write every number here.'),
      ab_xla_flags=flags.DEFINE_string(
          'ab_xla_flags', '', 'Instead of the peer comparison: the train '
          'steps of --models under this process\'s XLA_FLAGS (A) against '
          'A with these XLA flags (B), two worker processes timed in turn, '
          'round by round (`ab_run`), e.g. '
          '--ab_xla_flags=--xla_cpu_experimental_ynn_fusion_type='
          '+individual_convolution.'),
      ab_rounds=flags.DEFINE_integer('ab_rounds', 7, 'Interleaved rounds of '
                                     '--ab_xla_flags.'),
      ab_worker=flags.DEFINE_bool('ab_worker', False, 'Internal: serve '
                                  "--ab_xla_flags' timings on stdin/stdout."),
      **bench_common.define_matmul_flags())


def main(argv, flag_values: dict[str, Any]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in flag_values.items()}
  unknown = sorted(set(f['models']) - set(REFERENCES))
  if unknown:
    raise app.UsageError(f'--models: unknown {unknown}; known: '
                         f'{list(REFERENCES)}.')
  if f['ab_worker']:
    ab_worker(f['models'])
    return
  if f['ab_xla_flags']:
    if f['peer_python'] or f['peer_json'] or f['ab_rounds'] < 1:
      raise app.UsageError('--ab_xla_flags: no --peer_python or --peer_json '
                           'with it, and --ab_rounds of 1 or more.')
    machine.print_header(f['matmul_size'], f['matmul_repeats'])
    result = ab_run(f['models'], f['ab_xla_flags'], rounds=f['ab_rounds'],
                    repeat_seconds=f['repeat_seconds'])
    print_ab(result)
    if f['json']:
      workdir_lib.write_json(f['json'], result)
    return
  out: dict[str, Any] = {}
  if f['peer_python'] and f['peer_json']:
    raise app.UsageError('pass --peer_python or --peer_json, not both.')
  if f['peer_json']:
    with open(f['peer_json'], encoding='utf-8') as fh:
      out['peer'] = json.load(fh)
  elif f['peer_python']:
    print(f"peer: {f['peer_python']} {PEER_SCRIPT} (runs first)", flush=True)
    out['peer'] = run_peer(f['peer_python'], f['models'], f['sampling'],
                           f['peer_quick'])
  out['xla_flags'] = bench_common.print_xla_flags()
  header = machine.print_header(f['matmul_size'], f['matmul_repeats'])
  out['machine'] = header['info']
  out['matmul'] = header['matmul']
  out['train'] = {}
  for name in f['models']:
    r = bench_train(name, repeat_seconds=f['repeat_seconds'],
                    model_budget=f['model_budget'])
    out['train'][name] = r
    print(f"  {name}: {r['images_per_s']:.1f} images/s (median of "
          f"{len(r['seconds'])} repeats), compile {r['compile_s']:.1f} s, "
          f"{r['minor_faults_per_call'] or 0:,.0f} minor page faults per "
          'step', flush=True)
  if f['sampling']:
    out['ddpm_sampling'] = bench_ddpm_sampling(
        f['ddim_steps'], f['ancestral_repeats'], f['ddim_repeats'])
  out['load_average_after'] = os.getloadavg()[0]

  peer = out.get('peer', {})
  peer_train = peer.get('training', {})
  print('\ntrain step images/s (median of repeats; best in brackets), '
        'float32, one synthetic batch:')
  print(f"{'model':15s} {'batch':>5s} {'params':>10s} {'peer params':>11s} "
        f"{'peer':>16s} {'jaxgen':>16s} {'ratio':>6s} {'best':>5s} "
        f"{'others':>6s}")
  for name, r in out['train'].items():
    p = peer_train.get(name, {})
    theirs, theirs_best = (p.get('images_per_second'),
                           p.get('images_per_second_best'))
    peer_cell = f'{theirs:.1f} ({theirs_best:.1f})' if theirs else '-'
    ours_cell = f"{r['images_per_s']:.1f} ({r['images_per_s_best']:.1f})"
    share = r['others_share_median']
    share_cell = '-' if share is None else f'{share:.0%}'
    peer_params = f"{p['params_total']:,d}" if p.get('params_total') else '-'
    flag = ' contended' if r['contended'] or p.get('contended') else ''
    print(f"{name:15s} {r['batch_size']:5d} {r['params']:10,d} "
          f"{peer_params:>11s} {peer_cell:>16s} {ours_cell:>16s} "
          f"{_ratio(r['images_per_s'], theirs):>6s} "
          f"{_ratio(r['images_per_s_best'], theirs_best):>5s} "
          f"{share_cell:>6s}{flag}")
  if 'ddpm_sampling' in out:
    s = out['ddpm_sampling']
    peer_s = peer.get('ddpm_sampling', {}).get('seconds_for_16_images')
    print(f"\nDDPM sampling, 16 images, reference U-Net (compile excluded):"
          f"\n  ancestral {s['num_timesteps']} steps: "
          f"{s['ancestral']['median_s']:.2f} s"
          + (f' (peer {peer_s:.2f} s, ratio {peer_s / s["ancestral"]["median_s"]:.2f}'
             ' in speed)' if peer_s else '')
          + f"\n  DDIM {s['ddim_steps']} steps: {s['ddim']['median_s']:.3f} s"
          f"\n  DDIM speed-up over ancestral: {s['speedup']:.1f}x")
  contended = [n for n, r in out['train'].items() if r['contended']]
  if contended or peer.get('summary', {}).get('valid') is False:
    print(f'\nWARNING: contended measurements (other processes over '
          f'{CONTENDED_SHARE:.0%} of the CPUs): jaxgen {contended}, peer '
          f"{peer.get('summary', {}).get('contended_measurements')}; rerun "
          'on a quiet machine.')
  print(f"\nload average after: {out['load_average_after']:.2f}")
  if f['json']:
    workdir_lib.write_json(f['json'], out)


if __name__ == '__main__':
  _FLAGS = define_flags()
  entry.run(lambda argv: main(argv, _FLAGS))
