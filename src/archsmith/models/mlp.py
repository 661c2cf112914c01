"""Multilayer perceptron baseline."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Annotated

import torch
from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.options import LayerName, Range
from archsmith.registry import LayerArg, get_layer, register_model

__all__ = ["MLP", "mlp"]


class MLP(nn.Module):
    """Flatten, then ``[linear -> norm -> act -> dropout] x len(hidden)``, then a linear head.

    Args:
        in_features: flattened input size F.
        num_outputs: output size.
        hidden: widths of the hidden layers (empty: a linear model).
        act_layer, norm_layer, linear_layer: layer types (names, classes or partials).
        dropout: dropout after every hidden activation.
        head_bias: bias in the output layer (off for Cox risk scores, which are shift-free).

    Shapes: ``x: [B, *] -> [B, num_outputs]``.
    """

    def __init__(
        self,
        in_features: int,
        num_outputs: int,
        hidden: Sequence[int] = (256, 256),
        *,
        act_layer: LayerArg = "relu",
        norm_layer: LayerArg = None,
        linear_layer: LayerArg = "dense",
        dropout: float = 0.0,
        head_bias: bool = True,
    ) -> None:
        super().__init__()
        act, norm, linear = (
            get_layer("act", act_layer),
            get_layer("norm", norm_layer),
            get_layer("linear", linear_layer),
        )
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [linear(width, h), norm(h), act()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        self.features = nn.Sequential(*layers)
        self.head: nn.Module = nn.Linear(width, num_outputs, bias=head_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model("mlp", default_task="digits-flat", inputs=("vector", "image"))
def mlp(
    in_shape: tuple[int, ...],
    num_outputs: int,
    hidden: tuple[Annotated[int, Range(min=1)], ...] = (256, 256),
    act_layer: Annotated[LayerArg, LayerName("act")] = "relu",
    norm_layer: Annotated[LayerArg, LayerName("norm")] = "none",
    linear_layer: Annotated[LayerArg, LayerName("linear")] = "dense",
    dropout: Annotated[float, Range(min=0.0, max=1.0, max_inclusive=False)] = 0.0,
    linear_rank: Annotated[int, Range(min=1)] | None = None,
) -> nn.Module:
    """Multilayer perceptron on the flattened input.

    ``linear_rank`` sets the rank of a tensorized ``linear_layer`` (``tt``, ``tt_fast``,
    ``btt``, ``tucker``, ``cp``: each layer's own ``rank``); ``None`` keeps the layer's default.
    It makes the rank a spec option, so a search can choose it.
    """
    if linear_rank is not None:
        if linear_layer in (None, "dense"):
            raise ArchsmithError(
                "options.linear_rank: the dense linear layer has no rank; "
                "give a tensorized linear_layer (tt, tt_fast, btt, tucker, cp)"
            )
        linear_layer = functools.partial(get_layer("linear", linear_layer), rank=linear_rank)
    return MLP(
        math.prod(in_shape),
        num_outputs,
        hidden,
        act_layer=act_layer,
        norm_layer=norm_layer,
        linear_layer=linear_layer,
        dropout=dropout,
    )
