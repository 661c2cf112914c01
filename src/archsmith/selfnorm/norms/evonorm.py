"""EvoNorm-B0 and EvoNorm-S0: normalization and activation in one layer.

Liu, Brock, Simonyan & Le, "Evolving Normalization-Activation Layers", NeurIPS 2020
(arXiv:2004.02967). The two layers were found by evolutionary search over computation graphs
and replace a ``BatchNorm -> ReLU`` (B0) or ``GroupNorm -> ReLU`` (S0) pair. An archsmith
block still applies its own activation after its norm: pass ``act_layer="none"`` as well for
the paper's layout (``norm_layer="evonorm_s0", act_layer="none"``).

Both take channels at dimension 1: ``x: [B, C, *spatial]`` (``[B, C]``, ``[B, C, L]``,
``[B, C, H, W]``, ``[B, C, D, H, W]``) and return the same shape. Variances are the biased
(population) ones, as in the paper's ``tf.nn.moments``; ``eps = 1e-5`` sits inside every
square root, as in the paper's ``instance_std`` / ``group_std``.
"""

from __future__ import annotations

import torch
from torch import nn

from archsmith.registry import register_layer
from archsmith.selfnorm.norms._utils import channel_shape, check_channels_first, resolve_num_groups

__all__ = ["EvoNormB0", "EvoNormS0"]


class EvoNormB0(nn.Module):
    """EvoNorm-B0 (batch-dependent), Liu et al. (2020)::

        y = x / max(sqrt(s2_batch(x) + eps), v * x + sqrt(s2_inst(x) + eps)) * gamma + beta

    ``s2_batch``: per-channel variance over ``(B, *spatial)``; ``s2_inst``: per-sample,
    per-channel variance over ``spatial``. ``gamma, beta, v: [C]`` (init 1, 0, 1).

    In training the batch variance of the current batch is used and ``running_var`` is updated
    as ``(1 - momentum) * running_var + momentum * unbiased_batch_var`` (the convention of
    ``torch.nn.BatchNorm``, so the two keep identical running statistics); in eval the running
    variance replaces the batch variance. The layer needs no running mean: B0 never centres.

    Shapes: ``x: [B, C, *spatial] -> [B, C, *spatial]``. On ``[B, C]`` vectors the instance
    variance of a single value is 0, so the second branch degenerates to ``v * x + sqrt(eps)``
    (well defined, but the paper only evaluated feature maps).

    Args:
        num_features: ``C``.
        eps: added to both variances (paper: 1e-5).
        momentum: running-variance update rate (torch convention; the paper's TF decay 0.9
            corresponds to momentum 0.1).
        apply_act: ``False`` gives the paper's "no nonlinearity" variant ``x * gamma + beta``.
    """

    running_var: torch.Tensor

    def __init__(
        self,
        num_features: int,
        *,
        eps: float = 1e-5,
        momentum: float = 0.1,
        apply_act: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.apply_act = apply_act
        self.weight = nn.Parameter(torch.ones(num_features))  # gamma
        self.bias = nn.Parameter(torch.zeros(num_features))  # beta
        self.v = nn.Parameter(torch.ones(num_features)) if apply_act else None
        self.register_buffer("running_var", torch.ones(num_features))

    def reset_running_stats(self) -> None:
        self.running_var.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_channels_first(x, self.num_features, "EvoNormB0")
        shape = channel_shape(x)
        weight, bias = self.weight.view(shape), self.bias.view(shape)
        if self.v is None:
            return x * weight + bias
        spatial = tuple(range(2, x.dim()))
        if self.training:
            n = x.numel() // x.shape[1]  # values per channel in the batch statistics
            if n < 2:
                raise ValueError(
                    f"EvoNormB0 needs more than 1 value per channel in training, got {tuple(x.shape)}"
                )
            batch_var = x.var(dim=(0, *spatial), correction=0, keepdim=True)  # [1, C, 1...]
            with torch.no_grad():
                # Bessel-corrected, as torch.nn.BatchNorm keeps its running_var
                unbiased = batch_var.flatten() * (n / (n - 1))
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), self.momentum)
        else:
            batch_var = self.running_var.view(shape).to(x.dtype)
        inst_std: torch.Tensor | float
        if spatial:
            inst_var = x.var(dim=spatial, correction=0, keepdim=True)  # [B, C, 1...]
            inst_std = torch.sqrt(inst_var + self.eps)
        else:
            # no spatial positions: the variance of one value is 0 (reducing over dim=() would
            # reduce over everything instead), so the term is the constant sqrt(eps)
            inst_std = self.eps**0.5
        # the max keeps the denominator >= sqrt(batch_var + eps) > 0, whatever the sign of v * x
        den = torch.maximum(torch.sqrt(batch_var + self.eps), self.v.view(shape) * x + inst_std)
        return x / den * weight + bias

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"apply_act={self.apply_act}"
        )


class EvoNormS0(nn.Module):
    """EvoNorm-S0 (sample-based, batch independent), Liu et al. (2020)::

        y = x * sigmoid(v * x) / sqrt(s2_group(x) + eps) * gamma + beta

    ``s2_group``: per-sample variance over the channels of a group and all spatial positions,
    with ``num_groups`` groups of ``C / num_groups`` consecutive channels (the paper uses 32
    groups; by default this layer uses 32 when ``C`` allows it, else the largest divisor of
    ``C`` that is <= 32, e.g. ``C=40 -> 20`` groups). ``gamma, beta, v: [C]`` (init 1, 0, 1).
    Identical in train and eval mode (no running statistics).

    Shapes: ``x: [B, C, *spatial] -> [B, C, *spatial]``. On ``[B, C]`` vectors the group
    variance runs over the ``C / num_groups`` channels of a group; with one channel per group
    (``C`` prime and <= 32) it is 0 and the layer scales by ``1 / sqrt(eps)``: pass a smaller
    ``num_groups`` there.

    Args:
        num_features: ``C``.
        num_groups: groups for the variance; must divide ``C``; ``None`` as above.
        eps: added to the group variance (paper: 1e-5).
        apply_act: ``False`` gives the paper's "no nonlinearity" variant ``x * gamma + beta``.
    """

    def __init__(
        self,
        num_features: int,
        num_groups: int | None = None,
        *,
        eps: float = 1e-5,
        apply_act: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.num_groups = resolve_num_groups(num_features, num_groups)
        self.eps = eps
        self.apply_act = apply_act
        self.weight = nn.Parameter(torch.ones(num_features))  # gamma
        self.bias = nn.Parameter(torch.zeros(num_features))  # beta
        self.v = nn.Parameter(torch.ones(num_features)) if apply_act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_channels_first(x, self.num_features, "EvoNormS0")
        shape = channel_shape(x)
        weight, bias = self.weight.view(shape), self.bias.view(shape)
        if self.v is None:
            return x * weight + bias
        b = x.shape[0]
        grouped = x.reshape(b, self.num_groups, -1)  # [B, G, C/G * prod(spatial)]
        var = grouped.var(dim=-1, correction=0, keepdim=True)  # [B, G, 1]
        num = x * torch.sigmoid(self.v.view(shape) * x)  # swish-like numerator
        out = num.reshape(b, self.num_groups, -1) / torch.sqrt(var + self.eps)
        return out.view_as(x) * weight + bias

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, num_groups={self.num_groups}, eps={self.eps}, "
            f"apply_act={self.apply_act}"
        )


register_layer("norm", "evonorm_b0")(EvoNormB0)
register_layer("norm", "evonorm_s0")(EvoNormS0)
