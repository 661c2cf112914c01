"""A PNG of early-exit trade-off curves: accuracy and calibration error against mean FLOPs."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from archsmith.errors import ArchsmithError
from archsmith.io import atomic_write

__all__ = ["plot_exit_curves"]


def plot_exit_curves(
    rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], *, title: str = ""
) -> None:
    """Plot accuracy and ECE against mean FLOPs per sample, one line per ``series`` of ``rows``.

    Each row needs ``series``, ``mean_flops``, ``accuracy`` and ``ece`` (the rows of
    ``archsmith bench early-exit``). Written atomically; an unwritable path raises
    :class:`ArchsmithError`.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display: render to a file only
    import matplotlib.pyplot as plt

    series: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        series.setdefault(str(row["series"]), []).append(row)
    fig, (ax_acc, ax_ece) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for name, points in series.items():
        points = sorted(points, key=lambda r: float(r["mean_flops"]))
        flops = [float(r["mean_flops"]) / 1e3 for r in points]
        style = "--" if name.startswith("confidence") else "-"
        ax_acc.plot(flops, [float(r["accuracy"]) for r in points], style, marker=".", label=name)
        ax_ece.plot(flops, [float(r["ece"]) for r in points], style, marker=".", label=name)
    ax_acc.set(xlabel="mean FLOPs per sample (k)", ylabel="test accuracy", title="accuracy")
    ax_ece.set(xlabel="mean FLOPs per sample (k)", ylabel="ECE (15 bins)", title="calibration")
    ax_acc.legend(fontsize=8)
    for ax in (ax_acc, ax_ece):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    except OSError as err:
        raise ArchsmithError(f"png: cannot write {str(path)!r}: {err.strerror or err}") from None
    finally:
        plt.close(fig)
