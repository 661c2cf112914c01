"""Batch-Channel Normalization (BCN) and Weight Standardization (WS).

Qiao, Wang, Liu, Shen & Yuille, "Micro-Batch Training with Batch-Channel Normalization and
Weight Standardization" (arXiv:1903.10520, 2019/2020). WS reparameterizes each convolution
filter to zero mean and unit variance, which smooths the loss landscape; BCN follows a batch
normalization with a channel (group) normalization, so the activations keep batch knowledge
(away from "elimination singularities") while each sample is also normalized on its own.
The paper pairs them: ``WSConv2d -> BatchChannelNorm -> ReLU``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archsmith.layers.norm import BatchNorm
from archsmith.registry import register_layer
from archsmith.selfnorm.norms._utils import check_channels_first, resolve_num_groups

__all__ = ["BatchChannelNorm", "WSConv2d"]


class BatchChannelNorm(nn.Module):
    """Batch normalization followed by group ("channel") normalization, Qiao et al. (2020)::

        x_hat = gamma_b * (x - mu_b) / sqrt(var_b + eps) + beta_b      # per channel, over (B, *spatial)
        y     = gamma_c * (x_hat - mu_g) / sqrt(var_g + eps) + beta_c  # per sample and group

    The batch part is :class:`archsmith.layers.norm.BatchNorm` (any rank): batch statistics in
    training, which also update ``batch_norm.running_mean`` / ``running_var`` (unbiased
    variance, ``momentum``), and the running estimates in eval. The channel part is
    ``nn.GroupNorm`` with per-channel affine; its statistics are per sample, the same in train
    and eval. Variances are biased, ``eps = 1e-5`` inside the square roots.

    The paper's micro-batch variant (running estimates also in training) is not implemented:
    this is the large-batch form, which the paper uses whenever batch statistics are reliable.

    Shapes: ``x: [B, C, *spatial] -> [B, C, *spatial]`` (``[B, C]`` too: the channel part then
    normalizes the ``C / num_groups`` values of each group; with one channel per group it
    outputs ``beta_c``, so pass a smaller ``num_groups`` for vectors with prime ``C`` <= 32).

    Args:
        num_features: ``C``.
        num_groups: groups of the channel normalization; must divide ``C``; ``None``: 32 when
            ``C`` allows it, else the largest divisor of ``C`` that is <= 32.
        eps: for both normalizations.
        momentum: running-statistics update rate of the batch part (torch convention).
    """

    def __init__(
        self,
        num_features: int,
        num_groups: int | None = None,
        *,
        eps: float = 1e-5,
        momentum: float = 0.1,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.num_groups = resolve_num_groups(num_features, num_groups)
        self.batch_norm = BatchNorm(num_features, eps=eps, momentum=momentum)
        self.channel_norm = nn.GroupNorm(self.num_groups, num_features, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_channels_first(x, self.num_features, "BatchChannelNorm")
        return self.channel_norm(self.batch_norm(x))


class WSConv2d(nn.Conv2d):
    """``nn.Conv2d`` with Weight Standardization, Qiao et al. (2020)::

        W_hat[o] = (W[o] - mean(W[o])) / sqrt(var(W[o]) + eps)

    per output channel ``o``, mean and (biased) variance over ``(in / groups, kh, kw)``, as in
    the paper's equation ``sigma = sqrt(mean(W^2) - mean(W)^2 + eps)``. The stored ``weight``
    stays the free parameter; gradients flow through the standardization, as the paper
    prescribes. Not a norm layer: use it in place of ``nn.Conv2d`` (same arguments, plus
    ``eps``), typically followed by :class:`BatchChannelNorm` or ``nn.GroupNorm``.

    Shapes: ``x: [B, C_in, H, W] -> [B, C_out, H', W']`` as ``nn.Conv2d``.

    Args:
        eps: inside the square root (default 1e-5).
    """

    def __init__(self, *args: Any, eps: float = 1e-5, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.eps = eps

    def standardized_weight(self) -> torch.Tensor:
        """``W_hat: [C_out, C_in / groups, kh, kw]``, each filter zero mean, unit variance."""
        w = self.weight
        flat = w.flatten(1)  # [C_out, C_in/groups * kh * kw]: one row per filter
        var, mean = torch.var_mean(flat, dim=1, correction=0, keepdim=True)
        return ((flat - mean) / torch.sqrt(var + self.eps)).view_as(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # _conv_forward keeps nn.Conv2d's padding modes (reflect, circular, ...) working
        return self._conv_forward(x, self.standardized_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, eps={self.eps}"


register_layer("norm", "bcn")(BatchChannelNorm)
