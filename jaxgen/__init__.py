"""jaxgen: the classic deep generative models in JAX and Flax (linen)."""

__version__ = "0.1.0"
