"""A trial answered by a tabular benchmark (``--benchmark nb201-cifar10``): instant, so that
strategies can be compared over thousands of trials on the same loop, storage and budgets as a
real search.

A query returns one training seed's validation accuracy, drawn with the trial's seed, like a
real noisy evaluation; the trial records its regret against the table's best mean. The table's
model size and latency are the costs the budgets and objectives can name (``params``,
``latency_ms``).
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from archsmith.errors import ArchsmithError
from archsmith.search import records
from archsmith.search.benchmarks import get_benchmark
from archsmith.search.budgets import Budgets
from archsmith.search.config import SearchConfig
from archsmith.search.objective import Outcome

__all__ = ["BenchmarkObjective"]

#: the costs a benchmark table knows
_TABLE_COSTS = ("params", "latency_ms")


class BenchmarkObjective:
    """Runs trials of a benchmark search."""

    def __init__(self, config: SearchConfig) -> None:
        assert config.benchmark is not None
        self.config = config
        self.bench = get_benchmark(config.benchmark)
        self.greater_is_better = self.bench.greater_is_better
        self.budgets: Budgets = config.budget_limits()
        unknown = [
            n for n in [*self.budgets.limits(), *config.objectives[1:]] if n not in _TABLE_COSTS
        ]
        if unknown:
            raise ArchsmithError(
                f"--benchmark {config.benchmark}: its table has no {unknown[0]!r} "
                f"(costs there: {', '.join(_TABLE_COSTS)})"
            )

    def __call__(self, trial: optuna.Trial) -> Outcome:
        arch = self.bench.space(trial)
        seed = self.config.seed + trial.number
        answer: dict[str, Any] = self.bench.query(arch, seed=seed)
        cost = {
            "params": float(answer["model_size_mb"]) * 1e6,  # the table's size is in millions
            "latency_ms": float(answer["latency_s"]) * 1e3,
        }
        # only what the trial's values and parameters do not already say: every attribute is a
        # storage write, and a look-up is so fast that writes are most of a trial's time
        attrs: dict[str, Any] = {records.COST: cost, records.REGRET: float(answer["regret"])}
        constraints = self.budgets.violations(cost)
        rejection = self.budgets.check(cost)
        if rejection is not None:
            attrs[records.REJECTED] = rejection.as_dict()
            return Outcome(TrialState.PRUNED, None, attrs, constraints)
        values = [float(answer["val_acc"])] + [cost[n] for n in self.config.objectives[1:]]
        return Outcome(TrialState.COMPLETE, values, attrs, constraints)
