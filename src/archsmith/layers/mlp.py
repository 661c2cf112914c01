"""The MLP (feed-forward) half of a Transformer block, registered as ``mlp_layer="dense"``.

Every ``mlp`` layer factory takes ``(dim, hidden, *, act_layer, linear_layer, dropout)`` and
maps ``[..., dim] -> [..., dim]``; families register others (``mlp_layer="moe"``).
"""

from __future__ import annotations

import torch
from torch import nn

from archsmith.registry import LayerArg, get_layer, register_layer

__all__ = ["FeedForward"]


@register_layer("mlp", "dense")
class FeedForward(nn.Module):
    """``linear(dim, hidden) -> act -> dropout -> linear(hidden, dim)`` on ``[..., dim]``."""

    def __init__(
        self,
        dim: int,
        hidden: int,
        *,
        act_layer: LayerArg = "gelu",
        linear_layer: LayerArg = "dense",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        linear = get_layer("linear", linear_layer)
        self.fc1 = linear(dim, hidden)
        self.act = get_layer("act", act_layer)()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc2 = linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.fc1(x))))
