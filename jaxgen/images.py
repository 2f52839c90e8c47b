"""Drawing: image grids, waveforms, scatter plots and PNG files.

The one place that draws. `sample_figure` and `reconstruction_figure` take
the arrays a family returns and decide from their shapes and dtypes how to
show them, so the trainer only samples, draws, saves and logs:

* points, float [N, D] (D >= 2): a scatter plot of the first two
  coordinates over reference points (`scatter_image`);
* 1-D signals, uint8 [N, 1, T, 1]: one waveform per grid cell
  (`signal_images`);
* images, uint8 [N, H, W, C]: a grid (`image_grid`).

`curves_figure` draws a run's logged metrics against the step with
matplotlib (imported when it is called, so importing jaxgen stays light).

`display_scale` is the nearest-neighbour enlargement `save_png` applies to
examples of that kind (small digits are enlarged, waveforms and scatter
plots are not). Everything here is NumPy on the host; PNGs are written
atomically (`jaxgen.workdir.atomic_write`).
"""

from __future__ import annotations

import io
import math
from typing import Sequence

import numpy as np
from PIL import Image
from PIL import ImageDraw

from jaxgen import workdir as workdir_lib

DISPLAY_HEIGHT = 64  # images are enlarged to at least this many pixel rows
RECONSTRUCTION_LABELS = ('data', 'reconstruction')  # the rows, top to bottom

# Training curves (`curves_figure`): panels of this many pixels (width,
# height), this many to a row, under a title band of this height.
CURVES_PANEL = (300, 200)
CURVES_COLUMNS = 3
CURVES_TITLE_HEIGHT = 40
# Logged values that are not curves of the model: throughput and counts.
CURVES_SKIPPED = ('steps_per_sec', 'num_examples')
# A panel whose finite values are all positive and span at least this
# ratio (two decades) has a logarithmic y axis.
CURVES_LOG_RATIO = 100.0


def image_grid(images: np.ndarray, num_cols: int | None = None,
               padding: int = 1, pad_value: int = 128) -> np.ndarray:
  """Tiles uint8 images [N, H, W, C] into one uint8 image [H', W', C].

  Rows are filled left to right; padding and missing cells are `pad_value`
  (mid-grey by default, so borders read as neither ink nor paper). With
  ``num_cols`` None the grid has ceil(sqrt(N)) columns.
  """
  images = np.asarray(images)
  if images.ndim != 4 or images.dtype != np.uint8:
    raise ValueError(f'image_grid expects uint8 [N, H, W, C], got '
                     f'{images.dtype} {images.shape}.')
  n, h, w, c = images.shape
  cols = num_cols or int(math.ceil(math.sqrt(n)))
  rows = int(math.ceil(n / cols))
  grid = np.full((rows * (h + padding) + padding,
                  cols * (w + padding) + padding, c), pad_value, np.uint8)
  for i in range(n):
    r, col = divmod(i, cols)
    y, x = padding + r * (h + padding), padding + col * (w + padding)
    grid[y:y + h, x:x + w] = images[i]
  return grid


def comparison_grid(rows: Sequence[np.ndarray], padding: int = 1,
                    pad_value: int = 128) -> np.ndarray:
  """Stacks equal-length image rows (e.g. inputs over reconstructions)."""
  n = len(rows[0])
  return image_grid(np.concatenate([np.asarray(r) for r in rows]), n, padding,
                    pad_value)


def save_png(path: str, image: np.ndarray, scale: int = 1) -> str:
  """Writes a uint8 [H, W, C] image (C in {1, 3}) as PNG; returns the path.

  `scale` enlarges it with nearest-neighbour sampling (small digits).
  """
  return workdir_lib.atomic_write(path, png_bytes(image, scale))


def png_bytes(image: np.ndarray, scale: int = 1) -> bytes:
  """The PNG file `save_png` writes for a uint8 [H, W, C] image."""
  image = np.asarray(image)
  if scale > 1:
    image = image.repeat(scale, axis=0).repeat(scale, axis=1)
  pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
  buffer = io.BytesIO()
  pil.save(buffer, format='PNG')
  return buffer.getvalue()


def signal_images(signals: np.ndarray, height: int = 64) -> np.ndarray:
  """Draws 8-bit 1-D signals [N, 1, T, 1] as waveforms: uint8 [N, height, T, 1].

  Column t has ink (255) from the previous sample's row to this one's, so
  the trace is connected; value 255 is the top row.
  """
  signals = np.asarray(signals)
  if signals.ndim != 4 or signals.shape[1] != 1 or signals.shape[3] != 1:
    raise ValueError(f'signal_images expects [N, 1, T, 1], got {signals.shape}.')
  rows = (height - 1) - np.round(
      signals[:, 0, :, 0].astype(np.float64) * (height - 1) / 255.0).astype(int)
  prev = np.concatenate([rows[:, :1], rows[:, :-1]], axis=1)
  lo, hi = np.minimum(rows, prev), np.maximum(rows, prev)
  y = np.arange(height)[None, :, None]
  ink = (y >= lo[:, None, :]) & (y <= hi[:, None, :])
  return (ink * 255).astype(np.uint8)[..., None]


def scatter_image(points: np.ndarray, reference: np.ndarray | None = None, *,
                  size: int = 256, extent: float | None = None) -> np.ndarray:
  """Draws 2-D points over reference points: uint8 [size, size, 3].

  NumPy only (no plotting library): a white canvas, `reference` (e.g. data)
  as grey dots, `points` (e.g. samples) as blue dots on top, and the axes
  through the origin in light grey. The view is the square
  [-extent, extent]^2 (default: 1.1 x the largest absolute coordinate of
  both sets); points outside it are not drawn. Row 0 is the top (+y).

  Args:
    points: float [N, D] (the first two coordinates are drawn).
    reference: float [M, D] or None.
    size: the image's height and width in pixels.
    extent: half-width of the view.
  """
  points = np.asarray(points, np.float64)
  if points.ndim != 2 or points.shape[1] < 2:
    raise ValueError(f'scatter_image expects [N, D >= 2] points, got '
                     f'{points.shape}.')
  sets = [points] + ([] if reference is None else
                     [np.asarray(reference, np.float64)])
  if extent is None:
    finite = np.concatenate([s[:, :2][np.isfinite(s[:, :2]).all(1)]
                             for s in sets])
    extent = 1.1 * float(np.abs(finite).max()) if finite.size else 1.0
    extent = extent or 1.0
  image = np.full((size, size, 3), 255, np.uint8)
  mid = size // 2
  image[mid, :] = image[:, mid] = 225

  def draw(xy, color):
    xy = xy[np.isfinite(xy[:, :2]).all(1), :2]
    cols = np.floor((xy[:, 0] + extent) / (2 * extent) * size).astype(int)
    rows = np.floor((extent - xy[:, 1]) / (2 * extent) * size).astype(int)
    for dy in (0, 1):  # 2x2 dots
      for dx in (0, 1):
        r, c = rows + dy, cols + dx
        keep = (r >= 0) & (r < size) & (c >= 0) & (c < size)
        image[r[keep], c[keep]] = color

  if reference is not None:
    draw(sets[1], (150, 150, 150))
  draw(points, (31, 90, 200))
  return image


def _kind(examples: np.ndarray, name: str) -> str:
  """'points', 'signals' or 'images', from an array's shape and dtype."""
  if examples.ndim == 2 and examples.dtype != np.uint8:
    return 'points'
  if examples.ndim == 4 and examples.dtype == np.uint8:
    return 'signals' if examples.shape[1] == 1 else 'images'
  raise ValueError(f'{name} must be float points [N, D] or uint8 images '
                   f'[N, H, W, C] (H = 1: 1-D signals), got {examples.dtype} '
                   f'{examples.shape}.')


def display_scale(examples: np.ndarray) -> int:
  """The `save_png` enlargement for a figure of `examples`.

  Images [N, H, W, C] with H > 1 are enlarged by max(1, DISPLAY_HEIGHT // H)
  so small digits stay visible; scatter plots and waveforms, already drawn
  at display size, are not (1).
  """
  examples = np.asarray(examples)
  if _kind(examples, 'examples') != 'images':
    return 1
  return max(1, DISPLAY_HEIGHT // examples.shape[1])


def sample_figure(samples: np.ndarray,
                  reference: np.ndarray | None = None) -> np.ndarray:
  """One uint8 image [H, W, C] showing samples, chosen by their kind.

  Args:
    samples: float [N, D] points, drawn as blue dots (`scatter_image`);
      uint8 [N, 1, T, 1] signals, drawn as waveforms one per row
      (`signal_images`); or uint8 [N, H, W, C] images, tiled into a square
      grid (`image_grid`).
    reference: real points [M, D], drawn in grey under point samples (and
      setting the view with them); ignored for signals and images.

  Returns:
    The unscaled figure; `display_scale(samples)` is its enlargement.
  """
  samples = np.asarray(samples)
  kind = _kind(samples, 'samples')
  if kind == 'points':
    return scatter_image(samples, reference)
  if kind == 'signals':
    return image_grid(signal_images(samples), 1)
  return image_grid(samples)


def label_rows(grid: np.ndarray, labels: Sequence[str], scale: int = 1,
               padding: int = 1) -> np.ndarray:
  """Enlarges a grid of equal rows and names each row in a left margin.

  Args:
    grid: uint8 [H, W, C] (C in {1, 3}), ``len(labels)`` rows of cells
      with `padding` pixels around and between them (`image_grid`).
    labels: one label per row, top to bottom.
    scale: the nearest-neighbour enlargement of `grid`, applied before the
      labels are drawn so that they stay crisp.
    padding: the grid's padding in pixels (before enlargement).

  Returns:
    uint8 [H * scale, margin + W * scale, C]: a white margin with each
    label in black (Pillow's default font), vertically centred on its row,
    left of the enlarged grid.
  """
  grid = np.asarray(grid)
  if grid.ndim != 3 or grid.dtype != np.uint8 or grid.shape[-1] not in (1, 3):
    raise ValueError(f'label_rows expects a uint8 [H, W, C] grid, got '
                     f'{grid.dtype} {grid.shape}.')
  big = grid.repeat(scale, axis=0).repeat(scale, axis=1)
  height, channels = big.shape[0], big.shape[-1]
  mode = 'L' if channels == 1 else 'RGB'
  white, black = (255, 0) if channels == 1 else ((255,) * 3, (0,) * 3)
  probe = ImageDraw.Draw(Image.new(mode, (1, 1)))
  boxes = [probe.textbbox((0, 0), label) for label in labels]
  margin = max(box[2] for box in boxes) + 8
  canvas = Image.new(mode, (margin, height), white)
  draw = ImageDraw.Draw(canvas)
  row = (grid.shape[0] - padding) / len(labels)  # one row and its padding
  for i, (label, box) in enumerate(zip(labels, boxes)):
    centre = (padding / 2 + (i + 0.5) * row) * scale
    draw.text((4, round(centre - (box[1] + box[3]) / 2)), label, fill=black)
  margin_pixels = np.asarray(canvas, np.uint8).reshape(height, margin,
                                                       channels)
  return np.concatenate([margin_pixels, big], axis=1)


def reconstruction_figure(inputs: np.ndarray, outputs: np.ndarray, *,
                          labels: Sequence[str] | None = None,
                          scale: int = 1) -> np.ndarray:
  """One uint8 image [H, W, C] showing inputs and their reconstructions.

  Images [N, H, W, C]: the inputs in one row over their reconstructions in
  the next (`comparison_grid`). Signals [N, 1, T, 1]: waveforms in two
  columns, in reading order the N inputs, then the N reconstructions.

  Args:
    inputs: uint8 [N, H, W, C].
    outputs: uint8, the same shape as `inputs`.
    labels: images only: name the two rows in a left margin (e.g.
      `RECONSTRUCTION_LABELS`), after enlarging the grid by `scale`
      (`label_rows`); then the figure is already at display size.
    scale: the enlargement applied with `labels`.

  Returns:
    Without labels, the unscaled figure; `display_scale(inputs)` is its
    enlargement.
  """
  inputs, outputs = np.asarray(inputs), np.asarray(outputs)
  if inputs.shape != outputs.shape or inputs.dtype != outputs.dtype:
    raise ValueError(f'outputs {outputs.dtype} {outputs.shape} must match '
                     f'inputs {inputs.dtype} {inputs.shape}.')
  kind = _kind(inputs, 'inputs')
  if kind == 'points':
    raise ValueError(f'inputs must be uint8 images [N, H, W, C], got points '
                     f'{inputs.dtype} {inputs.shape}.')
  if kind == 'signals':
    return image_grid(signal_images(np.concatenate([inputs, outputs])), 2)
  grid = comparison_grid([inputs, outputs])
  if labels is None:
    return grid
  if len(labels) != 2:
    raise ValueError(f'labels must name the 2 rows, got {labels!r}.')
  return label_rows(grid, labels, scale)


def histogram_image(reference: np.ndarray, values: np.ndarray, *,
                    bins: int = 60, size: tuple[int, int] = (320, 160),
                    caption: str = '') -> np.ndarray:
  """Two overlaid histograms of scores: uint8 [height, width, 3].

  NumPy and Pillow only: `reference` (e.g. in-distribution scores) as grey
  bars, `values` (e.g. out-of-distribution scores) as a blue outline, both
  normalised to their own counts over the common range of the finite
  values, which the bottom line states (lowest at the left) after
  `caption`. Non-finite values are not drawn.

  Args:
    reference: [N] scores.
    values: [M] scores.
    bins: equal-width bins over the common range.
    size: (width, height) in pixels; the bottom 14 rows hold the text.
  """
  width, height = size
  sets = [np.asarray(a, np.float64).reshape(-1) for a in (reference, values)]
  sets = [a[np.isfinite(a)] for a in sets]
  both = np.concatenate(sets)
  lo, hi = (float(both.min()), float(both.max())) if both.size else (0., 1.)
  if hi <= lo:
    hi = lo + 1.0
  edges = np.linspace(lo, hi, bins + 1)
  plot_h = height - 14
  image = np.full((height, width, 3), 255, np.uint8)
  cols = np.linspace(0, width, bins + 1).astype(int)
  heights = []
  for a in sets:
    counts = np.histogram(a, edges)[0].astype(np.float64)
    heights.append(np.round(counts / max(counts.max(), 1.0) *
                            (plot_h - 2)).astype(int))
  for b in range(bins):  # reference: grey bars
    image[plot_h - heights[0][b]:plot_h, cols[b]:cols[b + 1]] = 170
  previous = plot_h
  for b in range(bins):  # values: blue step outline, 2 px
    top = plot_h - heights[1][b]
    image[max(top - 1, 0):top + 1, cols[b]:cols[b + 1]] = (31, 90, 200)
    y0, y1 = sorted((previous, top))
    image[max(y0 - 1, 0):y1 + 1, max(cols[b] - 1, 0):cols[b] + 1] = (
        31, 90, 200)
    previous = top
  image[plot_h, :] = 0
  pil = Image.fromarray(image)
  text = f'{caption}  [{lo:.4g}, {hi:.4g}]'.strip()
  ImageDraw.Draw(pil).text((2, plot_h + 2), text, fill=(0, 0, 0))
  return np.asarray(pil)


Series = tuple[np.ndarray, np.ndarray]  # (steps int64 [n], values float64 [n])


def curves_panels(series: dict[str, dict[str, Series]]
                  ) -> list[tuple[str, dict[str, Series]]]:
  """The panels `curves_figure` draws: [(metric, {split: series})].

  One panel per metric logged for the 'train' split, 'loss' first, the
  others in the order they were first logged, then one per metric that
  only another split (the periodic evaluation) logged; a metric logged by
  both shares its panel. `CURVES_SKIPPED` names (throughput, example
  counts) get none.
  """
  splits = ['train'] + [s for s in series if s != 'train']
  panels: dict[str, dict[str, Series]] = {}
  if 'loss' in series.get('train', {}):
    panels['loss'] = {}
  for split in splits:
    for name, values in series.get(split, {}).items():
      if name not in CURVES_SKIPPED:
        panels.setdefault(name, {})[split] = values
  return list(panels.items())


def curves_layout(num_panels: int) -> tuple[int, int]:
  """(rows, columns) of `curves_figure`'s panels: `CURVES_COLUMNS` a row."""
  cols = max(1, min(num_panels, CURVES_COLUMNS))
  return max(1, math.ceil(num_panels / cols)), cols


def log_scale(values: np.ndarray) -> bool:
  """Whether `curves_figure` draws these values on a logarithmic axis: the
  finite ones are all positive and span `CURVES_LOG_RATIO` or more."""
  values = np.asarray(values, np.float64)
  values = values[np.isfinite(values)]
  return bool(values.size and values.min() > 0 and
              values.max() >= CURVES_LOG_RATIO * values.min())


def curves_figure(series: dict[str, dict[str, Series]],
                  title: str = '') -> np.ndarray | None:
  """Training curves: one small panel per metric, uint8 [H, W, 3].

  Each panel (`curves_panels`) draws the 'train' values as a line against
  the step and another split's (the periodic evaluation's) as points, each
  split in its own colour, with a legend where a split other than 'train'
  is drawn. Non-finite values are left out; a panel whose finite values
  are all positive and span `CURVES_LOG_RATIO` or more has a logarithmic y
  axis (`log_scale`; the scale is named in its title). Text is drawn as it
  is (no TeX math). Drawn with matplotlib's Agg canvas (no display, no
  pyplot state).

  Args:
    series: {split: {metric: (steps, values)}}, as
      `jaxgen.writers.metric_series` returns.
    title: the figure's title (e.g. the family and the workdir).

  Returns:
    The figure, ``rows * CURVES_PANEL[1] + CURVES_TITLE_HEIGHT`` by
    ``cols * CURVES_PANEL[0]`` pixels (`curves_layout`), or None when there
    is no metric to draw.
  """
  panels = curves_panels(series)
  if not panels:
    return None
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  from matplotlib.ticker import MaxNLocator  # pylint: disable=g-import-not-at-top
  rows, cols = curves_layout(len(panels))
  (pw, ph), dpi = CURVES_PANEL, 100
  width, height = cols * pw, rows * ph + CURVES_TITLE_HEIGHT
  fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi,
               facecolor='white')
  canvas = FigureCanvasAgg(fig)
  fig.text(0.5, 1 - CURVES_TITLE_HEIGHT / 2 / height, title, ha='center',
           va='center', fontsize=10, parse_math=False)
  margins = dict(left=58, right=12, top=24, bottom=36)  # pixels in a panel
  palette = ('tab:blue', 'tab:orange', 'tab:green', 'tab:red', 'tab:purple')
  splits = ['train'] + [s for s in series if s != 'train']
  colors = {s: palette[i % len(palette)] for i, s in enumerate(splits)}
  for i, (name, by_split) in enumerate(panels):
    r, c = divmod(i, cols)
    x0 = c * pw + margins['left']
    y0 = height - CURVES_TITLE_HEIGHT - (r + 1) * ph + margins['bottom']
    ax = fig.add_axes((x0 / width, y0 / height,
                       (pw - margins['left'] - margins['right']) / width,
                       (ph - margins['top'] - margins['bottom']) / height))
    finite = []
    for split, (steps, values) in by_split.items():
      keep = np.isfinite(values)
      steps, values = np.asarray(steps)[keep], np.asarray(values)[keep]
      finite.append(values)
      color = colors[split]
      if split == 'train':
        ax.plot(steps, values, '-', color=color, linewidth=1.2, label=split,
                marker='.' if len(values) == 1 else None)
      else:
        ax.plot(steps, values, 'o', color=color, markersize=3.5, label=split)
    values = np.concatenate(finite)
    log = log_scale(values)
    if log:
      ax.set_yscale('log')
    if not values.size:
      ax.text(0.5, 0.5, 'no finite values', ha='center', va='center',
              transform=ax.transAxes, fontsize=8, color='grey')
    # Titles and labels at fixed places: matplotlib's own placement of
    # them measures every tick label, most of the drawing time.
    centre = (c * pw + (margins['left'] + pw - margins['right']) / 2) / width
    top = height - CURVES_TITLE_HEIGHT - r * ph
    fig.text(centre, (top - margins['top'] / 2) / height,
             name + (' (log scale)' if log else ''), ha='center',
             va='center', fontsize=9, parse_math=False)
    if r == rows - 1 or i + cols >= len(panels):
      fig.text(centre, (top - ph + 5) / height, 'step', ha='center',
               va='bottom', fontsize=8)
    ax.tick_params(labelsize=7)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.grid(True, linewidth=0.4, alpha=0.5)
    if list(by_split) != ['train']:
      ax.legend(fontsize=7, loc='best')
  canvas.draw()
  return np.asarray(canvas.buffer_rgba())[..., :3].copy()
