"""Linear probes: how much of the labels a representation makes linear.

A multinomial logistic regression (scikit-learn's ``LogisticRegression``,
L2-regularised with C = 1, L-BFGS) is fitted on the features of a few
labelled training examples and scored on the test split, for a growing
number of labels. Features are standardised with the mean and standard
deviation of *all* training features (no labels needed for that); which
examples are labelled is a fixed draw, `labelled_subset`. Raw pixels are
the baseline a learned representation should beat with few labels.

`FEATURES` is the registry of what each family gives as features: per
family, named `Extractor`s (the first is the default), each a description
and a pure function ``fn(family, net, params, batch)`` of a preprocessed
batch returning [B, ...] (`jaxgen.uses.scoring.features` flattens, jits
and batches it). Adding a family is one entry:

* ``vae``: ``mean``, the posterior mean E[z | x];
* ``autoencoder``: ``code``, the encoder's code;
* ``kmeans``: ``triangle`` soft assignments (Coates, Lee & Ng 2011);
* ``gmm``: ``responsibilities`` p(k | x);
* ``gan``: ``penultimate``, the discriminator's penultimate layer, the
  input of its last layer (for DCGAN the LeakyReLU map of the last
  stride-2 convolution, flattened), in evaluation mode (batch norm with its
  running averages). Radford, Metz & Chintala (2016) probed a DCGAN
  discriminator with a linear classifier; they max-pooled every layer to
  4x4 and concatenated, here the last hidden layer alone is taken;
* ``vqvae``: ``latents``, the quantized latents z_q(x), the code vectors
  of the code map [h, w, D] flattened (keeps where each code sits); and
  ``histogram``, how often each of the K codebook entries occurs in the
  image's code map, a fraction of the h * w positions (`code_histogram`:
  a bag of codes, where they sit is dropped);
* ``rbm``: ``hidden``, the hidden units' probabilities p(h_j = 1 | v).

A class-conditional run is refused (`jaxgen.uses.scoring.check_features`):
its encoder reads the label, so its code (a conditional VAE's posterior
mean given y) is not a feature of the image alone.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.errors import ConfigError

NUM_LABELS = (10, 100, 1000, 0)  # 0: every training label


class Extractor(NamedTuple):
  """One family's features: what they are and how to compute them."""
  description: str
  fn: Callable[..., jax.Array]  # (family, net, params, batch) -> [B, ...]


def triangle(centres: jax.Array, x: jax.Array) -> jax.Array:
  """max(0, mean_k z_k - z_k) with z_k = |x - c_k|: [B, K]."""
  d2 = ((x ** 2).sum(1, keepdims=True) - 2.0 * x @ centres.T +
        (centres ** 2).sum(1)[None])
  z = jnp.sqrt(jnp.maximum(d2, 0.0))
  return jnp.maximum(z.mean(1, keepdims=True) - z, 0.0)


def _flat_image(batch) -> jax.Array:
  x = batch['image']
  return x.reshape(x.shape[0], -1)


def last_layer_input(module: nn.Module, variables, *args,
                     **kwargs) -> jax.Array:
  """The input of the last direct submodule `module` calls when applied to
  `args` (its penultimate activations), recorded by
  ``flax.linen.intercept_methods``; the module's own output is dropped."""
  seen = []

  def record(next_fun, call_args, call_kwargs, context):
    if (context.method_name == '__call__' and call_args and
        len(context.module.scope.path) == 1):
      seen.append(call_args[0])
    return next_fun(*call_args, **call_kwargs)

  with nn.intercept_methods(record):
    module.apply(variables, *args, **kwargs)
  if not seen:
    raise ValueError(f'{type(module).__name__} called no submodule.')
  return seen[-1]


def _vae(family, net, params, batch):
  return family.encode(params, batch, net=net)[0]


def _autoencoder(family, net, params, batch):
  del family
  return net.apply({'params': params}, batch['image'],
                   method=type(net).encode)


def _kmeans(family, net, params, batch):
  del family, net
  return triangle(params['centres'], _flat_image(batch))


def _gmm(family, net, params, batch):
  return family.encode(params, batch, net=net)


def _gan(family, net, params, batch):
  return last_layer_input(family.discriminator_module(net),
                          params['discriminator'], family.examples(batch),
                          None, train=False)


def _vqvae(family, net, params, batch):
  out = net.apply(family.apply_variables(params), batch['image'])
  return out['levels']['vq']['z_q']


def code_histogram(indices: jax.Array, num_codes: int) -> jax.Array:
  """Code indices int [B, ...] -> float32 [B, num_codes]: the fraction of
  each example's positions that hold code k (rows sum to 1)."""
  flat = indices.reshape(indices.shape[0], -1)
  return jax.nn.one_hot(flat, num_codes, dtype=jnp.float32).mean(1)


def _vqvae_histogram(family, net, params, batch):
  (indices,) = family.encode_codes(params, batch, net=net)
  return code_histogram(indices, net.num_codes)


def _rbm(family, net, params, batch):
  return family.hidden_probs(params['params'],
                             family.visible_units(params, batch, net))


FEATURES = {
    'vae': {'mean': Extractor('posterior mean E[z | x]', _vae)},
    'autoencoder': {'code': Extractor("the encoder's code", _autoencoder)},
    'kmeans': {'triangle': Extractor(
        'triangle soft assignments max(0, mean_k z_k - z_k), z_k the '
        'distance to centre k (Coates, Lee & Ng 2011)', _kmeans)},
    'gmm': {'responsibilities': Extractor('responsibilities p(k | x)',
                                          _gmm)},
    'gan': {'penultimate': Extractor(
        "the discriminator's penultimate layer (input of its last layer; "
        'evaluation mode), as Radford et al. 2016 probed DCGAN', _gan)},
    'vqvae': {
        'latents': Extractor('quantized latents z_q(x), the code map of '
                             'code vectors flattened', _vqvae),
        'histogram': Extractor(
            'code histogram: the fraction of the code map at each of the K '
            'codebook entries (where the codes sit is dropped)',
            _vqvae_histogram)},
    'rbm': {'hidden': Extractor('hidden probabilities p(h_j = 1 | v)',
                                _rbm)},
}


def extractor(family: str, name: str | None = None) -> tuple[str, Extractor]:
  """(name, `Extractor`) of a family's features `name` (None: its first).

  Raises:
    ConfigError: the family gives no features, or none called `name`.
  """
  if family not in FEATURES:
    raise ConfigError(f'family {family!r} gives no features here; families '
                      f'that do: {", ".join(sorted(FEATURES))}.')
  named = FEATURES[family]
  if name is None:
    name = next(iter(named))
  if name not in named:
    raise ConfigError(f'--features={name!r}: family {family!r} gives '
                      f'{", ".join(repr(n) for n in named)}.')
  return name, named[name]


def is_default(family: str, name: str) -> bool:
  """Whether `name` is the family's first (default) features: records and
  curves of other features carry the name."""
  return name == extractor(family)[0]


def labelled_subset(labels: Any, num: int, seed: int = 0) -> np.ndarray:
  """Indices of `num` labelled examples (0: all), sorted: the first `num`
  of ``numpy.random.default_rng(seed).permutation``, so a larger `num`
  contains every smaller one."""
  n = len(labels)
  if num == 0 or num >= n:
    return np.arange(n)
  if num < 0:
    raise ValueError(f'num must be >= 0, got {num}.')
  return np.sort(np.random.default_rng(seed).permutation(n)[:num])


def probe_accuracy(train_x: Any, train_y: Any, test_x: Any, test_y: Any, *,
                   max_iter: int = 1000) -> float:
  """Test accuracy of a logistic regression fitted on (train_x, train_y).

  A labelled set of one class predicts that class.
  """
  from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
  train_y, test_y = np.asarray(train_y), np.asarray(test_y)
  if len(np.unique(train_y)) < 2:
    return float(np.mean(test_y == train_y[0]))
  model = LogisticRegression(C=1.0, max_iter=max_iter)
  model.fit(np.asarray(train_x, np.float64), train_y)
  return float(model.score(np.asarray(test_x, np.float64), test_y))


def standardise(train_x: Any, test_x: Any) -> tuple[np.ndarray, np.ndarray]:
  """Both sets scaled by the training features' mean and std (constant
  features are left centred)."""
  train_x = np.asarray(train_x, np.float64)
  mean, std = train_x.mean(0), train_x.std(0)
  std = np.where(std > 0, std, 1.0)
  return (train_x - mean) / std, (np.asarray(test_x, np.float64) - mean) / std


def probe_curve(train_x: Any, train_y: Any, test_x: Any, test_y: Any, *,
                num_labels: Sequence[int] = NUM_LABELS,
                seed: int = 0) -> list[dict[str, Any]]:
  """[{'num_labels', 'accuracy'}] for each count (0: all labels)."""
  train_x, test_x = standardise(train_x, test_x)
  train_y = np.asarray(train_y)
  rows = []
  for num in num_labels:
    idx = labelled_subset(train_y, num, seed)
    rows.append({'num_labels': int(len(idx)),
                 'accuracy': probe_accuracy(train_x[idx], train_y[idx],
                                            test_x, test_y)})
  return rows
