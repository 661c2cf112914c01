"""One trial: build the candidate the space suggests, check its budgets, then train it.

Everything a trial needs is in its parameters, the search configuration and its seed, so any
worker on any machine can run it. The order is the order of cost: the space's suggestions,
building (no data), the parameter count (no forward), one measured training step (FLOPs and
saved activations), and only a candidate within every budget is trained.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from archsmith.build import build
from archsmith.errors import ArchsmithError
from archsmith.search import records
from archsmith.search.budgets import Budgets, candidate_cost
from archsmith.search.config import SearchConfig
from archsmith.search.spaces.base import Space
from archsmith.spec import Spec
from archsmith.tasks import Task
from archsmith.train import EpochEnd, TrainConfig, fit, seed_everything

__all__ = ["Outcome", "TaskObjective", "train_config_for"]


@dataclass
class Outcome:
    """What to tell the study about a trial."""

    state: TrialState
    values: list[float] | None = None
    user_attrs: dict[str, Any] = field(default_factory=dict)
    constraints: dict[str, float] = field(default_factory=dict)


def train_config_for(spec: Spec, config: SearchConfig, seed: int) -> TrainConfig:
    """The training settings of a candidate: the search's overrides over the model's recipe
    over the trainer's defaults (a block-list candidate has no recipe)."""
    overrides = {
        k: v
        for k, v in {
            "epochs": config.epochs,
            "lr": config.lr,
            "weight_decay": config.weight_decay,
            "batch_size": config.batch_size,
        }.items()
        if v is not None
    }
    return TrainConfig.for_model(spec.model, seed=seed, **overrides)


class TaskObjective:
    """Runs trials of a task search (see the module docstring)."""

    def __init__(self, config: SearchConfig, task: Task, space: Space) -> None:
        self.config = config
        self.task = task
        self.space = space
        self.budgets: Budgets = config.budget_limits()
        self.cost_objectives = list(config.objectives[1:])
        self.needed = frozenset({"params", "flops", "activation_mb"}) | set(self.budgets.limits())
        self.needed |= set(self.cost_objectives)

    def __call__(self, trial: optuna.Trial) -> Outcome:
        seed = self.config.seed + trial.number
        seed_everything(seed)
        spec = self.space(trial, self.task)
        if not isinstance(spec, Spec):
            raise ArchsmithError(f"space: must return an archsmith Spec, got {type(spec).__name__}")
        spec_dict = spec.to_dict()
        model = build(spec, self.task)
        cost = candidate_cost(
            model,
            self.task,
            batch_size=self.config.cost_batch_size,
            needed=self.needed,
            budgets=self.budgets,
        )
        attrs: dict[str, Any] = {
            records.SPEC: spec_dict,
            records.COST: cost,
            records.SEED: seed,
            records.WORKER: {"host": socket.gethostname(), "pid": os.getpid()},
        }
        constraints = self.budgets.violations(cost)
        rejection = self.budgets.check(cost)
        if rejection is not None:
            attrs[records.REJECTED] = rejection.as_dict()
            return Outcome(TrialState.PRUNED, None, attrs, constraints)
        trial_config = train_config_for(spec, self.config, seed)
        callbacks = [self._report(trial)] if self.config.pruner != "none" else []
        try:
            result = fit(model, self.task, trial_config, progress=False, callbacks=callbacks)
        except optuna.TrialPruned:
            return Outcome(TrialState.PRUNED, None, attrs, constraints)
        attrs[records.METRICS] = {"val": result.val, "test": result.test}
        metric = result.val[self.task.primary_metric]
        values = [float(metric)] + [float(cost[name]) for name in self.cost_objectives]
        return Outcome(TrialState.COMPLETE, values, attrs, constraints)

    def _report(self, trial: optuna.Trial) -> Callable[[EpochEnd], None]:
        metric = self.task.primary_metric

        def report(end: EpochEnd) -> None:
            trial.report(float(end.val[metric]), end.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {end.epoch}")

        return report
