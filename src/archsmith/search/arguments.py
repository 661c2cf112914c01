"""The arguments of ``archsmith search`` and ``archsmith report``.

Kept apart from :mod:`archsmith.search.command` (what the commands run) and free of torch and
Optuna, so that ``archsmith --help`` and a mistyped flag answer at once.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from archsmith.argtypes import key_value

__all__ = ["BUDGET_FLAGS", "add_report_parser", "add_search_parser"]

BUDGET_FLAGS = {
    "max_params": "params",
    "max_flops": "flops",
    "max_activation_mb": "activation_mb",
    "max_latency_ms": "latency_ms",
}


def _number(text: str) -> float:
    """A budget: ``50000``, ``5e4``, ``50k``, ``2.5M``, ``1G``."""
    scale = {"k": 1e3, "m": 1e6, "g": 1e9}
    raw = text.strip().lower()
    factor = scale.get(raw[-1:], 1.0)
    if raw[-1:] in scale:
        raw = raw[:-1]
    try:
        value = float(raw) * factor
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def add_search_parser(sub: Any) -> None:
    p = sub.add_parser(
        "search",
        help="search for the best network for a task under hard cost budgets",
        description="Search architectures for a task (or answer trials from a tabular "
        "benchmark). Candidates over a budget are measured by the cost model and never "
        "trained. The run directory holds the study (resumable after any crash), "
        "trials.csv, best_spec.json and report/index.html.",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--task", help="task to search for (see 'archsmith tasks')")
    what.add_argument("--benchmark", help="tabular benchmark, e.g. nb201-cifar10")
    p.add_argument("--task-opt", action="append", default=[], type=key_value, metavar="KEY=VALUE")
    p.add_argument("--space", metavar="FILE.py:FUNC", help="your own space (default: the task's)")
    p.add_argument("--strategy", default="tpe", help="random, re, tpe, nsga2 or rl (default: tpe)")
    p.add_argument("--trials", type=int, default=20, help="trials to evaluate (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    p.add_argument(
        "--storage", metavar="URL", help="SQLAlchemy URL (default: journal file in --out)"
    )
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--address", metavar="ADDR", help="Ray cluster address (with --backend ray)")
    for flag, cost in BUDGET_FLAGS.items():
        p.add_argument(
            "--" + flag.replace("_", "-"),
            type=_number,
            metavar="N",
            dest=flag,
            help=f"budget: {cost}",
        )
    p.add_argument(
        "--objectives",
        default="metric",
        help="comma list: the task's metric first, then costs for a Pareto search "
        "(e.g. accuracy,params)",
    )
    p.add_argument("--pruner", choices=("none", "median", "sha", "hyperband"), default="none")
    p.add_argument("--epochs", type=int, help="training epochs per candidate (default: recipe)")
    p.add_argument("--lr", type=float, help="learning rate per candidate (default: recipe)")
    p.add_argument("--batch-size", type=int, help="batch size per candidate (default: recipe)")
    p.add_argument(
        "--max-rejections",
        type=int,
        default=200,
        metavar="N",
        help="give up after N over-budget candidates in a row (default 200)",
    )
    p.add_argument("--out", metavar="DIR", help="run directory (default runs/search-TASK)")
    p.add_argument("--resume", action="store_true", help="continue the search in --out")
    p.add_argument("--no-progress", action="store_true", help="no live table")


def add_report_parser(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="rebuild a search's report from its storage (also during the run)",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
