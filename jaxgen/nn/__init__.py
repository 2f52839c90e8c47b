"""Reusable Flax (linen) layers shared by the model families."""

from jaxgen.nn.blocks import ACTIVATIONS
from jaxgen.nn.blocks import ConvDecoder
from jaxgen.nn.blocks import ConvEncoder
from jaxgen.nn.blocks import MLP
from jaxgen.nn.blocks import activation
from jaxgen.nn.blocks import decoder_start_shape

__all__ = ['ACTIVATIONS', 'ConvDecoder', 'ConvEncoder', 'MLP', 'activation',
           'decoder_start_shape']
