"""The ask/tell loop and the heartbeat on a real journal storage, with a stand-in evaluator."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from archsmith.errors import ArchsmithError
from archsmith.search import heartbeat as hb
from archsmith.search import records
from archsmith.search.config import SearchConfig
from archsmith.search.objective import Outcome
from archsmith.search.storage import open_storage, storage_url
from archsmith.search.worker import progress_of, run_worker


def make_study(tmp_path: Path, seed: int = 0) -> optuna.Study:
    return optuna.create_study(
        study_name="s",
        storage=open_storage(storage_url(None, tmp_path)),
        sampler=optuna.samplers.RandomSampler(seed=seed),
    )


def config(**kw: object) -> SearchConfig:
    return SearchConfig(task="digits", **kw)  # type: ignore[arg-type]


def width_evaluator(limit: float, seen: list[int]):
    """Suggests a width; widths over ``limit`` are 'over budget' and never evaluated."""

    def evaluate(trial: optuna.Trial) -> Outcome:
        width = trial.suggest_int("width", 1, 100)
        cost = {"params": float(width)}
        constraints = {"params": width / limit - 1}
        if width > limit:
            rejected = {"budget": "params", "used": width, "limit": limit, "reason": "over"}
            return Outcome(
                TrialState.PRUNED,
                None,
                {records.REJECTED: rejected, records.COST: cost},
                constraints,
            )
        seen.append(width)
        return Outcome(TrialState.COMPLETE, [float(width)], {records.COST: cost}, constraints)

    return evaluate


def test_runs_exactly_the_requested_evaluated_trials(tmp_path: Path) -> None:
    study = make_study(tmp_path)
    seen: list[int] = []
    run_worker(study, config(trials=12), width_evaluator(30, seen))
    p = progress_of(study)
    assert p.evaluated == p.complete == 12 == len(seen)
    assert all(w <= 30 for w in seen)  # no over-budget candidate was evaluated
    rejected = [t for t in study.trials if records.is_rejected(t.user_attrs)]
    assert p.rejected == len(rejected) == p.rejected_by_budget.get("params", 0)
    assert all(t.state == TrialState.PRUNED and t.constraints["params"] > 0 for t in rejected)
    assert all(t.params["width"] > 30 for t in rejected)


def test_a_budget_no_design_meets_ends_with_one_line(tmp_path: Path) -> None:
    study = make_study(tmp_path)
    with pytest.raises(ArchsmithError) as info:
        run_worker(study, config(trials=5, max_rejections=7), width_evaluator(0.5, []))
    message = str(info.value)
    assert "no candidate met the budget in 7 tries in a row" in message
    smallest = min(t.params["width"] for t in study.trials)
    assert f"params: smallest seen {smallest:,.4g} > 0.5" in message
    assert "\n" not in message


def test_a_failing_candidate_fails_alone_and_a_bad_search_stops(tmp_path: Path) -> None:
    study = make_study(tmp_path)

    def flaky(trial: optuna.Trial) -> Outcome:
        x = trial.suggest_float("x", 0, 1)
        if trial.number % 2:
            raise RuntimeError("loss is NaN\nsecond line")
        return Outcome(TrialState.COMPLETE, [x])

    run_worker(study, config(trials=6), flaky)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 3 and failed[0].user_attrs[records.ERROR] == "RuntimeError: loss is NaN"

    def misconfigured(trial: optuna.Trial) -> Outcome:
        raise ArchsmithError("blocks[0].type: unknown block 'cnov'")

    study2 = optuna.create_study(study_name="s2", storage=study._storage)
    with pytest.raises(ArchsmithError, match="unknown block 'cnov'"):
        run_worker(study2, config(trials=3), misconfigured)
    assert [t.state for t in study2.trials] == [TrialState.FAIL]


def test_stale_trials_are_requeued_once_with_their_parameters(tmp_path: Path) -> None:
    study = make_study(tmp_path)
    dead = study.ask()
    dead.suggest_int("width", 1, 100)
    assert hb.requeue_stale(study, grace=60.0) == []  # it just started: not stale yet
    # a second process on the same file sees the same stale trial at the same moment
    other = optuna.load_study(study_name="s", storage=open_storage(storage_url(None, tmp_path)))
    seen_by_both = hb.stale_trials(study, grace=-1.0)
    assert [t.number for t in seen_by_both] == [dead.number]
    assert hb.requeue_stale(study, grace=-1.0) == [dead.number]
    # the other worker's update comes second: it must not queue a second copy
    original = hb.stale_trials
    try:
        hb.stale_trials = lambda *a, **k: seen_by_both  # type: ignore[assignment]
        assert hb.requeue_stale(other, grace=-1.0) == []
    finally:
        hb.stale_trials = original  # type: ignore[assignment]
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert hb.retried_numbers(trials) == {dead.number}
    assert trials[1].system_attrs["fixed_params"] == trials[0].params
    assert trials[1].user_attrs[hb.RETRY_OF] == dead.number
    # the stale trial is not counted as evaluated; its retry runs when the loop next asks
    assert progress_of(study).evaluated == 0 and progress_of(study).waiting == 1
    retry = study.ask()
    assert retry.number == 1 and retry.suggest_int("width", 1, 100) == trials[0].params["width"]


def test_a_late_tell_from_a_worker_taken_for_dead_is_dropped(tmp_path: Path) -> None:
    study = make_study(tmp_path)
    slow = study.ask()
    slow.suggest_float("x", 0, 1)
    hb.requeue_stale(study, grace=-1.0)
    from archsmith.search.worker import _run_one

    with hb.Heartbeat(study, interval=10.0) as beat:
        _run_one(study, slow, config(), lambda t: Outcome(TrialState.COMPLETE, [1.0]), beat)
    assert study.get_trials()[0].state == TrialState.FAIL  # the retry's result is the one kept


def test_heartbeat_stamps_while_the_trial_runs(tmp_path: Path) -> None:
    study = make_study(tmp_path)
    trial = study.ask()
    before = time.time()
    with hb.Heartbeat(study, interval=0.05) as beat, beat.beating(trial._trial_id):
        time.sleep(0.3)
        first = study.get_trials()[0].system_attrs[hb.HEARTBEAT]
        time.sleep(0.2)
        second = study.get_trials()[0].system_attrs[hb.HEARTBEAT]
    assert before <= first < second
    assert hb.stale_trials(study, grace=10.0) == []
    assert [t.number for t in hb.stale_trials(study, grace=10.0, now=second + 11)] == [0]
