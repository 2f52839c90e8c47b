"""jaxgen.workdir: atomic writes and reading a run's config."""

import json
import math
import os

import ml_collections
import pytest

from jaxgen import workdir


def test_atomic_write_text_bytes_and_callable(tmp_path):
  path = str(tmp_path / 'a' / 'b.txt')
  assert workdir.atomic_write(path, 'one') == path
  assert open(path).read() == 'one'
  workdir.atomic_write(path, b'\x00\x01')
  assert open(path, 'rb').read() == b'\x00\x01'
  workdir.atomic_write(path, lambda f: f.write(b'xyz'), binary=True)
  assert open(path, 'rb').read() == b'xyz'
  assert not os.path.exists(path + '.tmp')


def test_failed_write_keeps_the_previous_file(tmp_path):
  path = str(tmp_path / 'keep.json')
  workdir.write_json(path, {'a': 1})

  def broken(f):
    f.write('{"a": ')
    raise RuntimeError('killed mid-write')

  with pytest.raises(RuntimeError):
    workdir.atomic_write(path, broken)
  assert json.load(open(path)) == {'a': 1}
  assert not os.path.exists(path + '.tmp')


def test_write_json_strict_nulls_non_finite(tmp_path):
  path = str(tmp_path / 'x.json')
  workdir.write_json(path, {'b': [math.nan, 1.0], 'a': {'c': math.inf}},
                     strict=True)
  text = open(path).read()
  assert json.loads(text) == {'a': {'c': None}, 'b': [None, 1.0]}
  assert text.index('"a"') < text.index('"b"')  # sorted keys


def test_load_config_locked_and_missing(tmp_path):
  with pytest.raises(FileNotFoundError, match='config.json'):
    workdir.load_config(str(tmp_path))
  config = ml_collections.ConfigDict({'family': 'vae', 'train': {'n': 2}})
  workdir.atomic_write(workdir.config_path(str(tmp_path)),
                       config.to_json_best_effort())
  loaded = workdir.load_config(str(tmp_path))
  assert loaded.family == 'vae' and loaded.train.n == 2
  with pytest.raises(AttributeError):
    loaded.train.num_stpes = 3  # locked: typos are errors
