"""archsmith.bench.survival: a tiny smoke run of the cross-validated survival report."""

from __future__ import annotations

import math

import numpy as np
import pytest

from archsmith.bench import survival as survival_mod
from archsmith.bench.registry import BenchContext, get_bench
from archsmith.bench.survival import METHODS, Settings, concordance, survival_report

TINY = Settings(datasets=("gbsg2",), seeds=(0,), n_folds=2, epochs=2, patience=2, rsf_trees=5)
KEYS = {"dataset", "method", "c_index_mean", "c_index_std", "folds", "fit_s_mean"}


def test_concordance_matches_perfect_and_reversed_orders() -> None:
    time = np.array([1.0, 2.0, 3.0, 4.0])
    event = np.array([True, True, False, True])
    assert concordance(time, event, -time) == 1.0
    assert concordance(time, event, time) == 0.0
    assert math.isnan(concordance(time, np.zeros(4, bool), -time))
    assert math.isnan(concordance(time, event, np.array([0.0, np.nan, 1.0, 2.0])))


def test_smoke_run_returns_rows_for_every_method() -> None:
    rows = survival_report(TINY)
    assert [r["method"] for r in rows] == list(METHODS)
    for row in rows:
        assert set(row) >= KEYS and row["dataset"] == "gbsg2"
        assert row["folds"] == 2, row.get("note")
        assert 0.0 <= row["c_index_mean"] <= 1.0
        assert math.isfinite(row["c_index_std"]) and row["fit_s_mean"] > 0
    snn, cox = rows[0], rows[2]
    assert snn["beats_coxph"] == (snn["c_index_mean"] >= cox["c_index_mean"])
    assert cox["note"].startswith("p=")  # the chosen penalizers are reported
    assert "beats_coxph" not in cox


def test_failed_fits_become_notes(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("Convergence halted due to matrix inversion problems")

    monkeypatch.setattr(survival_mod, "_coxph_fit", broken)
    rows = survival_report(
        Settings(datasets=("gbsg2",), seeds=(0,), n_folds=2, methods=("coxph_penalized", "rsf"))
    )
    cox = rows[0]
    assert cox["folds"] == 0 and math.isnan(cox["c_index_mean"])
    assert "2 of 2 fits failed" in cox["note"] and "Convergence" in cox["note"]
    assert rows[1]["folds"] == 2


def test_registered_case_uses_the_quick_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Settings] = []
    monkeypatch.setattr(survival_mod, "survival_report", lambda s: seen.append(s) or [])
    entry = get_bench("survival")
    assert entry.fn(BenchContext(quick=True)) == []
    assert entry.fn(BenchContext(quick=False)) == []
    assert seen == [survival_mod.QUICK, survival_mod.FULL]
    assert survival_mod.QUICK.seeds == (0,) and survival_mod.QUICK.n_folds == 3
    assert survival_mod.FULL.seeds == (0, 1, 2) and survival_mod.FULL.n_folds == 5
