"""Measurement helpers below the families: interleaved timers, the machine's matmul rate, a
steady heap for timing, and the table / JSON writers for rows of results.

:mod:`archsmith.cost` measures one model; these measure how candidates compare. Families (the
compression pipeline, for one) and the benchmarks both use them, so they sit on the floor of
``cost``, under everything that reports numbers.
"""

from archsmith.measure.heap import steady_heap
from archsmith.measure.machine import machine_info, matmul_gflops
from archsmith.measure.tables import check_json_path, format_rows_table, jsonable, write_json
from archsmith.measure.timing import (
    TimingResult,
    rotated,
    time_interleaved,
    time_interleaved_clocks,
)

__all__ = [
    "TimingResult",
    "check_json_path",
    "format_rows_table",
    "jsonable",
    "machine_info",
    "matmul_gflops",
    "rotated",
    "steady_heap",
    "time_interleaved",
    "time_interleaved_clocks",
    "write_json",
]
