"""EvoNorm-B0 / S0 against naive loops written from Liu et al. (2020)'s equations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import archsmith.selfnorm.norms  # noqa: F401  (registers the norm layers)
from archsmith.selfnorm.norms import EvoNormB0, EvoNormS0
from helpers import rel_err
from norms_testing import assert_matches, perturb_parameters

SHAPES = [(6, 5), (3, 7, 9), (2, 40, 3, 5), (1, 12, 4, 4), (2, 6, 3, 4, 2)]


def naive_b0(x: torch.Tensor, m: EvoNormB0, batch_var: torch.Tensor | None = None) -> torch.Tensor:
    """x / max(sqrt(s2_batch + eps), v x + sqrt(s2_inst + eps)) * gamma + beta, one value of
    (sample, channel) at a time; ``batch_var`` given = eval mode (running variance)."""
    assert m.v is not None
    b_size, c_size = x.shape[:2]
    rows = []
    for b in range(b_size):
        chans = []
        for c in range(c_size):
            xc = x[:, c]  # all samples and positions of channel c
            if batch_var is None:
                mu = xc.sum() / xc.numel()
                var_b = ((xc - mu) ** 2).sum() / xc.numel()
            else:
                var_b = batch_var[c]
            xbc = x[b, c]  # positions of sample b, channel c (a scalar for [B, C] inputs)
            mu_i = xbc.sum() / xbc.numel()
            var_i = ((xbc - mu_i) ** 2).sum() / xbc.numel()
            den = torch.maximum(torch.sqrt(var_b + m.eps), m.v[c] * xbc + torch.sqrt(var_i + m.eps))
            chans.append(xbc / den * m.weight[c] + m.bias[c])
        rows.append(torch.stack(chans))
    return torch.stack(rows)


def naive_running_var(x: torch.Tensor, old: torch.Tensor, momentum: float) -> torch.Tensor:
    """(1 - momentum) * old + momentum * the Bessel-corrected per-channel batch variance."""
    new = []
    for c in range(x.shape[1]):
        xc = x[:, c]
        n = xc.numel()
        mu = xc.sum() / n
        new.append(((xc - mu) ** 2).sum() / (n - 1))
    return (1 - momentum) * old + momentum * torch.stack(new)


def naive_s0(x: torch.Tensor, m: EvoNormS0) -> torch.Tensor:
    """x sigmoid(v x) / sqrt(s2_group + eps) * gamma + beta, one (sample, group) at a time."""
    assert m.v is not None
    b_size, c_size = x.shape[:2]
    per_group = c_size // m.num_groups
    rows = []
    for b in range(b_size):
        chans = []
        for g in range(m.num_groups):
            block = x[b, g * per_group : (g + 1) * per_group]  # channels of group g, sample b
            mu = block.sum() / block.numel()
            var = ((block - mu) ** 2).sum() / block.numel()
            for c in range(g * per_group, (g + 1) * per_group):
                xbc = x[b, c]
                num = xbc * torch.sigmoid(m.v[c] * xbc)
                chans.append(num / torch.sqrt(var + m.eps) * m.weight[c] + m.bias[c])
        rows.append(torch.stack(chans))
    return torch.stack(rows)


def torch_batchnorm(ndim: int, c: int) -> nn.Module:
    cls = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}[ndim]
    return cls(c).double()


@pytest.mark.parametrize("shape", SHAPES)
def test_b0_train_matches_naive_outputs_grads_and_running_var(shape: tuple[int, ...]) -> None:
    m = EvoNormB0(shape[1], momentum=0.3).double()
    perturb_parameters(m)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    old = m.running_var.clone()
    out = m(x)
    ref = naive_b0(x, m)
    assert_matches(out, ref, [x, m.weight, m.bias, m.v])
    assert rel_err(m.running_var, naive_running_var(x.detach(), old, 0.3)) < 1e-12
    # the same running variance torch's BatchNorm keeps
    bn = torch_batchnorm(len(shape), shape[1])
    bn.momentum = 0.3
    bn(x.detach())
    assert rel_err(m.running_var, bn.running_var) < 1e-12


@pytest.mark.parametrize("shape", SHAPES)
def test_b0_eval_uses_running_variance(shape: tuple[int, ...]) -> None:
    m = EvoNormB0(shape[1]).double()
    perturb_parameters(m)
    for _ in range(3):  # accumulate non-trivial running statistics
        m(2.0 * torch.randn(shape, dtype=torch.float64) + 1.0)
    m.eval()
    running = m.running_var.clone()
    assert rel_err(running, torch.ones_like(running)) > 0.1
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    out = m(x)
    assert_matches(out, naive_b0(x, m, batch_var=running), [x, m.weight, m.bias, m.v])
    assert torch.equal(m.running_var, running)  # eval leaves the statistics alone
    # and it is not the train-mode output
    assert rel_err(out, naive_b0(x, m)) > 1e-3


def test_b0_running_var_follows_torch_over_several_steps() -> None:
    m = EvoNormB0(4).double()
    bn = nn.BatchNorm2d(4).double()
    for _ in range(4):
        x = 3.0 * torch.randn(5, 4, 3, 2, dtype=torch.float64)
        m(x)
        bn(x)
    assert rel_err(m.running_var, bn.running_var) < 1e-12


def test_b0_single_value_per_channel_raises_in_training() -> None:
    m = EvoNormB0(5)
    with pytest.raises(ValueError, match="more than 1 value"):
        m(torch.randn(1, 5))
    m.eval()
    assert m(torch.randn(1, 5)).shape == (1, 5)  # eval needs no batch statistics


def test_b0_without_activation_is_affine() -> None:
    m = EvoNormB0(3, apply_act=False).double()
    perturb_parameters(m)
    x = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    ref = x * m.weight[:, None] + m.bias[:, None]
    assert_matches(m(x), ref, [x, m.weight, m.bias])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("train", [True, False])
def test_s0_matches_naive_in_train_and_eval(shape: tuple[int, ...], train: bool) -> None:
    # [B, C] with one channel per group would be degenerate (variance of one value): 5 -> 1 group
    m = EvoNormS0(shape[1], num_groups=1 if len(shape) == 2 else None).double().train(train)
    perturb_parameters(m)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    assert_matches(m(x), naive_s0(x, m), [x, m.weight, m.bias, m.v])


def test_s0_explicit_groups_and_same_in_train_and_eval() -> None:
    m = EvoNormS0(12, num_groups=4).double()
    perturb_parameters(m)
    x = torch.randn(3, 12, 5, 2, dtype=torch.float64, requires_grad=True)
    out = m(x)
    assert_matches(out, naive_s0(x, m), [x, m.weight, m.bias, m.v])
    assert rel_err(m.eval()(x), out) < 1e-15
    with pytest.raises(ValueError, match="num_groups"):
        EvoNormS0(12, num_groups=5)


@pytest.mark.parametrize(("c", "groups"), [(64, 32), (96, 32), (40, 20), (33, 11), (7, 7), (1, 1)])
def test_s0_default_groups(c: int, groups: int) -> None:
    assert EvoNormS0(c).num_groups == groups


@pytest.mark.parametrize("cls", [EvoNormB0, EvoNormS0])
def test_float32_agrees_with_float64_reference(cls: type[nn.Module]) -> None:
    m = cls(40)
    perturb_parameters(m)
    x = torch.randn(4, 40, 5, 3)
    out = m(x)
    m64 = cls(40).double()
    m64.load_state_dict(m.state_dict())
    ref = naive_b0(x.double(), m64) if cls is EvoNormB0 else naive_s0(x.double(), m64)
    assert out.dtype == torch.float32
    assert rel_err(out, ref) < 1e-5
