"""`jaxgen.models.base.default_labels`: the labels of conditional samples,
shared by every class-conditional family's `sample`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.errors import ConfigError
from jaxgen.models import base


def test_default_labels_cycle_and_given_ones_pass():
  assert base.default_labels(0, 4, None) is None
  np.testing.assert_array_equal(base.default_labels(3, 5, None),
                                [0, 1, 2, 0, 1])
  np.testing.assert_array_equal(
      base.default_labels(3, 3, np.array([2, 0, 1])), [2, 0, 1])


@pytest.mark.parametrize('labels, match', [
    (np.array([0, 1]), r'shape \(3,\)'),
    (np.array([0, 1, 3]), r'integers in \[0, 3\)'),
    (np.array([-1, 0, 1]), r'integers in \[0, 3\)'),
    (np.array([0.0, 1.0, 2.0]), r'integers in \[0, 3\)'),
])
def test_bad_labels_are_one_clear_error(labels, match):
  with pytest.raises(ConfigError, match=match):
    base.default_labels(3, 3, labels)


def test_traced_labels_pass_unchecked():
  out = jax.jit(lambda l: base.default_labels(3, 3, l))(
      jnp.array([0, 1, 2]))
  np.testing.assert_array_equal(out, [0, 1, 2])
