"""A PNG of per-layer activation statistics (from :func:`archsmith.selfnorm.diagnose`)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from archsmith.errors import ArchsmithError
from archsmith.io import atomic_write
from archsmith.selfnorm.diagnose import LayerStats

__all__ = ["plot_layer_stats"]


def plot_layer_stats(
    stats: Sequence[LayerStats], path: str | os.PathLike[str], *, title: str = ""
) -> None:
    """Plot mean and variance against depth, with the SNN fixed point (0, 1) marked, to ``path``.

    Written atomically; an unwritable path raises :class:`ArchsmithError`.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display: render to a file only
    import matplotlib.pyplot as plt

    depth = [s.index + 1 for s in stats]
    fig, (ax_mean, ax_var) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    ax_mean.plot(depth, [s.mean for s in stats], marker=".")
    ax_mean.axhline(0.0, color="grey", lw=0.8, ls="--")
    ax_mean.set(xlabel="layer", ylabel="activation mean", title="mean")
    ax_var.plot(depth, [s.var for s in stats], marker=".", color="tab:orange")
    ax_var.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax_var.set(xlabel="layer", ylabel="activation variance", title="variance", yscale="log")
    if title:
        fig.suptitle(title)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    except OSError as err:
        raise ArchsmithError(f"--png: cannot write {str(path)!r}: {err.strerror or err}") from None
    finally:
        plt.close(fig)
