"""Registered self-normalizing models: ``snn`` for classification and regression, ``snn_cox``
for survival (the SeNMo recipe: Waqas et al., 2024, "SeNMo: A Self-Normalizing Deep Learning
Model for Enhanced Multi-Omics Data Analysis in Oncology")."""

from __future__ import annotations

import math
from typing import Annotated

from torch import nn

from archsmith.models.cox import SurvivalHead
from archsmith.options import Range
from archsmith.recipe import Recipe
from archsmith.registry import register_model
from archsmith.selfnorm.snn import SNN, lecun_normal_

__all__ = ["snn", "snn_cox"]

Rate = Annotated[float, Range(min=0.0, max=1.0, max_inclusive=False)]


@register_model(
    "snn",
    default_task="digits-flat",
    inputs=("vector", "image"),
    family="selfnorm",
    recipe=Recipe(
        lr=1e-4,
        weight_decay=0.0,
        epochs=60,
        patience=15,
        note="archsmith bench selfnorm's SNN settings. A deep SNN has no normalization to "
        "absorb large steps, and weight decay pulls the weights below the LeCun scale that "
        "keeps activations at the SELU fixed point (mean 0, variance 1). 32 layers on z-scored "
        "digits: test accuracy 0.94-0.95 over seeds 0-2, 0.34 with the trainer's defaults.",
    ),
)
def snn(
    in_shape: tuple[int, ...],
    num_outputs: int,
    width: Annotated[int, Range(min=1)] = 256,
    depth: Annotated[int, Range(min=1)] = 8,
    dropout: Rate = 0.05,
) -> nn.Module:
    """Self-normalizing MLP: SELU, LeCun-normal init, AlphaDropout, no normalization layers."""
    return SNN(math.prod(in_shape), num_outputs, width=width, depth=depth, dropout=dropout)


@register_model(
    "snn_cox",
    default_task="breast-cancer-survival",
    inputs=("vector",),
    task_kinds=("survival",),
    family="selfnorm",
    recipe=Recipe(
        lr=1e-3,
        weight_decay=0.0,
        batch_size="full",
        epochs=100,
        weights="swa",
        note="archsmith bench survival's SNN settings, tuned by cross-validation: the Cox "
        "partial likelihood of a mini-batch compares each event with its batch only, a noisy "
        "estimate on a few hundred patients, so every step takes the whole training split; a "
        "validation part of such a set holds too few events to pick an epoch on, so the run "
        "keeps the average of the second half's weights. No weight decay (see snn).",
    ),
)
def snn_cox(
    in_shape: tuple[int, ...],
    num_outputs: int,
    width: Annotated[int, Range(min=1)] = 64,
    depth: Annotated[int, Range(min=1)] = 3,
    dropout: Rate = 0.1,
) -> nn.Module:
    """SeNMo-style survival model: SNN encoder, Cox log-risk head (no bias) and, when the task
    has an auxiliary label, a classification head trained jointly."""
    model = SNN(math.prod(in_shape), 1, width=width, depth=depth, dropout=dropout)
    head = SurvivalHead(width, num_outputs)
    for layer in (head.risk, head.classes):
        if layer is not None:
            lecun_normal_(layer)  # the SNN recipe's init for the heads too
    model.head = head
    return model
