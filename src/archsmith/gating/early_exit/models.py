"""Registered early-exit models for image and vector classification (digits by default)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from torch import nn

from archsmith.gating.early_exit.network import EarlyExitNetwork
from archsmith.models.cnn import ConvNormAct
from archsmith.options import Range
from archsmith.recipe import Recipe
from archsmith.registry import register_model

__all__ = ["early_exit_cnn", "early_exit_mlp"]

Gate = Literal["joint", "confidence"]
Weight = Annotated[float, Range(min=0.0)]
Mix = Annotated[float, Range(min=0.0, max=1.0)]


@register_model(
    "early_exit_mlp",
    default_task="digits-flat",
    inputs=("vector", "image"),
    task_kinds=("classification",),
    family="gating",
)
def early_exit_mlp(
    in_shape: tuple[int, ...],
    num_outputs: int,
    width: Annotated[int, Range(min=1)] = 128,
    depth: Annotated[int, Range(min=1)] = 4,
    gate: Gate = "joint",
    cost_weight: Weight = 0.1,
    threshold: Annotated[float, Range(min=0.0)] | None = None,
    im_mix: Mix = 0.5,
    gate_loss: Literal["oracle", "expected"] = "oracle",
) -> nn.Module:
    """Early-exit MLP: a linear head after every hidden layer, JEI-DNN or confidence exits."""
    blocks: list[nn.Module] = []
    features = math.prod(in_shape)
    for i in range(depth):
        layers: list[nn.Module] = [nn.Flatten()] if i == 0 else []
        layers += [nn.Linear(features if i == 0 else width, width), nn.ReLU()]
        blocks.append(nn.Sequential(*layers))
    heads = [nn.Linear(width, num_outputs) for _ in range(depth)]
    return EarlyExitNetwork(
        blocks,
        heads,
        tuple(in_shape),
        gate=gate,
        cost_weight=cost_weight,
        threshold=threshold,
        im_mix=im_mix,
        gate_loss=gate_loss,
    )


@register_model(
    "early_exit_cnn",
    default_task="digits",
    inputs=("image",),
    task_kinds=("classification",),
    family="gating",
    recipe=Recipe(
        epochs=30,
        patience=None,
        note="archsmith bench early-exit's budget: 30 epochs for every gate and compute price "
        "(no early stopping, so each run trains as long; the best validation epoch's weights "
        "are kept).",
    ),
)
def early_exit_cnn(
    in_shape: tuple[int, ...],
    num_outputs: int,
    channels: tuple[Annotated[int, Range(min=1)], ...] = (16, 32, 64),
    gate: Gate = "joint",
    cost_weight: Weight = 0.1,
    threshold: Annotated[float, Range(min=0.0)] | None = None,
    im_mix: Mix = 0.5,
    gate_loss: Literal["oracle", "expected"] = "oracle",
) -> nn.Module:
    """Early-exit CNN: conv-BN-ReLU stages, each followed by 2x2 max-pooling while the map is
    >= 2x2 and by an exit head (flatten + linear); JEI-DNN or confidence exits."""
    c, h, w = in_shape
    blocks: list[nn.Module] = []
    heads: list[nn.Module] = []
    for out in channels:
        layers: list[nn.Module] = [ConvNormAct(c, out)]
        if min(h, w) >= 2:
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        blocks.append(nn.Sequential(*layers))
        heads.append(nn.Sequential(nn.Flatten(), nn.Linear(out * h * w, num_outputs)))
        c = out
    return EarlyExitNetwork(
        blocks,
        heads,
        tuple(in_shape),
        gate=gate,
        cost_weight=cost_weight,
        threshold=threshold,
        im_mix=im_mix,
        gate_loss=gate_loss,
    )
