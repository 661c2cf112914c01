"""What a search trial records in its Optuna study: the contract between the runner (which
writes), the strategies (which read finished trials) and the report (which reads everything).

Each trial is an Optuna trial in the study's storage; archsmith keeps its own facts in the
trial's user attributes under the keys below, all plain JSON, so ``archsmith report`` can rebuild
everything from the storage alone, on any machine, during or after a run.

Trial states:

- ``COMPLETE`` — trained (or looked up in a tabular benchmark); ``values`` are the objectives.
- ``PRUNED`` with :data:`REJECTED` set — over a hard budget, never trained. Its constraints
  (``trial.set_constraint(name, used / limit - 1)``, positive = violated) tell Optuna's samplers
  how far out it was; TPE ranks such trials below every feasible one, and archsmith's own
  samplers treat them as the worst outcome.
- ``PRUNED`` without :data:`REJECTED` — stopped early by a pruner (successive halving,
  Hyperband) after some epochs; its intermediate values are the per-epoch validation metric.
- ``FAIL`` — an error while building or training (the message in :data:`ERROR`), or a stale
  trial whose worker died (then re-queued with the same parameters, see ``storage``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BENCHMARK",
    "COST",
    "COST_KEYS",
    "ERROR",
    "METRICS",
    "REGRET",
    "REJECTED",
    "SEED",
    "SPEC",
    "STUDY_CONFIG",
    "WORKER",
    "is_rejected",
]

#: user attr: the task-resolved archsmith spec of the trial (``Spec.to_dict()``)
SPEC = "spec"
#: user attr: the cost model's numbers for the candidate, keys from :data:`COST_KEYS`
COST = "cost"
#: the costs a budget or an objective can name, and their units
COST_KEYS: dict[str, str] = {
    "params": "parameters",
    "flops": "training-step FLOPs per batch",
    "activation_mb": "saved-activation MB of a training step",
    "latency_ms": "median forward latency per batch, ms",
}
#: user attr: ``{"val": {...}, "test": {...}}`` the task's metrics of the trained candidate
METRICS = "metrics"
#: user attr: why a candidate was not trained, e.g. ``"params 61,234 > 50,000"``; also names the
#: budget: ``{"budget": "params", "used": 61234, "limit": 50000, "reason": "..."}``
REJECTED = "rejected"
#: user attr: a tabular benchmark's regret (best mean accuracy of the table minus this trial's)
REGRET = "regret"
#: user attr: the training seed of the trial
SEED = "seed"
#: user attr: where a trained trial ran, ``{"host": ..., "pid": ...}`` (a Ray node's worker, a
#: local process)
WORKER = "worker"
#: user attr: an error message (one line) of a failed trial
ERROR = "error"
#: user attr: the benchmark a trial was answered from (``nb201-cifar10``, ...)
BENCHMARK = "benchmark"
#: study user attr: the search's configuration (task, budgets, objectives, strategy, seed, ...)
STUDY_CONFIG = "archsmith_search"


def is_rejected(user_attrs: dict[str, Any]) -> bool:
    """Whether a trial with these user attributes was rejected by a budget (never trained)."""
    return REJECTED in user_attrs
