"""Region Normalization (RN-B) against a naive per-region loop written from Yu et al. (2020)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import archsmith.selfnorm.norms  # noqa: F401  (registers the norm layers)
from archsmith.selfnorm.norms import RegionNorm
from helpers import rel_err
from norms_testing import assert_matches, perturb_parameters


def naive_region_norm(x: torch.Tensor, mask: torch.Tensor, m: RegionNorm) -> torch.Tensor:
    """For every sample and channel, normalize the valid values (mask 1) with their own mean
    and biased variance and the hole values (mask 0) with theirs, each region with its affine."""
    rows = []
    for b in range(x.shape[0]):
        region_valid = mask[b if mask.shape[0] > 1 else 0, 0] > 0.5  # [*spatial] bool
        chans = []
        for c in range(x.shape[1]):
            xbc = x[b, c]
            out = torch.zeros_like(xbc)
            for region, w, bias in (
                (region_valid, m.weight[c], m.bias[c]),
                (~region_valid, m.hole_weight[c], m.hole_bias[c]),
            ):
                if not region.any():
                    continue  # an empty region has no statistics and no outputs
                vals = xbc[region]
                mu = vals.sum() / vals.numel()
                var = ((vals - mu) ** 2).sum() / vals.numel()
                normed = (xbc - mu) / torch.sqrt(var + m.eps) * w + bias
                out = torch.where(region, normed, out)
            chans.append(out)
        rows.append(torch.stack(chans))
    return torch.stack(rows)


CASES = [(2, 3, 5, 7), (3, 4, 10), (2, 3, 3, 4, 2), (1, 5, 6, 6)]


@pytest.mark.parametrize("shape", CASES)
@pytest.mark.parametrize("train", [True, False])
def test_region_norm_matches_naive(shape: tuple[int, ...], train: bool) -> None:
    m = RegionNorm(shape[1]).double().train(train)
    perturb_parameters(m)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(shape[0], 1, *shape[2:]) < 0.6).double()
    mask.view(shape[0], -1)[:, :2] = torch.tensor([1.0, 0.0], dtype=torch.float64)  # both regions
    out = m(x, mask)
    assert_matches(out, naive_region_norm(x, mask, m), [x, *m.parameters()])


def test_region_norm_differs_from_instance_norm_and_ignores_the_hole_values() -> None:
    m = RegionNorm(2).double()
    x = torch.randn(2, 2, 6, 5, dtype=torch.float64)
    mask = torch.ones(2, 1, 6, 5, dtype=torch.float64)
    mask[:, :, 2:4, 1:4] = 0
    out = m(x, mask)
    corrupted = x.clone()
    corrupted[:, :, 2:4, 1:4] = 100.0  # a constant fill: the mean/variance shift of the paper
    out2 = m(corrupted, mask)
    valid = mask.expand_as(x) > 0.5
    # the valid region's output is untouched by what the hole holds
    assert rel_err(out2[valid], out[valid]) < 1e-12
    assert rel_err(m(x), out) > 1e-2


def test_empty_regions_give_no_nan() -> None:
    m = RegionNorm(3).double()
    perturb_parameters(m)
    x = torch.randn(3, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(3, 1, 4, 5, dtype=torch.float64)
    mask[1] = 0.0  # sample 1: everything is hole; sample 0: no hole at all
    mask[2, :, :2] = 0.0
    out = m(x, mask)
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    x.grad = None
    for p in m.parameters():
        p.grad = None
    assert_matches(m(x, mask), naive_region_norm(x, mask, m), [x, *m.parameters()])
    # sample 0 (all valid) is instance norm with the valid affine; sample 1 with the hole affine
    inorm = nn.InstanceNorm2d(3, affine=True).double()
    with torch.no_grad():
        inorm.weight.copy_(m.weight)
        inorm.bias.copy_(m.bias)
        assert rel_err(out[0], inorm(x[:1])[0]) < 1e-12
        inorm.weight.copy_(m.hole_weight)
        inorm.bias.copy_(m.hole_bias)
        assert rel_err(out[1], inorm(x[1:2])[0]) < 1e-12


def test_no_mask_is_instance_norm() -> None:
    m = RegionNorm(4).double()
    perturb_parameters(m)
    inorm = nn.InstanceNorm2d(4, affine=True).double()
    with torch.no_grad():
        inorm.weight.copy_(m.weight)
        inorm.bias.copy_(m.bias)
    x = torch.randn(2, 4, 3, 6, dtype=torch.float64, requires_grad=True)
    assert_matches(m(x), inorm(x), [x])
    ones = torch.ones(2, 1, 3, 6, dtype=torch.float64)
    assert rel_err(m(x, ones), m(x)) < 1e-12


def test_mask_is_resized_and_broadcast() -> None:
    m = RegionNorm(2).double()
    perturb_parameters(m)
    x = torch.randn(3, 2, 6, 8, dtype=torch.float64)
    small = (torch.rand(1, 1, 3, 4) < 0.5).double()
    small[0, 0, 0, :2] = torch.tensor([0.0, 1.0], dtype=torch.float64)
    full = small.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3).expand(3, 1, 6, 8)
    assert rel_err(m(x, small), naive_region_norm(x, full, m)) < 1e-12
    with pytest.raises(ValueError, match="mask"):
        m(x, torch.ones(2, 1, 6, 8))
    with pytest.raises(ValueError, match="spatial"):
        m(torch.randn(3, 2))
