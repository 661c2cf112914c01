"""``csv:PATH``: a user's CSV table as a classification or regression task.

The file is UTF-8 (a byte-order mark is allowed), comma-separated, with a header row naming the
columns. ``target=COLUMN`` names the column to predict; every other column is a feature:
numeric columns are used as they are (standardized with train statistics), other columns are
one-hot encoded when they look like categories (at most 50 distinct values, and fewer than half
as many as rows).

Survival data instead names two columns, ``duration=COLUMN`` (the observed time, a number
``>= 0``: time to the event, or to censoring) and ``event=COLUMN`` (``1`` the event was observed,
``0`` censored; ``true``/``false`` and ``yes``/``no``, in any case, are accepted too). The task is
then of kind ``survival``, built like ``breast-cancer-survival``: ``y`` ``[N, 2]`` = (time, event),
a split stratified on the event, the Cox loss and the ``c_index`` metric. ``target`` and
``duration``/``event`` are exclusive, and ``kind`` does not apply to survival data.

Row numbers in error messages are 1-based and count the header as row 1; blank lines count too,
so for files without line breaks inside quoted fields the row number is the line number an
editor shows. The file is parsed with the :mod:`csv` module (not pandas), so that every problem
can be reported with its row and column in one line.
"""

from __future__ import annotations

import csv
from typing import Literal

import numpy as np

from archsmith.errors import ArchsmithError, did_you_mean
from archsmith.tasks.base import Task
from archsmith.tasks.registry import register_user_loader
from archsmith.tasks.supervised import MIN_ROWS, infer_kind, supervised_task
from archsmith.tasks.survival_data import survival_task
from archsmith.tasks.tabular import encode_features

__all__ = ["EVENT_VALUES", "MAX_CATEGORIES", "load_csv_task", "read_csv_rows"]

#: Most distinct values a non-numeric feature column may have to be one-hot encoded.
MAX_CATEGORIES = 50
# Cells read as missing (compared lower-case), as pandas does by default.
_MISSING = frozenset({"", "na", "n/a", "nan", "-nan", "null", "none", "#n/a", "<na>"})
#: Cells of an event column (compared lower-case, besides the numbers 0 and 1) and their value.
EVENT_VALUES = {"true": 1, "yes": 1, "false": 0, "no": 0}


def read_csv_rows(path: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Parse ``path`` into its header, its data rows and their row numbers.

    Returns:
        ``(header, rows, row_numbers)``: cells are stripped of surrounding spaces; blank lines
        are skipped (but keep their row numbers); every row has as many cells as the header.
    """
    shown = repr(path)
    records: list[tuple[int, list[str]]] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            for number, record in enumerate(reader, start=1):
                if len(record) <= 1 and not "".join(record).strip():
                    continue  # a blank line
                records.append((number, [cell.strip() for cell in record]))
    except OSError as err:
        raise ArchsmithError(f"cannot read {shown}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise ArchsmithError(
            f"cannot read {shown}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset "
            f"{err.start})"
        ) from None
    except csv.Error as err:
        raise ArchsmithError(f"cannot parse {shown} near line {reader.line_num}: {err}") from None
    if not records:
        raise ArchsmithError(f"{shown} is empty")
    (_, header), body = records[0], records[1:]
    for j, col in enumerate(header, start=1):
        if not col:
            raise ArchsmithError(f"{shown} column {j} has no name in the header")
        first = header.index(col) + 1
        if first != j:
            raise ArchsmithError(f"{shown} has two columns named {col!r} (columns {first} and {j})")
    if not body:
        raise ArchsmithError(f"{shown} has a header but no data rows")
    for number, record in body:
        if len(record) != len(header):
            fields = "field" if len(record) == 1 else "fields"
            raise ArchsmithError(
                f"{shown} row {number} has {len(record)} {fields}, expected {len(header)}"
            )
    return header, [r for _, r in body], [n for n, _ in body]


def _column(shown: str, name: str, cells: list[str], numbers: list[int]) -> tuple[np.ndarray, bool]:
    """One column as ``(values, is_numeric)``: float64 if every cell parses, else the strings."""
    for cell, number in zip(cells, numbers, strict=True):
        if cell.lower() in _MISSING:
            raise ArchsmithError(f"{shown} column {name!r} has a missing value at row {number}")
    try:
        values = np.array([float(c) for c in cells], dtype=np.float64)
    except ValueError:
        return np.array(cells, dtype=object), False
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise ArchsmithError(
            f"{shown} column {name!r} has a non-finite value {cells[i]!r} at row {numbers[i]}"
        )
    return values, True


def _check_category(shown: str, name: str, values: np.ndarray, numbers: list[int]) -> None:
    """Raise unless the non-numeric feature column ``values`` can be one-hot encoded."""
    n, distinct = len(values), len(set(values.tolist()))
    if distinct <= MAX_CATEGORIES and distinct < n / 2:
        return
    parses = [_is_number(v) for v in values]
    if sum(parses) > n / 2:  # mostly numbers: point at the stray cell instead
        i = parses.index(False)
        raise ArchsmithError(
            f"{shown} column {name!r} has a non-numeric value {values[i]!r} at row {numbers[i]}"
        )
    raise ArchsmithError(
        f"{shown} column {name!r} is not numeric and has {distinct} distinct values in {n} rows: "
        "cannot encode it as a category"
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _listing(names: list[str], limit: int = 20) -> str:
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _find_column(shown: str, what: str, name: str, header: list[str]) -> str:
    if name not in header:
        raise ArchsmithError(
            f"{what} column {name!r} not found in {shown}{did_you_mean(name, header)} "
            f"(columns: {_listing(header)})"
        )
    return name


def _durations(
    shown: str, name: str, values: np.ndarray, cells: list[str], numbers: list[int]
) -> np.ndarray:
    """The duration column as float64 ``[N]``: numbers (finite, checked before) ``>= 0``."""
    what = f"{shown} duration column {name!r}"
    if values.dtype == object:
        i = next(i for i, v in enumerate(values) if not _is_number(v))
        raise ArchsmithError(
            f"{what} has a non-numeric value {values[i]!r} at row {numbers[i]}: durations must "
            "be numbers"
        )
    negative = np.flatnonzero(values < 0)
    if negative.size:
        i = int(negative[0])
        raise ArchsmithError(
            f"{what} has a negative value {cells[i]!r} at row {numbers[i]}: durations must be >= 0"
        )
    return values


def _events(shown: str, name: str, cells: list[str], numbers: list[int]) -> np.ndarray:
    """The event column as int64 ``[N]`` of 0/1 (see :data:`EVENT_VALUES` for the words)."""
    out = np.empty(len(cells), dtype=np.int64)
    for i, (cell, number) in enumerate(zip(cells, numbers, strict=True)):
        value = EVENT_VALUES.get(cell.lower())
        if value is None and _is_number(cell) and float(cell) in (0.0, 1.0):
            value = int(float(cell))
        if value is None:
            raise ArchsmithError(
                f"{shown} event column {name!r} has a value {cell!r} at row {number}: events must "
                "be 1 (observed) or 0 (censored), or true/false, yes/no"
            )
        out[i] = value
    return out


@register_user_loader(
    "csv",
    "a CSV file with a header row; target=COLUMN names the target, or duration=COLUMN and "
    "event=COLUMN make a survival task",
)
def load_csv_task(
    path: str,
    *,
    target: str | int | None = None,
    duration: str | int | None = None,
    event: str | int | None = None,
    kind: Literal["classification", "regression"] | None = None,
    split_seed: int = 0,
    standardize: bool = True,
    aux_label: str | int | None = None,
    aux_weight: float = 1.0,
) -> Task:
    """The task ``csv:PATH``: predict column ``target`` from the other columns, or the survival
    outcome ``(duration, event)``.

    Args:
        path: the CSV file.
        target: the column to predict (a classification or regression task).
        duration: the survival time column (a survival task, with ``event``; not with
            ``target``): numbers ``>= 0``.
        event: the event indicator column (with ``duration``): ``1``/``0`` (also ``true``/
            ``false``, ``yes``/``no``, in any case) for observed/censored; needs one event or more.
        kind: ``"classification"`` or ``"regression"``; inferred when not given: a non-numeric
            target, or an integer-valued one with at most 20 distinct values, is
            classification, anything else regression. Not with ``duration``/``event``.
        split_seed: seed of the 70/15/15 split (stratified for classification, and on the event
            for survival).
        standardize: standardize numeric features with train statistics.
        aux_label: survival data only: a column taken out of the features and learned as an
            auxiliary class label by a second head, jointly with the risk (SeNMo);
            ``aux_weight`` weights its cross-entropy in the loss.
    """
    shown = repr(path)
    header, rows, numbers = read_csv_rows(path)
    survival = duration is not None or event is not None
    if target is not None and survival:
        raise ArchsmithError(
            "csv task takes either target=COLUMN or duration=COLUMN with event=COLUMN "
            "(survival), not both"
        )
    if target is None and not survival:
        raise ArchsmithError(
            f"csv task needs target=COLUMN (--target on the command line), or duration=COLUMN "
            f"and event=COLUMN for survival data (--duration, --event); columns of {shown}: "
            f"{_listing(header)}"
        )
    if aux_label is not None and not survival:
        raise ArchsmithError(
            "aux_label= applies to survival data (duration= and event=): with target= the "
            "target itself is the label"
        )
    if survival:
        if duration is None or event is None:
            given, missing = ("duration", "event") if event is None else ("event", "duration")
            raise ArchsmithError(
                f"csv survival task needs {missing}=COLUMN (--{missing}) as well as {given}=; "
                f"columns of {shown}: {_listing(header)}"
            )
        if kind is not None:
            raise ArchsmithError(
                f"csv task with duration= and event= is a survival task: kind={kind!r} does not "
                "apply (leave it out)"
            )
        outcome = [
            _find_column(shown, "duration", str(duration), header),
            _find_column(shown, "event", str(event), header),
        ]
        if outcome[0] == outcome[1]:
            raise ArchsmithError(
                f"duration and event must be two different columns, both are {outcome[0]!r}"
            )
        if aux_label is not None:
            outcome.append(_find_column(shown, "aux_label", str(aux_label), header))
            if outcome[2] in outcome[:2]:
                raise ArchsmithError(
                    f"aux_label must be a column other than the duration and the event, got "
                    f"{outcome[2]!r}"
                )
        if len(header) < len(outcome) + 1:
            raise ArchsmithError(
                f"{shown} has no feature columns besides the outcome columns "
                f"{', '.join(map(repr, outcome))}"
            )
    else:
        outcome = [_find_column(shown, "target", str(target), header)]
        if len(header) < 2:
            raise ArchsmithError(
                f"{shown} has no feature columns besides the target {outcome[0]!r}"
            )
    if len(rows) < MIN_ROWS:
        raise ArchsmithError(
            f"{shown} has {len(rows)} data rows: need at least {MIN_ROWS} to split into "
            "train/val/test"
        )

    columns = {
        name: _column(shown, name, [r[j] for r in rows], numbers) for j, name in enumerate(header)
    }
    if survival:
        cells = {name: [r[header.index(name)] for r in rows] for name in outcome}
        time = _durations(shown, outcome[0], columns.pop(outcome[0])[0], cells[outcome[0]], numbers)
        columns.pop(outcome[1])
        events = _events(shown, outcome[1], cells[outcome[1]], numbers)
        labels = columns.pop(outcome[2])[0].astype(str) if aux_label is not None else None
        x, names, numeric_mask = _features(shown, columns, numbers)
        return survival_task(
            f"csv:{path}",
            x,
            time,
            events,
            split_seed=split_seed,
            standardize=standardize,
            numeric_features=numeric_mask,
            feature_names=names,
            event_name=f"{shown} event column {outcome[1]!r}",
            aux_labels=labels,
            aux_weight=aux_weight,
        )

    y, y_numeric = columns.pop(outcome[0])
    if kind is None:
        kind = infer_kind(y)
    elif kind == "regression" and not y_numeric:
        i = next(i for i, v in enumerate(y) if not _is_number(v))
        raise ArchsmithError(
            f"{shown} target column {outcome[0]!r} is not numeric (value {y[i]!r} at row "
            f"{numbers[i]}): cannot use it for regression"
        )
    x, names, numeric_mask = _features(shown, columns, numbers)
    return supervised_task(
        f"csv:{path}",
        x,
        y,
        kind=kind,
        input_kind="vector",
        split_seed=split_seed,
        standardize=standardize,
        numeric_features=numeric_mask,
        feature_names=names,
        target_name=f"{shown} target column {outcome[0]!r}",
    )


def _features(
    shown: str, columns: dict[str, tuple[np.ndarray, bool]], numbers: list[int]
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """The feature columns encoded (see :func:`~archsmith.tasks.tabular.encode_features`)."""
    for name, (values, numeric) in columns.items():
        if not numeric:
            _check_category(shown, name, values, numbers)

    import pandas as pd  # late: keeps `import archsmith.tasks` light

    frame = pd.DataFrame({name: values for name, (values, _) in columns.items()})
    return encode_features(frame)
