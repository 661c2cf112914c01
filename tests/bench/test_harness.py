"""archsmith.bench: registry, interleaved timing, machine facts, anchors, report and runner."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from archsmith.bench import (
    AnchorMissing,
    BenchContext,
    anchor_missing_row,
    get_bench,
    list_benches,
    register_bench,
    require_anchor,
    run_bench,
    unregister_bench,
)
from archsmith.bench import registry as registry_mod
from archsmith.errors import ArchsmithError
from archsmith.measure import (
    TimingResult,
    format_rows_table,
    machine_info,
    rotated,
    time_interleaved,
    time_interleaved_clocks,
)

SMALL_N = 64  # matmul size for the machine's rate in tests: fast, still a real measurement
CASE = "harness_selftest"


@pytest.fixture
def case(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[BenchContext]]:
    """A temporary registered case (the real case modules are not imported here)."""
    monkeypatch.setattr(registry_mod, "CASE_MODULES", ())
    seen: list[BenchContext] = []

    @register_bench(CASE, "temporary case for the harness tests")
    def _case(ctx: BenchContext) -> list[dict[str, Any]]:
        seen.append(ctx)
        return [
            {"model": "a", "ms": 1.5, "ratio": np.float64(2.0)},
            {"model": "b", "ms": None, "extra": float("nan")},
            anchor_missing_row("no_such_anchor_pkg", model="c"),
        ]

    try:
        yield seen
    finally:
        unregister_bench(CASE)


# ----------------------------------------------------------------------------------------------
# registry


def test_register_list_get_unregister(case: list[BenchContext]) -> None:
    assert CASE in list_benches()
    assert get_bench(CASE).description == "temporary case for the harness tests"
    unregister_bench(CASE)
    assert CASE not in list_benches()


def test_duplicate_name_is_an_error(case: list[BenchContext]) -> None:
    with pytest.raises(ValueError, match="already registered"):

        @register_bench(CASE, "another")
        def other(ctx: BenchContext) -> list[dict[str, Any]]:
            return []


def test_unknown_name_suggests(case: list[BenchContext]) -> None:
    with pytest.raises(
        ArchsmithError,
        match=r"unknown benchmark 'harness_selftst'.*did you mean 'harness_selftest'",
    ) as info:
        get_bench("harness_selftst")
    assert "\n" not in str(info.value)
    with pytest.raises(ArchsmithError, match="did you mean"):
        run_bench("harness_selftst", echo=False, _matmul_n=SMALL_N)


def test_case_modules_are_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_mod, "CASE_MODULES", ("archsmith_no_such_case_module",))
    with pytest.raises(ModuleNotFoundError):
        list_benches()


# ----------------------------------------------------------------------------------------------
# interleaved timing


def test_rotated() -> None:
    assert rotated(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert rotated(["a", "b", "c"], 1) == ["b", "c", "a"]
    assert rotated(["a", "b", "c"], 5) == ["c", "a", "b"]
    assert rotated([], 3) == []


def test_order_rotates_each_round() -> None:
    calls: list[str] = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    time_interleaved(fns, repeats=4, warmup=2)
    rounds = [calls[i : i + 3] for i in range(0, len(calls), 3)]
    # two warm-up rounds then four timed ones, each rotated by one from the last
    assert rounds[:2] == [list("abc"), list("bca")]
    assert rounds[2:] == [list("abc"), list("bca"), list("cab"), list("abc")]


def test_medians_on_a_fake_clock() -> None:
    now = [0.0]
    durations = {"a": iter([0.003, 0.001, 0.002, 0.010]), "b": iter([0.005] * 4)}

    def make(name: str) -> Any:
        def fn() -> None:
            now[0] += next(durations[name])

        return fn

    result = time_interleaved(
        {"a": make("a"), "b": make("b")}, repeats=4, warmup=0, clock=lambda: now[0]
    )
    a, b = result["a"], result["b"]
    assert a.samples == pytest.approx((3.0, 1.0, 2.0, 10.0))
    assert a.median_ms == pytest.approx(2.5)
    assert a.min_ms == pytest.approx(1.0)
    # inclusive quartiles of 1, 2, 3, 10: 1.75 and 4.75
    assert a.iqr_ms == pytest.approx(3.0)
    assert b.median_ms == pytest.approx(5.0) and b.iqr_ms == pytest.approx(0.0)
    assert list(result) == ["a", "b"]


def test_several_clocks_read_around_the_same_calls() -> None:
    wall, cpu = [0.0], [0.0]
    calls: list[str] = []

    def make(name: str, wall_s: float, cpu_s: float) -> Any:
        def fn() -> None:
            calls.append(name)
            wall[0] += wall_s
            cpu[0] += cpu_s

        return fn

    result = time_interleaved_clocks(
        {"a": make("a", 0.004, 0.002), "b": make("b", 0.001, 0.003)},
        {"wall": lambda: wall[0], "cpu": lambda: cpu[0]},
        repeats=3,
        warmup=1,
    )
    assert len(calls) == 8  # one warm-up round and three timed rounds, not a set per clock
    assert result["wall"]["a"].samples == pytest.approx((4.0, 4.0, 4.0))
    assert result["cpu"]["a"].samples == pytest.approx((2.0, 2.0, 2.0))
    assert result["wall"]["b"].median_ms == pytest.approx(1.0)
    assert result["cpu"]["b"].median_ms == pytest.approx(3.0)
    with pytest.raises(ArchsmithError, match="clock"):
        time_interleaved_clocks({"a": lambda: None}, {}, repeats=1, warmup=0)


def test_timing_result_single_sample() -> None:
    r = TimingResult.from_samples([4.0])
    assert (r.median_ms, r.min_ms, r.iqr_ms) == (4.0, 4.0, 0.0)


def test_bad_repeats() -> None:
    with pytest.raises(ArchsmithError, match="repeats"):
        time_interleaved({"a": lambda: None}, repeats=0, warmup=0)


# ----------------------------------------------------------------------------------------------
# machine, anchors, report


def test_machine_info() -> None:
    rng = torch.get_rng_state()
    info = machine_info(_matmul_n=SMALL_N)
    assert torch.equal(torch.get_rng_state(), rng)  # measuring does not draw from torch's RNG
    assert info["matmul_gflops"] > 0
    assert info["torch"] == torch.__version__
    assert info["torch_threads"] == torch.get_num_threads()
    assert info["cpu_count_logical"] >= 1 and info["memory_total_bytes"] > 0
    json.dumps(info)


def test_require_anchor() -> None:
    assert require_anchor("json") is json
    with pytest.raises(AnchorMissing, match="not installed") as info:
        require_anchor("archsmith_no_such_anchor_pkg")
    assert info.value.package == "archsmith_no_such_anchor_pkg"
    assert isinstance(info.value, ArchsmithError)


def test_anchor_missing_row() -> None:
    row = anchor_missing_row("archsmith_no_such_anchor_pkg", model="revnet", package="x")
    assert row == {
        "model": "revnet",
        "package": "x",
        "missing": "archsmith_no_such_anchor_pkg",
        "note": "not installed (pip install 'archsmith[bench]')",
    }


def test_format_rows_table() -> None:
    rows: list[dict[str, Any]] = [{"b": 1, "a": 0.123456789}, {"a": None, "c": 12345678.9}]
    text = format_rows_table(rows, title="demo")
    lines = text.splitlines()
    header = next(line for line in lines if "b" in line and "a" in line and "c" in line)
    assert header.index(" b ") < header.index(" a ") < header.index(" c ")  # first-seen order
    assert "0.1235" in text and "1.235e+07" in text
    assert "-" in next(line for line in lines if "1.235e+07" in line)  # None as "-"
    assert "demo" in text and "\x1b[" not in text


# ----------------------------------------------------------------------------------------------
# runner


def test_run_bench_writes_json(
    case: list[BenchContext], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "deep" / "er" / "out.json"
    result = run_bench(CASE, quick=True, json_path=path, _matmul_n=SMALL_N)
    on_disk = json.loads(path.read_text())
    assert on_disk == result
    assert set(on_disk) == {"machine", "rows"}
    assert on_disk["machine"]["matmul_gflops"] > 0
    assert on_disk["rows"][0] == {"model": "a", "ms": 1.5, "ratio": 2.0}
    assert on_disk["rows"][1]["extra"] is None  # NaN is not JSON
    assert on_disk["rows"][2]["missing"] == "no_such_anchor_pkg"
    # atomic: nothing but the target is left in the directory
    assert os.listdir(path.parent) == ["out.json"]
    # the case got the machine and quick settings
    (ctx,) = case
    assert ctx.quick and ctx.machine["matmul_gflops"] > 0
    assert ctx.repeats < run_bench_full_repeats()
    out = capsys.readouterr().out
    assert "machine:" in out and "no_such_anchor_pkg" in out and "archsmith bench" in out


def run_bench_full_repeats() -> int:
    from archsmith.bench.runner import FULL

    return FULL[0]


def test_run_bench_json_path_is_a_directory(case: list[BenchContext], tmp_path: Path) -> None:
    with pytest.raises(ArchsmithError, match="is a directory") as info:
        run_bench(CASE, json_path=tmp_path, echo=False, _matmul_n=SMALL_N)
    assert "\n" not in str(info.value)
    assert case == []  # failed before running the case


def test_run_bench_json_parent_is_a_file(case: list[BenchContext], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ArchsmithError, match="is a file"):
        run_bench(CASE, json_path=blocker / "out.json", echo=False, _matmul_n=SMALL_N)


def test_run_bench_json_path_with_trailing_slash(case: list[BenchContext], tmp_path: Path) -> None:
    target = f"{tmp_path}/not-yet/"
    with pytest.raises(ArchsmithError, match="names a directory"):
        run_bench(CASE, json_path=target, echo=False, _matmul_n=SMALL_N)
    assert not (tmp_path / "not-yet").exists()
    assert case == []


def test_rows_with_a_table_key_print_as_separate_tables(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(registry_mod, "CASE_MODULES", ())

    @register_bench("harness_two", "two tables")
    def _two(ctx: BenchContext) -> list[dict[str, Any]]:
        return [{"impl": "a", "ms": 1.0}, {"table": "budget", "depth": 7}, {"impl": "b", "ms": 2.0}]

    try:
        result = run_bench("harness_two", echo=True, _matmul_n=SMALL_N)
    finally:
        unregister_bench("harness_two")
    out = capsys.readouterr().out
    assert "archsmith bench harness_two: budget" in out
    main_table, budget_table = out.split("archsmith bench harness_two: budget")
    main_table = main_table.split("archsmith bench harness_two")[1]
    assert "impl" in main_table and "depth" not in main_table and "table" not in main_table
    assert "depth" in budget_table and "impl" not in budget_table
    assert result["rows"][1] == {"table": "budget", "depth": 7}  # the JSON keeps the key
