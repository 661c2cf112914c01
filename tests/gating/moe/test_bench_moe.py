"""The MoE rows of ``archsmith bench gating``."""

from __future__ import annotations

import pytest

from archsmith.bench.gating_moe import moe_rows
from archsmith.bench.registry import BenchContext


@pytest.mark.slow
def test_moe_rows_keys_and_ratios() -> None:
    rows = moe_rows(BenchContext(quick=True, machine={"matmul_gflops": 10.0}, repeats=1, warmup=0))
    assert [r["impl"] for r in rows] == ["moe_top2", "dense"]
    for r in rows:
        assert r["op"] == "moe" and r["T"] == 4096 and r["peak_gflops"] == 10.0
        for key in ("fwd_ms", "fwd_bwd_ms", "saved_bytes", "gflops"):
            assert r[key] > 0
    moe, dense = rows
    # the ratio compares equal arithmetic only when the capacity limit dropped nothing
    assert moe["dropped_tokens"] == moe["dropped_assignments"] == 0
    assert dense["vs_dense"] == 1.0
    assert moe["vs_dense"] == pytest.approx(moe["fwd_bwd_ms"] / dense["fwd_bwd_ms"])
    # same active weights; the MoE has the router (D x E) and one more output bias (D)
    assert moe["active_params"] - dense["active_params"] == 256 * 8 + 256
