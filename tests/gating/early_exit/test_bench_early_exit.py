"""The ``early-exit`` bench case and its plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archsmith.bench.early_exit import png_path
from archsmith.cli import main
from archsmith.gating.early_exit.plot import plot_exit_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_writes_a_png(tmp_path: Path) -> None:
    rows = [
        {"series": s, "mean_flops": f, "accuracy": a, "ece": e}
        for s, f, a, e in [
            ("joint λ=0.1", 1e4, 0.9, 0.05),
            ("joint λ=0.1", 3e4, 0.95, 0.03),
            ("confidence", 2e4, 0.92, 0.06),
        ]
    ]
    path = tmp_path / "sub" / "curve.png"
    plot_exit_curves(rows, path, title="t")
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert png_path(tmp_path / "rows.json") == tmp_path / "rows.png"


@pytest.mark.slow
def test_quick_run_writes_rows_and_png(tmp_path: Path) -> None:
    out = tmp_path / "ee.json"
    assert main(["bench", "early-exit", "--quick", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    gates = {r["gate"] for r in rows}
    assert gates == {"joint", "confidence"}
    for r in rows:
        assert 0 <= r["ece"] <= 1 and 0 < r["flops_frac"] <= 1 + 1e-9
    full = [r for r in rows if r["threshold"] > 1]
    assert all(r["flops_frac"] == pytest.approx(1.0) for r in full)
    assert png_path(out).read_bytes()[:8] == PNG_MAGIC
