"""Cox proportional-hazards MLP baseline for survival tasks.

The network outputs a log-risk score per sample; the task's loss is the Cox negative partial
log-likelihood (Cox, 1972; as a network: Katzman et al., "DeepSurv", 2018).
"""

from __future__ import annotations

import math
from typing import Annotated

from torch import nn

from archsmith.models.mlp import MLP, LayerArg
from archsmith.options import LayerName, Range
from archsmith.registry import register_model

__all__ = ["cox_mlp"]


@register_model(
    "cox_mlp",
    default_task="breast-cancer-survival",
    inputs=("vector",),
    task_kinds=("survival",),
)
def cox_mlp(
    in_shape: tuple[int, ...],
    num_outputs: int,
    hidden: tuple[Annotated[int, Range(min=1)], ...] = (64,),
    act_layer: Annotated[LayerArg, LayerName("act")] = "relu",
    norm_layer: Annotated[LayerArg, LayerName("norm")] = "none",
    dropout: Annotated[float, Range(min=0.0, max=1.0, max_inclusive=False)] = 0.1,
) -> nn.Module:
    """MLP log-risk model for Cox survival analysis (output [B, 1], no output bias)."""
    # The partial likelihood is invariant to a constant shift of the risk, so a head bias
    # would be an unidentifiable parameter.
    return MLP(
        math.prod(in_shape),
        num_outputs,
        hidden,
        act_layer=act_layer,
        norm_layer=norm_layer,
        dropout=dropout,
        head_bias=False,
    )
