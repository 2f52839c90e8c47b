"""Synthetic 1-D signals quantized to 8 bits, stored as uint8 "images" (1, T, 1).

A small, fully seeded stand-in for audio, for sequence models such as the
WaveNet family (van den Oord et al., "WaveNet: A Generative Model for Raw
Audio", arXiv:1609.03499, 2016). ``jaxgen.data.load_dataset`` builds them for
``data.name = 'signal:KIND:T'`` or ``'signal:KIND:T:N'``: N rows (default
`DEFAULT_ROWS`) of length T, drawn once with ``data.split_seed`` and then
split by the usual ``all[...]`` specs like any array source.

Every row has a frequency *band* c in {0, 1, 2, 3}, its label. Band c covers
the frequencies f in [2^c / 128, 2^(c+1) / 128) cycles per sample (periods of
128 down to 8 samples).

``sines``
  x_t = A sum_{k=1}^{K} w_k sin(2 pi f_k t + phi_k) + sigma eps_t with
  K ~ U{1, 2, 3} components, f_k ~ U[band c), phi_k ~ U[0, 2 pi),
  w = u / sum(u) for u_k ~ U[0.2, 1], amplitude A ~ U[0.5, 0.9],
  noise sigma = `SINES_NOISE`, eps_t ~ N(0, 1).

``ar``
  the AR(2) process x_t = 2 r cos(theta) x_{t-1} - r^2 x_{t-2} + eps_t
  (complex poles r e^{+-i theta}, stationary since r < 1), with
  r ~ U[0.9, 0.99], theta = 2 pi f, f ~ U[band c), eps_t ~ N(0, 1), started
  `AR_BURN_IN` steps early from zeros, and divided by its stationary standard
  deviation and multiplied by `AR_STD`, so the quantized values rarely clip.

Quantization: q_t = clip(round(127.5 (x_t + 1)), 0, 255) as uint8 (the
inverse of ``value_range='symmetric'``, q / 127.5 - 1).
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

from jaxgen.errors import ConfigError

PREFIX = 'signal:'
KINDS = ('sines', 'ar')
NUM_BANDS = 4  # labels 0..3: frequency bands of one octave each
LOWEST_FREQUENCY = 1.0 / 128.0  # cycles per sample, lower edge of band 0
DEFAULT_ROWS = 4096
MAX_VALUES = 1 << 27  # N * T, 128 MiB of uint8
SINES_NOISE = 0.02
AR_BURN_IN = 200
AR_STD = 0.3


def parse_name(name: str) -> tuple[str, int, int]:
  """'signal:KIND:T[:N]' -> (KIND, T, N); ConfigError naming data.name."""
  parts = name[len(PREFIX):].split(':') if name.startswith(PREFIX) else []
  usage = (f"expected 'signal:KIND:T' or 'signal:KIND:T:N' with KIND in "
           f'{KINDS}, T >= 2 the length and N >= 1 the rows (default '
           f"{DEFAULT_ROWS}), e.g. 'signal:sines:256'")
  if len(parts) not in (2, 3):
    raise ConfigError(f'data.name={name!r} is not a signal name: {usage}.')
  kind, *numbers = parts
  if kind not in KINDS:
    raise ConfigError(f'data.name={name!r}: unknown signal kind {kind!r}; '
                      f'{usage}.')
  if not all(n.isdigit() for n in numbers):
    raise ConfigError(f'data.name={name!r}: T and N must be decimal integers;'
                      f' {usage}.')
  length = int(numbers[0])
  rows = int(numbers[1]) if len(numbers) == 2 else DEFAULT_ROWS
  if length < 2 or rows < 1:
    raise ConfigError(f'data.name={name!r}: need T >= 2 and N >= 1; {usage}.')
  if length * rows > MAX_VALUES:
    raise ConfigError(f'data.name={name!r}: N * T = {length * rows} values is'
                      f' more than {MAX_VALUES}; use fewer or shorter rows.')
  return kind, length, rows


def quantize(x: np.ndarray) -> np.ndarray:
  """Real values in [-1, 1] -> uint8 round(127.5 (x + 1)), clipped."""
  return np.clip(np.round(127.5 * (x + 1.0)), 0, 255).astype(np.uint8)


def _frequencies(rng: np.random.Generator, bands: np.ndarray,
                 shape: tuple[int, ...]) -> np.ndarray:
  """Frequencies uniform within each row's octave band: [N, *shape[1:]]."""
  low = LOWEST_FREQUENCY * 2.0 ** bands.astype(np.float64)
  low = low.reshape((-1,) + (1,) * (len(shape) - 1))
  return low * (1.0 + rng.uniform(size=shape))


def _sines(rng: np.random.Generator, bands: np.ndarray,
           length: int) -> np.ndarray:
  rows = len(bands)
  max_k = 3
  num = rng.integers(1, max_k + 1, size=rows)
  freq = _frequencies(rng, bands, (rows, max_k))
  phase = rng.uniform(0.0, 2.0 * math.pi, size=(rows, max_k))
  weight = rng.uniform(0.2, 1.0, size=(rows, max_k))
  weight = weight * (np.arange(max_k)[None] < num[:, None])
  weight = weight / weight.sum(-1, keepdims=True)
  amplitude = rng.uniform(0.5, 0.9, size=(rows, 1))
  t = np.arange(length, dtype=np.float64)
  waves = np.sin(2.0 * math.pi * freq[:, :, None] * t + phase[:, :, None])
  x = amplitude * np.einsum('nk,nkt->nt', weight, waves)
  return x + SINES_NOISE * rng.standard_normal((rows, length))


def _ar(rng: np.random.Generator, bands: np.ndarray,
        length: int) -> np.ndarray:
  rows = len(bands)
  radius = rng.uniform(0.9, 0.99, size=rows)
  theta = 2.0 * math.pi * _frequencies(rng, bands, (rows,))
  phi1, phi2 = 2.0 * radius * np.cos(theta), -radius ** 2
  # Stationary variance of an AR(2) with unit innovations (Box & Jenkins).
  var = (1.0 - phi2) / ((1.0 + phi2) * ((1.0 - phi2) ** 2 - phi1 ** 2))
  eps = rng.standard_normal((AR_BURN_IN + length, rows))
  x = np.zeros((AR_BURN_IN + length, rows))
  for t in range(2, AR_BURN_IN + length):
    x[t] = phi1 * x[t - 1] + phi2 * x[t - 2] + eps[t]
  return (x[AR_BURN_IN:].T / np.sqrt(var)[:, None]) * AR_STD


def make_signals(kind: str, length: int, rows: int,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Draws the dataset: (uint8 [rows, 1, length, 1], int32 band labels [rows]).

  A deterministic function of its arguments: NumPy's PCG64 seeded by
  (seed, crc32(kind)).
  """
  if kind not in KINDS:
    raise ConfigError(f'signal kind {kind!r} is not one of {KINDS}.')
  rng = np.random.default_rng([seed, zlib.crc32(kind.encode())])
  bands = rng.integers(0, NUM_BANDS, size=rows)
  x = _sines(rng, bands, length) if kind == 'sines' else _ar(rng, bands, length)
  return quantize(x)[:, None, :, None], bands.astype(np.int32)


def load_signals(name: str, seed: int) -> tuple[np.ndarray, np.ndarray,
                                                dict[str, Any]]:
  """(images uint8 [N, 1, T, 1], labels int32 [N], info) for a signal name."""
  kind, length, rows = parse_name(name)
  images, labels = make_signals(kind, length, rows, seed)
  return images, labels, {'source': 'signal', 'kind': kind, 'length': length,
                          'rows': rows, 'num_bands': NUM_BANDS}
