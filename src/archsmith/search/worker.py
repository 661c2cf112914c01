"""The ask/tell loop one worker runs until the study has its trials.

Every worker, local process or Ray task, runs this same loop on the shared storage:

1. re-queue trials whose worker died (:func:`~archsmith.search.heartbeat.requeue_stale`);
2. stop when the study holds ``trials`` evaluated trials; wait while the rest are running
   elsewhere (one of them may still die and come back as a re-queued trial);
3. ``study.ask()`` (a re-queued trial first), run it under a heartbeat, and ``study.tell()`` it
   with its constraints and records.

A trial the evaluator cannot run because the search itself is wrong (a space that names an
unregistered block, say) fails and ends the search with that one line; an error inside one
candidate's training fails that trial only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from archsmith.errors import ArchsmithError
from archsmith.search import records
from archsmith.search.config import SearchConfig
from archsmith.search.heartbeat import RETRY_OF, Heartbeat, requeue_stale, retried_numbers
from archsmith.search.objective import Outcome

__all__ = ["Evaluator", "Progress", "is_retry", "progress_of", "run_worker"]

Evaluator = Callable[[optuna.Trial], Outcome]


@dataclass(frozen=True)
class Progress:
    """Counts of a study's trials, as the loop and the live table see them."""

    evaluated: int  # finished and counted towards ``trials``: complete, pruned, failed
    complete: int
    pruned: int
    failed: int
    rejected: int
    running: int
    waiting: int
    rejected_by_budget: dict[str, int]


def progress_of(study: optuna.Study) -> Progress:
    complete = pruned = failed = rejected = running = waiting = 0
    by_budget: dict[str, int] = {}
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    for t in trials:
        if t.state == TrialState.COMPLETE:
            complete += 1
        elif t.state == TrialState.PRUNED and records.is_rejected(t.user_attrs):
            rejected += 1
            budget = str(t.user_attrs[records.REJECTED].get("budget", "?"))
            by_budget[budget] = by_budget.get(budget, 0) + 1
        elif t.state == TrialState.PRUNED:
            pruned += 1
        elif t.state == TrialState.FAIL and t.number not in retried:
            failed += 1  # a stale trial is not counted: its retry is
        elif t.state == TrialState.RUNNING:
            running += 1
        elif t.state == TrialState.WAITING:
            waiting += 1
    return Progress(
        evaluated=complete + pruned + failed,
        complete=complete,
        pruned=pruned,
        failed=failed,
        rejected=rejected,
        running=running,
        waiting=waiting,
        rejected_by_budget=by_budget,
    )


def run_worker(
    study: optuna.Study,
    config: SearchConfig,
    evaluate: Evaluator,
    *,
    poll_s: float = 1.0,
    on_told: Callable[[], None] | None = None,
) -> None:
    """Run trials of ``study`` until it holds ``config.trials`` evaluated trials."""
    in_a_row = 0
    with Heartbeat(study, config.heartbeat_s) as heartbeat:
        while True:
            requeue_stale(study, config.grace_s)
            done = progress_of(study)
            if done.evaluated >= config.trials:
                return
            if done.evaluated + done.running >= config.trials and done.waiting == 0:
                time.sleep(poll_s)  # the last trials run elsewhere; one may yet come back re-queued
                continue
            trial = study.ask()
            rejected = _run_one(study, trial, config, evaluate, heartbeat)
            if on_told is not None:
                on_told()
            in_a_row = in_a_row + 1 if rejected else 0
            if in_a_row >= config.max_rejections and progress_of(study).complete == 0:
                raise ArchsmithError(_hopeless(study, in_a_row))


def _run_one(
    study: optuna.Study,
    trial: optuna.Trial,
    config: SearchConfig,
    evaluate: Evaluator,
    heartbeat: Heartbeat,
) -> bool:
    """Evaluate and tell one trial; returns whether a budget rejected it."""
    with heartbeat.beating(trial._trial_id):
        try:
            outcome = evaluate(trial)
        except ArchsmithError as err:
            _tell_failed(study, trial, str(err))
            raise  # the search is misconfigured: every trial would fail the same way
        except Exception as err:  # one candidate's own failure (NaN, shape bug): fail it only
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            _tell_failed(study, trial, f"{type(err).__name__}: {first}")
            return False
    if study._storage.get_trial(trial._trial_id).state.is_finished():
        return False  # taken for dead and re-queued meanwhile: the retry's outcome is kept
    try:
        for name, value in outcome.constraints.items():
            trial.set_constraint(name, value)
        for key, value in outcome.user_attrs.items():
            trial.set_user_attr(key, value)
        study.tell(trial, outcome.values, state=outcome.state)
    except UpdateFinishedTrialError:
        pass  # taken for dead and re-queued meanwhile: the retry's outcome is the one kept
    return records.is_rejected(outcome.user_attrs)


def _tell_failed(study: optuna.Study, trial: optuna.Trial, message: str) -> None:
    if study._storage.get_trial(trial._trial_id).state.is_finished():
        return
    try:
        trial.set_user_attr(records.ERROR, message)
        study.tell(trial, state=TrialState.FAIL)
    except UpdateFinishedTrialError:
        pass


def _hopeless(study: optuna.Study, in_a_row: int) -> str:
    """The line that ends a search whose budget no candidate meets."""
    smallest: dict[str, float] = {}
    limits: dict[str, float] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)):
        info = t.user_attrs.get(records.REJECTED)
        if not isinstance(info, dict):
            continue
        name = str(info["budget"])
        smallest[name] = min(smallest.get(name, float("inf")), float(info["used"]))
        limits[name] = float(info["limit"])
    parts = [
        f"{name}: smallest seen {smallest[name]:,.4g} > {limits[name]:,.4g}" for name in smallest
    ]
    return (
        f"no candidate met the budget in {in_a_row} tries in a row ({'; '.join(parts)}): "
        "raise the limit or search a space of smaller designs"
    )


def is_retry(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether ``trial`` re-runs a stale trial's parameters."""
    return RETRY_OF in trial.user_attrs
