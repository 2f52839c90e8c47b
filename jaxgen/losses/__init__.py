"""Pure, jit-able, unreduced likelihoods and objectives for generative models.

Usable without building any model: every function takes arrays (logits,
means, log-scales, log-weights) and returns per-element or per-event values
in nats that the caller reduces.
"""

from jaxgen.losses.bounds import elbo
from jaxgen.losses.bounds import iwae_bound
from jaxgen.losses.bounds import log_mean_exp
from jaxgen.losses.divergences import gaussian_kl
from jaxgen.losses.likelihoods import bernoulli_log_prob
from jaxgen.losses.likelihoods import categorical_log_prob
from jaxgen.losses.likelihoods import discretized_logistic_log_prob
from jaxgen.losses.likelihoods import discretized_logistic_mixture_log_prob
from jaxgen.losses.likelihoods import gaussian_log_prob
from jaxgen.losses.likelihoods import gaussian_mixture_log_prob
from jaxgen.losses.sampling import gaussian_reparameterize
from jaxgen.losses.units import dequantization_offset_nats
from jaxgen.losses.units import nats_to_bits_per_dim

__all__ = [
    "bernoulli_log_prob",
    "categorical_log_prob",
    "dequantization_offset_nats",
    "discretized_logistic_log_prob",
    "discretized_logistic_mixture_log_prob",
    "elbo",
    "gaussian_kl",
    "gaussian_log_prob",
    "gaussian_mixture_log_prob",
    "gaussian_reparameterize",
    "iwae_bound",
    "log_mean_exp",
    "nats_to_bits_per_dim",
]
