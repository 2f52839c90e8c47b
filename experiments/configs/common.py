"""Shared pieces of every experiment config.

A config is a locked `ml_collections.ConfigDict`: overriding a key that
does not exist (``--config.train.num_step=10``) is an error, not a silent
no-op. Family configs start from `base_config` and fill ``config.model``.
"""

from __future__ import annotations

import ml_collections

# The shared MNIST subset, read at run time. A relative npz path resolves
# against the working directory, then against the checkout root (the folder
# holding the jaxgen package; `jaxgen.data.resolve_npz_path`), so the preset
# runs from any working directory of a checkout.
MNIST8K = '../shared/data/mnist/mnist8k.npz'

DATASETS = ('digits', 'mnist8k', 'smoke')

# Colour crops of scikit-image's bundled photos (`jaxgen.data.photos`),
# for the families that take RGB images of any content (image-to-image).
PHOTO_DATASETS = ('photos',)
# The photos' data.name: 32x32 crops of each photo downscaled to a shorter
# side of 128, on a grid of step 8.
PHOTOS = 'skimage_photos:32:128:8'

# The papers' datasets, read from prepared TFDS array_record data (never
# downloaded at run time; README.md, "Reproducing the papers on a GPU or
# TPU"). A family config adds those its model fits to its dataset options.
PAPER_DATASETS = ('mnist', 'binarized_mnist', 'cifar10')

# (H, W, C) of each dataset preset.
IMAGE_SHAPES = {
    'digits': (8, 8, 1), 'smoke': (8, 8, 1), 'mnist8k': (28, 28, 1),
    'mnist': (28, 28, 1), 'binarized_mnist': (28, 28, 1),
    'cifar10': (32, 32, 3), 'photos': (32, 32, 3),
}

# Splits of the papers' datasets: the TFDS splits whole.
_PAPER_SPLITS = {
    'mnist': dict(train='train', validation='', test='test'),  # 60,000/10,000
    # The fixed binarization of Larochelle & Murray 2011: 50,000/10,000/10,000.
    'binarized_mnist': dict(train='train', validation='validation',
                            test='test'),
    'cifar10': dict(train='train', validation='', test='test'),  # 50k/10k
}


def data_config(dataset: str) -> ml_collections.ConfigDict:
  """``config.data`` for a named preset.

  - 'digits': sklearn's 1,797 8x8 digits (bundled, no download), shuffled
    with split_seed then split 70/10/20 into train/validation/test.
  - 'mnist8k': 8,000 MNIST digits from ../shared; the canonical split of
    its README: rows 0-6,999 train, 7,000-7,999 test, in file order.
  - 'smoke': digits with tiny splits, for tests.
  - 'photos': 32x32 RGB crops of scikit-image's bundled colour photos
    (`PHOTOS`), split by whole photo: train on astronaut, coffee, rocket,
    motorcycle, immunohistochemistry and retina (1,313 crops), test on
    chelsea (273 crops of a photo never seen in training).
  - 'mnist' (60,000 train / 10,000 test), 'binarized_mnist' (the fixed
    binarization of Larochelle & Murray 2011, 50,000 / 10,000 validation /
    10,000) and 'cifar10' (50,000 / 10,000): the TFDS datasets of the same
    names and their own splits, from prepared array_record data in
    ``data_dir`` ('' = ``TFDS_DATA_DIR`` or ~/tensorflow_datasets).
  """
  known = DATASETS + PHOTO_DATASETS + PAPER_DATASETS
  if dataset not in known:
    raise ValueError(f'dataset {dataset!r} is not one of {known}')
  d = ml_collections.ConfigDict()
  d.name = 'digits'  # 'digits' | 'npz:PATH' | TFDS name | 'toy:NAME'
  d.data_dir = ''  # TFDS data_dir ('' = TFDS default / TFDS_DATA_DIR)
  # Split specs in TFDS syntax; array sources have one pseudo-split 'all'.
  d.splits = ml_collections.ConfigDict(dict(
      train='all[:70%]', validation='all[70%:80%]', test='all[80%:]'))
  d.shuffle_before_split = True  # permute rows with split_seed first
  d.split_seed = 0
  d.binarize = 'dynamic'  # 'none' | 'dynamic' (keyed, each step) | 'fixed'
  d.binarize_seed = 0  # for 'fixed'
  d.dequantize = False  # uniform dequantization for continuous densities
  d.value_range = 'unit'  # 'unit' [0, 1] | 'symmetric' [-1, 1]
  d.num_points = 50_000  # toy 2-D sources only
  if dataset == 'mnist8k':
    d.name = 'npz:' + MNIST8K
    d.splits = ml_collections.ConfigDict(dict(
        train='all[0:7000]', validation='', test='all[7000:8000]'))
    d.shuffle_before_split = False
  elif dataset == 'smoke':
    d.splits = ml_collections.ConfigDict(dict(
        train='all[:256]', validation='all[256:320]', test='all[320:400]'))
  elif dataset == 'photos':
    d.name = PHOTOS
    # Photo names (jaxgen.data.photos.PHOTOS); a photo in one split only.
    d.splits = ml_collections.ConfigDict(dict(
        train='astronaut+coffee+rocket+motorcycle+immunohistochemistry'
        '+retina', validation='', test='chelsea'))
    d.shuffle_before_split = False  # split by photo, not by row
  elif dataset in PAPER_DATASETS:
    d.name = dataset
    d.splits = ml_collections.ConfigDict(_PAPER_SPLITS[dataset])
    d.shuffle_before_split = False  # TFDS splits are used as they are
  return d


def base_config(family: str, dataset: str) -> ml_collections.ConfigDict:
  """Everything but ``config.model``, with defaults for `dataset`."""
  c = ml_collections.ConfigDict()
  c.family = family  # a key of jaxgen.models.FAMILIES
  c.seed = 0  # the one root key: split into init/train/eval/sample
  c.data = data_config(dataset)
  c.model = ml_collections.ConfigDict()

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = 'adam'  # 'adam' | 'adamw' | 'sgd' | 'rmsprop'
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = 'constant'  # 'constant' | 'cosine' (to 0)
  c.optimizer.warmup_steps = 0  # linear warm-up from 0
  c.optimizer.b1 = 0.9
  c.optimizer.b2 = 0.999
  c.optimizer.eps = 1e-8
  c.optimizer.weight_decay = 0.0  # adamw only
  c.optimizer.momentum = 0.0  # sgd / rmsprop
  c.optimizer.grad_clip_norm = 0.0  # 0 = no clipping

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 128  # global; a multiple of the device count
  c.train.num_steps = 5000
  c.train.log_every_steps = 100  # metrics.jsonl / TensorBoard / progress bar
  c.train.eval_every_steps = 1000  # 0 = only at the end
  c.train.image_every_steps = 0  # sample grids; 0 = only at the end
  c.train.checkpoint_every_steps = 1000
  c.train.max_to_keep = 3
  c.train.async_checkpointing = True
  c.train.ema_decay = 0.0  # 0 = no EMA of the parameters
  c.train.profile_steps = 0  # steps traced into <workdir>/profile; 0 = off
  # 'float32' or 'bfloat16': the Net's activations and matmuls in training
  # (parameters, optimizer state, losses and evaluation stay float32).
  c.train.compute_dtype = 'float32'

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 200  # global; a multiple of the device count
  c.eval.split = 'test'  # final evaluation and `--mode=evaluate`
  c.eval.periodic_split = 'validation'  # during training ('' = none)
  # Named arguments of the family's log_likelihood; families fill this.
  c.eval.estimators = ml_collections.ConfigDict()
  c.eval.final_estimators = ()  # names from estimators, at the end
  c.eval.periodic_estimators = ()  # names from estimators, during training
  c.eval.use_ema = True  # evaluate/sample the EMA params when train has one
  # Names of jaxgen.evaluations.EVALUATIONS, run after the final evaluation
  # and by --mode=evaluate, e.g. ('code_usage',); their fields go into the
  # evaluation JSON.
  c.eval.evaluations = ()
  # Keyword arguments of a named evaluation: {name: {option: value}}.
  c.eval.evaluation_options = ml_collections.ConfigDict()
  c.eval.num_grid_samples = 64

  c.parallel = ml_collections.ConfigDict()
  c.parallel.num_processes = 1  # > 1 starts jax.distributed
  c.parallel.process_id = 0
  c.parallel.coordinator_address = ''  # 'host:port' of process 0
  c.parallel.local_device_count = 0  # CPU only: emulate devices per process

  if not c.data.splits.validation:
    # No validation rows (mnist8k's canonical split, the papers' mnist and
    # cifar10): periodic evaluation reads the test split, and nothing is
    # selected or stopped on it.
    c.eval.periodic_split = 'test'
  return c


def exact_estimator(c: ml_collections.ConfigDict) -> None:
  """Evaluation of a family whose log_likelihood is exact (no options)."""
  c.eval.estimators = {'exact': {}}
  c.eval.final_estimators = ('exact',)
  c.eval.periodic_estimators = ('exact',)


def pixel_data(c: ml_collections.ConfigDict, likelihood: str) -> None:
  """Binary likelihoods see dynamically binarized pixels, 8-bit ones the
  raw pixels (the model reads pixel / 255)."""
  c.data.binarize = 'dynamic' if likelihood == 'bernoulli' else 'none'
  c.data.value_range = 'unit'


def finalize(c: ml_collections.ConfigDict,
             dataset: str) -> ml_collections.ConfigDict:
  """Applies the 'smoke' preset's tiny schedule last, then locks.

  'binarized_mnist' holds binary pixels already (stored 0/1, read as
  0/255): a family that asked for dynamic binarization reads them as they
  are (binarize 'none'); one that asked for 8-bit data cannot use them.
  """
  if dataset == 'binarized_mnist':
    if c.data.binarize == 'none':
      raise ValueError(
          'dataset binarized_mnist holds binary pixels, but this '
          f'{c.family} config models 8-bit data (config.data.binarize='
          "'none'); use 'mnist' for 8-bit MNIST.")
    c.data.binarize = 'none'  # the fixed binarization is in the records
  if dataset == 'smoke':
    c.train.batch_size = 32
    c.train.num_steps = 4
    c.train.log_every_steps = 2
    c.train.eval_every_steps = 0
    c.train.checkpoint_every_steps = 2
    c.train.async_checkpointing = False
    c.eval.batch_size = 32
    c.eval.num_grid_samples = 4
  return c.lock()


# While `declared_options` runs: the (allowed, defaults) of each parse_arg.
_recorded: list[tuple[dict, dict]] | None = None


def parse_arg(arg: str, allowed: dict[str, tuple[str, ...]],
              defaults: dict[str, str]) -> dict[str, str]:
  """Parses 'a,b,c' into {slot: option}, each option from `allowed[slot]`.

  e.g. parse_arg('mnist8k,conv', {'dataset': DATASETS, 'arch': ('mlp',
  'conv')}, {'dataset': 'digits', 'arch': 'mlp'}) ->
  {'dataset': 'mnist8k', 'arch': 'conv'}.
  """
  if _recorded is not None:
    _recorded.append(({s: tuple(o) for s, o in allowed.items()},
                      dict(defaults)))
  out = dict(defaults)
  for token in filter(None, (arg or '').split(',')):
    slots = [s for s, opts in allowed.items() if token in opts]
    if not slots:
      known = ', '.join(f'{s}: {"|".join(o)}' for s, o in allowed.items())
      raise ValueError(f'config argument {token!r} is not known ({known}).')
    out[slots[0]] = token
  return out


def declared_options(get_config) -> tuple[dict[str, tuple[str, ...]],
                                          dict[str, str]]:
  """The options a config file's ``get_config`` accepts, and its defaults.

  Calls ``get_config('')`` and returns the ``(allowed, defaults)`` it
  passed to `parse_arg` (its first call), so listings are derived from what
  the config actually parses; ``({}, {})`` for a get_config that does not
  use parse_arg. A default of '' means the config picks one per dataset.
  """
  global _recorded
  _recorded = []
  try:
    get_config('')
    calls = _recorded
  finally:
    _recorded = None
  return calls[0] if calls else ({}, {})
