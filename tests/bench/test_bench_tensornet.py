"""``archsmith bench tensornet`` on a tiny grid: rows, keys, parameter matching, missing anchor."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from archsmith.bench import AnchorMissing, BenchContext, run_bench
from archsmith.bench import tensornet as bench
from archsmith.tensornet.layers import BTTLinear, TTLinear

tltorch = pytest.importorskip("tltorch")

KEYS = {"impl", "size", "rank", "params", "fwd_ms", "fwd_bwd_ms"}
IMPLS = {"tt", "btt", "tltorch_blocktt", "tltorch_tucker", "tltorch_cp", "dense"}


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "QUICK_SIZES", (64,))
    monkeypatch.setattr(bench, "LEVELS", {True: (4, 16), False: (4,)})
    monkeypatch.setattr(bench, "BATCH", 8)
    monkeypatch.setattr(bench, "PROBE_ROUNDS", 1)


def _ctx() -> BenchContext:
    return BenchContext(quick=True, repeats=1, warmup=0)


def test_rows_have_the_interface_keys(tiny: None) -> None:
    torch.manual_seed(0)
    rows = bench.tensornet_rows(_ctx())
    assert {r["impl"] for r in rows} == IMPLS
    for row in rows:
        assert row.keys() >= KEYS, row
        assert row["size"] == 64
        assert row["fwd_ms"] > 0 and row["fwd_bwd_ms"] > 0
    dense = [r for r in rows if r["impl"] == "dense"]
    assert len(dense) == 1 and dense[0]["params"] == 64 * 64 + 64


def test_params_are_the_modules_counts(tiny: None) -> None:
    rows = bench.tensornet_rows(_ctx())
    for row in rows:
        if row["impl"] == "tt":
            layout = row["layout"]
            assert row["params"] == TTLinear.param_count(64, 64, row["rank"], layout=layout)
        if row["impl"] == "btt":
            assert row["params"] == BTTLinear.param_count(64, 64, row["rank"])
            # two batched matmuls: one multiply-add per weight and row
            assert math.isclose(row["flops_vs_dense"], 1 / row["compression"], rel_tol=1e-12)
        if row["impl"] == "tt":
            b, r = bench.BATCH, row["rank"]
            if row["layout"] == "balanced":
                # 64 = 8 x 8, two cores: x . G2 . G1 costs 4 B a^3 r; rebuilding costs
                # 2 a^4 r + 2 B a^4
                a = 8
                rebuild = 2 * a**4 * r + 2 * b * a**4
                path = min(4 * b * a**3 * r, rebuild)
            else:
                # in (2, 32), out (32, 2): 2 B r (2 N + 2 M); rebuilding multiplies [64, r] by
                # [r, 64], then the dense matmul
                rebuild = 2 * 64 * r * 64 + 2 * b * 64 * 64
                path = 2 * b * r * (2 * 64 + 2 * 64)
            # the layer rebuilds when that costs at most twice the path
            taken = rebuild if rebuild <= 2 * path else path
            assert math.isclose(row["flops_vs_dense"], taken / (2 * b * 64 * 64), rel_tol=1e-12)
    # tt ranks come from the compression levels: within size^2 / level weights
    for layout in ("balanced", "fast"):
        tt_ranks = sorted(r["rank"] for r in rows if r.get("layout") == layout)
        assert tt_ranks == sorted(
            {
                TTLinear.rank_for_params(64, 64, 64 * 64 // c, bias=False, layout=layout)
                for c in (4, 16)
            }
        )


def test_tltorch_rows_match_their_archsmith_row(tiny: None) -> None:
    rows = bench.tensornet_rows(_ctx())
    by_key = {
        f"{r['impl']}{'/' + r['layout'] if 'layout' in r else ''} r={r['rank']}": r
        for r in rows
        if r["impl"] in ("tt", "btt")
    }
    tl_rows = [r for r in rows if r["impl"].startswith("tltorch_")]
    assert len(tl_rows) == 3 * len(by_key)
    for row in tl_rows:
        target = by_key[row["match"]]
        assert row["match_params"] == target["params"]
        assert row["tl_impl"] in ("factorized", "reconstructed")
        assert math.isclose(
            row["tl_over_archsmith"], row["fwd_bwd_ms"] / target["fwd_bwd_ms"], rel_tol=1e-9
        )
        if row["impl"] == "tltorch_blocktt" and target["impl"] == "tt":
            # the same TT-matrix format on the same modes: equal rank, equal count
            assert row["rank"] == target["rank"] and row["params"] == target["params"]


@pytest.mark.parametrize("fac", ["blocktt", "tucker", "cp"])
@pytest.mark.parametrize("weights", [300, 2_000, 20_000])
def test_tl_rank_for_is_nearest_and_counts_like_tltorch(fac: str, weights: int) -> None:
    in_modes = out_modes = (8, 4, 4)
    rank = bench.tl_rank_for(fac, in_modes, out_modes, weights)
    layer = tltorch.FactorizedLinear(in_modes, out_modes, factorization=fac, rank=rank, bias=False)
    built = sum(p.numel() for p in layer.parameters())
    assert built == bench._tl_count(fac, in_modes, out_modes, rank)
    # no other rank of the same family is nearer (brute force over the small family)
    if fac == "cp":
        others = [bench._tl_count(fac, in_modes, out_modes, r) for r in range(1, 2000)]
    elif fac == "blocktt":
        others = [bench._tl_count(fac, in_modes, out_modes, r) for r in range(1, 40)]
    else:
        return  # tucker ranks follow tensorly's fraction rule: checked against the build above
    assert abs(built - weights) == min(abs(c - weights) for c in others)


def test_missing_anchor_gives_rows_saying_so(tiny: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(package: str) -> None:
        raise AnchorMissing(package)

    monkeypatch.setattr(bench, "require_anchor", missing)
    rows = bench.tensornet_rows(_ctx())
    tl_rows = [r for r in rows if r["impl"].startswith("tltorch_")]
    assert tl_rows and all(r["missing"] == "tltorch" and "fwd_ms" not in r for r in tl_rows)
    assert {r["impl"] for r in rows if "fwd_ms" in r} == {"tt", "btt", "dense"}


def test_too_slow_candidates_get_a_note(tiny: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "SKIP_FACTOR", 0.0)
    monkeypatch.setattr(bench, "SKIP_MIN_S", 0.0)
    rows = bench.tensornet_rows(_ctx())
    timed = [r for r in rows if "fwd_ms" in r]
    assert [r["impl"] for r in timed] == ["dense"]
    assert all(r["note"].startswith("skipped: one fwd+bwd took") for r in rows if r not in timed)


def test_run_bench_writes_json(tiny: None, tmp_path: Path) -> None:
    out = tmp_path / "tn.json"
    result = run_bench("tensornet", quick=True, json_path=out, echo=False, _matmul_n=32)
    data = json.loads(out.read_text())
    assert data["rows"] == result["rows"]
    assert {r["impl"] for r in data["rows"]} == IMPLS
