"""The trainer on toy 2-D points: a family declaring DATA = ('images', 'points').

The GAN family's ring8 preset, shrunk: training, evaluation, the scatter
PNG, float32 samples, and the errors for families and configs that do not
fit point data.
"""

import numpy as np
import pytest

from experiments.configs import gan as gan_config
from jaxgen import train
from jaxgen.errors import ConfigError
from tests import helpers

# They train through the trainer or start processes.
pytestmark = pytest.mark.slow


def _toy_config(**overrides):
  c = gan_config.get_config('ring8')
  c.data.num_points = 600
  c.model.g_hidden = c.model.d_hidden = (8,)
  c.model.latent_dim = 2
  c.train.batch_size = 32
  c.train.num_steps = 2
  c.train.checkpoint_every_steps = 2
  c.train.image_every_steps = 0
  c.train.async_checkpointing = False
  c.eval.batch_size = 40
  c.eval.num_grid_samples = 50
  for dotted, value in overrides.items():
    node = c
    *parents, leaf = dotted.split('__')
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


@pytest.mark.slow
def test_a_points_family_trains_evaluates_and_draws(tmp_path):
  exp = train.Experiment(_toy_config(), str(tmp_path))
  assert exp.points and exp.example_shape == (2,) and exp.num_dims == 2
  assert '(2,)' in exp.describe()
  state = exp.train()
  assert int(state.step) == 2
  results = exp.evaluate(state)
  assert results['num_examples'] == 60  # 10% of 600 points
  assert all(np.isfinite(v) for v in results.values())
  samples = exp.sample_images(state, 7)
  assert samples.shape == (7, 2) and samples.dtype == np.float32
  paths = exp.write_images(state)
  assert [p.rsplit('/', 1)[1] for p in paths] == ['samples_0000002.png']
  from PIL import Image  # pylint: disable=g-import-not-at-top
  image = np.asarray(Image.open(paths[0]))
  assert image.shape == (256, 256, 3)
  # Grey data dots and blue sample dots are both drawn.
  assert ((image == (150, 150, 150)).all(-1)).any()
  assert ((image == (31, 90, 200)).all(-1)).any()


def test_example_batch_for_points_and_images():
  identity = lambda batch, key: batch
  points = train.example_batch((2,), identity)
  assert points['point'].shape == (1, 2) and 'image' not in points
  assert points['point'].dtype == np.float32
  images = train.example_batch((8, 8, 1), identity)
  assert images['image'].shape == (1, 8, 8, 1) and 'point' not in images


def test_image_family_on_points_is_refused(tmp_path):
  config = helpers.smoke_config()
  config.data.name = 'toy:ring8'
  config.data.splits.train = 'all[:80%]'
  config.data.splits.validation = ''
  config.data.splits.test = 'all[80%:]'
  config.data.num_points = 100
  config.data.binarize = 'none'
  config.eval.periodic_split = ''
  with pytest.raises(ConfigError, match=r"gives points, not images; family "
                     r"'vae' models images"):
    train.Experiment(config, str(tmp_path))


def test_point_shape_mismatch_names_the_field(tmp_path):
  with pytest.raises(ConfigError, match=r'config.model.image_shape=\(3,\).*'
                     r'points are \(2,\)'):
    train.Experiment(_toy_config(model__image_shape=(3,)), str(tmp_path))
