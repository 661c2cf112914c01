"""What ``archsmith search`` and ``archsmith report`` run (arguments:
:mod:`archsmith.search.arguments`); :mod:`archsmith.cli` calls :func:`search_command` and
:func:`report_command`, and the logic lives here, beside the search it drives.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from archsmith.errors import ArchsmithError
from archsmith.search.arguments import BUDGET_FLAGS
from archsmith.search.budgets import Budgets
from archsmith.search.config import CONFIG_FILE, SearchConfig, load_config
from archsmith.search.live import LiveTable, summary_lines
from archsmith.search.report import build_report
from archsmith.search.runner import resume_search, run_search
from archsmith.search.storage import load_study

__all__ = ["report_command", "search_command"]

#: names users may give for the task's metric in --objectives
_METRIC_NAMES = ("metric", "accuracy", "c_index", "dice", "val")


def _objectives(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise ArchsmithError("--objectives: give at least the metric")
    first = "metric" if names[0] in _METRIC_NAMES else names[0]
    return (first, *names[1:])


def _config(args: argparse.Namespace, out: Path) -> SearchConfig:
    if args.task is None and args.benchmark is None:
        raise ArchsmithError("search: give --task or --benchmark")
    if args.backend == "ray" and not args.address:
        raise ArchsmithError("--backend ray: give --address of the Ray cluster (or 'local')")
    budgets = {cost: getattr(args, flag) for flag, cost in BUDGET_FLAGS.items()}
    Budgets.from_dict({k: v for k, v in budgets.items() if v is not None})
    return SearchConfig(
        task=args.task,
        task_options=dict(args.task_opt),
        benchmark=args.benchmark,
        space=args.space,
        strategy=args.strategy,
        trials=args.trials,
        seed=args.seed,
        workers=args.workers,
        storage=args.storage or "",
        study_name=out.resolve().name if args.storage else "archsmith",
        budgets={k: v for k, v in budgets.items() if v is not None},
        objectives=_objectives(args.objectives),
        pruner=args.pruner,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        max_rejections=args.max_rejections,
        backend=args.backend,
        ray_address=args.address,
    )


def search_command(args: argparse.Namespace) -> None:
    name = args.task or args.benchmark or "search"
    out = Path(args.out or f"runs/search-{name.replace(':', '-').replace('/', '-')}")
    live = None if args.no_progress else LiveTable()
    try:
        if args.resume:
            if not (out / CONFIG_FILE).exists():
                raise ArchsmithError(f"--resume: {str(out)!r} holds no search to continue")
            result = resume_search(
                out,
                trials=args.trials if args.trials != 20 else None,
                workers=args.workers if args.workers != 1 else None,
                show=live.update if live else None,
            )
        else:
            if out.exists() and any(out.iterdir()):
                raise ArchsmithError(
                    f"--out: {str(out)!r} is not empty (--resume continues a search there)"
                )
            result = run_search(_config(args, out), out, show=live.update if live else None)
    finally:
        if live is not None:
            live.stop()
    for line in summary_lines(result.study, result.run_dir, result.report):
        print(line)


def report_command(args: argparse.Namespace) -> None:
    run_dir = Path(args.run_dir)
    config = load_config(run_dir)
    study = load_study(config.storage, config.study_name)
    path = build_report(study, run_dir)
    print(f"report: {path}")
