"""The ``channel-masks`` bench case on a shrunken grid: row keys, seeds pooled, FLOP shares."""

from __future__ import annotations

import pytest

from archsmith.bench import channel_masks as case
from archsmith.bench.registry import BenchContext, get_bench


def test_rows_pool_seeds_per_mass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(case, "QUICK_MASSES", (1.0, 0.3))
    calls: list[tuple[tuple[float, ...], int]] = []
    real = case.tradeoff

    def one_epoch(masses: tuple[float, ...], *, epochs: int, seed: int) -> list[dict]:
        calls.append((tuple(masses), seed))
        return real(masses, epochs=1, seed=seed)

    monkeypatch.setattr(case, "tradeoff", one_epoch)
    rows = get_bench("channel-masks").fn(BenchContext(quick=True))
    assert calls == [((1.0, 0.3), 0)]
    assert [r["mass"] for r in rows] == [1.0, 0.3]
    for r in rows:
        assert r["seeds"] == 1 and r["test_acc_std"] == 0.0
        assert 0.0 <= r["test_acc_mean"] <= 1.0 and 0.0 <= r["kept_channels"] <= 1.0
        assert 0.0 < r["flops_frac"] <= 1.1  # the predictors add a little to the dense cost
    # one dense network behind every row: FLOPs over their share is the same number
    dense = [r["mean_flops"] / r["flops_frac"] for r in rows]
    assert dense[0] == pytest.approx(dense[1])
