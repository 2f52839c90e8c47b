"""jaxgen.nn.latent against float64 NumPy."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.nn import latent


def _slerp64(a, b, t):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  omega = np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
  t = np.asarray(t, np.float64)[:, None]
  return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def test_slerp_and_lerp_match_float64():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(2, 16)).astype(np.float32)
  t = np.linspace(0, 1, 7, dtype=np.float32)
  np.testing.assert_allclose(jax.jit(latent.slerp)(a, b, t), _slerp64(a, b, t),
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(latent.lerp(a, b, t),
                             (1 - t[:, None]) * a + t[:, None] * b, atol=1e-6)
  # Equal norms stay on the sphere; ends are the inputs.
  b_unit = b / np.linalg.norm(b) * np.linalg.norm(a)
  path = latent.interpolation_path(a, b_unit, 9, spherical=True)
  np.testing.assert_allclose(np.linalg.norm(path, axis=1),
                             np.linalg.norm(a), rtol=1e-5)
  np.testing.assert_allclose(path[0], a, atol=1e-5)
  np.testing.assert_allclose(path[-1], b_unit, atol=1e-5)
  # Parallel vectors fall back to the straight line (no 0/0).
  par = latent.slerp(a, 2 * a, t)
  assert np.all(np.isfinite(par))
  np.testing.assert_allclose(par, latent.lerp(a, 2 * a, t), atol=1e-5)


def test_vector_arithmetic_and_perturb():
  rng = np.random.default_rng(1)
  groups = [rng.normal(size=(n, 5)) for n in (3, 4, 2)]
  out = latent.vector_arithmetic([(1.0, groups[0]), (-1.0, groups[1]),
                                  (0.5, groups[2])])
  expected = groups[0].mean(0) - groups[1].mean(0) + 0.5 * groups[2].mean(0)
  np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
  z = jnp.asarray(expected, jnp.float32)
  copies = latent.perturb(jax.random.key(0), z, 6, scale=0.25)
  assert copies.shape == (6, 5)
  np.testing.assert_array_equal(copies[0], z)
  noise = np.asarray(copies[1:] - z)
  assert np.all(np.abs(noise) <= 0.25 + 1e-6) and np.abs(noise).max() > 0.05
