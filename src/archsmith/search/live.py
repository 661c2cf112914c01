"""What a search shows while it runs, and the lines it prints at the end.

The live table reads the storage, not the worker's memory, so it shows the trials of every
worker process alike: trials done, best so far, rejected by each budget, pruned, failed,
running, and (for a Pareto search) the current front.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial
from rich.console import Console
from rich.live import Live
from rich.table import Table

from archsmith.cost import human_count
from archsmith.search import records
from archsmith.search.report.best import best_trial, pareto_front
from archsmith.search.worker import progress_of

__all__ = ["LiveTable", "best_trials", "summary_lines"]


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The best feasible trial (single objective) or the feasible Pareto front, best first:
    the same choice as the report's (:mod:`archsmith.search.report.best`)."""
    if len(study.directions) == 1:
        best = best_trial(study)
        return [] if best is None else [best]
    return pareto_front(study)


def _cost_text(cost: dict[str, Any]) -> str:
    parts = []
    if "params" in cost:
        parts.append(f"{human_count(cost['params'])} params")
    if "flops" in cost:
        parts.append(f"{human_count(cost['flops'])} step FLOPs")
    if "activation_mb" in cost:
        parts.append(f"{cost['activation_mb']:.2f} MB activations")
    if "latency_ms" in cost:
        parts.append(f"{cost['latency_ms']:.2f} ms")
    return ", ".join(parts)


def _design_text(t: FrozenTrial) -> str:
    spec = t.user_attrs.get(records.SPEC)
    if isinstance(spec, dict):
        if "model" in spec:
            return f"{spec['model']} {json.dumps(spec.get('options', {}), sort_keys=True)}"
        blocks = spec.get("blocks", [])
        return " -> ".join(str(b.get("type")) for b in blocks)
    return ", ".join(f"{k}={v}" for k, v in t.params.items())


def _table(study: optuna.Study) -> Table:
    p = progress_of(study)
    config = study.user_attrs.get(records.STUDY_CONFIG, {})
    table = Table(title=f"archsmith search ({config.get('strategy', '?')})", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("trials done", f"{p.evaluated} / {config.get('trials', '?')}")
    table.add_row("running / queued", f"{p.running} / {p.waiting}")
    rejected = ", ".join(f"{k}: {v}" for k, v in sorted(p.rejected_by_budget.items())) or "0"
    table.add_row("rejected by budget", rejected)
    table.add_row("pruned / failed", f"{p.pruned} / {p.failed}")
    best = best_trials(study)
    if best:
        label = "best so far" if len(study.directions) == 1 else f"Pareto front ({len(best)})"
        for i, t in enumerate(best[:5]):
            values = ", ".join(f"{v:.4g}" for v in t.values)
            cost = _cost_text(t.user_attrs.get(records.COST, {}))
            table.add_row(label if i == 0 else "", f"#{t.number}: {values}  ({cost})")
    return table


class LiveTable:
    """A rich live table over a study, refreshed by :meth:`update` (on stderr)."""

    def __init__(self) -> None:
        self._live: Live | None = None

    def update(self, study: optuna.Study) -> None:
        table = _table(study)
        if self._live is None:
            self._live = Live(table, console=Console(stderr=True), auto_refresh=False)
            self._live.start()
        self._live.update(table, refresh=True)

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def summary_lines(study: optuna.Study, run_dir: Path, report: Path | None) -> list[str]:
    """The lines ``archsmith search`` prints at the end: the best design, its metric and cost,
    and where the report is."""
    p = progress_of(study)
    lines = [
        f"trials: {p.evaluated} evaluated ({p.complete} complete, {p.pruned} pruned, "
        f"{p.failed} failed), {p.rejected} rejected by budget"
        + (
            f" ({', '.join(f'{k}: {v}' for k, v in sorted(p.rejected_by_budget.items()))})"
            if p.rejected
            else ""
        )
    ]
    best = best_trials(study)
    if not best:
        lines.append("no feasible design finished")
    for t in best[:5]:
        metrics = t.user_attrs.get(records.METRICS, {})
        test = metrics.get("test", {}) if isinstance(metrics, dict) else {}
        shown = ", ".join(f"test {k} {v:.4f}" for k, v in sorted(test.items()) if k != "loss")
        regret = t.user_attrs.get(records.REGRET)
        extra = f", regret {regret:.4f}" if isinstance(regret, int | float) else ""
        lines.append(
            f"best #{t.number}: val {t.values[0]:.4f}{', ' + shown if shown else ''}{extra}; "
            f"{_cost_text(t.user_attrs.get(records.COST, {}))}"
        )
        lines.append(f"  design: {_design_text(t)}")
    if report is not None:
        lines.append(f"report: {report}")
    if (run_dir / "best_spec.json").exists():
        lines.append(f"best spec: {run_dir / 'best_spec.json'} (archsmith train --spec ...)")
    return lines
