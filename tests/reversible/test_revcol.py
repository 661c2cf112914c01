"""RevCol: the reversible column propagation against its autograd twin (same weights, same dropout
masks), against a naive loop over the paper's equation, and its memory flat in columns."""

from __future__ import annotations

import pytest
import torch

from archsmith.build import create_model
from archsmith.cost import measure
from archsmith.errors import ArchsmithError
from archsmith.reversible.revcol import RevCol, RevColColumn
from helpers import rel_err


def _pair(dtype: torch.dtype, **kw: object) -> tuple[RevCol, RevCol]:
    rev = RevCol(2, 3, reversible=True, **kw).to(dtype)  # type: ignore[arg-type]
    with torch.no_grad():  # move away from the init (gamma = 1, BN affine = identity)
        for p in rev.parameters():
            p.add_(0.3 * torch.randn_like(p))
    twin = RevCol(2, 3, reversible=False, **kw).to(dtype)  # type: ignore[arg-type]
    twin.load_state_dict(rev.state_dict())
    return rev, twin


def _grads(model: RevCol, x: torch.Tensor, g: torch.Tensor, seed: int) -> list[torch.Tensor]:
    x = x.clone().requires_grad_()
    torch.manual_seed(seed)  # the same dropout masks in both models
    out = model(x)
    out.backward(g)
    assert x.grad is not None
    params = [p.grad if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]
    return [out.detach(), x.grad, *params]


@pytest.mark.parametrize(
    ("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-4)], ids=["f64", "f32"]
)
@pytest.mark.parametrize(
    ("columns", "channels", "blocks", "hw"),
    [
        (1, (3, 5), 1, (7, 9)),
        (2, (4,), 2, (5, 5)),
        (3, (4, 6, 5), 1, (9, 7)),
        (5, (3, 4), 1, (6, 8)),
    ],
)
def test_reversible_columns_match_the_autograd_twin(
    dtype: torch.dtype,
    tol: float,
    columns: int,
    channels: tuple[int, ...],
    blocks: int,
    hw: tuple[int, int],
) -> None:
    kw = dict(channels=channels, columns=columns, blocks=blocks, stem_channels=3, dropout=0.2)
    rev, twin = _pair(dtype, **kw)
    x = torch.randn(3, 2, *hw, dtype=dtype)
    g = torch.randn(3, 3, dtype=dtype)
    got, ref = _grads(rev, x, g, seed=7), _grads(twin, x, g, seed=7)
    assert rel_err(got[0], ref[0]) < tol  # outputs
    assert rel_err(got[1], ref[1]) < tol  # input gradient
    flat_got = torch.cat([t.reshape(-1) for t in got[2:]])
    flat_ref = torch.cat([t.reshape(-1) for t in ref[2:]])
    assert rel_err(flat_got, flat_ref) < tol
    # parameter by parameter, except those whose gradient is zero up to rounding: a bias whose
    # every downstream path ends in a BatchNorm has a true gradient of exactly zero
    scale = float(flat_ref.norm())
    for a, b in zip(got[2:], ref[2:], strict=True):
        if float(b.norm()) > 1e-6 * scale:
            assert rel_err(a, b) < 10 * tol
    # BatchNorm running statistics move once per step, as in the twin
    for (name, a), b in zip(rev.named_buffers(), twin.buffers(), strict=True):
        assert rel_err(a, b) < tol, name
        if name.endswith("num_batches_tracked"):
            assert int(a) <= 1  # 0 for the first column's unused up-projections


@pytest.mark.parametrize("frozen", ["stem", "column", "gamma"])
def test_frozen_parts_and_inputs_without_grad_match_the_twin(frozen: str) -> None:
    """A frozen stem makes the columns' input need no gradient; a frozen column (or gamma) gives
    parameters that take none. Both as in plain autograd."""
    torch.manual_seed(0)
    rev, twin = _pair(torch.float64, channels=(3, 4), columns=3, stem_channels=3)
    for model in (rev, twin):
        params = {
            "stem": model.stem.parameters(),
            "column": model.columns[1].parameters(),
            "gamma": model.columns[2].gamma_raw.parameters(),  # type: ignore[union-attr]
        }[frozen]
        for p in params:
            p.requires_grad_(False)
    x = torch.randn(2, 2, 6, 8, dtype=torch.float64)  # no grad
    g = torch.randn(2, 3, dtype=torch.float64)
    for model in (rev, twin):
        model(x).backward(g)
    pairs = list(zip(rev.named_parameters(), twin.parameters(), strict=True))
    scale = float(torch.cat([b.grad.reshape(-1) for _, b in pairs if b.grad is not None]).norm())
    for (name, a), b in pairs:
        if not b.requires_grad:
            assert a.grad is None and b.grad is None, name
            continue
        assert a.grad is not None and b.grad is not None, name
        # biases whose every path ends in a BatchNorm have a true gradient of zero: rounding
        # noise on both sides, compared to the whole gradient's size
        assert float((a.grad - b.grad).norm()) < 1e-10 * scale, name


def naive_columns(model: RevCol, x: torch.Tensor) -> list[list[torch.Tensor]]:
    """Every column's levels, straight from eq. 4: x_l^c = F_l(x_{l-1}^c, x_{l+1}^{c-1})
    + gamma_l x_l^{c-1}; the first column reads no previous column."""
    x0 = model.stem(x)
    cols: list[list[torch.Tensor]] = []
    for c, column in enumerate(model.columns):
        assert isinstance(column, RevColColumn)
        feats: list[torch.Tensor] = []
        for level in range(column.num_levels):
            lower = x0 if level == 0 else feats[level - 1]
            higher = None
            if c > 0 and level + 1 < column.num_levels:
                higher = cols[c - 1][level + 1]
            value = column.fusion(level, lower, higher)
            if c > 0:
                value = value + column.gamma(level) * cols[c - 1][level]
            feats.append(value)
        cols.append(feats)
    return cols


@pytest.mark.parametrize("reversible", [True, False])
def test_features_follow_the_paper_equation(reversible: bool) -> None:
    rev, twin = _pair(torch.float64, channels=(3, 4, 5), columns=3, stem_channels=2)
    model = (rev if reversible else twin).eval()
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        ref = naive_columns(model, x)[-1]
        for got, want in zip(model.features(x), ref, strict=True):
            assert rel_err(got, want) < 1e-12


def test_each_column_is_recovered_from_the_next_by_the_inverse_equation() -> None:
    model = _pair(torch.float64, channels=(3, 4, 5), columns=4, stem_channels=2)[0].eval()
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        cols = naive_columns(model, x)
        x0 = model.stem(x)
        for c in range(len(cols) - 1, 0, -1):
            column = model.columns[c]
            assert isinstance(column, RevColColumn)
            prev: list[torch.Tensor | None] = [None] * column.num_levels
            for level in range(column.num_levels - 1, -1, -1):  # top-down
                lower = x0 if level == 0 else cols[c][level - 1]
                higher = prev[level + 1] if level + 1 < column.num_levels else None
                f = column.fusion(level, lower, higher)
                prev[level] = (cols[c][level] - f) / column.gamma(level)
            for got, want in zip(prev, cols[c - 1], strict=True):
                assert got is not None and rel_err(got, want) < 1e-10


def test_gamma_never_falls_below_its_floor() -> None:
    column = RevColColumn(
        2, (3, 4), blocks=1, norm_layer="none", act_layer="relu", dropout=0.0, gamma_init=0.5
    )
    assert rel_err(column.gamma(0), torch.full((1, 3, 1, 1), 0.5)) < 1e-6
    with torch.no_grad():
        column.gamma_raw[1].fill_(-1e4)
    assert float(column.gamma(1).detach().min()) >= column.gamma_min > 0
    with pytest.raises(ArchsmithError, match="gamma_init"):
        RevColColumn(
            2, (3,), blocks=1, norm_layer="none", act_layer="relu", dropout=0.0, gamma_init=1e-4
        )


def _saved_bytes(columns: int, reversible: bool) -> int:
    model = create_model("revcol", task="digits", columns=columns, reversible=reversible)
    x = torch.randn(4, 1, 8, 8)
    return measure(model, x, timing=False).saved_activation_bytes


def test_saved_activations_stay_flat_in_columns_while_the_twin_grows() -> None:
    rev = [_saved_bytes(c, True) for c in (1, 2, 5)]
    twin = [_saved_bytes(c, False) for c in (1, 2, 5)]
    assert rev[1] == rev[2]  # only x0 and the last column are kept, whatever the count
    assert twin[2] > 3 * twin[1] / 2 and twin[2] > 3 * rev[2]
    # one column has nothing to reconstruct, yet the reversible path keeps no more than the twin
    assert rev[0] <= twin[0]
