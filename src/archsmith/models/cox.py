"""Cox proportional-hazards MLP baseline for survival tasks.

The network outputs a log-risk score per sample; the task's loss is the Cox negative partial
log-likelihood (Cox, 1972; as a network: Katzman et al., "DeepSurv", 2018).
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from torch import nn

from archsmith.models.mlp import MLP
from archsmith.options import LayerName, Range
from archsmith.recipe import Recipe
from archsmith.registry import LayerArg, register_model

__all__ = ["SurvivalHead", "cox_mlp"]


class SurvivalHead(nn.Module):
    """The output of a Cox model: a log-risk score and, optionally, auxiliary class logits.

    ``[B, F] -> [B, 1 + C]``: column 0 is the log hazard ratio (no bias: the partial likelihood
    ignores a constant shift of the risk, so a bias would be unidentifiable); columns ``1..C``
    are logits of an auxiliary label learned jointly (SeNMo, Waqas et al., 2024, trains the
    survival and the classification head on one shared encoder). ``num_outputs = 1`` gives the
    plain risk model.
    """

    def __init__(self, in_features: int, num_outputs: int) -> None:
        super().__init__()
        self.risk = nn.Linear(in_features, 1, bias=False)
        self.classes = nn.Linear(in_features, num_outputs - 1) if num_outputs > 1 else None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        risk = self.risk(h)  # [B, 1]
        if self.classes is None:
            return risk
        return torch.cat([risk, self.classes(h)], dim=-1)  # [B, 1 + C]


@register_model(
    "cox_mlp",
    default_task="breast-cancer-survival",
    inputs=("vector",),
    task_kinds=("survival",),
    recipe=Recipe(
        batch_size="full",
        epochs=100,
        weights="swa",
        note="archsmith bench survival's protocol for Cox networks: whole-split steps (a "
        "mini-batch's partial likelihood compares each event with its batch only) and the "
        "average of the second half's weights (too few events in a validation part to pick an "
        "epoch on); the trainer's learning rate and weight decay.",
    ),
)
def cox_mlp(
    in_shape: tuple[int, ...],
    num_outputs: int,
    hidden: tuple[Annotated[int, Range(min=1)], ...] = (64,),
    act_layer: Annotated[LayerArg, LayerName("act")] = "relu",
    norm_layer: Annotated[LayerArg, LayerName("norm")] = "none",
    dropout: Annotated[float, Range(min=0.0, max=1.0, max_inclusive=False)] = 0.1,
) -> nn.Module:
    """MLP log-risk model for Cox survival analysis (output [B, 1], no output bias; with an
    auxiliary label [B, 1 + C], see :class:`SurvivalHead`)."""
    model = MLP(
        math.prod(in_shape),
        num_outputs,
        hidden,
        act_layer=act_layer,
        norm_layer=norm_layer,
        dropout=dropout,
        head_bias=False,
    )
    width = hidden[-1] if hidden else math.prod(in_shape)
    model.head = SurvivalHead(width, num_outputs)
    return model
