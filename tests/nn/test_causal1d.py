"""Dilated causal 1-D convolution: float64 NumPy reference, queued steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nn import causal1d


def _numpy_causal_conv(x, kernel, bias, dilation):
  """y_t = b + sum_i W_i^T x_{t-(k-1-i)d}, x_s = 0 for s < 0, in float64."""
  x, kernel = np.asarray(x, np.float64), np.asarray(kernel, np.float64)
  k = kernel.shape[0]
  y = np.zeros(x.shape[:2] + kernel.shape[2:]) + np.asarray(bias, np.float64)
  for t in range(x.shape[1]):
    for i in range(k):
      s = t - (k - 1 - i) * dilation
      if s >= 0:
        y[:, t] += x[:, s] @ kernel[i]
  return y


@pytest.mark.parametrize('kernel_size, dilation', [(2, 1), (2, 4), (3, 2),
                                                   (1, 1)])
def test_matches_numpy_and_the_queued_steps(kernel_size, dilation):
  conv = causal1d.CausalConv1D(5, kernel_size, dilation)
  x = jax.random.normal(jax.random.key(0), (3, 11, 4))

  @jax.jit
  def run(x):
    params = conv.init(jax.random.key(1), x)['params']
    params = {'kernel': params['kernel'],
              'bias': jnp.linspace(-1.0, 1.0, 5)}  # a nonzero bias
    full = conv.apply({'params': params}, x)

    def body(queue, inputs):
      t, x_t = inputs
      y_t, queue = conv.apply({'params': params}, x_t, queue, t)
      return queue, y_t

    queue = causal1d.init_queue(3, kernel_size, dilation, 4)
    assert queue.shape == (3, (kernel_size - 1) * dilation, 4)
    _, steps = jax.lax.scan(body, queue, (jnp.arange(11),
                                          jnp.swapaxes(x, 0, 1)))
    return params, full, jnp.swapaxes(steps, 0, 1)

  params, full, steps = run(x)
  ref = _numpy_causal_conv(x, params['kernel'], params['bias'], dilation)
  np.testing.assert_allclose(full, ref, rtol=0, atol=1e-5)
  np.testing.assert_allclose(steps, full, rtol=0, atol=1e-6)


def test_receptive_field_formula():
  assert causal1d.receptive_field((1, 2, 4, 8), 2) == 16
  assert causal1d.receptive_field((1,) * 3, 3) == 7
  assert causal1d.queue_length(2, 8) == 8  # k = 2: the queue is d long
