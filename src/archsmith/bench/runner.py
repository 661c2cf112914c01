"""``run_bench``: measure the machine, run one registered case, print its table, write JSON."""

from __future__ import annotations

import os
from typing import Any

from archsmith.bench.registry import BenchContext, get_bench
from archsmith.measure.machine import machine_info
from archsmith.measure.tables import check_json_path, format_rows_table, jsonable, write_json

__all__ = ["FULL", "QUICK", "format_machine", "run_bench"]

#: (repeats, warmup) of a full and of a quick run
FULL = (15, 3)
QUICK = (5, 1)


def format_machine(machine: dict[str, Any]) -> str:
    """One line summing up :func:`machine_info` for the top of a report."""
    cpus = machine.get("cpu_affinity") or machine.get("cpu_count_logical")
    parts = [
        str(machine.get("platform", "?")),
        f"{cpus} CPUs (torch threads {machine.get('torch_threads', '?')})",
        f"torch {machine.get('torch', '?')}",
        f"float32 matmul {machine.get('matmul_gflops', 0.0):.1f} GFLOP/s",
    ]
    if machine.get("cuda"):
        parts.append(f"GPU {machine['cuda']}")
    return "machine: " + ", ".join(parts)


def run_bench(
    name: str,
    *,
    quick: bool = False,
    json_path: str | os.PathLike[str] | None = None,
    echo: bool = True,
    _matmul_n: int = 1024,
) -> dict[str, Any]:
    """Run the registered benchmark ``name`` and return ``{"machine": {...}, "rows": [...]}``.

    The machine (including its float32 matmul rate) is measured first, then the case runs with
    a :class:`BenchContext`. Unknown names and unusable ``json_path`` fail before any work.

    Args:
        name: a name from :func:`archsmith.bench.list_benches`.
        quick: reduced grid and fewer repeats (:data:`QUICK` instead of :data:`FULL`).
        json_path: also write the result there as JSON, atomically (parents created).
        echo: print the machine line and the table to stdout (the CLI's output).
        _matmul_n: matmul size for the machine's rate; tests shrink it.

    Returns:
        The result, JSON-safe (numpy / torch scalars unwrapped, NaN as None).
    """
    entry = get_bench(name)
    if json_path is not None:
        check_json_path(json_path)
    machine = machine_info(_matmul_n=_matmul_n)
    repeats, warmup = QUICK if quick else FULL
    ctx = BenchContext(
        quick=quick,
        machine=machine,
        repeats=repeats,
        warmup=warmup,
        json_path=None if json_path is None else os.fspath(json_path),
    )
    rows = entry.fn(ctx)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise TypeError(
            f"benchmark {name!r} must return a list of dicts, got {type(rows).__name__}"
        )
    result: dict[str, Any] = jsonable({"machine": machine, "rows": rows})
    if echo:
        print(format_machine(machine))
        for table, table_rows in _group_by_table(result["rows"]):
            title = f"archsmith bench {name}" + (f": {table}" if table else "")
            print(format_rows_table(table_rows, title=title))
    if json_path is not None:
        written = write_json(json_path, result)
        if echo:
            print(f"wrote {written}")
    return result


def _group_by_table(rows: list[dict[str, Any]]) -> list[tuple[str | None, list[dict[str, Any]]]]:
    """Rows split by their optional ``"table"`` key (first-seen order), so that a case can print
    several tables (e.g. a timing grid and a memory-budget table); the key itself is dropped
    from the printed columns and kept in the JSON."""
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for row in rows:
        key = row.get("table")
        groups.setdefault(key, []).append({k: v for k, v in row.items() if k != "table"})
    return list(groups.items())
