"""Couplings against their papers' equations written out by hand; inverses; bad configurations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.reversible import (
    AdditiveCoupling,
    AffineCoupling,
    MultiSplitCoupling,
    ReversibleSequence,
    part_sizes,
)
from helpers import rel_err


def conv(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.Tanh())


def test_part_sizes_first_parts_larger() -> None:
    assert part_sizes(7, 2) == (4, 3)
    assert part_sizes(8, 3) == (3, 3, 2)
    assert part_sizes(2, 2) == (1, 1)
    with pytest.raises(ArchsmithError, match="empty"):
        part_sizes(1, 2)


@pytest.mark.parametrize("channels", [6, 7])
def test_additive_matches_revnet_equations(channels: int) -> None:
    c1, c2 = (channels + 1) // 2, channels // 2
    f, g = conv(c2, c1), conv(c1, c2)
    coupling = AdditiveCoupling(f, g)
    x = torch.randn(2, channels, 5, 3)
    x1, x2 = x[:, :c1], x[:, c1:]
    y1 = x1 + f(x2)  # Gomez et al. 2017, eq. (1)
    y2 = x2 + g(y1)
    assert rel_err(coupling(x), torch.cat([y1, y2], 1)) < 1e-6
    with torch.no_grad():  # the no-grad path writes into slices: same numbers
        assert rel_err(coupling(x), torch.cat([y1, y2], 1)) < 1e-6
        assert rel_err(coupling.inverse(coupling(x)), x) < 1e-5


def test_additive_on_features_with_explicit_split() -> None:
    f, g = nn.Linear(3, 2), nn.Linear(2, 3)
    coupling = AdditiveCoupling(f, g, dim=-1, split=2)
    x = torch.randn(4, 6, 5)
    y1 = x[..., :2] + f(x[..., 2:])
    y2 = x[..., 2:] + g(y1)
    assert rel_err(coupling(x), torch.cat([y1, y2], -1)) < 1e-6
    assert rel_err(coupling.inverse(coupling(x)), x) < 1e-5


def test_multisplit_matches_sequential_updates() -> None:
    sizes = (3, 2, 2)  # part_sizes(7, 3)
    fns = [nn.Linear(7 - c, c) for c in sizes]
    coupling = MultiSplitCoupling(fns, dim=-1)
    x = torch.randn(5, 7)
    a, b, c = x[:, :3], x[:, 3:5], x[:, 5:]
    # Zhao et al. 2021: each part updated by a function of all the others, newest values first
    a = a + fns[0](torch.cat([b, c], -1))
    b = b + fns[1](torch.cat([a, c], -1))
    c = c + fns[2](torch.cat([a, b], -1))
    assert rel_err(coupling(x), torch.cat([a, b, c], -1)) < 1e-6
    assert rel_err(coupling.inverse(coupling(x)), x) < 1e-5


@pytest.mark.parametrize("scale", ["exp_tanh", "sigmoid"])
def test_affine_matches_equations_and_inverts(scale: str) -> None:
    net = nn.Conv2d(4, 6, 1)  # x1: 4 channels -> (log-scale, shift) of 3 channels each
    coupling = AffineCoupling(net, scale=scale)  # type: ignore[arg-type]
    x = torch.randn(3, 7, 4, 4)
    x1, x2 = x[:, :4], x[:, 4:]
    raw, t = net(x1)[:, :3], net(x1)[:, 3:]
    s = torch.exp(torch.tanh(raw)) if scale == "exp_tanh" else torch.sigmoid(raw + 2) + 1e-3
    assert rel_err(coupling(x), torch.cat([x1, x2 * s + t], 1)) < 1e-6
    assert rel_err(coupling.inverse(coupling(x)), x) < 1e-5


def test_affine_scale_never_zero() -> None:
    class Huge(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([torch.full_like(x, -1e4), torch.zeros_like(x)], 1)

    x = torch.randn(2, 4, 3)
    for scale in ("sigmoid", "exp_tanh"):
        coupling = AffineCoupling(Huge(), scale=scale)
        y = coupling(x)
        assert torch.isfinite(coupling.inverse(y)).all()
        assert (y[:, 2:].abs() > 0).all()  # x2 * s: a zero scale would erase x2


def test_bad_configurations_raise_one_line_errors() -> None:
    with pytest.raises(ArchsmithError, match="empty"):
        AdditiveCoupling(nn.Identity(), nn.Identity())(torch.randn(2, 1, 3))
    with pytest.raises(ArchsmithError, match="returned shape"):
        AdditiveCoupling(conv(2, 3), conv(2, 2))(torch.randn(2, 4, 3, 3))
    with pytest.raises(ArchsmithError, match="sum to"):
        MultiSplitCoupling([nn.Identity(), nn.Identity()], splits=(2, 3))(torch.randn(2, 4))
    with pytest.raises(ArchsmithError, match="empty"):
        MultiSplitCoupling([nn.Identity(), nn.Identity()], splits=(0, 4))
    with pytest.raises(ArchsmithError, match=r"nn\.Module"):
        MultiSplitCoupling([nn.Identity(), torch.tanh])  # type: ignore[list-item]
    with pytest.raises(ArchsmithError, match=">= 2 functions"):
        MultiSplitCoupling([nn.Identity()])
    with pytest.raises(ArchsmithError, match="expected"):
        AffineCoupling(nn.Identity())(torch.randn(2, 4, 3))
    with pytest.raises(ArchsmithError, match="scale"):
        AffineCoupling(nn.Identity(), scale="relu")  # type: ignore[arg-type]
    with pytest.raises(ArchsmithError, match="not a Coupling"):
        ReversibleSequence([nn.Linear(2, 2)])  # type: ignore[list-item]
    with pytest.raises(ArchsmithError, match="at least one"):
        ReversibleSequence([])
