"""jaxgen.nn.quantizers: nearest code, EMA updates, restarts, Gumbel-softmax."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nn import quantizers


def _numpy_ema(state, z, idx, w, decay, eps):
  """The VQ-VAE appendix A.1 EMA with Sonnet's Laplace smoothing, float64."""
  k = state['cluster_size'].shape[0]
  n = np.zeros(k)
  s = np.zeros((k, z.shape[1]))
  for zi, i, wi in zip(z, idx, w):
    n[i] += wi
    s[i] += wi * zi
  size = decay * state['cluster_size'] + (1 - decay) * n
  embed = decay * state['embed_sum'] + (1 - decay) * s
  total = size.sum()
  smoothed = (size + eps) / (total + k * eps) * total
  return {'cluster_size': size, 'embed_sum': embed,
          'codebook': embed / smoothed[:, None]}


def test_nearest_code_is_brute_force_argmin():
  kz, ke = jax.random.split(jax.random.key(0))
  z = jax.random.normal(kz, (4, 6, 3))
  codebook = jax.random.normal(ke, (11, 3))
  got = jax.jit(quantizers.nearest_code)(z, codebook)
  zn, en = np.asarray(z, np.float64), np.asarray(codebook, np.float64)
  dist = ((zn[..., None, :] - en) ** 2).sum(-1)
  np.testing.assert_array_equal(got, dist.argmin(-1))
  np.testing.assert_allclose(quantizers.squared_distances(z, codebook), dist,
                             rtol=1e-5, atol=1e-5)


def test_ema_updates_equal_float64_numpy_over_three_steps():
  k, d, decay, eps = 5, 3, 0.9, 1e-3
  codebook0 = np.asarray(jax.random.normal(jax.random.key(1), (k, d)))
  state = {'cluster_size': jnp.ones(k), 'embed_sum': jnp.asarray(codebook0),
           'codebook': jnp.asarray(codebook0)}
  ref = {name: np.asarray(v, np.float64) for name, v in state.items()}
  update = jax.jit(lambda s, z, i, w: quantizers.ema_update(
      s, z, i, w, decay=decay, epsilon=eps))
  for step in range(3):
    z = jax.random.normal(jax.random.key(10 + step), (20, d))
    idx = quantizers.nearest_code(z, state['codebook'])
    w = (jnp.arange(20) % 4 != 3).astype(jnp.float32)  # some rows masked
    state = update(state, z, idx, w)
    ref = _numpy_ema(ref, np.asarray(z, np.float64), np.asarray(idx),
                     np.asarray(w, np.float64), decay, eps)
    for name in ref:
      np.testing.assert_allclose(state[name], ref[name], rtol=1e-5,
                                 atol=1e-6, err_msg=f'{name} at step {step}')


def test_dead_codes_restart_from_unmasked_batch_encodings():
  codebook = jnp.arange(12.0).reshape(6, 2)
  state = {'cluster_size': jnp.array([5.0, 0.1, 2.0, 0.0, 1.0, 0.99]),
           'embed_sum': codebook * 3, 'codebook': codebook}
  z = jnp.array([[100.0, 101.0], [200.0, 201.0], [300.0, 301.0]])
  w = jnp.array([1.0, 0.0, 1.0])
  new_codebook, new_state, dead = jax.jit(
      lambda s, z, w: quantizers.restart_dead_codes(
          jax.random.key(3), s['codebook'], s, z, w, threshold=1.0))(
              state, z, w)
  np.testing.assert_array_equal(dead, [False, True, False, True, False, True])
  live = ~np.asarray(dead)
  np.testing.assert_array_equal(new_codebook[live], codebook[live])
  for row in np.asarray(new_codebook)[~live]:  # a weighted batch vector
    assert any(np.array_equal(row, z[j]) for j in (0, 2)), row
  np.testing.assert_array_equal(new_state['cluster_size'],
                                [5.0, 1.0, 2.0, 1.0, 1.0, 1.0])
  np.testing.assert_array_equal(new_state['embed_sum'][~live],
                                new_codebook[~live])  # threshold 1 * z_j
  np.testing.assert_array_equal(new_state['codebook'], new_codebook)
  _, _, none = quantizers.restart_dead_codes(
      jax.random.key(3), codebook, state, z, jnp.zeros(3), threshold=1.0)
  assert not np.any(none)


def test_state_update_gradient_codebook_counts_and_restarts():
  state = {'cluster_size': jnp.ones(4)}
  level = {'z_e': jnp.ones((2, 3, 3, 2)) * jnp.arange(2.0)[:, None, None, None],
           'indices': jnp.zeros((2, 3, 3), jnp.int32)}
  weights = jnp.array([1.0, 0.0])[:, None, None]
  new, codebook, stats = quantizers.state_update(
      state, level, weights, jax.random.key(0), jnp.full((4, 2), 7.0),
      use_ema=False, decay=0.5, epsilon=1e-5, threshold=0.8)
  # Code 0 got the 9 unmasked vectors; codes 1-3 decayed to 0.5 < 0.8.
  np.testing.assert_allclose(new['cluster_size'], [5.0, 0.8, 0.8, 0.8])
  np.testing.assert_array_equal(codebook[0], [7.0, 7.0])
  np.testing.assert_array_equal(codebook[1:], np.zeros((3, 2)))  # row 0's z
  assert float(stats['restarts']) == 3


def test_straight_through_softmax_forward_onehot_backward_softmax():
  logits = jnp.array([[0.3, -1.0, 2.0, 0.5], [1.0, 1.5, -2.0, 0.0]])
  y = quantizers.straight_through_softmax(logits, 0.7)
  np.testing.assert_allclose(y, jax.nn.one_hot(jnp.argmax(logits, -1), 4),
                             atol=1e-6)
  soft = lambda l: jax.nn.softmax(l / 0.7, axis=-1)
  np.testing.assert_allclose(
      jax.jacfwd(lambda l: quantizers.straight_through_softmax(l, 0.7))(logits),
      jax.jacfwd(soft)(logits), rtol=1e-6, atol=1e-7)


def test_gumbel_softmax_hard_sample_is_onehot_with_relaxed_gradient():
  logits = jnp.array([0.1, 1.2, -0.3, 0.8, 0.0])
  key = jax.random.key(4)
  y = quantizers.gumbel_softmax(key, logits, 0.5, hard=True)
  np.testing.assert_allclose(jnp.sort(y), [0, 0, 0, 0, 1], atol=1e-6)
  hard_jac = jax.jacfwd(
      lambda l: quantizers.gumbel_softmax(key, l, 0.5, hard=True))(logits)
  soft_jac = jax.jacfwd(
      lambda l: quantizers.gumbel_softmax(key, l, 0.5, hard=False))(logits)
  np.testing.assert_allclose(hard_jac, soft_jac, rtol=1e-6, atol=1e-7)


def test_gumbel_max_frequencies_follow_the_softmax():
  logits = jnp.array([0.0, 1.0, -1.0, 0.5])
  n = 40_000
  draws = jax.jit(jax.vmap(lambda k: quantizers.gumbel_softmax(
      k, logits, 1.0, hard=True)))(jax.random.split(jax.random.key(5), n))
  freq = np.asarray(draws).sum(0) / n
  p = np.asarray(jax.nn.softmax(logits), np.float64)
  # 5 standard errors of a multinomial frequency.
  np.testing.assert_array_less(np.abs(freq - p), 5 * np.sqrt(p * (1 - p) / n))


@pytest.mark.parametrize('use_ema', [False, True])
def test_vector_quantizer_picks_codes_and_passes_gradients(use_ema):
  vq = quantizers.VectorQuantizer(num_codes=6, code_dim=3, use_ema=use_ema)
  z = jax.random.normal(jax.random.key(6), (2, 4, 3))
  variables = vq.init(jax.random.key(7), z)
  codebook = (variables[quantizers.STATE]['codebook'] if use_ema
              else variables['params']['codebook'])
  assert quantizers.STATE in variables
  assert ('codebook' in variables.get('params', {})) != use_ema
  out = vq.apply(variables, z)
  np.testing.assert_array_equal(out['indices'],
                                quantizers.nearest_code(z, codebook))
  np.testing.assert_allclose(out['z_q'], codebook[out['indices']], atol=1e-6)
  # The straight-through value: d z_q / d z_e is the identity.
  _, vjp = jax.vjp(lambda z: vq.apply(variables, z)['z_q'], z)
  cot = jax.random.normal(jax.random.key(8), z.shape)
  np.testing.assert_array_equal(vjp(cot)[0], cot)
