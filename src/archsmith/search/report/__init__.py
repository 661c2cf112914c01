"""The report of a search, rebuilt from its study's storage alone (during or after a run).

:func:`build_report` writes, each file atomically (a reader, or a browser refreshing the page,
never sees half a file):

- ``OUT/trials.csv`` — one row per trial (:mod:`~archsmith.search.report.table`);
- ``OUT/best_spec.json`` — the best design's spec, for ``archsmith train --spec`` (task
  searches only, once a feasible trial has finished; :mod:`~archsmith.search.report.best`);
- ``OUT/report/index.html`` — one self-contained page: a summary, the best design, the Pareto
  front, the metric against each cost, the best so far and the budget rejections as embedded
  PNGs, and the top trials (:mod:`~archsmith.search.report.html`).

Everything comes from one snapshot of the study's trials, so the table, the plots and the page
agree even while workers keep adding trials.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import optuna

from archsmith.io import atomic_write_json, atomic_write_text
from archsmith.search.report.best import best_of, best_spec, front_of, pareto_front, write_best_spec
from archsmith.search.report.html import render_page
from archsmith.search.report.plots import all_plots
from archsmith.search.report.settings import ReportSettings, read_settings
from archsmith.search.report.table import frame_of, trials_frame, write_trials_csv

__all__ = [
    "BEST_SPEC",
    "INDEX",
    "TRIALS_CSV",
    "ReportSettings",
    "best_of",
    "build_report",
    "pareto_front",
    "read_settings",
    "trials_frame",
    "write_best_spec",
    "write_trials_csv",
]

TRIALS_CSV = "trials.csv"
BEST_SPEC = "best_spec.json"
INDEX = "report/index.html"


def build_report(study: optuna.Study, out_dir: str | Path) -> Path:
    """Write the report of ``study`` under ``out_dir`` (module docstring); returns the path of
    ``index.html``."""
    out = Path(out_dir)
    trials = study.get_trials(deepcopy=True)  # one snapshot for every file
    settings = read_settings(study, trials)
    frame = frame_of(trials, settings)
    front = front_of(trials, settings.directions)
    best = front[0] if front else None
    spec = best_spec(best, settings)
    write_trials_csv(frame, out / TRIALS_CSV)
    if spec is not None:
        atomic_write_json(out / BEST_SPEC, spec)
    best_number = best.number if best is not None else None
    front_numbers = [t.number for t in front]
    page = render_page(
        settings,
        frame,
        best=best_number,
        front=front_numbers,
        spec=spec,
        plots=all_plots(frame, settings, front_numbers, best_number),
        built_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )
    return atomic_write_text(out / INDEX, page)
