"""The report's plots as PNG bytes, drawn with matplotlib's Agg canvas from the trials table.

Figures are built with :class:`matplotlib.figure.Figure` and rendered by ``FigureCanvasAgg``
directly, never through ``pyplot``: no global figure registry and no GUI backend, so a report
can be built in any process (a worker, a server without a display) and leaks no figures.

Every plot exists for every study: one with nothing to show yet (no feasible trial) says so in
the figure, so the page always has the same sections, also while a search is running.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from archsmith.search.records import COST_KEYS
from archsmith.search.report.best import nondominated
from archsmith.search.report.settings import ReportSettings

__all__ = [
    "Plot",
    "all_plots",
    "best_so_far_png",
    "costs_png",
    "pareto_png",
    "rejections_png",
]

_GREY, _FRONT, _BEST, _REJECT, _PRUNE, _FAIL = (
    "#9aa5b1",
    "#d1495b",
    "#edae49",
    "#e07a1f",
    "#00798c",
    "#7a1f3d",
)
_DPI = 100


@dataclass(frozen=True)
class Plot:
    """One figure of the report: an id for the page, a title, a caption and the PNG."""

    key: str
    title: str
    caption: str
    png: bytes


def _figure(width: float = 8.0, height: float = 4.6) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas: Agg, whatever the default backend
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()


def _nothing(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#555")
    ax.set_xticks([])
    ax.set_yticks([])


def _cost_label(name: str) -> str:
    unit = COST_KEYS.get(name)
    return f"{name} ({unit})" if unit else name


def _spans_decades(values: pd.Series) -> bool:
    """Whether positive ``values`` span at least two decades: then a log axis reads better."""
    v = values.dropna()
    return bool(len(v) >= 2 and (v > 0).all() and v.max() / v.min() >= 100)


def _done(frame: pd.DataFrame) -> pd.DataFrame:
    """The feasible complete trials with a metric."""
    if frame.empty or "value_metric" not in frame:
        return frame.iloc[0:0]
    ok = (frame["outcome"] == "complete") & frame["feasible"].astype(bool)
    return frame[ok & frame["value_metric"].notna()]


def _front_2d(x: Sequence[float], y: Sequence[float], maximize_y: bool) -> list[int]:
    """Indices on the trade-off front of a cost ``x`` (lower is better) and the metric ``y``."""
    sign = 1.0 if maximize_y else -1.0
    return nondominated([(-a, sign * b) for a, b in zip(x, y, strict=True)])


def pareto_png(
    frame: pd.DataFrame, settings: ReportSettings, front: Sequence[int], best: int | None
) -> bytes:
    """The metric against the first cost objective, every feasible trial, the front highlighted
    and the best design starred (``front``, ``best``: trial numbers). A single-objective search
    has no front of its own: the metric is drawn against the parameter count and the trade-off
    front of those two is shown.
    """
    fig = _figure()
    ax = fig.add_subplot()
    if settings.multi_objective:
        cost = settings.cost_objectives[0]
        column = f"value_{cost}"
        ax.set_title(f"Pareto front: {settings.metric_label} against {cost}")
    else:
        cost, column = "params", "cost_params"
        ax.set_title(f"{settings.metric_label} against params (trade-off front of the two)")
    done = _done(frame)
    done = done[done[column].notna()] if column in done else done.iloc[0:0]
    if done.empty:
        _nothing(ax, "no feasible trial has finished yet")
        return _png(fig)
    x = done[column].astype(float).tolist()
    y = done["value_metric"].astype(float).tolist()
    numbers = done["number"].astype(int).tolist()
    ax.scatter(x, y, s=22, color=_GREY, label="feasible trials", zorder=2)
    line = sorted(_front_2d(x, y, settings.maximize_metric), key=lambda i: (x[i], -y[i]))
    marked = (
        [i for i, n in enumerate(numbers) if n in set(front)] if settings.multi_objective else line
    )
    ax.step(
        [x[i] for i in line], [y[i] for i in line], where="post", color=_FRONT, lw=1.2, zorder=3
    )
    ax.scatter(
        [x[i] for i in marked],
        [y[i] for i in marked],
        s=46,
        color=_FRONT,
        label="Pareto front" if settings.multi_objective else "trade-off front",
        zorder=4,
    )
    if best in numbers:
        i = numbers.index(best)
        ax.scatter(
            [x[i]], [y[i]], s=160, marker="*", color=_BEST, edgecolors="black", linewidths=0.6,
            label="best design", zorder=5,
        )  # fmt: skip
    for i in marked:
        ax.annotate(
            f"#{numbers[i]}", (x[i], y[i]), textcoords="offset points", xytext=(4, 4), fontsize=8
        )
    if _spans_decades(done[column]):
        ax.set_xscale("log")
    ax.set_xlabel(_cost_label(cost))
    ax.set_ylabel(settings.metric_label)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    return _png(fig)


def _fit_x(ax: Axes, xs: pd.Series, *, log: bool) -> None:
    """Show every x in ``xs``: the rejected crosses sit in axes coordinates, so matplotlib's
    autoscaling (which only sees data-coordinate artists) would leave them out."""
    lo, hi = float(xs.min()), float(xs.max())
    if log:
        ax.set_xscale("log")
        ax.set_xlim(lo / 1.5, hi * 1.5)
        return
    pad = 0.06 * (hi - lo) if hi > lo else max(abs(hi) * 0.1, 1e-9)
    ax.set_xlim(lo - pad, hi + pad)


def _measured_costs(frame: pd.DataFrame) -> list[str]:
    return [
        name
        for name in COST_KEYS
        if f"cost_{name}" in frame and frame[f"cost_{name}"].notna().any()
    ]


def costs_png(frame: pd.DataFrame, settings: ReportSettings, best: int | None) -> bytes:
    """The metric against each measured cost (log axis where a cost spans decades), the best
    trial starred, budget limits dashed, and rejected candidates (which have a cost but no
    metric) as crosses along the bottom."""
    done = _done(frame)
    costs = [c for c in _measured_costs(frame) if f"cost_{c}" in done]
    if not costs or done.empty:
        fig = _figure()
        _nothing(fig.add_subplot(), "no feasible trial has finished yet")
        fig.suptitle(f"{settings.metric_label} against each cost")
        return _png(fig)
    cols = 1 if len(costs) == 1 else 2
    rows = math.ceil(len(costs) / cols)
    fig = _figure(8.0, 3.6 * rows + 0.6)
    fig.suptitle(f"{settings.metric_label} against each cost")
    rejected = frame[frame["outcome"] == "rejected"]
    for k, name in enumerate(costs):
        ax = fig.add_subplot(rows, cols, k + 1)
        column = f"cost_{name}"
        have = done[done[column].notna()]
        ax.scatter(have[column], have["value_metric"], s=18, color=_GREY, label="feasible")
        top = have[have["number"] == best] if best is not None else have.iloc[0:0]
        if not top.empty:
            ax.scatter(
                top[column], top["value_metric"], s=140, marker="*", color=_BEST, label="best",
                edgecolors="black", linewidths=0.6, zorder=4,
            )  # fmt: skip
        out = rejected[column].dropna() if column in rejected else pd.Series(dtype=float)
        if not out.empty:
            ax.scatter(
                out, [0.03] * len(out), marker="x", s=20, color=_REJECT, label="rejected",
                transform=ax.get_xaxis_transform(), clip_on=False,
            )  # fmt: skip
        if name in settings.budgets:
            ax.axvline(settings.budgets[name], color=_REJECT, ls="--", lw=1, label="budget")
        xs = pd.concat([have[column], out]).astype(float)
        if name in settings.budgets:
            xs = pd.concat([xs, pd.Series([settings.budgets[name]])])
        _fit_x(ax, xs, log=_spans_decades(xs))
        ax.set_xlabel(_cost_label(name), fontsize=9)
        ax.set_ylabel(settings.metric_label, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    return _png(fig)


def best_so_far_png(frame: pd.DataFrame, settings: ReportSettings) -> bytes:
    """Each feasible trial's metric by trial number and the best metric so far (a step)."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.set_title(f"best {settings.metric_label} so far (feasible trials)")
    done = _done(frame).sort_values("number")
    if done.empty:
        _nothing(ax, "no feasible trial has finished yet")
        return _png(fig)
    numbers = done["number"].astype(int)
    metric = done["value_metric"].astype(float)
    best = metric.cummax() if settings.maximize_metric else metric.cummin()
    ax.scatter(numbers, metric, s=18, color=_GREY, label="trial", zorder=2)
    last = int(frame["number"].max())
    ax.step(
        [*numbers.tolist(), last],
        [*best.tolist(), float(best.iloc[-1])],
        where="post",
        color=_FRONT,
        lw=1.6,
        label="best so far",
        zorder=3,
    )
    ax.set_xlabel("trial number")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(settings.metric_label)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    return _png(fig)


def rejections_png(frame: pd.DataFrame, settings: ReportSettings) -> bytes:
    """Candidates rejected by each budget (every configured budget, also at zero), then those
    stopped early (pruned) and failed."""
    fig = _figure(8.0, 3.8)
    ax = fig.add_subplot()
    ax.set_title("candidates not evaluated to the end")
    budgets = list(settings.budgets)
    counts: dict[str, int] = dict.fromkeys(budgets, 0)
    if "rejected_budget" in frame:
        for name in frame.loc[frame["outcome"] == "rejected", "rejected_budget"]:
            key = str(name) if isinstance(name, str) and name else "?"
            counts[key] = counts.get(key, 0) + 1
    labels = [f"over {name}" for name in counts] + ["pruned", "failed"]
    outcome = frame["outcome"] if "outcome" in frame else pd.Series(dtype=str)
    heights = [*counts.values(), int((outcome == "pruned").sum()), int((outcome == "failed").sum())]
    colors = [_REJECT] * len(counts) + [_PRUNE, _FAIL]
    bars = ax.bar(labels, heights, color=colors)
    ax.bar_label(bars, padding=2)
    ax.set_ylabel("trials")
    ax.set_ylim(0, max(1, *heights) * 1.18)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def all_plots(
    frame: pd.DataFrame, settings: ReportSettings, front: Sequence[int], best: int | None
) -> list[Plot]:
    """Every plot of the report, in page order (``front``, ``best``: trial numbers)."""
    front_title = "Pareto front" if settings.multi_objective else "Metric against parameters"
    return [
        Plot(
            "pareto",
            front_title,
            "Every feasible trial; the front is highlighted and labelled with trial numbers, the "
            "best design starred.",
            pareto_png(frame, settings, front, best),
        ),
        Plot(
            "costs",
            "Metric against each cost",
            "Dashed: the budget. Crosses: candidates rejected before training (no metric).",
            costs_png(frame, settings, best),
        ),
        Plot(
            "best-so-far",
            "Best so far",
            "The best metric among feasible trials up to each trial number.",
            best_so_far_png(frame, settings),
        ),
        Plot(
            "rejections",
            "Budget rejections",
            "Candidates over a budget (never trained), stopped early by the pruner, or failed.",
            rejections_png(frame, settings),
        ),
    ]
