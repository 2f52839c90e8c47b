"""Pure, jit-able, unreduced likelihoods and objectives for generative models.

Usable without building any model: every function takes arrays (logits,
means, log-scales, log-weights) and returns per-element or per-event values
in nats that the caller reduces.
"""

from jaxgen.losses.adversarial import autoencoder_l1_loss
from jaxgen.losses.adversarial import began_balance_update
from jaxgen.losses.adversarial import began_convergence
from jaxgen.losses.adversarial import began_discriminator_loss
from jaxgen.losses.adversarial import began_generator_loss
from jaxgen.losses.adversarial import gan_discriminator_loss
from jaxgen.losses.adversarial import gan_generator_loss_minimax
from jaxgen.losses.adversarial import gan_generator_loss_nonsaturating
from jaxgen.losses.adversarial import gradient_penalty
from jaxgen.losses.adversarial import gradient_penalty_from_gradients
from jaxgen.losses.adversarial import interpolates
from jaxgen.losses.adversarial import least_squares_discriminator_loss
from jaxgen.losses.adversarial import least_squares_generator_loss
from jaxgen.losses.adversarial import safe_norm
from jaxgen.losses.adversarial import wasserstein_critic_loss
from jaxgen.losses.adversarial import wasserstein_generator_loss
from jaxgen.losses.bounds import elbo
from jaxgen.losses.bounds import iwae_bound
from jaxgen.losses.bounds import log_mean_exp
from jaxgen.losses import diffusion
from jaxgen.losses.divergences import gaussian_kl
from jaxgen.losses.likelihoods import bernoulli_log_prob
from jaxgen.losses.likelihoods import categorical_log_prob
from jaxgen.losses.likelihoods import discretized_logistic_log_prob
from jaxgen.losses.likelihoods import discretized_logistic_mixture_log_prob
from jaxgen.losses.likelihoods import gaussian_log_prob
from jaxgen.losses.likelihoods import gaussian_mixture_log_prob
from jaxgen.losses.mixture import gaussian_component_log_probs
from jaxgen.losses.mixture import gaussian_tril_component_log_probs
from jaxgen.losses.mixture import gaussian_tril_log_prob
from jaxgen.losses.mixture import gaussian_tril_mixture_log_prob
from jaxgen.losses.mixture import mixture_log_posterior
from jaxgen.losses.mixture import mixture_responsibilities
from jaxgen.losses.mixture import tril_inverse
from jaxgen.losses.quantization import categorical_kl_to_uniform
from jaxgen.losses.quantization import code_usage
from jaxgen.losses.quantization import codebook_loss
from jaxgen.losses.quantization import codebook_perplexity
from jaxgen.losses.quantization import commitment_loss
from jaxgen.losses.quantization import perplexity
from jaxgen.losses.quantization import straight_through
from jaxgen.losses.quantization import vq_loss
from jaxgen.losses.sampling import gaussian_reparameterize
from jaxgen.losses.translation import cycle_consistency_loss
from jaxgen.losses.translation import cyclegan_generator_loss
from jaxgen.losses.translation import identity_loss
from jaxgen.losses.translation import l1_per_example
from jaxgen.losses.translation import patch_discriminator_loss
from jaxgen.losses.translation import pix2pix_generator_loss
from jaxgen.losses.translation import psnr
from jaxgen.losses.units import dequantization_offset_nats
from jaxgen.losses.units import nats_to_bits_per_dim

__all__ = [
    "categorical_kl_to_uniform",
    "code_usage",
    "codebook_loss",
    "codebook_perplexity",
    "commitment_loss",
    "perplexity",
    "straight_through",
    "vq_loss",
    "autoencoder_l1_loss",
    "began_balance_update",
    "began_convergence",
    "began_discriminator_loss",
    "began_generator_loss",
    "bernoulli_log_prob",
    "categorical_log_prob",
    "dequantization_offset_nats",
    "diffusion",
    "discretized_logistic_log_prob",
    "discretized_logistic_mixture_log_prob",
    "elbo",
    "gan_discriminator_loss",
    "gan_generator_loss_minimax",
    "gan_generator_loss_nonsaturating",
    "gaussian_component_log_probs",
    "gaussian_kl",
    "gaussian_log_prob",
    "gaussian_mixture_log_prob",
    "gaussian_reparameterize",
    "gaussian_tril_component_log_probs",
    "gaussian_tril_log_prob",
    "gaussian_tril_mixture_log_prob",
    "gradient_penalty",
    "gradient_penalty_from_gradients",
    "interpolates",
    "iwae_bound",
    "least_squares_discriminator_loss",
    "least_squares_generator_loss",
    "log_mean_exp",
    "mixture_log_posterior",
    "mixture_responsibilities",
    "nats_to_bits_per_dim",
    "safe_norm",
    "tril_inverse",
    "wasserstein_critic_loss",
    "wasserstein_generator_loss",
    "cycle_consistency_loss",
    "cyclegan_generator_loss",
    "identity_loss",
    "l1_per_example",
    "patch_discriminator_loss",
    "pix2pix_generator_loss",
    "psnr",
]
