"""The reversible U-Net budget table and the reconstruction table, on tiny grids: keys, the search
against a brute-force scan, the saved-bytes count against cost.measure, and the 1e-5
reconstruction requirement."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archsmith.bench.registry import BenchContext
from archsmith.bench.reversible_unet import (
    BUDGET_TABLE,
    PAPER_RATIOS,
    RECONSTRUCTION_TABLE,
    BudgetGrid,
    ReconstructionGrid,
    largest_fitting,
    reconstruction_rows,
    unet_budget_rows,
)
from archsmith.cost import measure
from archsmith.reversible.unet3d import RevUNet3D

TINY_BUDGET = BudgetGrid(
    side=4, slices=4, width=2, levels=2, blocks=1, max_blocks=6, max_width=12, max_slices=40,
    peak_rss=False,
)  # fmt: skip
TINY_RECONSTRUCTION = ReconstructionGrid(
    depths=(2, 4), batch=2, image=(1, 8, 8), channels=8, side=4
)


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 8, 13, 50, 100])
@pytest.mark.parametrize("start", [1, 3])
def test_largest_fitting_matches_a_linear_scan(limit: int, start: int) -> None:
    calls: list[int] = []

    def fits(n: int) -> bool:
        calls.append(n)
        return n <= limit

    n, capped = largest_fitting(fits, start, cap=64)
    scan = max((k for k in range(start, 65) if k <= limit), default=start - 1)
    assert n == scan
    assert capped == (limit >= 64)
    assert len(calls) <= 2 * 7 + 1  # doubling then bisection: logarithmic


@pytest.fixture(scope="module")
def budget_rows() -> list[dict[str, object]]:
    n = torch.get_num_threads()
    try:
        return unet_budget_rows(BenchContext(quick=True), TINY_BUDGET)
    finally:
        torch.set_num_threads(n)


def _by(rows: list[dict[str, object]], axis: str, impl: str) -> dict[str, object]:
    (row,) = [r for r in rows if r["axis"] == axis and r["impl"] == impl]
    return row


def test_budget_rows_reversible_fits_at_least_as_much_as_plain(
    budget_rows: list[dict[str, object]],
) -> None:
    rows = budget_rows
    assert len(rows) == 6
    for row in rows:
        assert row["table"] == BUDGET_TABLE and row["model"] == "unet3d"
        for key in ("impl", "axis", "value", "size", "saved_bytes", "budget_bytes", "ratio"):
            assert key in row
        assert isinstance(row["saved_bytes"], int) and isinstance(row["budget_bytes"], int)
        assert row["saved_bytes"] <= row["budget_bytes"]
    for axis, paper in PAPER_RATIOS.items():
        plain, rev = _by(rows, axis, "plain"), _by(rows, axis, "archsmith")
        assert plain["ratio"] == 1.0 and rev["paper_ratio"] == paper
        assert rev["size"] >= plain["size"]  # type: ignore[operator]
        assert rev["ratio"] == rev["size"] / plain["size"]  # type: ignore[operator]
    # the plain network sets the budget at the reference, and one step further exceeds it
    assert _by(rows, "depth", "plain")["value"] == TINY_BUDGET.blocks
    # a reversible stage keeps only its output: depth is bounded by the cap, not the budget
    rev_depth = _by(rows, "depth", "archsmith")
    assert rev_depth["value"] == TINY_BUDGET.max_blocks and rev_depth["capped"] is True


def test_budget_search_stops_where_the_next_step_exceeds_the_budget(
    budget_rows: list[dict[str, object]],
) -> None:
    rev = _by(budget_rows, "volume", "archsmith")
    fold = 2 ** (TINY_BUDGET.levels - 1)
    budget = int(rev["budget_bytes"])  # type: ignore[call-overload]

    def saved(slices: int) -> int:
        model = RevUNet3D(1, 3, (2, 4), blocks=TINY_BUDGET.blocks)
        x = torch.randn(1, 1, slices, TINY_BUDGET.side, TINY_BUDGET.side)
        y = torch.randint(0, 3, (1, slices, TINY_BUDGET.side, TINY_BUDGET.side))
        cost = measure(model, x, target=y, loss_fn=F.cross_entropy, timing=False)
        return cost.saved_activation_bytes

    slices = int(rev["value"])  # type: ignore[call-overload]
    assert saved(slices) == rev["saved_bytes"]  # the search's count is cost.measure's
    assert saved(slices) <= budget < saved(slices + fold)


def test_reconstruction_rows_meet_the_issue_tolerance() -> None:
    rows = reconstruction_rows(BenchContext(quick=True), TINY_RECONSTRUCTION)
    assert {(r["model"], r["depth"]) for r in rows} == {
        (m, d) for m in ("irevnet", "rev_mbconv") for d in (2, 4)
    }
    for row in rows:
        assert row["table"] == RECONSTRUCTION_TABLE and row["dtype"] == "float32"
        assert 0 <= row["max_abs_err"] <= row["output_max_abs"]
        assert 0 <= row["rel_err"] < 1e-5
