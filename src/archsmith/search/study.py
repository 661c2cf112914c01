"""Opening a search's study as a worker sees it: its sampler, pruner and trial evaluator.

Each worker process, local or on a Ray node, starts from the configuration alone
(:func:`worker_main`), so it needs nothing from the process that started the search.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
import torch
from optuna.study import StudyDirection

from archsmith.search.benchmark_objective import BenchmarkObjective
from archsmith.search.config import SearchConfig
from archsmith.search.objective import Outcome, TaskObjective
from archsmith.search.samplers import TRIAL_SEEDED, make_sampler
from archsmith.search.spaces import default_space, load_space
from archsmith.search.storage import open_storage
from archsmith.search.worker import run_worker
from archsmith.tasks import get_task

__all__ = ["directions", "make_evaluator", "make_pruner", "open_search", "worker_main"]


def make_pruner(config: SearchConfig) -> optuna.pruners.BasePruner:
    """The early-stopping rule of ``config.pruner`` over per-epoch validation metrics."""
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if config.pruner == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=config.epochs or "auto")
    return optuna.pruners.NopPruner()


def directions(config: SearchConfig, greater_is_better: bool) -> list[StudyDirection]:
    """The study's directions: the metric's, then every cost objective minimised."""
    first = StudyDirection.MAXIMIZE if greater_is_better else StudyDirection.MINIMIZE
    return [first] + [StudyDirection.MINIMIZE] * (len(config.objectives) - 1)


def make_evaluator(config: SearchConfig) -> tuple[Callable[[optuna.Trial], Outcome], bool]:
    """The trial evaluator of ``config`` and whether its metric is better when greater."""
    if config.benchmark is not None:
        bench = BenchmarkObjective(config)
        return bench, bench.greater_is_better
    assert config.task is not None
    task = get_task(config.task, **config.task_options)
    space = load_space(config.space) if config.space else default_space(task)
    return TaskObjective(config, task, space), task.greater_is_better


def _sampler(config: SearchConfig, worker: int) -> optuna.samplers.BaseSampler:
    # random, re and rl seed every draw from (seed, trial number): workers sharing the seed still
    # draw different trials and rl's workers hold one policy. TPE and NSGA-II keep one generator
    # per process, so each worker needs its own seed or they would propose the same trials.
    seed = config.seed if config.strategy in TRIAL_SEEDED else config.seed + 7919 * worker
    return make_sampler(config.strategy, seed=seed, multi_objective=config.multi_objective)


def open_search(config: SearchConfig, worker: int = 0) -> optuna.Study:
    """The study of ``config`` (it must exist), with this worker's sampler and the pruner."""
    return optuna.load_study(
        study_name=config.study_name,
        storage=open_storage(config.storage),
        sampler=_sampler(config, worker),
        pruner=make_pruner(config),
    )


def worker_main(config_dict: dict[str, Any], worker: int, threads: int) -> None:
    """Entry point of a worker process (spawned: a fresh interpreter)."""
    torch.set_num_threads(threads)
    config = SearchConfig.from_dict(config_dict)
    evaluate, _ = make_evaluator(config)
    run_worker(open_search(config, worker), config, evaluate)
