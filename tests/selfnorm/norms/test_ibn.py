"""IBN-a against a naive per-channel reference written from Pan et al. (2018), and its halves
against torch's InstanceNorm / BatchNorm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import archsmith.selfnorm.norms  # noqa: F401  (registers the norm layers)
from archsmith.selfnorm.norms import IBN, InstanceNorm
from helpers import rel_err
from norms_testing import assert_matches, perturb_parameters


def naive_ibn(
    x: torch.Tensor, m: IBN, running: tuple[torch.Tensor, torch.Tensor] | None = None
) -> torch.Tensor:
    """Channel c < floor(C * ratio): instance norm over the positions of each sample; channel
    c >= it: batch norm over samples and positions (``running`` = (mean, var) in eval)."""
    h = m.num_instance
    out = []
    for c in range(x.shape[1]):
        if c < h:
            assert m.instance_norm is not None
            w, b, eps = m.instance_norm.weight[c], m.instance_norm.bias[c], m.instance_norm.eps
            per_sample = []
            for s in range(x.shape[0]):
                xs = x[s, c]
                mu = xs.sum() / xs.numel()
                var = ((xs - mu) ** 2).sum() / xs.numel()
                per_sample.append((xs - mu) / torch.sqrt(var + eps) * w + b)
            out.append(torch.stack(per_sample))
        else:
            bn = m.batch_norm
            assert bn is not None and bn.weight is not None and bn.bias is not None
            k = c - h
            xc = x[:, c]
            if running is None:
                mu = xc.sum() / xc.numel()
                var = ((xc - mu) ** 2).sum() / xc.numel()
            else:
                mu, var = running[0][k], running[1][k]
            out.append((xc - mu) / torch.sqrt(var + bn.eps) * bn.weight[k] + bn.bias[k])
    return torch.stack(out, dim=1)


CASES = [
    ((4, 8, 5, 3), 0.5, 4),
    ((3, 7, 4, 6), 0.5, 3),  # odd C: the extra channel goes to the batch half
    ((2, 10, 9), 0.25, 2),  # [B, C, L]
    ((1, 6, 3, 5), 0.5, 3),  # batch 1: fine, the batch half still has 15 values per channel
    ((2, 6, 3, 4, 2), 0.5, 3),  # volumes
    ((3, 5, 4, 4), 0.0, 0),  # pure batch norm
    ((3, 5, 4, 4), 1.0, 5),  # pure instance norm
]


@pytest.mark.parametrize(("shape", "ratio", "num_instance"), CASES)
@pytest.mark.parametrize("train", [True, False])
def test_ibn_matches_naive(
    shape: tuple[int, ...], ratio: float, num_instance: int, train: bool
) -> None:
    m = IBN(shape[1], ratio).double()
    assert m.num_instance == num_instance
    perturb_parameters(m)
    running = None
    if not train:
        for _ in range(3):
            m(2.0 * torch.randn(shape, dtype=torch.float64) - 1.0)
        m.eval()
        if m.batch_norm is not None:
            assert m.batch_norm.running_mean is not None and m.batch_norm.running_var is not None
            running = (m.batch_norm.running_mean.clone(), m.batch_norm.running_var.clone())
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    out = m(x)
    assert_matches(out, naive_ibn(x, m, running), [x, *m.parameters()])


def test_ibn_halves_are_torch_instancenorm_and_batchnorm() -> None:
    m = IBN(8).double()
    perturb_parameters(m)
    inorm = nn.InstanceNorm2d(4, affine=True).double()
    bnorm = nn.BatchNorm2d(4).double()
    assert m.instance_norm is not None and m.batch_norm is not None
    inorm.load_state_dict(m.instance_norm.state_dict())
    bnorm.load_state_dict(m.batch_norm.state_dict())
    x = torch.randn(5, 8, 4, 3, dtype=torch.float64)
    out = m(x)
    assert rel_err(out[:, :4], inorm(x[:, :4])) < 1e-12
    assert rel_err(out[:, 4:], bnorm(x[:, 4:])) < 1e-12
    # running statistics of the batch half, as torch keeps them
    assert bnorm.running_var is not None and bnorm.running_mean is not None
    assert rel_err(m.batch_norm.running_var, bnorm.running_var) < 1e-12
    assert rel_err(m.batch_norm.running_mean, bnorm.running_mean) < 1e-12
    m.eval()
    bnorm.eval()
    assert rel_err(m(x)[:, 4:], bnorm(x[:, 4:])) < 1e-12
    assert rel_err(m(x)[:, :4], inorm(x[:, :4])) < 1e-12  # no running stats for the IN half


def test_ibn_rejects_vectors_and_bad_ratio() -> None:
    with pytest.raises(ValueError, match="spatial"):
        IBN(6)(torch.randn(4, 6))
    with pytest.raises(ValueError, match="ratio"):
        IBN(6, ratio=1.5)


def test_instance_norm_any_rank_matches_torch() -> None:
    m = InstanceNorm(3).double()
    perturb_parameters(m)
    for shape, cls in [((2, 3, 7), nn.InstanceNorm1d), ((2, 3, 4, 5), nn.InstanceNorm2d)]:
        ref = cls(3, affine=True).double()
        ref.load_state_dict(m.state_dict())
        x = torch.randn(shape, dtype=torch.float64)
        assert rel_err(m(x), ref(x)) < 1e-12
