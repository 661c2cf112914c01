"""Benchmarks: archsmith side by side with its anchor libraries, in one process.

``archsmith bench NAME`` measures the machine (including its float32 matmul rate), runs the
registered case ``NAME``, prints a table and can write ``{"machine": ..., "rows": [...]}`` as
JSON. Candidates are timed in interleaved rounds (:func:`archsmith.measure.time_interleaved`), so
ratios measured in one run are the result; absolute times on a shared machine are noise. The
timers and writers live in :mod:`archsmith.measure`, below the families; this package holds the
harness (case registry, runner, anchors) and the cases.

Cases live in modules that call :func:`register_bench`; those modules are listed in
:data:`CASE_MODULES` and imported lazily by :func:`list_benches` / :func:`get_bench`.
"""

from archsmith.bench.anchors import INSTALL_HINT, AnchorMissing, anchor_missing_row, require_anchor
from archsmith.bench.registry import (
    CASE_MODULES,
    BenchContext,
    BenchEntry,
    BenchFn,
    get_bench,
    list_benches,
    register_bench,
    unregister_bench,
)
from archsmith.bench.runner import format_machine, run_bench

__all__ = [
    "CASE_MODULES",
    "INSTALL_HINT",
    "AnchorMissing",
    "BenchContext",
    "BenchEntry",
    "BenchFn",
    "anchor_missing_row",
    "format_machine",
    "get_bench",
    "list_benches",
    "register_bench",
    "require_anchor",
    "run_bench",
    "unregister_bench",
]
