"""Shared fixtures for the data tests."""

import pathlib

import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
MNIST8K_REL = '../shared/data/mnist/mnist8k.npz'  # relative to REPO_ROOT.


@pytest.fixture
def mnist8k_name(monkeypatch):
  """'npz:../shared/...' with the working directory at the repo root."""
  if not (REPO_ROOT / MNIST8K_REL).is_file():
    pytest.skip(f'{(REPO_ROOT / MNIST8K_REL).resolve()} is absent '
                '(the shared MNIST subset lives outside the repository).')
  monkeypatch.chdir(REPO_ROOT)
  return 'npz:' + MNIST8K_REL


@pytest.fixture
def small_npz(tmp_path):
  """An npz of 50 random 6x5 grayscale images with labels 0..4 (row % 5)."""
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, size=(50, 6, 5), dtype=np.uint8)
  labels = (np.arange(50) % 5).astype(np.int64)
  path = tmp_path / 'small.npz'
  np.savez(path, images=images, labels=labels)
  return path, images, labels
