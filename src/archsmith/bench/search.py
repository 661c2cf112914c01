"""``archsmith bench search``: search strategies on NAS-Bench-201, and the engine's overhead.

Regret curves. On each NAS-Bench-201 table (CIFAR-10, CIFAR-100, ImageNet16-120; see
:mod:`archsmith.search.benchmarks.nb201`) every strategy of
:data:`archsmith.search.samplers.STRATEGIES` (random, regularized evolution, TPE, NSGA-II with
one objective, the REINFORCE controller) runs 50 searches (``--quick``: 10) of 200 evaluations
(``--quick``: 100). Each evaluation is one trial answered with one training seed's validation
accuracy (noisy, like a real evaluation). After ``k`` evaluations a search recommends its
incumbent, the architecture with the best *observed* accuracy so far; its regret is the table's
best mean validation accuracy minus the incumbent's *mean* validation accuracy (so it is >= 0
and measures what the search found, not the luck of one seed). Rows give the median and
quartiles over the searches at 10, 25, 50, 100 and 200 evaluations; the verdict rows say per
data set whether regularized evolution and TPE beat random search's median regret at 100
evaluations. Search ``r`` of every strategy uses seed ``10_000 * r`` for its sampler and
``seed + trial number`` for the query noise (as the search runner does), so the strategies see
the same noise. The searches run in parallel processes (one per CPU); a PNG of the curves goes
next to the JSON.

Engine overhead. Trials per second on the CIFAR-10 table with random sampling: a bare Optuna
ask/tell loop (``RandomSampler``, the benchmark's space and query, ``tell``) against archsmith's
path (its random sampler, :func:`archsmith.search.worker.run_worker` with
:class:`archsmith.search.benchmark_objective.BenchmarkObjective`: heartbeats, re-queue checks,
records), each a fresh study of the same length on the same kind of storage (in memory, and a
journal file: archsmith's default), timed interleaved. Target: archsmith at most 1.2x Optuna's
time per trial.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import psutil
import torch
from rich.console import Console

from archsmith.bench.registry import BenchContext, register_bench
from archsmith.measure.timing import time_interleaved
from archsmith.search.benchmark_objective import BenchmarkObjective
from archsmith.search.benchmarks import get_benchmark
from archsmith.search.benchmarks.nb201 import NB201Benchmark
from archsmith.search.benchmarks.plot import plot_regret_curves
from archsmith.search.config import SearchConfig
from archsmith.search.samplers import STRATEGIES, make_sampler
from archsmith.search.storage import open_storage
from archsmith.search.worker import run_worker

__all__ = [
    "CHECKPOINTS",
    "DATASETS",
    "FULL",
    "QUICK",
    "VERDICT_AT",
    "Grid",
    "png_path",
    "run_grid",
    "run_repeat",
    "search_bench",
    "summarize",
    "verdicts",
]

DATASETS = ("nb201-cifar10", "nb201-cifar100", "nb201-imagenet16")
CHECKPOINTS = (10, 25, 50, 100, 200)
VERDICT_AT = 100
#: the strategies that must beat random search at :data:`VERDICT_AT` evaluations
CHALLENGERS = ("re", "tpe")
BASELINE = "random"
SEED_STRIDE = 10_000  # search r seeds its sampler with r * stride: noise seeds never overlap
OVERHEAD_TARGET = 1.2


@dataclass(frozen=True)
class Grid:
    """How many searches per strategy and data set, and how long each is."""

    repeats: int
    evals: int
    overhead_trials: int


FULL = Grid(repeats=50, evals=200, overhead_trials=200)
QUICK = Grid(repeats=10, evals=100, overhead_trials=100)


def png_path(json_path: str | os.PathLike[str]) -> Path:
    """Where the plot of a run whose rows go to ``json_path`` is written: same name, ``.png``."""
    return Path(json_path).with_suffix(".png")


def run_repeat(
    bench: NB201Benchmark,
    sampler: optuna.samplers.BaseSampler,
    evals: int,
    *,
    seed: int,
    storage: optuna.storages.BaseStorage | None = None,
) -> np.ndarray:
    """One search of ``evals`` evaluations on ``bench``; returns ``[evals]`` regrets.

    ``regret[k - 1]`` is the regret of the incumbent after ``k`` evaluations (see the module
    docstring). Trial ``n`` is answered with noise seed ``seed + n``, as the search runner's
    benchmark objective does, so this loop can be replaced by the runner on the same seeds.
    """
    study = optuna.create_study(
        direction="maximize", sampler=sampler, storage=storage or optuna.storages.InMemoryStorage()
    )
    regrets = np.empty(evals)
    best_seen = -np.inf
    incumbent_mean = np.nan
    for k in range(evals):
        trial = study.ask()
        answer = bench.query(bench.space(trial), seed=seed + trial.number)
        study.tell(trial, answer["val_acc"])
        if answer["val_acc"] > best_seen:  # ties keep the earlier incumbent
            best_seen = answer["val_acc"]
            incumbent_mean = answer["val_acc_mean"]
        regrets[k] = bench.best_mean_accuracy - incumbent_mean
    return regrets


SamplerFactory = Callable[..., optuna.samplers.BaseSampler]


def _job(
    benchmark: str, strategy: str, repeat: int, evals: int, factory: SamplerFactory | None
) -> tuple[str, str, int, np.ndarray, float]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    bench = get_benchmark(benchmark)
    bench.table  # noqa: B018 -- load the table outside the timed search
    seed = SEED_STRIDE * repeat
    sampler = (factory or make_sampler)(strategy, seed=seed)
    # one thread: the RL controller's network is tiny, and one process per CPU each running a
    # thread per CPU oversubscribes the machine (measured: 6x slower on 2 busy CPUs)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        regrets = run_repeat(bench, sampler, evals, seed=seed)
        elapsed = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return benchmark, strategy, repeat, regrets, elapsed


def run_grid(
    benchmarks: Sequence[str],
    strategies: Sequence[str],
    *,
    repeats: int,
    evals: int,
    workers: int | None = None,
    factory: SamplerFactory | None = None,
    on_done: Callable[[str, str, int], None] | None = None,
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, float]]:
    """Every (benchmark, strategy, repeat) search, in ``workers`` processes (default: one per
    CPU; 1 runs them here). ``factory(name, seed=...)`` makes a strategy's sampler (default
    :func:`archsmith.search.samplers.make_sampler`; a picklable function for processes).

    Returns:
        ``curves[benchmark][strategy]`` as ``[repeats, evals]`` regrets, and the mean seconds
        per trial of each strategy (sampler, query and tell).
    """
    jobs = [(b, s, r) for s in strategies for b in benchmarks for r in range(repeats)]
    # slow strategies first, so that no process is left with a long one at the end
    jobs.sort(key=lambda j: j[1] != "rl")
    out: dict[str, dict[str, list[np.ndarray | None]]] = {
        b: {s: [None] * repeats for s in strategies} for b in benchmarks
    }
    seconds: dict[str, list[float]] = {s: [] for s in strategies}

    def collect(result: tuple[str, str, int, np.ndarray, float]) -> None:
        b, s, r, regrets, secs = result
        out[b][s][r] = regrets
        seconds[s].append(secs / evals)
        if on_done is not None:
            on_done(b, s, r)

    n = min(workers or os.cpu_count() or 1, len(jobs))
    if n <= 1:
        for b, s, r in jobs:
            collect(_job(b, s, r, evals, factory))
    else:
        # spawn: no forked thread pools (torch, BLAS), the same start on every platform
        with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_job, b, s, r, evals, factory) for b, s, r in jobs]
            for future in futures:
                collect(future.result())
    curves = {
        b: {s: np.stack([r for r in rs if r is not None]) for s, rs in d.items()}
        for b, d in out.items()
    }
    return curves, {s: statistics.fmean(v) for s, v in seconds.items()}


def summarize(
    curves: dict[str, dict[str, np.ndarray]],
    checkpoints: Sequence[int] = CHECKPOINTS,
    ms_per_trial: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Rows of median / quartile / mean regret at each checkpoint within the searches' length."""
    rows = []
    for bench, per_strategy in curves.items():
        for strategy, regrets in per_strategy.items():
            for k in checkpoints:
                if k > regrets.shape[1]:
                    continue
                at = regrets[:, k - 1]
                q25, median, q75 = np.percentile(at, [25, 50, 75])
                row = {
                    "table": "regret",
                    "benchmark": bench,
                    "strategy": strategy,
                    "evals": k,
                    "median": float(median),
                    "q25": float(q25),
                    "q75": float(q75),
                    "mean": float(at.mean()),
                    "found_best": float(np.mean(at <= 1e-9)),
                    "repeats": int(regrets.shape[0]),
                }
                if ms_per_trial is not None:
                    row["ms_per_trial"] = ms_per_trial[strategy] * 1e3
                rows.append(row)
    return rows


def verdicts(
    curves: dict[str, dict[str, np.ndarray]], at: int = VERDICT_AT
) -> list[dict[str, Any]]:
    """Per benchmark: every strategy's median regret at ``at`` evaluations and whether each of
    :data:`CHALLENGERS` beats (strictly below) random search's median."""
    rows = []
    for bench, per_strategy in curves.items():
        medians = {s: float(np.median(r[:, at - 1])) for s, r in per_strategy.items()}
        row: dict[str, Any] = {"table": "verdict", "benchmark": bench, "evals": at}
        row.update({f"{s}_median": m for s, m in medians.items()})
        base = medians.get(BASELINE)
        passes = []
        for s in CHALLENGERS:
            if s in medians and base is not None:
                row[f"{s}_beats_random"] = medians[s] < base
                passes.append(medians[s] < base)
        row["verdict"] = ("pass" if all(passes) else "fail") if passes else "n/a"
        rows.append(row)
    return rows


def _table_rows(benchmarks: Sequence[str]) -> list[dict[str, Any]]:
    """Each table's facts, its load time and the process's RSS growth from loading it."""
    proc = psutil.Process()
    rows = []
    for name in benchmarks:
        bench = get_benchmark(name)
        rss = proc.memory_info().rss
        start = time.perf_counter()
        table = bench.table
        load_s = time.perf_counter() - start
        rows.append(
            {
                "table": "tables",
                "benchmark": name,
                "cells": int(table.val_acc.shape[0]),
                "cells_3_seeds": int((table.n_seeds == 3).sum()),
                "cells_2_seeds": int((table.n_seeds == 2).sum()),
                "best_mean_val_acc": bench.best_mean_accuracy,
                "best_arch": bench.best_arch,
                "load_s": load_s,
                "rss_growth_mb": (proc.memory_info().rss - rss) / 2**20,
            }
        )
    return rows


def _bare_optuna_loop(
    bench: NB201Benchmark, trials: int, storage: optuna.storages.BaseStorage
) -> None:
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0), storage=storage
    )
    for _ in range(trials):
        trial = study.ask()
        answer = bench.query(bench.space(trial), seed=trial.number)
        study.tell(trial, answer["val_acc"])


def _archsmith_loop(benchmark: str, trials: int, storage: optuna.storages.BaseStorage) -> None:
    config = SearchConfig(benchmark=benchmark, strategy="random", trials=trials, seed=0)
    study = optuna.create_study(
        direction="maximize", sampler=make_sampler("random", seed=0), storage=storage
    )
    run_worker(study, config, BenchmarkObjective(config))


def overhead_rows(
    ctx: BenchContext, trials: int, benchmark: str = "nb201-cifar10"
) -> list[dict[str, Any]]:
    """Time per trial of the bare Optuna loop and archsmith's, interleaved, per storage."""
    bench = get_benchmark(benchmark)
    bench.table  # noqa: B018 -- loaded before timing
    rows = []
    with tempfile.TemporaryDirectory(prefix="archsmith-bench-search-") as tmp:
        counter = iter(range(10**9))

        def fresh(kind: str) -> Callable[[], optuna.storages.BaseStorage]:
            if kind == "inmemory":
                return optuna.storages.InMemoryStorage
            return lambda: open_storage(f"journal:{Path(tmp) / f'{next(counter)}.journal'}")

        for kind in ("inmemory", "journal"):
            make = fresh(kind)

            def bare(make: Callable[[], optuna.storages.BaseStorage] = make) -> None:
                _bare_optuna_loop(bench, trials, make())

            def ours(make: Callable[[], optuna.storages.BaseStorage] = make) -> None:
                _archsmith_loop(benchmark, trials, make())

            timings = time_interleaved(
                {"optuna": bare, "archsmith": ours},
                repeats=ctx.repeats,
                warmup=ctx.warmup,
            )
            base = timings["optuna"].median_ms / trials
            for loop, t in timings.items():
                per_trial = t.median_ms / trials
                rows.append(
                    {
                        "table": "overhead",
                        "benchmark": benchmark,
                        "storage": kind,
                        "loop": loop,
                        "trials": trials,
                        "ms_per_trial": per_trial,
                        "iqr_ms_per_trial": t.iqr_ms / trials,
                        "trials_per_s": 1e3 / per_trial,
                        "vs_optuna": per_trial / base,
                        "target": f"<= {OVERHEAD_TARGET}x" if loop == "archsmith" else "",
                        "ok": per_trial / base <= OVERHEAD_TARGET if loop == "archsmith" else None,
                    }
                )
    return rows


def search_bench(
    ctx: BenchContext,
    grid: Grid,
    *,
    benchmarks: Sequence[str] = DATASETS,
    strategies: Sequence[str] | None = None,
    workers: int | None = None,
    factory: SamplerFactory | None = None,
) -> list[dict[str, Any]]:
    """The case with an explicit grid (the registered case picks :data:`FULL` or :data:`QUICK`)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per study drowns the table
    if strategies is None:
        strategies = STRATEGIES
    console = Console(stderr=True, highlight=False)
    start = time.perf_counter()
    rows = _table_rows(benchmarks)
    # the overhead first, on an idle machine: the grid's processes would disturb it
    overhead = overhead_rows(ctx, grid.overhead_trials)
    rows += overhead
    for r in overhead:
        if r["loop"] == "archsmith":
            console.print(
                f"search: overhead ({r['storage']}): archsmith {r['ms_per_trial']:.2f} ms/trial, "
                f"{r['vs_optuna']:.2f}x Optuna's"
            )
    done = [0]
    total = len(benchmarks) * len(strategies) * grid.repeats

    def progress(bench: str, strategy: str, repeat: int) -> None:
        done[0] += 1
        if done[0] % max(1, total // 10) == 0 or done[0] == total:
            elapsed = time.perf_counter() - start
            console.print(f"search: {done[0]}/{total} searches ({elapsed:.0f} s)")

    curves, secs = run_grid(
        benchmarks,
        strategies,
        repeats=grid.repeats,
        evals=grid.evals,
        workers=workers,
        factory=factory,
        on_done=progress,
    )
    rows += summarize(curves, ms_per_trial=secs)
    if grid.evals >= VERDICT_AT:
        for v in verdicts(curves):
            rows.append(v)
            console.print(
                f"search: {v['benchmark']}: RE and TPE beat random's median regret at "
                f"{VERDICT_AT}: {v['verdict']}"
            )
    if ctx.json_path is not None:
        path = png_path(ctx.json_path)
        plot_title = f"NAS-Bench-201: median regret over {grid.repeats} searches (band: quartiles)"
        plot_regret_curves(curves, path, mark_at=VERDICT_AT, title=plot_title)
        console.print(f"search: wrote {path}")
    console.print(f"search: the case took {time.perf_counter() - start:.0f} s")
    return rows


@register_bench(
    "search",
    "search strategies on NAS-Bench-201 (regret vs evaluations) and the engine's overhead",
)
def search(ctx: BenchContext) -> list[dict[str, Any]]:
    return search_bench(ctx, QUICK if ctx.quick else FULL)
