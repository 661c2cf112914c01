"""Tabular benchmarks: search spaces whose every candidate is answered by table look-up, so
strategies can be compared in seconds (``archsmith search --benchmark nb201-cifar10``).

A benchmark has ``name``, ``metric`` and ``greater_is_better``; ``space(trial) -> arch``
(define-by-run, Optuna's trial API); ``query(arch, seed=...) -> dict`` (one noisy evaluation:
the metric under ``benchmark.metric``, its ``regret`` and the table's costs);
``mean_accuracy(arch)``, ``best_mean_accuracy`` and ``regret(accuracy)``.

:data:`BENCHMARKS` names them; :func:`get_benchmark` returns one instance per name and process
(its table is loaded on first use and kept).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from archsmith.errors import ArchsmithError, did_you_mean
from archsmith.search.benchmarks.nb201 import DATASETS as NB201_DATASETS
from archsmith.search.benchmarks.nb201 import NB201Benchmark

__all__ = ["BENCHMARKS", "NB201Benchmark", "get_benchmark", "list_benchmarks"]


def _nb201(dataset: str) -> Callable[[], NB201Benchmark]:
    return lambda: NB201Benchmark(dataset)


#: benchmark name -> factory
BENCHMARKS: dict[str, Callable[[], NB201Benchmark]] = {
    f"nb201-{dataset}": _nb201(dataset) for dataset in NB201_DATASETS
}

_INSTANCES: dict[str, NB201Benchmark] = {}
_LOCK = threading.Lock()


def list_benchmarks() -> list[str]:
    """The names of the tabular benchmarks, sorted."""
    return sorted(BENCHMARKS)


def get_benchmark(name: str) -> NB201Benchmark:
    """The benchmark ``name`` (one instance per process); an unknown name is an ArchsmithError."""
    if name not in BENCHMARKS:
        raise ArchsmithError(
            f"unknown benchmark {name!r}{did_you_mean(name, BENCHMARKS)}; "
            f"known: {', '.join(list_benchmarks())}"
        )
    with _LOCK:
        bench = _INSTANCES.get(name)
        if bench is None:
            bench = _INSTANCES[name] = BENCHMARKS[name]()
    return bench
