"""Phase-decomposed transposed convolution == lax.conv_transpose (float64)."""

import itertools
from unittest import mock

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nn import conv as conv_lib
from jaxgen.nn import conv_transpose as ct

DN = ('NHWC', 'HWIO', 'NHWC')
PADDINGS = ('SAME', 'VALID', ((1, 2), (0, 3)), ((3, 0), (2, 2)))


def _cases():
  yield from itertools.product((4,), (1, 2, 3, 5), (2, 3), PADDINGS)
  yield from ((1, 4, 2, 'SAME'), (1, 2, 3, 'VALID'), (4, 3, 1, 'SAME'))


def _form(form):
  """A context in which 'auto' computes every layer in `form`."""
  return mock.patch.object(ct, 'choose_form', lambda *args, **kw: form)


def test_values_and_gradients_match_lax_conv_transpose():
  """Every phase case: kernel smaller than, equal to and larger than the
  stride, outputs not divisible by the stride, negative input offsets."""
  with _form('phases'):
    _check_against_lax(list(_cases()), all_gradients=False)


def test_taps_form_matches_lax_conv_transpose():
  """The narrow-output form ('taps') in every phase case, and on 1-pixel
  rows and columns, values and both gradients."""
  cases = list(_cases()) + [(1, 3, 2, 'SAME'), (1, 4, 1, ((-1, 2), (1, -1)))]
  with _form('taps'):
    _check_against_lax(cases, all_gradients=True)


@pytest.mark.parametrize('k, s, pad', [
    (4, 1, 'VALID'), (4, 2, 'VALID'), (3, 2, 'SAME'), (2, 3, 'VALID'),
    (4, 2, ((2, 3), (1, 4))), (3, 1, ((-1, 4), (3, 1)))])
def test_matmul_form_matches_lax_conv_transpose_on_1x1_inputs(k, s, pad):
  """A 1x1 input (the DCGAN generator's first layer) as one matmul:
  outputs beyond the kernel (stride > kernel, wide padding, negative
  padding) are zeros."""
  rng = np.random.default_rng(1)
  with jax.enable_x64(True):
    x, w = rng.normal(size=(3, 1, 1, 4)), rng.normal(size=(k, k + 1, 4, 5))
    ref_fn = lambda x, w: lax.conv_transpose(x, w, (s, s), pad,
                                             dimension_numbers=DN)
    ours = lambda x, w: ct.conv_transpose(x, w, (s, s), pad)
    assert ct.choose_form(x.shape, w.shape) == 'matmul'
    ref, vjp_ref = jax.vjp(ref_fn, x, w)
    got, vjp_got = jax.vjp(ours, x, w)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-12)
    cot = rng.normal(size=ref.shape)
    for a, b in zip(vjp_got(cot), vjp_ref(cot), strict=True):
      np.testing.assert_allclose(a, b, atol=1e-12)


def test_choose_form():
  """1x1 inputs: 'matmul' on every backend; narrow outputs: 'taps' only on
  CPU with convolutions on Eigen; explicit methods keep the phases."""
  assert ct.choose_form((8, 1, 1, 100), (4, 4, 100, 256),
                        backend='gpu') == 'matmul'
  narrow, wide = (4, 4, 64, 1), (4, 4, 64, 64)
  with mock.patch.object(conv_lib, 'convolutions_on_ynnpack', lambda: False):
    assert ct.choose_form((8, 16, 16, 64), narrow, backend='cpu') == 'taps'
    assert ct.choose_form((8, 16, 16, 64), narrow, backend='gpu') == 'phases'
    assert ct.choose_form((8, 16, 16, 64), wide, backend='cpu') == 'phases'
    assert ct.choose_form((8, 16, 16, 4), (4, 4, 4, 4),
                          backend='cpu') == 'phases'  # not below Cin
  with mock.patch.object(conv_lib, 'convolutions_on_ynnpack', lambda: True):
    assert ct.choose_form((8, 16, 16, 64), narrow, backend='cpu') == 'phases'
  x, w = jnp.ones((2, 1, 1, 3)), jnp.ones((4, 4, 3, 2))
  with mock.patch.object(ct, '_one_tap_kernel', None):  # 'matmul' unused
    ct.conv_transpose(x, w, (1, 1), 'VALID', method='xla')


def _check_against_lax(cases_in, all_gradients: bool):
  """conv_transpose against lax.conv_transpose in float64 on `cases_in`
  (n, k, s, pad); gradients on every case or on the stride-2 named
  paddings only."""
  rng = np.random.default_rng(0)
  cases, args = [], []
  with jax.enable_x64(True):
    for n, k, s, pad in cases_in:
      x = rng.normal(size=(2, n, n + 1, 3))
      w = rng.normal(size=(k, k + 1, 3, 2))
      shape = jax.eval_shape(
          lambda x, w, s=s, pad=pad: lax.conv_transpose(
              x, w, (s, s), pad, dimension_numbers=DN), x, w).shape
      if 0 in shape:
        continue
      cases.append((n, k, s, pad))
      args.append((x, w, rng.normal(size=shape)))

    def ref_fn(x, w, s, pad):
      return lax.conv_transpose(x, w, (s, s), pad, dimension_numbers=DN)

    def ours(x, w, s, pad):
      return ct.conv_transpose(x, w, (s, s), pad)

    # One compiled program for all cases (a program per case, or op-by-op
    # dispatch, compiles every primitive of each decomposition separately).
    @jax.jit
    def run(args):
      out = []
      for (_, _, s, pad), (x, w, cot) in zip(cases, args):
        ref, got = ref_fn(x, w, s, pad), ours(x, w, s, pad)
        if all_gradients or (s == 2 and isinstance(pad, str)):
          g_ref = jax.vjp(lambda x, w: ref_fn(x, w, s, pad), x, w)[1](cot)
          g_got = jax.vjp(lambda x, w: ours(x, w, s, pad), x, w)[1](cot)
        else:
          g_ref = g_got = ()
        out.append((ref, got, g_ref, g_got))
      return out

    for case, (ref, got, g_ref, g_got) in zip(cases, run(args)):
      assert got.shape == ref.shape, case
      np.testing.assert_allclose(got, ref, atol=1e-12, err_msg=str(case))
      for a, b in zip(g_got, g_ref, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-11, err_msg=str(case))
  assert len(cases) >= 30
  assert sum(s == 2 and isinstance(pad, str) for _, _, s, pad in cases) >= 4


@pytest.mark.parametrize('kwargs', [
    dict(features=5, kernel_size=(4, 4), strides=(2, 2), padding='SAME'),
    dict(features=3, kernel_size=(2, 3), strides=(2, 2), padding='VALID',
         use_bias=False),
    dict(features=4, kernel_size=(4, 4), padding='VALID',
         kernel_init=nn.initializers.normal(0.02)),
])
def test_module_is_a_drop_in_for_flax(kwargs):
  x = jax.random.normal(jax.random.key(1), (2, 5, 6, 7))
  ours, theirs = ct.ConvTranspose(**kwargs), nn.ConvTranspose(**kwargs)
  params = jax.jit(ours.init)(jax.random.key(0), x)
  flax_params = jax.jit(theirs.init)(jax.random.key(0), x)
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape,
                                                         flax_params)
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(flax_params)):
    np.testing.assert_array_equal(a, b)  # identical initial values
  np.testing.assert_allclose(jax.jit(ours.apply)(params, x),
                             jax.jit(theirs.apply)(params, x),
                             atol=1e-5, rtol=1e-5)


def test_bad_shapes_raise():
  with pytest.raises(ValueError, match='kernel'):
    ct.conv_transpose(jnp.ones((1, 4, 4, 3)), jnp.ones((2, 2, 4, 1)), (2, 2))
  with pytest.raises(ValueError, match='padding'):
    ct.transpose_padding(3, 2, 'FULL')
  with pytest.raises(ValueError, match='2-D'):
    ct.ConvTranspose(2, (3,)).init(jax.random.key(0), jnp.ones((1, 4, 3)))
