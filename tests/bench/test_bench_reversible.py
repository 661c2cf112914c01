"""``archsmith bench reversible`` on a tiny grid: row keys, flat saved bytes, gradient errors."""

from __future__ import annotations

import pytest
import torch

from archsmith.bench import BenchContext, get_bench
from archsmith.bench import reversible as bench
from archsmith.bench.anchors import AnchorMissing
from archsmith.measure.timing import TimingResult

KEYS = {"model", "impl", "depth", "saved_bytes", "peak_rss_bytes", "step_ms", "max_grad_rel_err"}

TINY = bench.Grid(
    depths=(2, 6),
    models={
        "mbconv": bench.StackSize(batch=2, channels=8, side=4, expand_ratio=2.0),
        "transformer": bench.StackSize(batch=2, channels=8, side=5, expand_ratio=2.0, heads=2),
    },
)


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    torch.set_num_threads(1)
    return bench.stack_rows(BenchContext(quick=True, repeats=1, warmup=0), TINY)


def by_key(rows: list[dict]) -> dict[tuple[str, str, int], dict]:
    return {(r["model"], r["impl"], r["depth"]): r for r in rows if "missing" not in r}


def test_every_combination_has_a_row_with_the_issue_keys(rows: list[dict]) -> None:
    assert len(rows) == len(TINY.models) * len(TINY.depths) * len(bench.IMPLS)
    for row in rows:
        assert row.keys() >= KEYS, row
        assert row["model"] in TINY.models and row["impl"] in bench.IMPLS
    got = by_key(rows)
    for model in TINY.models:
        for depth in TINY.depths:
            for impl in ("plain", "checkpoint", "archsmith", "archsmith_pareprop"):
                assert (model, impl, depth) in got


def test_archsmith_saved_bytes_flat_while_plain_grows(rows: list[dict]) -> None:
    got = by_key(rows)
    for model, size in TINY.models.items():
        rev = [got[(model, "archsmith", d)]["saved_bytes"] for d in TINY.depths]
        plain = [got[(model, "plain", d)]["saved_bytes"] for d in TINY.depths]
        assert rev[0] == rev[1]  # the output alone, at any depth
        numel = (
            size.batch * size.channels * size.side**2
            if model == "mbconv"
            else size.batch * size.side * 2 * size.channels
        )
        assert rev[0] == 2 * 4 * numel  # the output and the loss's weight, float32
        assert plain[1] > 2.5 * plain[0]  # 3x the blocks


def test_gradients_match_plain(rows: list[dict]) -> None:
    got = by_key(rows)
    for (_, impl, _), row in got.items():
        if impl == "plain":
            assert row["max_grad_rel_err"] is None and row["note"] == "reference"
            continue
        assert row["max_grad_rel_err"] is not None and row["max_grad_rel_err"] < 1e-3, row
        if impl.startswith("archsmith"):
            assert row["grad_rel_err_f64"] < 1e-10, row


def test_missing_anchor_is_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    def absent(package: str) -> None:
        raise AnchorMissing(package)

    monkeypatch.setattr(bench, "require_anchor", absent)
    grid = bench.Grid(depths=(1,), models={"mbconv": TINY.models["mbconv"]})
    rows = bench.stack_rows(BenchContext(quick=True, repeats=1, warmup=0), grid)
    missing = {r["impl"]: r for r in rows if "missing" in r}
    assert set(missing) == {"memcnn", "revlib"}
    assert all("not installed" in r["note"] for r in missing.values())


def test_case_is_registered_and_appends_other_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    from archsmith.bench import reversible_unet

    calls: list[str] = []
    monkeypatch.setattr(bench, "stack_rows", lambda ctx: [{"model": "x"}])
    # the real one changes this test process's allocator for good
    monkeypatch.setattr(bench, "steady_heap", lambda: calls.append("steady_heap") or True)
    for name in ("unet_budget_rows", "reconstruction_rows"):

        def fake(ctx: BenchContext, name: str = name) -> list[dict]:
            calls.append(name)
            return [{"table": name}]

        monkeypatch.setattr(reversible_unet, name, fake)
    rows = get_bench("reversible").fn(BenchContext(quick=True))
    assert calls == ["steady_heap", "unet_budget_rows", "reconstruction_rows"]
    assert [r.get("table") for r in rows] == [None, "unet_budget_rows", "reconstruction_rows"]
    assert rows[0]["heap"] == "steady" and "heap" not in rows[1]
    monkeypatch.delattr(reversible_unet, "reconstruction_rows")
    rows = get_bench("reversible").fn(BenchContext(quick=True))
    assert len(rows) == 2  # the missing function is skipped, the case still runs


def test_recompute_floor_is_one_plus_forward_over_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hand-made clock readings: plain 10 ms, forward without grad 3 ms -> floor 1.3."""
    made = {"plain": 10.0, bench._FORWARD: 3.0}
    timed_names: list[str] = []

    def fake_timing(fns: dict, clocks: dict, **_: object) -> dict:
        timed_names.extend(fns)
        result = {n: TimingResult.from_samples([made.get(n, 12.0)]) for n in fns}
        return {c: dict(result) for c in clocks}

    monkeypatch.setattr(bench, "time_interleaved_clocks", fake_timing)
    grid = bench.Grid(
        depths=(1,), models={"mbconv": TINY.models["mbconv"]}, impls=("plain", "archsmith")
    )
    rows = bench.stack_rows(BenchContext(quick=True, repeats=1, warmup=0), grid)
    assert bench._FORWARD in timed_names  # timed in the same rounds as the steps
    assert [r["impl"] for r in rows] == ["plain", "archsmith"]  # and not a row of its own
    for row in rows:
        assert row["recompute_floor"] == pytest.approx(1.3)
    assert rows[1]["step_ratio"] == pytest.approx(1.2)
