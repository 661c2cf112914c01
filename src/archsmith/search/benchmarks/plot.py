"""A PNG of regret curves: median regret (and its quartiles) against the number of evaluations,
one panel per benchmark, one line per strategy."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from archsmith.errors import ArchsmithError
from archsmith.io import atomic_write

__all__ = ["plot_regret_curves"]


def plot_regret_curves(
    curves: Mapping[str, Mapping[str, np.ndarray]],
    path: str | os.PathLike[str],
    *,
    mark_at: int | None = None,
    title: str = "",
) -> None:
    """Plot ``curves[benchmark][strategy]`` (``[repeats, evaluations]`` regrets) to ``path``.

    Each line is the median over repeats after each evaluation, the band its interquartile
    range. The regret axis is symmetric-log (linear below 0.01 points), since the median regret
    of a good strategy reaches 0. ``mark_at`` draws a vertical line at that evaluation count.
    Written atomically; an unwritable path raises :class:`ArchsmithError`.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display: render to a file only
    import matplotlib.pyplot as plt

    names = list(curves)
    fig, axes = plt.subplots(
        1, max(1, len(names)), figsize=(5.0 * max(1, len(names)), 4.2), constrained_layout=True
    )
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, names, strict=False):
        for strategy, regrets in curves[name].items():
            regrets = np.asarray(regrets, dtype=float)
            x = np.arange(1, regrets.shape[1] + 1)
            q25, median, q75 = np.percentile(regrets, [25, 50, 75], axis=0)
            (line,) = ax.plot(x, median, label=f"{strategy} ({regrets.shape[0]} runs)")
            ax.fill_between(x, q25, q75, color=line.get_color(), alpha=0.15, linewidth=0)
        if mark_at is not None:
            ax.axvline(mark_at, color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=0.01)
        ax.set_ylim(bottom=0)  # the incumbent's regret is never negative
        ax.set(xlabel="evaluations", ylabel="regret (validation accuracy points)", title=name)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    except OSError as err:
        raise ArchsmithError(f"png: cannot write {str(path)!r}: {err.strerror or err}") from None
    finally:
        plt.close(fig)
