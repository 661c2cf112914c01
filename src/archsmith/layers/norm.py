"""Normalization layers (kind ``norm``): factories ``(num_features) -> nn.Module``.

Layouts differ, as in timm: ``layernorm`` and ``rmsnorm`` normalize the last dimension
(``[B, ..., C]``: vectors and token sequences); ``batchnorm``, ``groupnorm`` and ``layernorm2d``
take channels at dimension 1 (``[B, C, ...]``: feature maps, and plain ``[B, C]`` vectors).
``none`` is the identity (for self-normalizing blocks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from archsmith.registry import register_layer

__all__ = ["BatchNorm", "LayerNorm2d"]


class BatchNorm(_BatchNorm):
    """Batch normalization over dimension 1 for inputs of any rank >= 2 (``[B, C, *]``).

    Ioffe & Szegedy, 2015. One class instead of BatchNorm1d/2d/3d so a block need not know
    its input's rank.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"BatchNorm expects [B, C, ...], got shape {tuple(input.shape)}")


class LayerNorm2d(nn.LayerNorm):
    """Layer normalization over the channels of a ``[B, C, *spatial]`` feature map, per position."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__(num_features, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.movedim(1, -1)  # [B, *spatial, C]: normalize the channel vector at each position
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.movedim(-1, 1)


def _group_norm(num_features: int) -> nn.Module:
    # 32 groups as in Wu & He (2018) when the channels allow it, else the largest divisor <= 32.
    groups = max(g for g in range(1, min(32, num_features) + 1) if num_features % g == 0)
    return nn.GroupNorm(groups, num_features)


register_layer("norm", "none")(lambda num_features: nn.Identity())
register_layer("norm", "layernorm")(nn.LayerNorm)
register_layer("norm", "rmsnorm")(nn.RMSNorm)
register_layer("norm", "batchnorm")(BatchNorm)
register_layer("norm", "layernorm2d")(LayerNorm2d)
register_layer("norm", "groupnorm")(_group_norm)
