"""Self-normalizing networks (Klambauer et al., 2017, "Self-Normalizing Neural Networks").

With SELU activations, LeCun-normal weights (``N(0, 1/fan_in)``), zero biases and standardized
inputs, the mean and variance of every layer's activations are pulled towards the fixed point
(0, 1), so a deep plain MLP stays trainable without any normalization layer. Dropout must be
AlphaDropout, which keeps that fixed point (ordinary dropout would shift the variance).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

__all__ = ["SNN", "lecun_normal_", "selu_layer"]


def lecun_normal_(linear: nn.Linear) -> nn.Linear:
    """Initialise ``linear`` as the SNN paper prescribes: weights ``N(0, 1/fan_in)``, bias 0."""
    nn.init.normal_(linear.weight, mean=0.0, std=1.0 / math.sqrt(linear.in_features))
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)
    return linear


def selu_layer(in_features: int, out_features: int, dropout: float = 0.0) -> nn.Sequential:
    """``Linear (LeCun normal) -> SELU -> AlphaDropout``: one self-normalizing layer."""
    layers: list[nn.Module] = [lecun_normal_(nn.Linear(in_features, out_features)), nn.SELU()]
    if dropout > 0:
        layers.append(nn.AlphaDropout(dropout))
    return nn.Sequential(*layers)


class SNN(nn.Module):
    """A self-normalizing MLP: flatten, ``depth`` SELU layers of ``width``, a linear head.

    Args:
        in_features: flattened input size F (inputs should be standardized).
        num_outputs: output size K.
        width: units per hidden layer.
        depth: number of hidden layers.
        dropout: AlphaDropout rate after every hidden layer (the paper uses 0.05 - 0.1).
        head_bias: bias in the output layer (off for Cox risk scores).

    Shapes: ``x: [B, *] -> [B, K]``; :meth:`encode` gives the last hidden layer ``[B, width]``.
    """

    def __init__(
        self,
        in_features: int,
        num_outputs: int,
        *,
        width: int = 256,
        depth: int = 4,
        dropout: float = 0.0,
        head_bias: bool = True,
    ) -> None:
        super().__init__()
        dims = [in_features] + [width] * depth
        self.flatten = nn.Flatten()
        self.body = nn.Sequential(*(selu_layer(a, b, dropout) for a, b in itertools.pairwise(dims)))
        self.head: nn.Module = lecun_normal_(nn.Linear(dims[-1], num_outputs, bias=head_bias))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The representation before the head: ``[B, *] -> [B, width]``."""
        return self.body(self.flatten(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(x))
