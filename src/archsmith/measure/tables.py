"""Benchmark output: a plain-text table of rows and an atomically written JSON file."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from archsmith.errors import ArchsmithError
from archsmith.io import atomic_write_json

__all__ = ["check_json_path", "format_rows_table", "format_value", "jsonable", "write_json"]


#: Columns that hold names, not numbers (left-aligned in tables).
_TEXT_COLUMNS = ("model", "task", "impl", "op", "dataset", "note", "missing", "method")


def format_value(value: Any) -> str:
    """One table cell: None -> ``"-"``, floats compact (4 significant figures), rest ``str``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def format_rows_table(rows: Sequence[Mapping[str, Any]], title: str) -> str:
    """Render ``rows`` as a plain-text table (no colour codes, no trailing newline).

    Columns are the union of the rows' keys in first-seen order; a key a row lacks is an empty
    cell, a None value is ``"-"``.
    """
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    table = Table(title=title, min_width=len(title) + 4)  # a narrow table must not wrap its title
    cells = [[format_value(row[c]) if c in row else "" for c in columns] for row in rows]
    for col in columns:
        # numbers right-aligned; never wrap a cell: a wide table beats a broken number
        table.add_column(col, no_wrap=True, justify="left" if col in _TEXT_COLUMNS else "right")
    for line in cells:
        table.add_row(*line)
    buf = io.StringIO()
    widths = [max([len(c), *(len(line[i]) for line in cells)]) for i, c in enumerate(columns)]
    width = max(80, len(title), sum(w + 3 for w in widths) + 4)
    Console(file=buf, width=width, color_system=None, highlight=False).print(table)
    return buf.getvalue().rstrip("\n")


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy / torch scalars unwrapped and NaN or infinity as None (strict JSON)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", None) == 0:
        obj = obj.item()  # numpy scalar or 0-d tensor
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def check_json_path(path: str | os.PathLike[str]) -> Path:
    """Fail early, in one line, if ``path`` cannot be a JSON output file (before a long run)."""
    target = Path(path)
    if str(path).endswith(("/", os.sep)):  # Path() would drop the slash and write a file
        raise ArchsmithError(f"cannot write JSON to {str(path)!r}: it names a directory")
    if target.is_dir():
        raise ArchsmithError(f"cannot write JSON to {str(path)!r}: it is a directory")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ArchsmithError(
                    f"cannot write JSON to {str(path)!r}: {str(parent)!r} is a file"
                )
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ArchsmithError(
                    f"cannot write JSON to {str(path)!r}: {str(parent)!r} is not writable"
                )
            break
    return target


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``jsonable(obj)`` to ``path`` atomically (parents created); errors in one line."""
    check_json_path(path)
    try:
        return atomic_write_json(path, jsonable(obj))
    except OSError as err:
        reason = err.strerror or str(err)
        raise ArchsmithError(f"cannot write JSON to {str(path)!r}: {reason}") from None
