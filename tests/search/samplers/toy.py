"""A small define-by-run space whose best design is known by construction, and the ask/tell loop
the sampler tests drive it with (a stand-in for archsmith's worker: budget check first, a
rejected design told ``PRUNED`` with its constraint and ``records.REJECTED``, never evaluated).

The score is a sum of one table per decision, and each table has its maximum at the planted
value, so the planted design is the unique best: ``op="attn"`` (only through its branch,
``heads=4``: 0.2 + 0.3 beats ``conv``'s 0.3), ``width=64``, ``depth=3``, ``act="gelu"``,
score 1.2. 160 designs; a uniform random design is the best with probability 1/288.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from archsmith.search import records

OP = {"conv": 0.3, "mlp": 0.1, "attn": 0.2}
HEADS = {1: 0.0, 2: 0.1, 4: 0.3}
WIDTH = {16: 0.0, 32: 0.1, 64: 0.3, 128: 0.2}
DEPTH = {1: 0.0, 2: 0.1, 3: 0.3, 4: 0.2}
ACT = {"relu": 0.0, "gelu": 0.1}

BEST = {"op": "attn", "heads": 4, "width": 64, "depth": 3, "act": "gelu"}
BEST_SCORE = 1.2
#: the "params" budget of the budget case: width * depth over it is rejected (5/16 of designs)
LIMIT = 192


def space(trial: optuna.Trial) -> dict[str, Any]:
    op = trial.suggest_categorical("op", list(OP))
    if op == "attn":
        trial.suggest_categorical("heads", list(HEADS))
    trial.suggest_categorical("width", list(WIDTH))
    trial.suggest_int("depth", 1, 4)
    trial.suggest_categorical("act", list(ACT))
    return dict(trial.params)


def score(p: dict[str, Any]) -> float:
    s = OP[p["op"]] + WIDTH[p["width"]] + DEPTH[p["depth"]] + ACT[p["act"]]
    return s + (HEADS[p["heads"]] if p["op"] == "attn" else 0.0)


def cost(p: dict[str, Any]) -> int:
    return int(p["width"]) * int(p["depth"])


@dataclass
class Run:
    """What a loop saw: every trial's params, and the params it evaluated."""

    params: list[dict[str, Any]] = field(default_factory=list)
    evaluated: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[bool] = field(default_factory=list)

    def first_best(self) -> int | None:
        """1-based index of the first trial that proposed the planted best, or None."""
        return next((i + 1 for i, p in enumerate(self.params) if p == BEST), None)


def all_designs() -> list[dict[str, Any]]:
    """Every design of the space, by enumeration (the reference the searches are checked on)."""
    out = []
    for op in OP:
        for heads in HEADS if op == "attn" else [None]:
            for width in WIDTH:
                for depth in DEPTH:
                    for act in ACT:
                        p: dict[str, Any] = {"op": op, "width": width, "depth": depth, "act": act}
                        if heads is not None:
                            p["heads"] = heads
                        out.append(p)
    return out


def drive(
    study: optuna.Study,
    n: int,
    *,
    budget: bool = False,
    run: Run | None = None,
    until_best: bool = False,
) -> Run:
    """``n`` ask/tell rounds of the toy space; with ``budget``, cost > LIMIT is rejected; with
    ``until_best``, stop once the planted best design has been proposed."""
    run = run if run is not None else Run()
    for _ in range(n):
        if until_best and run.first_best() is not None:
            break
        trial = study.ask()
        p = space(trial)
        run.params.append(p)
        over = budget and cost(p) > LIMIT
        run.rejected.append(over)
        if budget:
            trial.set_constraint("params", cost(p) / LIMIT - 1)
        if over:
            trial.set_user_attr(
                records.REJECTED,
                {"budget": "params", "used": cost(p), "limit": LIMIT, "reason": "over"},
            )
            study.tell(trial, state=TrialState.PRUNED)
            continue
        run.evaluated.append(p)
        study.tell(trial, score(p))
    return run
