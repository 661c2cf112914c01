"""The GLA rows of ``archsmith bench gating`` on a shrunken grid: keys, skips, saved memory and
the target columns."""

from __future__ import annotations

import pytest

from archsmith.bench import gating_gla
from archsmith.bench.registry import BenchContext

IMPLS = ["chunk", "recurrent", "parallel", "sdpa", "fla_naive"]
KEYS = ("fwd_ms", "fwd_bwd_ms", "saved_bytes", "gflops", "speedup_chunk")


@pytest.fixture
def rows(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    # two lengths (multiples of the chunk), head dim 8; the token loops timed at the first only,
    # where the speed targets are checked too
    monkeypatch.setattr(gating_gla, "DIM", 8)
    monkeypatch.setattr(gating_gla, "QUICK_LENGTHS", (128, 256))
    monkeypatch.setattr(gating_gla, "SLOW_MAX_T", {True: 128, False: 128})
    monkeypatch.setattr(gating_gla, "TARGET_T", 128)
    ctx = BenchContext(quick=True, machine={"matmul_gflops": 10.0}, repeats=1, warmup=0)
    return gating_gla.gla_rows(ctx)


def test_rows_keys_and_skips(rows: list[dict]) -> None:
    assert [(r["impl"], r["T"]) for r in rows] == [(i, t) for t in (128, 256) for i in IMPLS]
    for r in rows:
        assert r["op"] == "gla"
        if "missing" in r:  # fla not installed: reported, never dropped
            assert r["impl"] == "fla_naive" and r["note"]
        elif r["T"] == 256 and r["impl"] in ("recurrent", "fla_naive"):
            assert "skipped" in r["note"] and not any(k in r for k in KEYS)
        else:
            assert all(r[k] > 0 for k in KEYS) and r["peak_gflops"] == 10.0
            assert r["gflops"] == pytest.approx(r["flops"] / (r["fwd_bwd_ms"] * 1e6))
    assert rows[0]["speedup_chunk"] == 1.0


def test_saved_memory_of_chunk_is_linear_and_below_parallel(rows: list[dict]) -> None:
    by = {(r["impl"], r["T"]): r for r in rows}
    chunk128, chunk256 = by["chunk", 128]["saved_bytes"], by["chunk", 256]["saved_bytes"]
    assert 1.8 * chunk128 <= chunk256 <= 2.2 * chunk128
    # the parallel form keeps its [T, T, D] decays: quadratic, and far above the chunk form
    assert by["parallel", 256]["saved_bytes"] > 3.0 * by["parallel", 128]["saved_bytes"]
    assert by["parallel", 256]["saved_bytes"] > 10 * chunk256


def test_target_columns(rows: list[dict]) -> None:
    for r in rows:
        if r["T"] == 128 and r["impl"] in gating_gla.TARGETS:
            assert r["target_speedup"] == gating_gla.TARGETS[r["impl"]]
            assert r["target_met"] == (r["speedup_chunk"] >= r["target_speedup"])
        else:
            assert "target_speedup" not in r and "target_met" not in r
