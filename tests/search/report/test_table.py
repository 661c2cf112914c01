"""trials.csv against the hand-made trials, read back with the standard library's csv module."""

from __future__ import annotations

import csv
from pathlib import Path

import optuna
import pandas as pd
import pytest
from report_studies import HandStudy, journal

from archsmith.search import records
from archsmith.search.report import read_settings, trials_frame, write_trials_csv

STATE = {
    "complete": "COMPLETE",
    "infeasible": "COMPLETE",
    "rejected": "PRUNED",
    "pruned": "PRUNED",
    "failed": "FAIL",
    "stale": "FAIL",
    "running": "RUNNING",
    "waiting": "WAITING",
}


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_one_row_per_trial_with_what_each_trial_recorded(hand: HandStudy, tmp_path: Path) -> None:
    rows = read_rows(write_trials_csv(trials_frame(hand.study), tmp_path / "trials.csv"))
    assert [int(r["number"]) for r in rows] == [e.number for e in hand.expected]
    for r, e in zip(rows, hand.expected, strict=True):
        assert r["state"] == STATE[e.kind], e
        assert r["outcome"] == ("complete" if e.kind == "infeasible" else e.kind)
        assert r["feasible"] == str(e.kind == "complete")
        for name, value in e.params.items():
            assert r[f"params_{name}"] == str(value)  # integers stay integers: "32", not "32.0"
        trained = e.kind in ("complete", "infeasible")
        for column, value in [
            ("value_metric", e.val),
            ("val_accuracy", e.val),
            ("test_accuracy", e.test),
        ]:
            assert (float(r[column]) == value) if trained else r[column] == "", (column, e)
        for name in records.COST_KEYS:
            cell = r[f"cost_{name}"]
            assert float(cell) == e.cost[name] if name in e.cost else cell == "", (name, e)
        assert r["rejected_budget"] == (e.budget or "")
        assert (e.budget in r["rejected_reason"]) if e.budget else r["rejected_reason"] == ""
        assert r["seed"] == ("" if e.seed is None else str(e.seed))
        assert r["error"] == (e.error or "")
        if e.steps:
            last = max(e.steps)
            assert (int(r["last_step"]), float(r["last_value"])) == (last, e.steps[last])
        else:
            assert r["last_step"] == r["last_value"] == ""
        if e.kind in ("running", "waiting"):
            assert r["duration_s"] == ""
        else:
            assert float(r["duration_s"]) >= 0
        assert r["retry_of"] == ("9" if e.kind == "waiting" else "")
    assert "regret" not in rows[0]  # a task search has no regret column


def test_a_benchmark_table_has_the_regret(bench: HandStudy, tmp_path: Path) -> None:
    rows = read_rows(write_trials_csv(trials_frame(bench.study), tmp_path / "trials.csv"))
    assert [float(r["regret"]) for r in rows] == [e.regret for e in bench.expected]
    assert [r["params_op"] for r in rows] == [e.params["op"] for e in bench.expected]


def test_objectives_are_named_by_the_study_config(pareto: HandStudy) -> None:
    frame = trials_frame(pareto.study)
    done = [e for e in pareto.expected if e.values is not None]
    got = frame.set_index("number").loc[[e.number for e in done]]
    for i, name in enumerate(("value_metric", "value_params", "value_flops")):
        assert got[name].tolist() == [e.values[i] for e in done]  # type: ignore[index]


def test_writing_is_atomic(
    hand: HandStudy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "trials.csv"
    frame = trials_frame(hand.study)
    write_trials_csv(frame, path)
    before = path.read_text()

    def broken(self: pd.DataFrame, target: str, **kw: object) -> None:
        Path(target).write_text("number,sta")  # half a table, then the disk fills up
        raise OSError("no space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(OSError):
        write_trials_csv(frame, path)
    assert path.read_text() == before  # a reader still sees the whole old table
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_settings_have_defaults_without_a_config(tmp_path: Path) -> None:
    study = optuna.create_study(storage=journal(tmp_path / "j.log"), directions=["maximize"] * 2)
    study.set_user_attr(records.STUDY_CONFIG, "not a dict")
    s = read_settings(study)
    assert (s.task, s.benchmark, s.strategy, s.budgets) == (None, None, "?", {})
    assert s.objectives == ("metric", "objective_1")  # one name per direction
    assert s.metric_name == "metric"
    frame = trials_frame(study)
    assert len(frame) == 0 and "value_objective_1" in frame


def test_settings_name_the_metric_from_the_trials(hand: HandStudy) -> None:
    s = read_settings(hand.study)
    assert s.metric_name == "accuracy"  # val accuracy equals the objective in every trial
    assert (s.task, s.strategy, s.budgets, s.seed) == ("digits", "tpe", hand.config.budgets, 100)
