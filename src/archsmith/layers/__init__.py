"""Built-in layer types, registered by name for every block's ``*_layer`` options.

Families register more (``evonorm_s0``, ``gla``, ``tt``, ...) in their own packages.
"""

from archsmith.layers.activation import ACTIVATIONS
from archsmith.layers.attention import SoftmaxAttention
from archsmith.layers.linear import dense_linear
from archsmith.layers.mlp import FeedForward
from archsmith.layers.norm import BatchNorm, LayerNorm2d

__all__ = [
    "ACTIVATIONS",
    "BatchNorm",
    "FeedForward",
    "LayerNorm2d",
    "SoftmaxAttention",
    "dense_linear",
]
