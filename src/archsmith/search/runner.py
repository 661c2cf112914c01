"""``archsmith search``: create or resume a study, run its workers, write the report.

A run directory holds ``search.json`` (the configuration), ``study.journal`` (the default
storage), ``trials.csv``, ``best_spec.json`` and ``report/index.html``. With ``--workers N`` the
command starts N worker processes on the one storage and shows a live table from the storage
while they run; each worker is the same loop (:func:`~archsmith.search.worker.run_worker`).

Resuming after a crash (even kill -9 of every process) needs nothing but ``--resume``: the
finished trials are in the storage, the configuration in ``search.json`` and the study, and the
trials that were running when the processes died are re-queued by the heartbeat check once
their grace period is over (immediately for a resume: see :func:`resume_search`).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
import torch

from archsmith.errors import ArchsmithError
from archsmith.search import records
from archsmith.search.backends.ray_backend import run_on_ray
from archsmith.search.config import SearchConfig, load_config
from archsmith.search.heartbeat import requeue_stale
from archsmith.search.report import build_report
from archsmith.search.storage import load_study, open_storage, storage_url
from archsmith.search.study import directions, make_evaluator, open_search, worker_main
from archsmith.search.worker import Evaluator, run_worker

__all__ = ["SearchResult", "resume_search", "run_search"]

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class SearchResult:
    """The finished study and where its report is."""

    study: optuna.Study
    run_dir: Path
    report: Path | None


def _create(config: SearchConfig, run_dir: Path, greater_is_better: bool) -> optuna.Study:
    storage = open_storage(config.storage)
    try:
        study = optuna.create_study(
            study_name=config.study_name,
            storage=storage,
            directions=directions(config, greater_is_better),
            load_if_exists=False,
        )
    except optuna.exceptions.DuplicatedStudyError:
        raise ArchsmithError(
            f"{str(run_dir)!r} already holds a search: --resume continues it, or choose a new --out"
        ) from None
    study.set_user_attr(records.STUDY_CONFIG, config.to_dict())
    config.save(run_dir)
    return study


def _run_workers(
    config: SearchConfig, evaluate: Evaluator, show: Callable[[], None] | None
) -> None:
    """Run the workers; this process is worker 0, with the evaluator it already built."""
    if config.backend == "ray":
        run_on_ray(config, show)
        return
    threads = max(1, (os.cpu_count() or 1) // config.workers)
    # this process is worker 0 (it has imported everything already, and a spawned interpreter
    # costs seconds of start-up); workers 1..N-1 are spawned: no forked torch thread pools
    ctx = mp.get_context("spawn")
    errors = ctx.Queue()
    procs = [
        ctx.Process(
            target=_guarded_worker, args=(config.to_dict(), w, threads, errors), daemon=False
        )
        for w in range(1, config.workers)
    ]
    for p in procs:
        p.start()
    message = None
    try:
        torch.set_num_threads(threads)
        run_worker(open_search(config), config, evaluate, on_told=show)
        for p in procs:  # the last trials may still run there
            while p.is_alive():
                p.join(timeout=1.0)
                if show is not None:
                    show()
    finally:
        if not errors.empty():
            message = errors.get()
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()
    if message is not None:
        raise ArchsmithError(message)
    bad = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if bad:
        raise ArchsmithError(f"search: a worker process stopped with exit code {bad[0]}")


def _guarded_worker(config_dict: dict[str, Any], worker: int, threads: int, errors: Any) -> None:
    try:
        worker_main(config_dict, worker, threads)
    except ArchsmithError as err:
        errors.put(str(err))
    except KeyboardInterrupt:
        pass


def run_search(
    config: SearchConfig,
    run_dir: Path,
    *,
    show: Callable[[optuna.Study], None] | None = None,
    report: bool = True,
) -> SearchResult:
    """Start the search ``config`` in the new run directory ``run_dir`` and run it to the end."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config = replace(config, storage=config.storage or storage_url(None, run_dir))
    # built once, before the study exists: a bad task, space or benchmark fails here, and this
    # process's worker uses it
    evaluate, greater = make_evaluator(config)
    study = _create(config, run_dir, greater)
    return _finish(config, evaluate, study, run_dir, show, report)


def resume_search(
    run_dir: Path,
    *,
    trials: int | None = None,
    workers: int | None = None,
    show: Callable[[optuna.Study], None] | None = None,
    report: bool = True,
) -> SearchResult:
    """Continue the search in ``run_dir`` (after an interruption, or with more ``trials``).

    Every process of the run is gone when a user resumes, so trials still marked running are
    re-queued at once rather than after the grace period.
    """
    config = load_config(run_dir)
    changes: dict[str, Any] = {}
    if trials is not None:
        changes["trials"] = trials
    if workers is not None:
        changes["workers"] = workers
    config = replace(config, **changes)
    evaluate, _ = make_evaluator(config)
    study = load_study(config.storage, config.study_name)
    requeue_stale(study, grace=-1.0)
    study.set_user_attr(records.STUDY_CONFIG, config.to_dict())
    config.save(run_dir)
    return _finish(config, evaluate, study, run_dir, show, report)


def _finish(
    config: SearchConfig,
    evaluate: Evaluator,
    study: optuna.Study,
    run_dir: Path,
    show: Callable[[optuna.Study], None] | None,
    report: bool,
) -> SearchResult:
    refresh = (lambda: show(study)) if show is not None else None
    _run_workers(config, evaluate, refresh)
    if refresh is not None:
        refresh()
    path = None
    if report:
        path = build_report(study, run_dir)
    return SearchResult(study, run_dir, path)
