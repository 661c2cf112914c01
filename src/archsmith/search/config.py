"""A search's configuration: everything any worker needs to run its trials.

It is stored in the study itself (study user attribute :data:`~archsmith.search.records.STUDY_CONFIG`)
and in ``RUN_DIR/search.json``, so ``--resume``, extra workers, Ray tasks on other machines and
``archsmith report`` all read the same settings back rather than trusting a command line.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from archsmith.errors import ArchsmithError, did_you_mean
from archsmith.io import atomic_write_json, read_json
from archsmith.search.budgets import Budgets
from archsmith.search.records import COST_KEYS

__all__ = ["CONFIG_FILE", "PRUNERS", "SearchConfig", "load_config"]

CONFIG_FILE = "search.json"
PRUNERS = ("none", "median", "sha", "hyperband")


@dataclass
class SearchConfig:
    """One search.

    Attributes:
        task, task_options: the task searched for (``None`` with a ``benchmark``).
        benchmark: a tabular benchmark name (``nb201-cifar10``, ...) answering trials by look-up.
        space: ``FILE.py:FUNCTION`` of a user space, or ``None`` for the task's default space.
        strategy: a sampler name of :mod:`archsmith.search.samplers`.
        trials: evaluated trials to finish (trained or looked up; rejected candidates are not
            counted, see ``max_rejections``).
        seed: seeds the sampler; trial ``n`` trains with seed ``seed + n``.
        workers: local worker processes on the one storage.
        storage: the storage URL (``journal:PATH`` or an SQLAlchemy URL).
        study_name: the study's name in that storage.
        budgets: hard cost limits (:class:`~archsmith.search.budgets.Budgets` as a dict).
        objectives: ``("metric",)`` maximises (or minimises) the task's primary validation
            metric; more names (costs of :data:`COST_KEYS`) make a Pareto search against them.
        pruner: stop poor trials early from their per-epoch validation metric
            (single objective only).
        epochs, lr, weight_decay, batch_size: training overrides (``None``: the model's recipe,
            then the trainer's defaults).
        cost_batch_size: the batch the cost model measures each candidate on.
        max_rejections: give up after this many candidates in a row were over budget with no
            feasible design found yet.
        heartbeat_s, grace_s: heartbeat interval, and silence after which a running trial is
            taken as dead and re-queued.
    """

    task: str | None = None
    task_options: dict[str, Any] = field(default_factory=dict)
    benchmark: str | None = None
    space: str | None = None
    strategy: str = "tpe"
    trials: int = 20
    seed: int = 0
    workers: int = 1
    storage: str = ""
    study_name: str = "archsmith"
    budgets: dict[str, float] = field(default_factory=dict)
    objectives: tuple[str, ...] = ("metric",)
    pruner: Literal["none", "median", "sha", "hyperband"] = "none"
    epochs: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    batch_size: int | None = None
    cost_batch_size: int = 64
    max_rejections: int = 200
    heartbeat_s: float = 10.0
    grace_s: float = 60.0
    backend: Literal["local", "ray"] = "local"
    ray_address: str | None = None

    def __post_init__(self) -> None:
        self.objectives = tuple(self.objectives)
        if (self.task is None) == (self.benchmark is None):
            raise ArchsmithError("search: give exactly one of --task or --benchmark")
        positive = {
            "trials": self.trials,
            "workers": self.workers,
            "cost_batch_size": self.cost_batch_size,
            "max_rejections": self.max_rejections,
        }
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ArchsmithError(
                    f"--{name.replace('_', '-')}: must be an integer >= 1, got {value!r}"
                )
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ArchsmithError(
                    f"--{name.replace('_', '-')}: must be an integer >= 1, got {value!r}"
                )
        for name in ("lr", "weight_decay", "heartbeat_s", "grace_s"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ArchsmithError(
                    f"--{name.replace('_', '-')}: must be a finite number, got {value}"
                )
        if not 0 <= self.seed < 2**32:
            raise ArchsmithError(f"--seed: must lie in [0, 2**32), got {self.seed}")
        if self.pruner not in PRUNERS:
            raise ArchsmithError(
                f"--pruner: unknown pruner {self.pruner!r}{did_you_mean(self.pruner, PRUNERS)}"
            )
        if not self.objectives or self.objectives[0] != "metric":
            raise ArchsmithError(
                "--objectives: the first objective is the task's metric ('accuracy' or 'metric')"
            )
        for name in self.objectives[1:]:
            if name not in COST_KEYS:
                raise ArchsmithError(
                    f"--objectives: unknown cost {name!r}{did_you_mean(name, COST_KEYS)} "
                    f"(costs: {', '.join(COST_KEYS)})"
                )
        if len(set(self.objectives)) != len(self.objectives):
            raise ArchsmithError("--objectives: an objective is named twice")
        if self.pruner != "none" and len(self.objectives) > 1:
            raise ArchsmithError("--pruner: Optuna prunes single-objective studies only")
        self.budget_limits()  # validates

    def budget_limits(self) -> Budgets:
        return Budgets.from_dict(self.budgets)

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["objectives"] = list(self.objectives)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, run_dir: Path) -> Path:
        return atomic_write_json(run_dir / CONFIG_FILE, self.to_dict())


def load_config(run_dir: Path) -> SearchConfig:
    """The configuration a run directory was started with; a missing one is one line."""
    path = run_dir / CONFIG_FILE
    data = read_json(path, missing=f"{str(run_dir)!r} holds no search ({CONFIG_FILE} is missing)")
    if not isinstance(data, dict):
        raise ArchsmithError(f"{str(path)!r}: expected a JSON object")
    return SearchConfig.from_dict(data)
