"""Data for jaxgen: sources, per-process batch pipelines, pixel transforms.

A batch is a dict of NumPy arrays ``{'image': uint8 [B,H,W,C], 'label': int32
[B], 'mask': bool [B]}`` (toy 2-D data: ``'point'`` float32 [B,2] instead of
``'image'``). Typical use::

  ds = jaxgen.data.load_dataset(**data_config)
  it = jaxgen.data.train_iterator(ds.splits['train'], batch_size=64, seed=0)
  preprocess, offset_per_dim = jaxgen.data.make_preprocess(
      binarize='none', dequantize=True, value_range='unit')
"""

from jaxgen.data.pipeline import eval_batches
from jaxgen.data.pipeline import num_eval_batches
from jaxgen.data.pipeline import train_iterator
from jaxgen.data.sources import ArraySource
from jaxgen.data.sources import Dataset
from jaxgen.data.sources import KNOWN_NAMES
from jaxgen.data.sources import load_dataset
from jaxgen.data.sources import npz_candidates
from jaxgen.data.sources import num_dims
from jaxgen.data.sources import PointSource
from jaxgen.data.sources import PROJECT_ROOT
from jaxgen.data.sources import resolve_npz_path
from jaxgen.data.sources import Source
from jaxgen.data.sources import TfdsSource
from jaxgen.data.toy import sample_toy
from jaxgen.data.toy import TOY_NAMES
from jaxgen.data.toy import toy_modes
from jaxgen.data.transforms import dequantize
from jaxgen.data.transforms import dynamic_binarize
from jaxgen.data.transforms import fixed_binarize
from jaxgen.data.transforms import make_preprocess
from jaxgen.data.transforms import to_float

__all__ = [
    'ArraySource', 'Dataset', 'KNOWN_NAMES', 'PointSource', 'Source',
    'TOY_NAMES', 'TfdsSource', 'dequantize', 'dynamic_binarize',
    'eval_batches', 'fixed_binarize', 'load_dataset', 'make_preprocess',
    'npz_candidates', 'num_dims', 'num_eval_batches', 'PROJECT_ROOT',
    'resolve_npz_path', 'sample_toy', 'to_float', 'toy_modes',
    'train_iterator',
]
