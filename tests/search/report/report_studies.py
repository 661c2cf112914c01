"""Studies built by hand (used by the fixtures of ``conftest.py``) in a real journal storage, the way the runner records trials
(``archsmith.search.records``), with the facts each test checks kept beside them.

The task study (single objective, budgets on params and activation MB) holds one trial of every
kind: complete, rejected by each budget, pruned with intermediate values, failed (with markup in
its error), stale and re-queued, running, and a complete trial over a budget (a resumed search
with a tighter limit), whose higher metric must not make it the best.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from archsmith.search import records
from archsmith.search.config import SearchConfig
from archsmith.search.heartbeat import RETRY_OF

optuna.logging.set_verbosity(optuna.logging.WARNING)

DISTS = {
    "width": IntDistribution(4, 512),
    "depth": IntDistribution(1, 4),
    "act": CategoricalDistribution(["relu", "<gelu&>"]),
}
BUDGETS = {"params": 50_000.0, "activation_mb": 20.0}
#: an error message with markup: the page must show it as text
NASTY = "RuntimeError: <script>alert('x')</script> & shapes <4> != <5>"


@dataclass
class Expected:
    """What one hand-made trial is, independent of the report's code."""

    number: int
    kind: str  # complete | infeasible | rejected | pruned | failed | stale | running | waiting
    params: dict[str, Any]
    val: float | None = None
    test: float | None = None
    cost: dict[str, float] = field(default_factory=dict)
    budget: str | None = None  # the budget that rejected it
    steps: dict[int, float] = field(default_factory=dict)
    error: str | None = None
    seed: int | None = None
    regret: float | None = None
    values: list[float] | None = None


@dataclass
class HandStudy:
    study: optuna.Study
    expected: list[Expected]
    config: SearchConfig
    best: int | None  # the trial number a person picks as the best
    best_spec: dict[str, Any] | None
    storage_path: Path | None = None  # the journal file


def journal(path: Path) -> JournalStorage:
    return JournalStorage(JournalFileBackend(str(path)))


def cost_of(width: int, depth: int) -> dict[str, float]:
    """Made-up but deterministic costs of an MLP-like design."""
    params = float(width * width * depth)
    return {"params": params, "flops": 6.0 * 64 * params, "activation_mb": 0.1 * width * depth}


def spec_of(width: int, depth: int, act: str) -> dict[str, Any]:
    return {
        "archsmith_spec": 1,
        "task": "digits",
        "model": "mlp",
        "options": {"hidden": [width] * depth, "act_layer": act},
    }


def _ask(study: optuna.Study, params: dict[str, Any]) -> optuna.Trial:
    study.enqueue_trial(params)
    return study.ask(DISTS)


def _constraints(trial: optuna.Trial, cost: dict[str, float]) -> None:
    for name, limit in BUDGETS.items():
        if name in cost:
            trial.set_constraint(name, cost[name] / limit - 1.0)


def _complete(study: optuna.Study, e: Expected) -> None:
    trial = _ask(study, e.params)
    w, d, a = e.params["width"], e.params["depth"], e.params["act"]
    trial.set_user_attr(records.SPEC, spec_of(w, d, a))
    trial.set_user_attr(records.COST, e.cost)
    trial.set_user_attr(records.SEED, e.seed)
    trial.set_user_attr(
        records.METRICS,
        {"val": {"accuracy": e.val, "loss": 1 - e.val}, "test": {"accuracy": e.test}},
    )
    _constraints(trial, e.cost)
    study.tell(trial, e.val)


def _rejected(study: optuna.Study, e: Expected) -> None:
    trial = _ask(study, e.params)
    assert e.budget is not None
    used, limit = e.cost[e.budget], BUDGETS[e.budget]
    trial.set_user_attr(records.COST, e.cost)
    trial.set_user_attr(records.SEED, e.seed)
    trial.set_user_attr(
        records.REJECTED,
        {
            "budget": e.budget,
            "used": used,
            "limit": limit,
            "reason": f"{e.budget} {used} > {limit}",
        },
    )
    _constraints(trial, e.cost)
    study.tell(trial, state=TrialState.PRUNED)


def task_study(tmp_path: Path) -> HandStudy:
    config = SearchConfig(task="digits", strategy="tpe", trials=10, seed=100, budgets=dict(BUDGETS))
    study = optuna.create_study(
        study_name="hand", storage=journal(tmp_path / "study.journal"), direction="maximize"
    )
    study.set_user_attr(records.STUDY_CONFIG, config.to_dict())
    p = lambda w, d, a="relu": {"width": w, "depth": d, "act": a}  # noqa: E731
    ex = [
        Expected(0, "complete", p(32, 1, "<gelu&>"), 0.90, 0.89, cost_of(32, 1)),
        Expected(1, "rejected", p(256, 4), cost={"params": 256.0 * 256 * 4}, budget="params"),
        Expected(2, "complete", p(64, 2), 0.95, 0.93, cost_of(64, 2)),
        Expected(3, "pruned", p(16, 1), cost=cost_of(16, 1), steps={1: 0.5, 2: 0.6}),
        Expected(4, "failed", p(40, 3), error=NASTY),
        Expected(5, "rejected", p(128, 3), cost=cost_of(128, 3), budget="activation_mb"),
        Expected(6, "complete", p(48, 2), 0.95, 0.94, cost_of(48, 2)),  # ties #2, but smaller
        Expected(7, "infeasible", p(200, 2), 0.99, 0.98, cost_of(200, 2)),  # over params
        Expected(8, "complete", p(8, 1), 0.70, 0.69, {**cost_of(8, 1), "latency_ms": 0.25}),
        Expected(9, "stale", p(24, 2)),
        Expected(10, "running", p(20, 1)),
        Expected(11, "waiting", {}),  # the retry of #9, queued
    ]
    for e in ex:
        e.seed = 100 + e.number if e.kind not in ("stale", "running", "waiting") else None
        if e.kind in ("complete", "infeasible"):
            _complete(study, e)
        elif e.kind == "rejected":
            _rejected(study, e)
        elif e.kind == "pruned":
            trial = _ask(study, e.params)
            trial.set_user_attr(records.COST, e.cost)
            trial.set_user_attr(records.SEED, e.seed)
            _constraints(trial, e.cost)
            for step, value in e.steps.items():
                trial.report(value, step)
            study.tell(trial, state=TrialState.PRUNED)
        elif e.kind == "failed":
            trial = _ask(study, e.params)
            trial.set_user_attr(records.ERROR, e.error)
            trial.set_user_attr(records.SEED, e.seed)
            study.tell(trial, state=TrialState.FAIL)
        elif e.kind == "stale":
            stale = _ask(study, e.params)
            study.tell(stale, state=TrialState.FAIL)  # as requeue_stale fails a dead trial
        elif e.kind == "running":
            _ask(study, e.params)
        elif e.kind == "waiting":
            study.enqueue_trial(ex[9].params, user_attrs={RETRY_OF: 9})
    assert [t.number for t in study.get_trials()] == [e.number for e in ex]
    return HandStudy(
        study, ex, config, best=6, best_spec=spec_of(48, 2, "relu"),
        storage_path=tmp_path / "study.journal",
    )  # fmt: skip


def pareto_study(tmp_path: Path, n: int = 60, seed: int = 0) -> HandStudy:
    """A three-objective study (metric up, params and flops down) with random values, some
    repeated points (ties), rejected and over-budget trials."""
    config = SearchConfig(
        task="digits", strategy="nsga2", trials=n, objectives=("metric", "params", "flops"),
        budgets={"params": 50_000.0},
    )  # fmt: skip
    # in memory: 60 trials' worth of fsyncs in a journal file take seconds, and the journal
    # itself is exercised by the task study
    del tmp_path
    study = optuna.create_study(
        study_name="pareto",
        directions=["maximize", "minimize", "minimize"],
    )
    study.set_user_attr(records.STUDY_CONFIG, config.to_dict())
    rng = np.random.default_rng(seed)
    ex = []
    for i in range(n):
        params = {
            "width": int(rng.integers(4, 512)),
            "depth": int(rng.integers(1, 5)),
            "act": "relu",
        }
        cost = {
            "params": float(rng.integers(1, 12) * 5000),
            "flops": float(rng.integers(1, 10) * 1e6),
            "activation_mb": 1.0,
        }
        val = float(rng.integers(50, 100)) / 100  # coarse values: ties happen
        kind = "rejected" if cost["params"] > BUDGETS["params"] else "complete"
        if kind == "complete" and i % 11 == 5:
            kind = "infeasible"  # complete, but a constraint says over budget
        e = Expected(i, kind, params, val, val, cost, budget="params", seed=i)
        trial = _ask(study, params)
        trial.set_user_attr(records.COST, cost)
        trial.set_user_attr(records.SPEC, spec_of(params["width"], params["depth"], "relu"))
        trial.set_user_attr(records.METRICS, {"val": {"accuracy": val}, "test": {"accuracy": val}})
        trial.set_constraint("params", cost["params"] / BUDGETS["params"] - 1.0)
        if kind == "infeasible":
            trial.set_constraint("activation_mb", 0.5)
        if kind == "rejected":
            trial.set_user_attr(
                records.REJECTED,
                {"budget": "params", "used": cost["params"], "limit": 50_000.0, "reason": "over"},
            )
            study.tell(trial, state=TrialState.PRUNED)
        else:
            e.values = [val, cost["params"], cost["flops"]]
            study.tell(trial, e.values)
        ex.append(e)
    return HandStudy(study, ex, config, best=None, best_spec=None)


def benchmark_study(tmp_path: Path) -> HandStudy:
    """A tabular-benchmark study: trials answered by look-up, with regret, and no specs."""
    config = SearchConfig(benchmark="nb201-cifar10", strategy="re", trials=3)
    study = optuna.create_study(
        study_name="bench", storage=journal(tmp_path / "bench.journal"), direction="maximize"
    )
    study.set_user_attr(records.STUDY_CONFIG, config.to_dict())
    ops = CategoricalDistribution(["conv3x3", "skip", "pool"])
    expected = []
    for i, acc in enumerate([0.80, 0.91, 0.85]):
        params = {"op": ops.choices[i]}
        study.enqueue_trial(params)
        trial = study.ask({"op": ops})
        regret = 0.94 - acc
        trial.set_user_attr(records.REGRET, regret)
        trial.set_user_attr(records.BENCHMARK, "nb201-cifar10")
        trial.set_user_attr(records.COST, {"params": 1e5 * (i + 1), "flops": 1e7 * (i + 1)})
        study.tell(trial, acc)
        expected.append(Expected(i, "complete", params, acc, regret=regret, values=[acc]))
    return HandStudy(study, expected, config, best=1, best_spec=None)
