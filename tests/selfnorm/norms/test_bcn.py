"""Batch-Channel Normalization and Weight Standardization against naive references written from
Qiao et al. (2020)'s equations, and against torch's own BatchNorm / GroupNorm / conv2d."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import archsmith.selfnorm.norms  # noqa: F401  (registers the norm layers)
from archsmith.selfnorm.norms import BatchChannelNorm, WSConv2d
from helpers import rel_err
from norms_testing import assert_matches, perturb_parameters


def naive_bcn(
    x: torch.Tensor,
    m: BatchChannelNorm,
    running: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Batch norm per channel (batch statistics, or ``running`` = (mean, var) in eval), then
    group norm per (sample, group), each with its per-channel affine; loops over the indices."""
    bn, gn = m.batch_norm, m.channel_norm
    assert bn.weight is not None and bn.bias is not None
    b_size, c_size = x.shape[:2]
    eps = bn.eps
    chans = []
    for c in range(c_size):
        xc = x[:, c]
        if running is None:
            mu = xc.sum() / xc.numel()
            var = ((xc - mu) ** 2).sum() / xc.numel()
        else:
            mu, var = running[0][c], running[1][c]
        chans.append((xc - mu) / torch.sqrt(var + eps) * bn.weight[c] + bn.bias[c])
    x_hat = torch.stack(chans, dim=1)  # [B, C, *spatial]
    per_group = c_size // m.num_groups
    rows = []
    for b in range(b_size):
        out = []
        for g in range(m.num_groups):
            block = x_hat[b, g * per_group : (g + 1) * per_group]
            mu = block.sum() / block.numel()
            var = ((block - mu) ** 2).sum() / block.numel()
            for c in range(g * per_group, (g + 1) * per_group):
                out.append((x_hat[b, c] - mu) / torch.sqrt(var + eps) * gn.weight[c] + gn.bias[c])
        rows.append(torch.stack(out))
    return torch.stack(rows)


def bcn_params(m: BatchChannelNorm) -> list[torch.Tensor]:
    return [m.batch_norm.weight, m.batch_norm.bias, m.channel_norm.weight, m.channel_norm.bias]


CASES = [
    ((8, 12), 3),
    ((3, 40, 6), None),
    ((2, 40, 3, 5), None),
    ((1, 6, 4, 3), 2),
    ((2, 8, 2, 3, 2), 4),
]


@pytest.mark.parametrize(("shape", "groups"), CASES)
def test_bcn_train_matches_naive_and_torch_running_stats(
    shape: tuple[int, ...], groups: int | None
) -> None:
    m = BatchChannelNorm(shape[1], groups).double()
    perturb_parameters(m)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    out = m(x)
    assert_matches(out, naive_bcn(x, m), [x, *bcn_params(m)])
    # running statistics: the naive Bessel-corrected update and torch's BatchNorm agree
    xd = x.detach()
    dims = (0, *range(2, x.dim()))
    n = xd.numel() // shape[1]
    mean = xd.sum(dims) / n
    var = ((xd - mean.view(1, -1, *[1] * (x.dim() - 2))) ** 2).sum(dims) / (n - 1)
    assert rel_err(m.batch_norm.running_mean, 0.1 * mean) < 1e-12
    assert rel_err(m.batch_norm.running_var, 0.9 + 0.1 * var) < 1e-12
    bn = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}[x.dim()]
    ref_bn = bn(shape[1]).double()
    ref_bn(xd)
    assert ref_bn.running_var is not None
    assert rel_err(m.batch_norm.running_var, ref_bn.running_var) < 1e-12


@pytest.mark.parametrize(("shape", "groups"), CASES)
def test_bcn_eval_uses_running_estimates(shape: tuple[int, ...], groups: int | None) -> None:
    m = BatchChannelNorm(shape[1], groups).double()
    perturb_parameters(m)
    for _ in range(3):
        m(1.5 * torch.randn(shape, dtype=torch.float64) + 0.5)
    m.eval()
    bn = m.batch_norm
    assert bn.running_mean is not None and bn.running_var is not None
    running = (bn.running_mean.clone(), bn.running_var.clone())
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    out = m(x)
    assert_matches(out, naive_bcn(x, m, running), [x, *bcn_params(m)])
    assert torch.equal(bn.running_var, running[1])


def test_bcn_is_torch_batchnorm_then_groupnorm() -> None:
    m = BatchChannelNorm(40).double()
    perturb_parameters(m)
    bn, gn = nn.BatchNorm2d(40).double(), nn.GroupNorm(20, 40).double()
    bn.load_state_dict(m.batch_norm.state_dict())
    gn.load_state_dict(m.channel_norm.state_dict())
    x = torch.randn(4, 40, 3, 5, dtype=torch.float64)
    assert rel_err(m(x), gn(bn(x))) < 1e-12
    m.eval()
    bn.eval()
    assert rel_err(m(x), gn(bn(x))) < 1e-12


def naive_standardize(w: torch.Tensor, eps: float) -> torch.Tensor:
    """Each filter W[o] minus its mean, over sqrt(its biased variance + eps)."""
    filters = []
    for o in range(w.shape[0]):
        wo = w[o]
        mu = wo.sum() / wo.numel()
        var = ((wo - mu) ** 2).sum() / wo.numel()
        filters.append((wo - mu) / torch.sqrt(var + eps))
    return torch.stack(filters)


WS_CASES = [
    dict(in_channels=3, out_channels=5, kernel_size=3, padding=1),
    dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=2, groups=2, bias=False),
    dict(in_channels=2, out_channels=3, kernel_size=3, dilation=2, padding=2),
    dict(in_channels=3, out_channels=4, kernel_size=1),  # 1x1: standardized over C_in only
]


@pytest.mark.parametrize("kwargs", WS_CASES)
def test_wsconv2d_matches_conv_with_standardized_weight(kwargs: dict) -> None:
    conv = WSConv2d(**kwargs).double()
    with torch.no_grad():
        conv.weight.mul_(3.0).add_(0.7)  # a filter far from zero mean / unit variance
    x = torch.randn(2, kwargs["in_channels"], 7, 6, dtype=torch.float64, requires_grad=True)
    out = conv(x)
    w_hat = naive_standardize(conv.weight, conv.eps)
    ref = F.conv2d(
        x,
        w_hat,
        conv.bias,
        stride=kwargs.get("stride", 1),
        padding=kwargs.get("padding", 0),
        dilation=kwargs.get("dilation", 1),
        groups=kwargs.get("groups", 1),
    )
    params = [conv.weight] + ([conv.bias] if conv.bias is not None else [])
    assert_matches(out, ref, [x, *params])


def test_wsconv2d_filters_have_zero_mean_unit_variance_and_keep_padding_mode() -> None:
    conv = WSConv2d(3, 4, 3, padding=1, padding_mode="reflect").double()
    with torch.no_grad():
        conv.weight.mul_(5.0).add_(-2.0)
    w = conv.standardized_weight().flatten(1)
    assert w.mean(1).abs().max() < 1e-12
    assert (w.var(1, correction=0) - 1).abs().max() < 1e-3  # var / (var + eps)
    x = torch.randn(1, 3, 5, 5, dtype=torch.float64)
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    ref = F.conv2d(padded, naive_standardize(conv.weight, conv.eps), conv.bias)
    assert rel_err(conv(x), ref) < 1e-12
    # scaling or shifting a stored filter does not change the layer (the point of
    # standardization); a tiny eps so that only rounding separates the two
    conv.eps = 1e-14
    before = conv(x)
    with torch.no_grad():
        conv.weight.mul_(7.0).add_(1.5)
    assert rel_err(conv(x), before) < 1e-10
