r"""Generative stochastic network: the Markov chain of a denoising autoencoder.

Argument: comma-separated options, e.g. ``gsn.py:digits``, ``gsn.py:ring8``:
- dataset: digits (default; bundled 8x8, dynamically binarized) | mnist8k
  (../shared, dynamically binarized) | smoke (tests) | ring8 (the toy 2-D
  mixture of 8 Gaussians, `jaxgen.data.toy`)
- state: x (default; the 2013 chain on examples) | latent (the 2014 GSN
  whose state carries a latent layer h: 512 units on digits, 1,000 on
  mnist8k, 256 on points; the decoder P(x | h) one hidden layer as wide;
  Gaussian noise of std 1 before and after the latent tanh).

Binary images: salt-and-pepper corruption of the pixels (Bengio et al.
2013, 2014) and Bernoulli reconstructions from a tanh MLP, walkback
training over K chain steps. Toy points: Gaussian corruption and a
Gaussian reconstruction with a learned standard deviation per dimension.
No likelihood: the records hold sample-quality scores of the chain's state
after ``model.burn_in`` steps from noise (``python -m
experiments.sample_quality``).

Commands and their cost (seed 0, 2 CPU cores); a command whose record is
named `<name>` is one row of RESULTS.md, kept in results/<name>.json and
rerun by ``python -m experiments.results --only=<name>``:

  python -m experiments.main --config=experiments/configs/gsn.py:digits \
      --workdir=runs/gsn_digits
    MLP 64-512-512-64, salt-and-pepper p = 0.3, K = 3, 5,000 steps of 128:
    a few minutes. Record `gsn_digits`.

  python -m experiments.main --config=experiments/configs/gsn.py:mnist8k \
      --workdir=runs/gsn_mnist8k
    MLP 784-1000-1000-784, salt-and-pepper p = 0.4, K = 2, 10,000 steps of
    128 on the 7,000 mnist8k training digits: roughly a quarter of an hour
    on 2 otherwise idle cores. Record `gsn_mnist8k` trains 4,000 of these
    steps (``--config.train.num_steps=4000``, the catalogue's override).

  python -m experiments.main \
      --config=experiments/configs/gsn.py:digits,latent \
      --workdir=runs/gsn_latent_digits
    The chain with a latent state: 512 tanh units h (noise of std 1 before
    and after the tanh), decoder MLP 512-512-64 for P(x | h), otherwise as
    gsn_digits (salt-and-pepper p = 0.3, K = 3, 5,000 steps of 128).
    Record `gsn_latent_digits`.

  python -m experiments.main --config=experiments/configs/gsn.py:ring8 \
      --workdir=runs/gsn_ring8
    MLP 2-256-256-256-4 (ReLU), Gaussian corruption sigma = 0.3, K = 1
    (the plain denoising loss; see model.walkback_steps), 10,000 steps of
    256 with a cosine learning-rate decay; chains of 200 steps from
    N(0, 2^2 I). The sample PNG is a scatter plot over the data: a few
    minutes. Record `gsn_ring8`.
"""

from experiments.configs import common

TOY = ('ring8',)
ALLOWED = {'dataset': common.DATASETS + TOY, 'state': ('x', 'latent')}
DEFAULTS = {'dataset': 'digits', 'state': 'x'}


def _toy_data(c, name: str) -> None:
  """Points of a toy 2-D mixture: 50,000 drawn once, 90% train, 10% test."""
  d = c.data
  d.name = f'toy:{name}'
  d.splits.train = 'all[:90%]'
  d.splits.validation = ''
  d.splits.test = 'all[90%:]'
  d.binarize = 'none'  # points pass through the image preprocessing
  d.num_points = 50_000
  c.eval.periodic_split = 'test'


def get_config(arg: str = 'digits'):
  opts = common.parse_arg(arg, ALLOWED, DEFAULTS)
  dataset = opts['dataset']
  toy = dataset in TOY
  c = common.base_config('gsn', 'digits' if toy else dataset)
  big = dataset == 'mnist8k'
  m = c.model
  if toy:
    _toy_data(c, dataset)
    m.image_shape = (2,)
    m.hidden = (256, 256, 256)  # MLP widths of P(x | x~)
    m.activation = 'relu'
    m.reconstruction = 'gaussian'  # 'bernoulli' (binary) | 'gaussian'
    m.output_std = 0.0  # 'gaussian': 0 = learned per dimension; > 0 fixed
    m.corruption = 'gaussian'  # 'salt_pepper' | 'masking' | 'gaussian'
    m.noise_level = 0.3  # p of the binary corruptions; sigma of 'gaussian'
    # K, chain steps per training example. 1 on points: later walkback
    # terms ask the unimodal Gaussian P(x | x~) to cover x given a state
    # further away, a broad multimodal conditional, which widens its
    # learned variance for every x~ and blurs the chain's samples.
    m.walkback_steps = 1
    m.burn_in = 200  # chain steps from noise before a sample is taken
    m.start_std = 2.0  # chains on points start from N(0, start_std^2 I)
    m.sample_mode = 'draw'  # 'mean' of P(x | x~) | 'draw' (the state)
  else:
    common.pixel_data(c, 'bernoulli')  # dynamically binarized pixels
    m.image_shape = common.IMAGE_SHAPES[dataset]
    m.hidden = (1000, 1000) if big else (512, 512)
    m.activation = 'tanh'
    m.reconstruction = 'bernoulli'
    m.output_std = 0.0  # unused by 'bernoulli'
    m.corruption = 'salt_pepper'
    m.noise_level = 0.4 if big else 0.3
    m.walkback_steps = 2 if big else 3
    m.burn_in = 100
    m.start_std = 1.0  # unused: binary chains start from Bernoulli(1/2)
    m.sample_mode = 'mean'
  c.optimizer.learning_rate = 1e-3
  if toy:
    c.optimizer.schedule = 'cosine'  # the modes are narrow: anneal to 0
  c.train.batch_size = 256 if toy else 128
  c.train.num_steps = 10_000 if (toy or big) else 5000
  c.train.eval_every_steps = 0  # no likelihood; the losses at the end
  c.train.image_every_steps = 0  # samples at the end
  c.eval.periodic_split = ''
  c.eval.batch_size = 500 if toy else 200
  c.eval.num_grid_samples = 2000 if toy else 64  # toy: points per scatter
  # The chain's state: x alone (Bengio et al. 2013), or (x, h) with a
  # latent layer h of latent_dim units (Bengio et al. 2014).
  latent = opts['state'] == 'latent'
  m.latent_dim = (1000 if big else 512) if latent and not toy else (
      256 if latent else 0)
  m.latent_noise = 1.0 if latent else 0.0  # std before and after the tanh
  if latent and not toy:
    m.hidden = (1000,) if big else (512,)  # the decoder P(x | h) on h
  elif latent:
    m.hidden = (256, 256)
  if dataset == 'smoke':
    m.hidden = (16,)
    m.latent_dim = 8 if latent else 0
    m.walkback_steps = 2
    m.burn_in = 3
  return common.finalize(c, dataset)
