"""IBN-a: instance normalization on part of the channels, batch normalization on the rest.

Pan, Luo, Shi & Tang, "Two at Once: Enhancing Learning and Generalization Capacities via
IBN-Net", ECCV 2018. Instance normalization removes per-image appearance (colour, contrast,
style) that hurts transfer across domains; batch normalization keeps the content
discrimination that instance normalization would wash out. IBN-a splits the channels of a
normalization layer between the two.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from archsmith.layers.norm import BatchNorm
from archsmith.registry import register_layer
from archsmith.selfnorm.norms._utils import check_channels_first

__all__ = ["IBN", "InstanceNorm"]


class InstanceNorm(nn.Module):
    """Affine instance normalization over the spatial dimensions of ``[B, C, *spatial]``, any
    number of spatial dimensions (one class instead of ``nn.InstanceNorm1d/2d/3d``).

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with per-sample, per-channel mean and
    biased variance (Ulyanov et al., 2016); no running statistics, so train and eval agree.
    Needs more than one spatial position in every mode (torch's ``F.instance_norm`` rule).
    """

    def __init__(self, num_features: int, *, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_channels_first(x, self.num_features, "InstanceNorm", min_dim=3)
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


class IBN(nn.Module):
    """IBN-a normalization, Pan et al. (2018): the first ``floor(C * ratio)`` channels through
    affine :class:`InstanceNorm`, the remaining ones through :class:`BatchNorm`, concatenated
    back in the original channel order.

    The batch half keeps running statistics (unbiased variance, ``momentum``) and uses them in
    eval; the instance half has none. ``ratio=0.5`` is the paper's IBN-a; ``floor`` means an odd
    ``C`` gives the extra channel to the batch half, and a ratio giving 0 (or ``C``) channels
    leaves one part empty (pure batch or pure instance normalization).

    Shapes: ``x: [B, C, *spatial] -> [B, C, *spatial]`` with at least one spatial dimension
    (instance normalization of a single value is meaningless, so ``[B, C]`` raises).

    Args:
        num_features: ``C``.
        ratio: fraction of channels instance-normalized, in ``[0, 1]``.
        eps: for both parts (1e-5).
        momentum: running-statistics update rate of the batch part.
    """

    def __init__(
        self,
        num_features: int,
        ratio: float = 0.5,
        *,
        eps: float = 1e-5,
        momentum: float = 0.1,
    ) -> None:
        super().__init__()
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"IBN ratio must be in [0, 1], got {ratio}")
        self.num_features = num_features
        self.ratio = ratio
        self.num_instance = math.floor(num_features * ratio)
        num_batch = num_features - self.num_instance
        self.instance_norm = InstanceNorm(self.num_instance, eps=eps) if self.num_instance else None
        self.batch_norm = BatchNorm(num_batch, eps=eps, momentum=momentum) if num_batch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_channels_first(x, self.num_features, "IBN", min_dim=3)
        parts = []
        if self.instance_norm is not None:
            parts.append(self.instance_norm(x[:, : self.num_instance]))
        if self.batch_norm is not None:
            parts.append(self.batch_norm(x[:, self.num_instance :]))
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    def extra_repr(self) -> str:
        return f"{self.num_features}, ratio={self.ratio}, num_instance={self.num_instance}"


register_layer("norm", "ibn")(IBN)
