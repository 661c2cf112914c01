"""Activation layers (kind ``act``): factories ``() -> nn.Module``, elementwise."""

from __future__ import annotations

from torch import nn

from archsmith.registry import register_layer

__all__ = ["ACTIVATIONS"]

#: name -> module class; ``none`` is the identity so a block can switch its activation off.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "selu": nn.SELU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "none": nn.Identity,
}

for _name, _cls in ACTIVATIONS.items():
    register_layer("act", _name)(_cls)
