"""Drawing: grids, waveforms, scatter plots, PNGs and the trainer's figures."""

import numpy as np
import pytest
from PIL import Image

from jaxgen import images


def _cells(n, h, w, value_of=lambda i: i):
  return np.stack([np.full((h, w, 1), value_of(i), np.uint8)
                   for i in range(n)])


def test_image_grid_layout_and_padding():
  grid = images.image_grid(_cells(5, 2, 3), num_cols=3, padding=1,
                           pad_value=255)
  assert grid.shape == (2 * 3 + 1, 3 * 4 + 1, 1) and grid.dtype == np.uint8
  # Cell i sits at row 1 + (i // 3) * 3, column 1 + (i % 3) * 4.
  for i in range(5):
    y, x = 1 + (i // 3) * 3, 1 + (i % 3) * 4
    np.testing.assert_array_equal(grid[y:y + 2, x:x + 3, 0], i)
  assert (grid[4:6, 9:12] == 255).all()  # the empty sixth cell
  assert (grid[0] == 255).all() and (grid[:, 0] == 255).all()  # borders
  assert (grid[3] == 255).all() and (grid[:, 4] == 255).all()  # gutters
  # Default: ceil(sqrt(N)) columns, mid-grey padding.
  square = images.image_grid(_cells(10, 4, 4))
  assert square.shape == (3 * 5 + 1, 4 * 5 + 1, 1)
  assert square[0, 0, 0] == 128
  with pytest.raises(ValueError, match='uint8'):
    images.image_grid(_cells(5, 2, 3).astype(np.float32))


def test_comparison_grid_puts_each_row_on_its_own_line():
  top, bottom = _cells(4, 2, 2), _cells(4, 2, 2, lambda i: 100 + i)
  grid = images.comparison_grid([top, bottom], padding=0)
  assert grid.shape == (4, 8, 1)
  np.testing.assert_array_equal(grid[0, ::2, 0], [0, 1, 2, 3])
  np.testing.assert_array_equal(grid[2, ::2, 0], [100, 101, 102, 103])


@pytest.mark.parametrize('channels', [1, 3])
def test_save_png_round_trips_and_scales(tmp_path, channels):
  image = np.random.default_rng(0).integers(0, 256, (5, 7, channels),
                                            dtype=np.uint8)
  path = images.save_png(str(tmp_path / 'sub' / 'g.png'), image, scale=3)
  assert path == str(tmp_path / 'sub' / 'g.png')
  loaded = np.asarray(Image.open(path))
  assert loaded.shape[:2] == (15, 21)
  loaded = loaded.reshape(15, 21, channels)
  np.testing.assert_array_equal(loaded[::3, ::3], image)
  np.testing.assert_array_equal(loaded[2::3, 2::3], image)  # nearest
  assert [p.name for p in (tmp_path / 'sub').iterdir()] == ['g.png']


def test_signal_images_draw_connected_waveforms():
  signals = np.array([0, 255, 255, 128], np.uint8).reshape(1, 1, 4, 1)
  img = images.signal_images(signals, height=5)
  assert img.shape == (1, 5, 4, 1) and img.dtype == np.uint8
  col = img[0, :, :, 0] > 0
  np.testing.assert_array_equal(col[:, 0], [0, 0, 0, 0, 1])  # value 0: bottom
  np.testing.assert_array_equal(col[:, 1], [1, 1, 1, 1, 1])  # the jump drawn
  np.testing.assert_array_equal(col[:, 2], [1, 0, 0, 0, 0])  # value 255: top
  np.testing.assert_array_equal(col[:, 3], [1, 1, 1, 0, 0])  # 255 -> 128
  with pytest.raises(ValueError, match=r'\[N, 1, T, 1\]'):
    images.signal_images(np.zeros((2, 3, 4, 1), np.uint8))


def test_scatter_image_places_points():
  points = np.array([[0.0, 0.0], [1.0, 1.0], [np.nan, 0.0], [5.0, 0.0]])
  reference = np.array([[-1.0, -1.0]])
  image = images.scatter_image(points, reference, size=100, extent=2.0)
  assert image.shape == (100, 100, 3) and image.dtype == np.uint8
  blue, grey = (31, 90, 200), (150, 150, 150)
  # (x, y) -> column floor((x + 2) / 4 * 100), row floor((2 - y) / 4 * 100).
  np.testing.assert_array_equal(image[50, 50], blue)  # the origin
  np.testing.assert_array_equal(image[25, 75], blue)  # (1, 1): up and right
  np.testing.assert_array_equal(image[75, 25], grey)  # (-1, -1)
  # NaN and out-of-view points draw nothing: 3 dots of 2x2 pixels.
  ink = (image != 255).any(-1) & ~(image == 225).all(-1)
  assert ink.sum() == 12
  with pytest.raises(ValueError, match='points'):
    images.scatter_image(np.zeros((3,)))


def test_scatter_image_default_view_holds_both_sets():
  points = np.array([[0.5, 0.0]])
  reference = np.array([[-3.0, 2.0]])
  image = images.scatter_image(points, reference, size=110)
  # extent = 1.1 * 3: x = -3 lands in column floor(0.3 / 6.6 * 110) = 5.
  np.testing.assert_array_equal(image[int((3.3 - 2.0) / 6.6 * 110), 5],
                                (150, 150, 150))
  np.testing.assert_array_equal(image[55, int(3.8 / 6.6 * 110)],
                                (31, 90, 200))


def test_sample_figure_of_points_is_the_scatter_over_the_reference():
  rng = np.random.default_rng(0)
  samples = rng.normal(size=(40, 2)).astype(np.float32)
  reference = rng.normal(size=(30, 2)).astype(np.float32) + 4.0
  figure = images.sample_figure(samples, reference)
  np.testing.assert_array_equal(figure,
                                images.scatter_image(samples, reference))
  assert ((figure == (150, 150, 150)).all(-1)).any()
  assert ((figure == (31, 90, 200)).all(-1)).any()
  alone = images.sample_figure(samples)
  assert not ((alone == (150, 150, 150)).all(-1)).any()
  assert images.display_scale(samples) == 1


def test_sample_figure_of_signals_draws_one_waveform_per_row():
  t = np.arange(32)
  signals = np.stack([(t * 8) % 256, 255 - (t * 8) % 256, np.full(32, 128)])
  signals = signals.astype(np.uint8).reshape(3, 1, 32, 1)
  figure = images.sample_figure(signals)
  assert figure.shape == (3 * 65 + 1, 32 + 2, 1)
  waves = images.signal_images(signals)
  for i in range(3):
    np.testing.assert_array_equal(
        figure[1 + 65 * i:65 * (i + 1), 1:33], waves[i])
  assert images.display_scale(signals) == 1


def test_sample_figure_of_images_is_a_square_grid_unaffected_by_reference():
  samples = _cells(10, 8, 8)
  figure = images.sample_figure(samples)
  np.testing.assert_array_equal(figure, images.image_grid(samples))
  assert figure.shape == (3 * 9 + 1, 4 * 9 + 1, 1)
  np.testing.assert_array_equal(
      images.sample_figure(samples, reference=_cells(3, 8, 8)), figure)


def test_reconstruction_figure_of_images_puts_inputs_over_outputs():
  inputs, outputs = _cells(5, 4, 4), _cells(5, 4, 4, lambda i: 200 + i)
  figure = images.reconstruction_figure(inputs, outputs)
  assert figure.shape == (2 * 5 + 1, 5 * 5 + 1, 1)
  np.testing.assert_array_equal(figure[1, 1::5, 0], [0, 1, 2, 3, 4])
  np.testing.assert_array_equal(figure[6, 1::5, 0],
                                [200, 201, 202, 203, 204])


def test_labelled_reconstruction_figure_names_each_row_beside_it():
  inputs, outputs = _cells(3, 4, 4, lambda i: 255), _cells(3, 4, 4)
  plain = images.reconstruction_figure(inputs, outputs)
  figure = images.reconstruction_figure(
      inputs, outputs, labels=images.RECONSTRUCTION_LABELS, scale=8)
  height, width = plain.shape[0] * 8, plain.shape[1] * 8
  margin = figure.shape[1] - width
  assert figure.shape == (height, margin + width, 1) and margin > 8
  # The grid, enlarged, right of the margin.
  np.testing.assert_array_equal(
      figure[:, margin:], plain.repeat(8, axis=0).repeat(8, axis=1))
  # Ink in the margin: 'data' beside the top row only, 'reconstruction'
  # beside the bottom row only (rows split at the middle gutter).
  ink = (figure[:, :margin, 0] < 128).any(axis=1)
  middle = height // 2
  assert ink[:middle].any() and ink[middle:].any()
  top, bottom = np.flatnonzero(ink[:middle]), np.flatnonzero(ink[middle:])
  assert top.min() > 8 and bottom.max() + middle < height - 8
  # 'reconstruction' is the longer word: its ink reaches further right.
  assert (np.flatnonzero((figure[middle:, :margin, 0] < 128).any(axis=0))
          .max() > np.flatnonzero((figure[:middle, :margin, 0] < 128)
                                  .any(axis=0)).max())
  with pytest.raises(ValueError, match='2 rows'):
    images.reconstruction_figure(inputs, outputs, labels=('data',))


def test_reconstruction_figure_of_signals_reads_inputs_then_outputs():
  inputs = np.zeros((3, 1, 16, 1), np.uint8)  # flat at the bottom row
  outputs = np.full((3, 1, 16, 1), 255, np.uint8)  # flat at the top row
  figure = images.reconstruction_figure(inputs, outputs)
  assert figure.shape == (3 * 65 + 1, 2 * 17 + 1, 1)
  # Cells in reading order: 3 inputs (ink in a cell's last row), then 3
  # outputs (ink in its first row).
  for cell in range(6):
    r, c = divmod(cell, 2)
    top, left = 1 + 65 * r, 1 + 17 * c
    ink_row = top + 63 if cell < 3 else top
    assert (figure[ink_row, left:left + 16, 0] == 255).all()
    assert (figure[top + 1:top + 63, left:left + 16, 0] == 0).all()


@pytest.mark.parametrize('shape,scale', [((8, 8, 1), 8), ((28, 28, 1), 2),
                                         ((32, 32, 3), 2), ((64, 64, 3), 1),
                                         ((100, 7, 1), 1), ((1, 256, 1), 1)])
def test_display_scale_enlarges_small_images_only(shape, scale):
  assert images.display_scale(np.zeros((2,) + shape, np.uint8)) == scale


def test_figures_name_the_bad_argument():
  with pytest.raises(ValueError, match='samples'):
    images.sample_figure(np.zeros((4, 8, 8, 1), np.float32))
  with pytest.raises(ValueError, match='samples'):
    images.sample_figure(np.zeros((4, 8, 8), np.uint8))
  with pytest.raises(ValueError, match='outputs'):
    images.reconstruction_figure(_cells(2, 4, 4), _cells(3, 4, 4))
  with pytest.raises(ValueError, match='inputs'):
    images.reconstruction_figure(np.zeros((2, 2)), np.zeros((2, 2)))
  with pytest.raises(ValueError, match='examples'):
    images.display_scale(np.zeros((3,), np.float32))


@pytest.mark.parametrize('num_panels, layout', [
    (1, (1, 1)), (3, (1, 3)), (4, (2, 3)), (7, (3, 3))])
def test_curves_figure_has_one_panel_per_metric(num_panels, layout):
  steps = np.arange(1, 11)
  series = {'train': {f'm{i}': (steps, np.linspace(1.0, 2.0, 10) * (i + 1))
                      for i in range(num_panels)}}
  assert images.curves_layout(num_panels) == layout
  figure = images.curves_figure(series, 'title')
  rows, cols = layout
  assert figure.dtype == np.uint8 and figure.shape == (
      rows * images.CURVES_PANEL[1] + images.CURVES_TITLE_HEIGHT,
      cols * images.CURVES_PANEL[0], 3)
  # Each panel has ink (axes and a curve); an unused cell is blank.
  top = images.CURVES_TITLE_HEIGHT
  width, height = images.CURVES_PANEL
  for cell in range(rows * cols):
    r, c = divmod(cell, cols)
    panel = figure[top + r * height:top + (r + 1) * height,
                   c * width:(c + 1) * width]
    assert (panel.min() < 128) == (cell < num_panels), cell


def test_curves_figure_draws_nothing_without_a_metric():
  steps = np.arange(3)
  assert images.curves_figure({}) is None
  assert images.curves_figure({'train': {'steps_per_sec': (
      steps, np.ones(3))}}) is None


def test_log_scale_for_positive_values_over_two_decades():
  assert images.log_scale([1e-3, 0.1, np.nan, np.inf])
  assert images.log_scale([2.0, 200.0])
  assert not images.log_scale([2.0, 199.0])
  assert not images.log_scale([0.0, 1e-3, 10.0])
  assert not images.log_scale([-1e-3, -10.0])
  assert not images.log_scale([np.nan])


def test_curves_panels_use_a_log_scale_for_positive_values_over_decades():
  """The panel title names the scale: checked through the pixels of a
  figure whose one panel spans four decades against one that does not."""
  steps = np.arange(1, 6)
  wide = images.curves_figure({'train': {'loss': (
      steps, 10.0 ** -np.arange(5.0))}})
  narrow = images.curves_figure({'train': {'loss': (
      steps, 1.0 + np.arange(5.0))}})
  negative = images.curves_figure({'train': {'loss': (
      steps, -10.0 ** -np.arange(5.0))}})
  band = slice(images.CURVES_TITLE_HEIGHT, images.CURVES_TITLE_HEIGHT + 22)

  def title_ink(figure):
    return int((figure[band] < 128).any(axis=(0, 2)).sum())

  # 'loss (log scale)' is a wider title than 'loss'.
  assert title_ink(wide) > title_ink(narrow) + 20
  assert title_ink(negative) == title_ink(narrow)
