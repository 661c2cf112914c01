"""``report/index.html``: one self-contained page, readable offline and from any file share.

The plots are embedded as base64 ``data:`` URIs and the styles inline; the page names no
external resource and runs no script. Its Content-Security-Policy says so to the browser
(``default-src 'none'``; images from ``data:`` only, inline styles only), so a page that ever
tried to load something else would show a console error instead of silently reaching out.
Every piece of text from the study (parameters, specs, error messages) goes through
:func:`html.escape`.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from html import escape
from typing import Any

import pandas as pd

from archsmith.cost import human_count
from archsmith.search.records import COST_KEYS
from archsmith.search.report.plots import Plot
from archsmith.search.report.settings import ReportSettings

__all__ = ["CSP", "counts_of", "render_page"]

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
#: rows of the top-trials table
TOP = 20

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1d232a; background: #fafafa; }
main { max-width: 1100px; margin: 0 auto; padding: 1.2rem 1.5rem 3rem; }
h1 { font-size: 1.5rem; margin: 0.4rem 0; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 0.5rem; border-bottom: 1px solid #ddd; }
p.note { color: #555; margin: 0.2rem 0; }
table { border-collapse: collapse; font-size: 0.86rem; background: #fff; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left;
         vertical-align: top; }
th { background: #eef1f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.front td { background: #fff4e0; }
pre { background: #fff; border: 1px solid #ddd; padding: 0.6rem; font-size: 0.8rem;
      overflow-x: auto; }
figure { margin: 1rem 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #ddd;
             background: #fff; }
figcaption { color: #555; font-size: 0.85rem; margin-top: 0.3rem; }
"""


def _text(value: Any) -> str:
    """A cell's text: numbers to 4 significant digits, missing values as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cost_text(name: str, value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
        return "–"
    if name in ("params", "flops"):
        return human_count(value)
    return f"{value:.3g}"


def _limit_text(value: float) -> str:
    """A budget as the user typed it: ``50,000``, ``20``, ``2.5``."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:.4g}"


def _params_text(row: pd.Series) -> str:
    parts = [
        f"{c.removeprefix('params_')}={_text(row[c])}"
        for c in row.index
        if c.startswith("params_") and not pd.isna(row[c])
    ]
    return ", ".join(parts) or "–"


def counts_of(frame: pd.DataFrame) -> dict[str, Any]:
    """How many trials ended each way, and rejections per budget (as the live table counts:
    a stale trial is not counted, its retry is)."""
    outcome = frame["outcome"] if "outcome" in frame else pd.Series(dtype=str)
    by: dict[str, Any] = {
        k: int((outcome == k).sum()) for k in ("complete", "rejected", "pruned", "failed")
    }
    by |= {k: int((outcome == k).sum()) for k in ("running", "waiting", "stale")}
    by["evaluated"] = by["complete"] + by["pruned"] + by["failed"]
    feasible = (
        frame["feasible"].astype(bool) if "feasible" in frame else pd.Series(False, outcome.index)
    )
    by["infeasible"] = int(((outcome == "complete") & ~feasible).sum())
    budgets: dict[str, int] = {}
    if "rejected_budget" in frame:
        for name in frame.loc[outcome == "rejected", "rejected_budget"]:
            key = name if isinstance(name, str) and name else "?"  # a record without its budget
            budgets[key] = budgets.get(key, 0) + 1
    by["by_budget"] = budgets
    return by


def _kv_table(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def _summary(settings: ReportSettings, counts: dict[str, Any]) -> str:
    what = settings.what
    if settings.task_options:
        what += " " + json.dumps(settings.task_options, sort_keys=True)
    objectives = ", ".join(
        f"{settings.metric_label if name == 'metric' else name} ({d})"
        for name, d in zip(settings.objectives, settings.directions, strict=True)
    )
    budgets = ", ".join(f"{k} ≤ {_limit_text(v)}" for k, v in settings.budgets.items())
    target = f" of {settings.trials}" if settings.trials is not None else ""
    by_budget = ", ".join(f"{k}: {v}" for k, v in sorted(counts["by_budget"].items()))
    infeasible = counts["infeasible"]
    over = f" ({infeasible} of them over a budget: not candidates)" if infeasible else ""
    rows = [
        ("search", what),
        ("strategy", settings.strategy),
        ("objectives", objectives),
        ("budgets", budgets or "none"),
        ("seed", _text(settings.seed)),
        ("trials evaluated", f"{counts['evaluated']}{target}"),
        ("complete", str(counts["complete"]) + over),
        ("rejected by budget", f"{counts['rejected']}" + (f" ({by_budget})" if by_budget else "")),
        ("pruned (stopped early)", str(counts["pruned"])),
        ("failed", str(counts["failed"])),
        ("running / waiting", f"{counts['running']} / {counts['waiting']}"),
    ]
    if counts["stale"]:
        rows.append(("re-run after a worker died", str(counts["stale"])))
    return _kv_table(rows)


def _best(
    settings: ReportSettings, frame: pd.DataFrame, best: int | None, spec: dict[str, Any] | None
) -> str:
    if best is None:
        finished = int(frame["outcome"].isin(["complete", "rejected", "pruned", "failed"]).sum())
        return (
            "<p>No trial has finished yet.</p>"
            if finished == 0
            else "<p>No feasible trial yet: every finished trial was rejected, pruned or failed.</p>"
        )
    row = frame[frame["number"] == best].iloc[0]
    rows = [("trial", f"#{best}")]
    rows.append((settings.metric_label, _text(row.get("value_metric"))))
    for c in row.index:
        if c.startswith("test_") and not pd.isna(row[c]):
            rows.append((c.replace("_", " ", 1), _text(row[c])))
    if "regret" in row.index:
        rows.append(("regret", _text(row["regret"])))
    cost = ", ".join(
        f"{name} {_cost_text(name, row[f'cost_{name}'])}"
        for name in COST_KEYS
        if not pd.isna(row[f"cost_{name}"])
    )
    rows += [("cost", cost or "–"), ("parameters", _params_text(row))]
    out = _kv_table(rows)
    if spec is not None:
        out += (
            "<p>best_spec.json (retrain with <code>archsmith train --spec best_spec.json</code>):"
            f"</p><pre>{escape(json.dumps(spec, indent=2))}</pre>"
        )
    return out


def _figure(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<figure id="plot-{escape(plot.key)}"><img src="data:image/png;base64,{data}" '
        f'alt="{escape(plot.title)}"><figcaption><b>{escape(plot.title)}.</b> '
        f"{escape(plot.caption)}</figcaption></figure>"
    )


def _table(
    head: Sequence[str], body: Sequence[Sequence[tuple[str, bool]]], marks: Sequence[str]
) -> str:
    """An HTML table; each cell is ``(text, numeric)``, ``marks`` a CSS class per row."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    trs = []
    for cells, mark in zip(body, marks, strict=True):
        tds = "".join(
            f'<td class="num">{escape(t)}</td>' if num else f"<td>{escape(t)}</td>"
            for t, num in cells
        )
        trs.append(f'<tr class="{mark}">{tds}</tr>' if mark else f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(trs)}</tbody></table>"


def _top(
    settings: ReportSettings, frame: pd.DataFrame, front: Sequence[int], best: int | None
) -> str:
    done = frame[(frame["outcome"] == "complete") & frame["feasible"].astype(bool)]
    if done.empty:
        return "<p>None yet.</p>"
    on_front = set(front)
    done = done.assign(_front=done["number"].isin(on_front))
    done = done.sort_values(
        ["_front", "value_metric", "number"],
        ascending=[False, not settings.maximize_metric, True],
    ).head(TOP)
    tests = [c for c in frame.columns if c.startswith("test_")]
    extra = ["regret"] if "regret" in frame else []
    costs = [n for n in COST_KEYS if frame[f"cost_{n}"].notna().any()]
    head = ["#", settings.metric_label, *(t.replace("_", " ", 1) for t in tests), *extra]
    head += [*costs, "parameters"]
    body = []
    for _, row in done.iterrows():
        cells = [(f"#{int(row['number'])}", True), (_text(row["value_metric"]), True)]
        cells += [(_text(row[c]), True) for c in [*tests, *extra]]
        cells += [(_cost_text(n, row[f"cost_{n}"]), True) for n in costs]
        cells.append((_params_text(row), False))
        body.append(cells)
    if settings.multi_objective:
        marks = ["front" if f else "" for f in done["_front"]]
        note = "Highlighted: the Pareto front (best metric first); then the rest by metric."
    else:
        marks = ["front" if n == best else "" for n in done["number"]]
        note = "Highlighted: the best design; feasible trials by metric."
    note = f'<p class="note">{escape(note)}</p>'

    return note + _table(head, body, marks)


def _running(frame: pd.DataFrame) -> str:
    live = frame[frame["outcome"].isin(["running", "waiting"])]
    if live.empty:
        return ""
    body = [
        [(f"#{int(r['number'])}", True), (str(r["outcome"]), False), (_params_text(r), False)]
        for _, r in live.iterrows()
    ]
    return "<h2>Running now</h2>" + _table(
        ["#", "state", "parameters so far"], body, [""] * len(body)
    )


def _failed(frame: pd.DataFrame) -> str:
    bad = frame[frame["outcome"] == "failed"]
    if bad.empty:
        return ""
    body = [
        [(f"#{int(r['number'])}", True), (_text(r.get("error")), False), (_params_text(r), False)]
        for _, r in bad.iterrows()
    ]
    return "<h2>Failed trials</h2>" + _table(["#", "error", "parameters"], body, [""] * len(body))


def render_page(
    settings: ReportSettings,
    frame: pd.DataFrame,
    *,
    best: int | None,
    front: Sequence[int],
    spec: dict[str, Any] | None,
    plots: Sequence[Plot],
    built_at: str,
) -> str:
    """The whole page (module docstring); ``best``, ``front``: trial numbers."""
    counts = counts_of(frame)
    title = f"archsmith search: {settings.what}"
    running = counts["running"] + counts["waiting"]
    snapshot = (
        f" {running} trial(s) still running or queued: this page is a snapshot; "
        "<code>archsmith report RUN_DIR</code> rebuilds it."
        if running
        else ""
    )
    sections = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="note">Built {escape(built_at)} from the study\'s storage.{snapshot}</p>',
        "<h2>Summary</h2>",
        _summary(settings, counts),
        "<h2>Best design</h2>",
        _best(settings, frame, best, spec),
        "<h2>Plots</h2>",
        *(_figure(p) for p in plots),
        f"<h2>Top trials (up to {TOP})</h2>",
        _top(settings, frame, front, best),
        _running(frame),
        _failed(frame),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{escape(CSP)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        "<body>\n<main>\n" + "\n".join(s for s in sections if s) + "\n</main>\n</body>\n</html>\n"
    )
