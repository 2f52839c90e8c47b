"""The papers' dataset presets (mnist, binarized_mnist, cifar10): each builds,
reads its TFDS dataset with the papers' splits, and fits its family.

Offline: TFDS is mocked (`tfds.testing.mock_data`); the split sizes are
checked on stand-in sources of the real datasets' lengths, nothing is
trained.
"""

import importlib
import math
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments.configs import common
from jaxgen import data
from jaxgen import models
from jaxgen import train

# family -> the paper presets it must offer (config arguments), at least.
REQUIRED = {
    'vae': ('mnist', 'binarized_mnist'),
    'made': ('binarized_mnist', 'binarized_mnist,agnostic'),
    'nade': ('binarized_mnist',),
    'pixelcnn': ('binarized_mnist', 'cifar10'),
    'gated_pixelcnn': ('binarized_mnist', 'cifar10'),
    'pixelcnnpp': ('cifar10',),
    'realnvp': ('mnist', 'cifar10'),
    'glow': ('mnist', 'cifar10'),
    'ddpm': ('cifar10',),
    'gan': ('mnist', 'cifar10'),
}
# Variants checked beside the plain presets.
VARIANTS = {
    'vae': ('mnist,gaussian', 'mnist,logistic', 'mnist,conv'),
    'made': ('binarized_mnist,agnostic',),
    'gan': ('cifar10,wgan-gp',),
}


def _offered(family):
  """The paper datasets `family`'s config declares as dataset options."""
  module = importlib.import_module(f'experiments.configs.{family}')
  allowed, _ = common.declared_options(module.get_config)
  return tuple(d for d in allowed.get('dataset', ())
               if d in common.PAPER_DATASETS)


# Every paper preset any registered family offers (so a new one is tested
# without editing this file), and the variants above.
CASES = sorted({(family, arg) for family in models.FAMILIES
                for arg in _offered(family) + VARIANTS.get(family, ())})

# The published sizes of the TFDS splits, and the papers' train/test use.
TFDS_SIZES = {
    'mnist': {'train': 60_000, 'test': 10_000},
    'binarized_mnist': {'train': 50_000, 'validation': 10_000,
                        'test': 10_000},
    'cifar10': {'train': 50_000, 'test': 10_000},
}
SHAPES = {'mnist': (28, 28, 1), 'binarized_mnist': (28, 28, 1),
          'cifar10': (32, 32, 3)}
# Families that model binary pixels on MNIST (dynamic binarization).
BINARY = {('vae', 'mnist'), ('vae', 'mnist,conv')}


def _config(family, arg):
  return importlib.import_module(
      f'experiments.configs.{family}').get_config(arg)


def _dataset_name(arg):
  return arg.split(',')[0]


class _StandIn:
  """A TFDS data source of `length` records, built on access."""

  def __init__(self, length, shape, binary):
    self._length, self._shape, self._binary = length, shape, binary

  def __len__(self):
    return self._length

  def __getitem__(self, index):
    del index
    record = {'image': np.ones(self._shape, np.uint8)}
    if not self._binary:
      record['label'] = np.int64(3)
    return record


def _stand_ins(builder, split, **kwargs):
  del kwargs
  name = builder.name
  return _StandIn(TFDS_SIZES[name][split], SHAPES[name],
                  name == 'binarized_mnist')


@pytest.mark.parametrize('family,arg', CASES)
def test_preset_reads_the_papers_splits(family, arg):
  config = _config(family, arg)
  name = _dataset_name(arg)
  assert config.family == family
  assert config.data.name == name
  assert not config.data.shuffle_before_split
  assert tuple(config.model.image_shape) == SHAPES[name]
  with tfds.testing.mock_data(as_data_source_fn=_stand_ins):
    exp = train.Experiment(config, tempfile.mkdtemp())
  sizes = {split: len(source) for split, source in exp.dataset.splits.items()}
  assert sizes == TFDS_SIZES[name]
  if 'validation' not in sizes:  # nothing to select on: test, or none
    assert config.eval.periodic_split in ('test', '')


@pytest.mark.parametrize('family,arg', CASES)
def test_preset_loads_mock_tfds_data(family, arg):
  """Under `tfds.testing.mock_data`: the trainer's checks pass and a batch
  comes out in the model's shape."""
  config = _config(family, arg)
  with tfds.testing.mock_data(num_examples=6):
    exp = train.Experiment(config, tempfile.mkdtemp())
    batch = next(data.train_iterator(exp.dataset.splits['train'],
                                     batch_size=4, seed=0))
  assert batch['image'].shape == (4,) + tuple(config.model.image_shape)
  assert batch['image'].dtype == np.uint8


KNOWN = [(family, arg) for family, args in REQUIRED.items()
         for arg in args + VARIANTS.get(family, ())]


@pytest.mark.parametrize('family,arg', KNOWN)
def test_pixels_are_what_the_family_models(family, arg):
  config = _config(family, arg)
  name = _dataset_name(arg)
  d = config.data
  if name == 'binarized_mnist':
    # The fixed binarization is in the records: read as they are.
    assert d.binarize == 'none' and not d.dequantize
  elif (family, arg) in BINARY:
    assert d.binarize == 'dynamic'
  else:  # 8-bit data (dequantized for the flows' continuous densities)
    assert d.binarize == 'none'
    assert d.dequantize == (family in ('realnvp', 'glow') or
                            arg == 'mnist,gaussian')


def test_binarized_mnist_refuses_a_model_of_8_bit_pixels():
  for family, arg in (('vae', 'binarized_mnist,gaussian'),
                      ('pixelcnn', 'binarized_mnist,categorical')):
    with pytest.raises(ValueError, match='binarized_mnist holds binary'):
      _config(family, arg)


def test_the_papers_families_offer_their_presets():
  for family, args in REQUIRED.items():
    for arg in args:
      assert (family, arg) in CASES, (family, arg)


@pytest.mark.slow
@pytest.mark.parametrize('family,arg', CASES)
def test_preset_network_fits_its_images(family, arg):
  """The net initialises on the preset's image shape (shapes only)."""
  config = _config(family, arg)
  fam = models.get_family(family)
  net = train.make_net(fam, config.model)
  shape = tuple(config.model.image_shape)
  batch = {'image': jnp.zeros((2,) + shape), 'label': jnp.zeros((2,), int),
           'mask': jnp.ones((2,), bool)}
  params = jax.eval_shape(lambda k: fam.init(k, batch, net=net),
                          jax.random.key(0))
  assert sum(math.prod(x.shape) for x in jax.tree.leaves(params)) > 0


@pytest.mark.slow
def test_trains_and_evaluates_on_fixed_binarized_records(tmp_path):
  """binarized_mnist's 0/1 records through the trainer, end to end: read as
  they are (binarize 'none'), modelled by a Bernoulli MADE."""
  bits = np.random.default_rng(0).integers(0, 2, (16, 28, 28, 1), np.uint8)

  def as_data_source(builder, split, **kwargs):
    del builder, split, kwargs
    return [{'image': b} for b in bits]

  config = _config('made', 'binarized_mnist')
  config.model.hidden_dims = (16,)
  config.train.num_steps = 2
  config.train.batch_size = config.eval.batch_size = 8
  config.train.eval_every_steps = 0
  config.train.checkpoint_every_steps = 2
  config.train.async_checkpointing = False
  config.eval.num_grid_samples = 4
  with tfds.testing.mock_data(as_data_source_fn=as_data_source):
    exp = train.Experiment(config, str(tmp_path))
    assert exp.dataset.pixel_levels == 2
    batch = next(data.train_iterator(exp.dataset.splits['train'],
                                     batch_size=16, seed=0))
    np.testing.assert_array_equal(np.sort(batch['image'], 0),
                                  np.sort(bits * 255, 0))
    state = exp.train()
    results = exp.evaluate(state)
  assert int(state.step) == 2
  assert results['num_examples'] == 16
  assert np.isfinite(results['single/nll_nats'])
