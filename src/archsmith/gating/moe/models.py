"""``moe_transformer``: the pre-norm Transformer with a mixture-of-experts MLP in every block."""

from __future__ import annotations

import functools
from typing import Annotated, Literal

from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.gating.moe.layer import MoE
from archsmith.models.transformer import Transformer
from archsmith.options import LayerName, Range
from archsmith.registry import LayerArg, register_model

__all__ = ["moe_transformer"]


@register_model(
    "moe_transformer",
    default_task="mqar",
    inputs=("tokens", "image", "vector"),
    task_kinds=("classification", "regression", "sequence"),
    family="gating",
)
def moe_transformer(
    in_shape: tuple[int, ...],
    num_outputs: int,
    vocab_size: int | None = None,
    per_position: bool = False,
    dim: Annotated[int, Range(min=1)] = 64,
    depth: Annotated[int, Range(min=1)] = 2,
    num_heads: Annotated[int, Range(min=1)] = 4,
    mlp_ratio: Annotated[float, Range(min=0.0, min_inclusive=False)] = 2.0,
    num_experts: Annotated[int, Range(min=1)] = 8,
    top_k: Annotated[int, Range(min=1)] = 2,
    router: Literal["topk", "noisy_topk", "dts"] = "topk",
    capacity_factor: Annotated[float, Range(min=0.0, min_inclusive=False)] | None = 1.25,
    aux_loss_weight: Annotated[float, Range(min=0.0)] = 0.01,
    z_loss_weight: Annotated[float, Range(min=0.0)] = 0.0,
    anneal_steps: Annotated[int, Range(min=1)] = 1000,
    attn_layer: Annotated[LayerArg, LayerName("attn")] = "softmax",
    norm_layer: Annotated[LayerArg, LayerName("norm")] = "layernorm",
    act_layer: Annotated[LayerArg, LayerName("act")] = "gelu",
) -> nn.Module:
    """Transformer whose MLPs are top-k mixtures of experts (load-balanced, capacity-limited).

    ``router="dts"`` anneals from dense to sparse over ``anneal_steps`` training steps.
    """
    if dim % num_heads:
        raise ArchsmithError(f"options.num_heads: dim {dim} is not divisible by {num_heads} heads")
    if top_k > num_experts:
        raise ArchsmithError(f"options.top_k: must be <= num_experts={num_experts}, got {top_k}")
    mlp = functools.partial(
        MoE,
        num_experts=num_experts,
        top_k=top_k,
        router=router,
        capacity_factor=capacity_factor,
        aux_loss_weight=aux_loss_weight,
        z_loss_weight=z_loss_weight,
        anneal_steps=anneal_steps,
    )
    return Transformer(
        in_shape,
        num_outputs,
        vocab_size=vocab_size,
        per_position=per_position,
        dim=dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=mlp_ratio,
        attn_layer=attn_layer,
        norm_layer=norm_layer,
        act_layer=act_layer,
        mlp_layer=mlp,
    )
