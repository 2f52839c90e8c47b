r"""A/B timing of convolution methods, interleaved in one process.

  python -m experiments.bench_layers
  python -m experiments.bench_layers --rounds=3 --models=pixelcnn \
      --variants=conv,auto --layers=false                 # a quicker run
  python -m experiments.bench_layers --models=realnvp,dcgan \
      --conv_variants=xla,auto --layers=false             # shared convs
  python -m experiments.bench_layers --models=ddpm_unet --layers=false \
      --conv_variants=flax_norm,norm                      # group norms
  python -m experiments.bench_layers --models=ddpm_unet --layers=false \
      --conv_variants=resize,subpixel                     # upsampling
  python -m experiments.bench_layers --models=dcgan --layers=false \
      --conv_variants=phases,auto                         # transposed convs

Run from the project root. Two families of methods are compared.

The masked layers (``pixelcnn``, ``gated_pixelcnn``,
``gated_pixelcnn_peer``; ``--variants``): the
layers of `jaxgen.nn.masked` can run each convolution as XLA's convolution
('conv': the masked layer on its top k_h // 2 + 1 kernel rows, the gated
stacks on their cut kernels; 1x1 layers as a matmul), as one matmul over
the live taps ('taps', `tap_conv`), as one XLA convolution per block of
kernel rows with the same live columns ('rows', `row_conv`) or as 'conv'
with the kernel gradient as matmuls ('patch_grad'); 'auto' (the default)
picks per layer
(`masked.choose_method`). 'dense' is the straightforward formulation: the
full masked kernel with 'SAME' padding (`masked_conv(method='dense')`; the
gated stacks as 'conv'). 'rank4_matmul' is 'auto' with the live-tap
matmuls on the [B, H, W, C] input rather than its rows (`conv.matmul_last`).

The shared convolution `jaxgen.nn.conv.Conv`, every family's plain
convolution (``realnvp``: the coupling nets; ``dcgan``: also the
generator's transposed convolutions, whose phases are `conv.conv`;
``ddpm_unet``; ``--conv_variants``): every layer left at method='auto'
traces the variant named ('xla', 'patches', 'patch_grad' for kernels of
more than one tap, 1x1 layers as 'xla'; 'auto': unchanged, the rule of
`conv.choose_method`, which also looks at the input's size). The shared
group norm `jaxgen.nn.norm.GroupNorm` (``ddpm_unet``; also
``--conv_variants``): 'norm' as shipped, 'flax_norm' computed as Flax's
``nn.GroupNorm`` does. The transposed convolutions
(`jaxgen.nn.conv_transpose`; ``dcgan``'s generator; also
``--conv_variants``): 'phases' computes every one as its phase
convolutions, also the 1x1 inputs and narrow outputs that
`conv_transpose.choose_form` gives other forms under 'auto'.

On a machine shared with other jobs, absolute times drift by several times
within a minute, so every comparison here is interleaved: each round runs
every variant once, in turn, and the medians over the rounds are compared.
The ratio (first variant's median / this variant's median; above 1: faster)
is the result, with the ratio of the best (least) times beside it; absolute
figures are printed for orientation only. Variants that compile to the same
program ('dense' and 'conv' for the gated stacks) show the noise floor.

- whole train step (the trainer's step, `train.make_step`, with its
  optimizer; a device batch of random pixels: the ``mnist8k`` preset's
  batch size for the masked models, the peer protocol's 64 for RealNVP,
  the DCGAN (a D + G step) and the DDPM U-Net) of each reference model,
  one compiled step per variant (each traced under its method),
  ``--steps_per_round`` steps per round; XLA's FLOPs per step of each
  variant; the first step's loss of each variant (the same function:
  equal up to float rounding);
- with ``--layers``, the reference models' spatial layers alone (value and
  gradient w.r.t. parameters and input (parameters only for the 1-channel
  image layers, as in a train step) of sum(layer(x) * g), batch 32,
  28x28): PixelCNN's 7x7 mask-A 1 -> 128 and 3x3 mask-B 64 -> 64, Gated
  PixelCNN's first (k=7, 1 -> 128; also cut as in the peer's layout) and
  later (k=3, 64 -> 128) vertical and horizontal stack convolutions
  (``--variants``); with ``--conv_layers``,
  RealNVP's and the DDPM U-Net's 3x3 convolutions as `conv.Conv` layers
  (``--conv_variants``, batch 64), and the U-Net's upsampling
  convolution (`unet.UpsampleConv`, 14x14 -> 28x28, 64 -> 64: its
  variants 'resize' and 'subpixel').
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from typing import Any, Callable
from unittest import mock

from absl import app
from absl import flags
from absl import logging
import flax.linen as flax_nn
import jax
import jax.numpy as jnp
import numpy as np

from experiments import bench_common
from experiments import bench_peers
from experiments import entry
from experiments import machine
from experiments.configs import gated_pixelcnn as gated_config
from experiments.configs import pixelcnn as pixelcnn_config
from jaxgen import steps as steps_lib
from jaxgen import train
from jaxgen.nn import conv as conv_lib
from jaxgen.nn import conv_transpose as conv_transpose_lib
from jaxgen.nn import masked
from jaxgen.nn import norm as norm_lib
from jaxgen.nn import unet as unet_lib

CONFIGS = {
    'pixelcnn': lambda: pixelcnn_config.get_config('mnist8k'),
    'gated_pixelcnn': lambda: gated_config.get_config('mnist8k'),
    # The layout of the PyTorch peer (`bench_peers`), batch 32.
    'gated_pixelcnn_peer': bench_peers.REFERENCES['gated_pixelcnn'],
    'realnvp': bench_peers.REFERENCES['realnvp'],
    'dcgan': bench_peers.REFERENCES['dcgan'],
    'ddpm_unet': bench_peers.REFERENCES['ddpm_unet'],
}
# Built on `conv.Conv` (every family's plain convolution; DCGAN: also its
# generator's transposed convolutions) and, for the U-Net, on
# `norm.GroupNorm`.
CONV_MODELS = ('realnvp', 'dcgan', 'ddpm_unet')
VARIANTS = ('conv', 'auto', 'taps', 'rows', 'patch_grad', 'dense',
            'rank4_matmul')
CONV_VARIANTS = ('xla', 'auto', 'patches', 'patch_grad')
# `jaxgen.nn.norm.GroupNorm` as shipped ('norm') or through Flax's
# nn.GroupNorm computation ('flax_norm'); combined with a convolution
# variant by '+', e.g. 'flax_norm+xla'.
NORM_VARIANTS = ('norm', 'flax_norm')
# The U-Net's upsampling convolutions (`unet.UpsampleConv`) as shipped
# ('subpixel': on the low-resolution grid) or as nearest x2 upsampling then
# the convolution ('resize'); combined with the others by '+'.
UPSAMPLE_VARIANTS = ('subpixel', 'resize')
# The transposed convolutions as shipped ('auto', `conv_transpose.
# choose_form`) or every one as its phase convolutions ('phases').
TRANSPOSE_VARIANTS = ('phases',)


def _flax_group_norm(x, scale, bias, num_groups, epsilon=1e-6):
  """`norm.group_norm`'s signature over ``nn.GroupNorm``'s computation."""
  params = {k: v for k, v in (('scale', scale), ('bias', bias))
            if v is not None}
  module = flax_nn.GroupNorm(num_groups=num_groups, epsilon=epsilon,
                             use_scale=scale is not None,
                             use_bias=bias is not None)
  return module.apply({'params': params}, x)


_choose_method = masked.choose_method
_masked_conv = masked.masked_conv
_upsample_conv = unet_lib.upsample_conv


def forced(variant: str) -> contextlib.AbstractContextManager:
  """A context in which every layer left at method='auto' traces `variant`.

  Variants joined by '+' apply together. 'auto', 'norm' and 'subpixel':
  unchanged. 'flax_norm': `norm.GroupNorm` computes Flax's nn.GroupNorm
  instead. 'resize': `unet.UpsampleConv` upsamples, then convolves.
  'phases': `conv_transpose.choose_form` answers 'phases'. Of
  `CONV_VARIANTS`: `conv.choose_method` answers the
  variant for kernels of more than one tap (any input size), 'xla' for one
  tap. 'conv' / 'taps': `masked.choose_method` answers that for every
  kernel of more than one tap ('taps' for one tap: the 1x1 layers stay
  matmuls); so do 'rows' and 'patch_grad'. 'dense': `masked_conv` runs
  the full masked kernel, the stacks 'conv'. 'rank4_matmul': 'auto', with
  the live-tap matmuls (`conv.matmul_last`) on the [B, H, W, C] input
  instead of its rows.
  """
  if '+' in variant:
    stack = contextlib.ExitStack()
    for part in variant.split('+'):
      stack.enter_context(forced(part))
    return stack
  if variant in ('auto', 'norm', 'subpixel'):
    return contextlib.nullcontext()
  if variant == 'rank4_matmul':
    return mock.patch.object(
        conv_lib, 'matmul_last',
        lambda x, w, precision=None: jnp.einsum('...i,io->...o', x, w,
                                                precision=precision))
  if variant == 'resize':
    return mock.patch.object(
        unet_lib, 'upsample_conv',
        lambda x, kernel, method=None, precision=None: _upsample_conv(
            x, kernel, 'resize', precision))
  if variant == 'phases':
    return mock.patch.object(conv_transpose_lib, 'choose_form',
                             lambda *args, **kwargs: 'phases')
  if variant == 'flax_norm':
    return mock.patch.object(norm_lib, 'group_norm', _flax_group_norm)
  if variant in CONV_VARIANTS:
    return mock.patch.object(
        conv_lib, 'choose_method',
        lambda shape, *args, **kwargs: (variant if np.prod(shape[:-2]) > 1
                                        else 'xla'))
  stack = contextlib.ExitStack()
  method = variant if variant in ('taps', 'rows', 'patch_grad') else 'conv'
  stack.enter_context(mock.patch.object(
      masked, 'choose_method',
      lambda shape, n: 'taps' if n == 1 else method))
  if variant == 'dense':
    def dense(*args, method=None, **kwargs):
      del method  # the layer passes its own
      return _masked_conv(*args, method='dense', **kwargs)
    stack.enter_context(mock.patch.object(masked, 'masked_conv', dense))
  return stack


def interleave(fns: dict[str, Callable[[], Any]],
               rounds: int) -> dict[str, tuple[float, float]]:
  """(median, least) seconds of each no-argument callable over `rounds`
  rounds, the callables run in turn within each round (rotating the
  starting one)."""
  names = list(fns)
  times = {n: [] for n in names}
  for r in range(rounds):
    for n in names[r % len(names):] + names[:r % len(names)]:
      start = time.perf_counter()
      fns[n]()
      times[n].append(time.perf_counter() - start)
  return {n: (float(np.median(t)), float(np.min(t)))
          for n, t in times.items()}


def compile_step(name: str, variant: str):
  """(compiled step, state, batch, key, flops, batch size) of a reference
  model's train step traced under `variant`."""
  config = CONFIGS[name]()
  family, net, preprocess, params = bench_common.setup(config)
  tx = train.make_tx(family, config)
  step = train.make_step(family, net, tx, preprocess, config)
  b = config.train.batch_size
  state = steps_lib.TrainState(
      step=jnp.zeros((), jnp.int32), params=params,
      opt_state=jax.jit(tx.init)(params),
      ema_params=(jax.tree.map(jnp.copy, params)
                  if config.train.ema_decay else None))
  batch = machine.random_batch(config.model.image_shape, b)
  key = jax.random.key(2)
  with forced(variant):
    compiled = jax.jit(step, donate_argnums=0).lower(state, batch,
                                                     key).compile()
  return compiled, state, batch, key, machine.xla_flops(compiled), b


def bench_steps(name: str, variants, rounds: int, steps: int) -> None:
  """Prints the interleaved step-time medians, ratios and FLOPs."""
  load = os.getloadavg()[0]
  runs, losses = {}, {}
  for v in variants:
    compiled, state, batch, key, flops, b = compile_step(name, v)
    state, metrics = compiled(state, batch, key)
    # Two-player steps report each player's loss: their sum stands in.
    losses[v] = float(metrics['loss'] if 'loss' in metrics else
                      metrics['d_loss'] + metrics['g_loss'])
    state, metrics = compiled(state, batch, key)  # a warm-up step
    jax.block_until_ready(state)
    runs[v] = {'compiled': compiled, 'state': state, 'flops': flops}

  def run(v):
    r = runs[v]
    for _ in range(steps):
      r['state'], metrics = r['compiled'](r['state'], batch, key)
    jax.block_until_ready(metrics)

  med = interleave({v: functools.partial(run, v) for v in variants}, rounds)
  base = variants[0]
  print(f'\n{name} train step, batch {b}, {rounds} rounds x {steps} steps '
        f'(load average {load:.2f} -> {os.getloadavg()[0]:.2f}):')
  print(f"{'variant':8s} {'s/step':>8s} {'images/s':>9s} {'GFLOP/step':>10s} "
        f"{base + '/this':>10s} {'(best)':>7s} {'step-0 loss':>12s}")
  for v in variants:
    s = med[v][0] / steps
    print(f"{v:8s} {s:8.3f} {b / s:9.1f} {runs[v]['flops'] / 1e9:10.2f} "
          f'{med[base][0] / med[v][0]:10.2f} {med[base][1] / med[v][1]:7.2f} '
          f'{losses[v]:12.6f}', flush=True)
  spread = max(losses.values()) - min(losses.values())
  print(f'step-0 loss spread across variants: {spread:.2e}')


def _layer_cases():
  """(label, module factory taking method=, input shape)."""
  def mc(f, k, mask):
    return lambda method: masked.MaskedConv2D(f, k, mask, method=method)
  return [
      ('pixelcnn 7x7 A 1->128', mc(128, 7, 'A'), (32, 28, 28, 1)),
      ('pixelcnn 3x3 B 64->64', mc(64, 3, 'B'), (32, 28, 28, 64)),
      ('gated v k7 1->128',
       lambda method: masked.VerticalStackConv(128, 7, method=method),
       (32, 28, 28, 1)),
      ('gated h k7 A 1->128',
       lambda method: masked.HorizontalStackConv(128, 7, 'A', method=method),
       (32, 28, 28, 1)),
      ('gated v 3x7 1->128 peer',
       lambda method: masked.VerticalStackConv(128, 7, rows=3, method=method),
       (32, 28, 28, 1)),
      ('gated h 1x3 1->128 peer',
       lambda method: masked.HorizontalStackConv(128, 7, 'A', crop_centre=True,
                                                 method=method),
       (32, 28, 28, 1)),
      ('gated v k3 64->128',
       lambda method: masked.VerticalStackConv(128, 3, method=method),
       (32, 28, 28, 64)),
      ('gated h k3 B 64->128',
       lambda method: masked.HorizontalStackConv(128, 3, 'B', method=method),
       (32, 28, 28, 64)),
  ]


def _conv_layer_cases():
  """(label, module factory taking method=, input shape) of the shared
  convolution: RealNVP's coupling-net and the U-Net's 3x3 layers."""
  def c(f, strides=1):
    return lambda method: conv_lib.Conv(f, (3, 3), strides=strides,
                                        method=method)
  return [
      ('realnvp 28x28 1->64', c(64), (64, 28, 28, 1)),
      ('realnvp 28x28 64->64', c(64), (64, 28, 28, 64)),
      ('realnvp 28x28 64->2', c(2), (64, 28, 28, 64)),
      ('realnvp 14x14 64->64', c(64), (64, 14, 14, 64)),
      ('realnvp 14x14 64->4', c(4), (64, 14, 14, 64)),
      ('unet 28x28 32->32', c(32), (64, 28, 28, 32)),
      ('unet 28x28 64->32', c(32), (64, 28, 28, 64)),
      ('unet 28x28 32->32 s2', c(32, 2), (64, 28, 28, 32)),
      ('unet 14x14 64->64', c(64), (64, 14, 14, 64)),
      ('unet 28x28 32->1 out', c(1), (64, 28, 28, 32)),
      # Nearest x2 then 3x3 (the U-Net's 'us0'): the upsampling variants.
      ('unet up 14->28 64->64', lambda method: unet_lib.UpsampleConv(64),
       (64, 14, 14, 64)),
  ]


def bench_layers(variants, rounds: int, cases=_layer_cases) -> None:
  """Prints interleaved medians of each reference layer's value and grads
  (the layers of `cases()`)."""
  print(f"\nlayers (value and gradient, {rounds} rounds; ms: medians; "
        f"{variants[0]}/v: ratio of medians/ratio of bests, above 1: v "
        "faster):")
  print(f"{'layer':22s} " + ' '.join(f'{v + " ms":>9s}' for v in variants)
        + ' ' + ' '.join(f'{v + " GF":>8s}' for v in variants) + '  ' +
        ' '.join(f"{variants[0] + '/' + v:>10s}" for v in variants[1:])
        + '  load')
  for label, make, shape in cases():
    x = jax.random.normal(jax.random.key(0), shape)
    fns, flops = {}, {}
    for v in variants:
      with forced(v):
        layer = make('auto')
        params = layer.init(jax.random.key(1), x)
        g = jax.random.normal(
            jax.random.key(2),
            jax.eval_shape(layer.apply, params, x).shape)
        # Image layers (1 channel): the parameters' gradient alone, as in a
        # train step.
        grad = jax.value_and_grad(
            lambda p, a, layer=layer, g=g: jnp.sum(layer.apply(p, a) * g),
            argnums=(0, 1) if shape[-1] > 1 else 0)
        compiled = jax.jit(grad).lower(params, x).compile()
      flops[v] = machine.xla_flops(compiled)
      jax.block_until_ready(compiled(params, x))
      fns[v] = functools.partial(
          lambda c, p: jax.block_until_ready(c(p, x)), compiled, params)
    med = interleave(fns, rounds)
    first = med[variants[0]]
    print(f'{label:22s} '
          + ' '.join(f'{med[v][0] * 1e3:9.1f}' for v in variants) + ' '
          + ' '.join(f'{flops[v] / 1e9:8.2f}' for v in variants) + '  '
          + ' '.join(f'{first[0] / med[v][0]:5.2f}/{first[1] / med[v][1]:4.2f}'
                     for v in variants[1:])
          + f'  {os.getloadavg()[0]:.2f}', flush=True)


def define_flags() -> dict[str, Any]:
  """The command line's flags (defined by the script alone, not on import)."""
  return dict(
      models=flags.DEFINE_list('models', ['pixelcnn', 'gated_pixelcnn'],
                               'Reference models whose train step is timed '
                               '(empty: none).'),
      variants=flags.DEFINE_list('variants', ['conv', 'auto'],
                                 f'Masked-layer methods compared, the first '
                                 f'the baseline; of {VARIANTS}.'),
      conv_variants=flags.DEFINE_list(
          'conv_variants', ['xla', 'auto'], f'Shared-convolution methods '
          f'compared (models {CONV_MODELS}), the first the baseline; of '
          f'{CONV_VARIANTS}, or of {NORM_VARIANTS} (the U-Net\'s group '
          f'norms), {UPSAMPLE_VARIANTS} (its upsampling convolutions) or '
          f'{TRANSPOSE_VARIANTS} (the transposed convolutions), or several '
          "joined by '+'."),
      rounds=flags.DEFINE_integer('rounds', 5, 'Interleaved rounds.'),
      steps_per_round=flags.DEFINE_integer('steps_per_round', 2, 'Train '
                                           'steps per variant and round.'),
      layers=flags.DEFINE_bool('layers', True, 'Also time the masked '
                               "reference models' spatial layers alone."),
      conv_layers=flags.DEFINE_bool('conv_layers', False, 'Also time the '
                                    'RealNVP and U-Net 3x3 convolutions '
                                    'alone.'),
      **bench_common.define_matmul_flags())


def main(argv, flag_values: dict[str, Any]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in flag_values.items()}
  for flag, allowed in (('variants', VARIANTS),
                        ('conv_variants',
                         CONV_VARIANTS + NORM_VARIANTS + UPSAMPLE_VARIANTS
                         + TRANSPOSE_VARIANTS)):
    bad = [v for v in f[flag] if any(p not in allowed
                                     for p in v.split('+'))]
    if bad or len(f[flag]) < 2:
      raise app.UsageError(f'--{flag}: two or more of {allowed} (joined '
                           f"by '+' for --conv_variants), got {f[flag]}.")
  unknown = [m for m in f['models'] if m not in CONFIGS]
  if unknown:
    raise app.UsageError(f'--models: of {tuple(CONFIGS)}, got '
                         f"{f['models']}.")
  bench_common.header(f['matmul_size'], f['matmul_repeats'])
  if f['layers']:
    bench_layers(f['variants'], f['rounds'])
  if f['conv_layers']:
    bench_layers(f['conv_variants'], f['rounds'], _conv_layer_cases)
  for name in f['models']:
    variants = f['conv_variants' if name in CONV_MODELS else 'variants']
    bench_steps(name, variants, f['rounds'], f['steps_per_round'])
  print(f'\nload average after: {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
  _FLAGS = define_flags()
  entry.run(lambda argv: main(argv, _FLAGS))
