"""csv:PATH user data: encoding, kind inference, original-unit metrics, one-line errors."""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score

from archsmith.errors import ArchsmithError
from archsmith.tasks import get_task

CITIES = ("paris", "oslo", "rome")


def _write(path: Path, header: list[str], rows: list[list[object]]) -> str:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _mixed(tmp_path: Path, n: int = 40) -> str:
    """id, age (float), city (3 categories), size (int), label (a/b), price (float)."""
    rows = [
        [i, 20 + 0.5 * i, CITIES[i % 3], i % 7, "ab"[i % 2], 100.0 + 3.5 * i + (i % 4)]
        for i in range(n)
    ]
    return _write(tmp_path / "mixed.csv", ["id", "age", "city", "size", "label", "price"], rows)


def test_mixed_numeric_and_categorical_classification(tmp_path: Path) -> None:
    path = _mixed(tmp_path)
    task = get_task(f"csv:{path}", target="label")
    assert task.name == f"csv:{path}"
    assert task.kind == "classification" and task.num_outputs == 2
    assert task.classes == ("a", "b")
    # id, age, size, price numeric + 3 city indicators
    assert task.input.kind == "vector" and task.input.shape == (7,)
    assert task.feature_names is not None
    assert sorted(task.feature_names) == sorted(
        ["id", "age", "size", "price", "city=oslo", "city=paris", "city=rome"]
    )
    sizes = [len(task.split(s)) for s in ("train", "val", "test")]
    assert sum(sizes) == 40 and min(sizes) >= 5
    x = torch.cat([task.split(s).x for s in ("train", "val", "test")])
    city = torch.tensor([n.startswith("city=") for n in task.feature_names])
    assert torch.equal(x[:, city].sum(1), torch.ones(40))  # one indicator per row
    assert set(x[:, city].unique().tolist()) == {0.0, 1.0}
    assert torch.allclose(task.train.x[:, ~city].mean(0), torch.zeros(4), atol=1e-5)
    assert task.train.y.dtype == torch.int64 and set(task.train.y.tolist()) == {0, 1}


def test_labels_map_back_to_the_original_classes(tmp_path: Path) -> None:
    path = _mixed(tmp_path)
    task = get_task(f"csv:{path}", target="label", standardize=False)
    names = task.feature_names
    assert names is not None and task.classes is not None
    ids = task.test.x[:, names.index("id")].round().long().tolist()
    assert [task.classes[int(k)] for k in task.test.y] == ["ab"[i % 2] for i in ids]


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ("label", "classification"),
        ("size", "classification"),
        ("id", "regression"),
        ("age", "regression"),
    ],
)
def test_kind_inference(tmp_path: Path, target: str, kind: str) -> None:
    # size: integers with 7 distinct values; id: integers with 40 distinct; age: fractional
    assert get_task(f"csv:{_mixed(tmp_path)}", target=target).kind == kind


def test_kind_override(tmp_path: Path) -> None:
    path = _mixed(tmp_path)
    reg = get_task(f"csv:{path}", target="size", kind="regression")
    assert reg.kind == "regression" and reg.num_outputs == 1 and reg.train.y.dtype == torch.float32
    cls = get_task(f"csv:{path}", target="id", kind="classification")
    assert cls.kind == "classification" and cls.num_outputs == 40
    assert cls.classes == tuple(range(40))
    with pytest.raises(ArchsmithError, match=r"target column 'label' is not numeric.*regression"):
        get_task(f"csv:{path}", target="label", kind="regression")
    with pytest.raises(ArchsmithError, match=r"csv\.kind: must be one of"):
        get_task(f"csv:{path}", target="label", kind="ordinal")


def test_regression_rmse_is_in_original_units(tmp_path: Path) -> None:
    path = _mixed(tmp_path)
    task = get_task(f"csv:{path}", target="price", standardize=False)
    names = task.feature_names
    assert names is not None
    price = {i: 100.0 + 3.5 * i + (i % 4) for i in range(40)}
    train_ids = task.train.x[:, names.index("id")].round().long().tolist()
    test_ids = task.test.x[:, names.index("id")].round().long().tolist()
    train_prices = [price[i] for i in train_ids]
    test_prices = [price[i] for i in test_ids]
    mean, std = statistics.fmean(train_prices), statistics.pstdev(train_prices)
    assert abs(task.train.y.double().mean().item()) < 1e-6  # standardized targets

    # Output 0 predicts the train mean (in standardized units).
    zero = task.metrics(torch.zeros(len(test_ids), 1), task.test.y)
    expected = math.sqrt(statistics.fmean((p - mean) ** 2 for p in test_prices))
    assert abs(zero["rmse"] - expected) < 1e-4 * expected

    # Predictions given in original units, converted by hand.
    pred = [p + (5.0 if k % 2 else -2.0) for k, p in enumerate(test_prices)]
    output = torch.tensor([(p - mean) / std for p in pred])
    m = task.metrics(output, task.test.y)
    rmse = math.sqrt(statistics.fmean((a - b) ** 2 for a, b in zip(pred, test_prices, strict=True)))
    assert abs(m["rmse"] - rmse) < 1e-4 * rmse
    assert abs(m["r2"] - r2_score(test_prices, pred)) < 1e-4
    assert task.metric_names == ("rmse", "r2") and not task.greater_is_better


def test_bad_output_shape_names_the_problem(tmp_path: Path) -> None:
    task = get_task(f"csv:{_mixed(tmp_path)}", target="price")
    with pytest.raises(ArchsmithError, match=r"regression output must have shape"):
        task.loss(torch.zeros(len(task.val), 2), task.val.y)


def _numbered(tmp_path: Path, text: str, name: str = "x.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _rows(n: int = 12, cols: str = "a,b,c") -> list[str]:
    width = len(cols.split(","))
    return [cols] + [",".join(str(i * width + j) for j in range(width)) for i in range(n)]


def _with(lines: list[str], row: int, line: str) -> str:
    """``lines`` with row ``row`` (1-based, header = 1) replaced by ``line``."""
    lines = list(lines)
    lines[row - 1] = line
    return "\n".join(lines) + "\n"


MALFORMED = [
    # (file text, options, expected message fragment)
    ("", {"target": "c"}, r"'.*x\.csv' is empty"),
    ("\n\n  \n", {"target": "c"}, r"is empty"),
    ("a,b,c\n", {"target": "c"}, r"has a header but no data rows"),
    ("\n".join(_rows()) + "\n", {}, r"csv task needs target=COLUMN .*columns of .*: a, b, c"),
    (
        "\n".join(_rows(cols="area,rooms,price")) + "\n",
        {"target": "prce"},
        r"target column 'prce' not found in '.*x\.csv' \(did you mean 'price'.*\?\) "
        r"\(columns: area, rooms, price\)",
    ),
    (_with(_rows(), 7, "1,2,3,4"), {"target": "c"}, r"row 7 has 4 fields, expected 3"),
    (_with(_rows(), 3, "1,2"), {"target": "c"}, r"row 3 has 2 fields, expected 3"),
    (_with(_rows(), 5, "1"), {"target": "c"}, r"row 5 has 1 field, expected 3"),
    (
        _with(_rows(cols="age,b,c"), 12, ",2,3"),
        {"target": "c"},
        r"column 'age' has a missing value at row 12",
    ),
    (_with(_rows(), 4, "1,NA,3"), {"target": "c"}, r"column 'b' has a missing value at row 4"),
    (_with(_rows(), 9, "1,2,"), {"target": "c"}, r"column 'c' has a missing value at row 9"),
    (
        _with(_rows(), 6, "1,inf,3"),
        {"target": "c"},
        r"column 'b' has a non-finite value 'inf' at row 6",
    ),
    (
        "\n".join(["name,b,c"] + [f"person{i},{i},{i % 2}" for i in range(100)]) + "\n",
        {"target": "c"},
        r"column 'name' is not numeric and has 100 distinct values in 100 rows: "
        r"cannot encode it as a category",
    ),
    (
        "\n".join(["name,b,c"] + [f"v{i % 60},{i},{i % 2}" for i in range(200)]) + "\n",
        {"target": "c"},
        r"column 'name' is not numeric and has 60 distinct values in 200 rows",
    ),
    (
        _with(_rows(cols="a,age,c"), 5, "1,12a,3"),
        {"target": "c"},
        r"column 'age' has a non-numeric value '12a' at row 5",
    ),
    ("\n".join(_rows(n=9)) + "\n", {"target": "c"}, r"has 9 data rows: need at least 10"),
    ("a,,c\n" + "\n".join(_rows()[1:]) + "\n", {"target": "c"}, r"column 2 has no name"),
    (
        "a,b,a\n" + "\n".join(_rows()[1:]) + "\n",
        {"target": "b"},
        r"two columns named 'a' \(columns 1 and 3\)",
    ),
    (
        "c\n" + "\n".join(str(i) for i in range(12)) + "\n",
        {"target": "c"},
        r"no feature columns besides the target 'c'",
    ),
    (
        "\n".join(["a,c"] + [f"{i},same" for i in range(12)]) + "\n",
        {"target": "c"},
        r"target column 'c' has a single class 'same'",
    ),
    (
        "\n".join(_rows()) + "\n",
        {"target": "c", "tagret": "c"},
        r"csv\.tagret: unknown option \(did you mean 'target'\?\)",
    ),
]


@pytest.mark.parametrize(("text", "options", "message"), MALFORMED)
def test_malformed_csv_raises_one_clear_line(
    tmp_path: Path, text: str, options: dict[str, str], message: str
) -> None:
    path = _numbered(tmp_path, text)
    with pytest.raises(ArchsmithError, match=message) as info:
        get_task(f"csv:{path}", **options)
    assert "\n" not in str(info.value)


def test_row_numbers_count_the_header_and_blank_lines(tmp_path: Path) -> None:
    lines = _rows()
    lines.insert(3, "")  # a blank line is skipped but keeps its row number
    lines[8] = "1,,3"  # line 9 of the file
    path = _numbered(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ArchsmithError, match=r"column 'b' has a missing value at row 9$"):
        get_task(f"csv:{path}", target="c")


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(
        ArchsmithError, match=r"cannot read '.*nope\.csv': No such file or directory"
    ):
        get_task(f"csv:{missing}", target="c")
    with pytest.raises(ArchsmithError, match=r"cannot read .*: Is a directory"):
        get_task(f"csv:{tmp_path}", target="c")
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"a,b\n\xff\xfe,1\n")
    with pytest.raises(ArchsmithError, match=r"cannot read .*bin\.csv.*not UTF-8"):
        get_task(f"csv:{binary}", target="b")
    with pytest.raises(ArchsmithError, match=r"give a file after 'csv:'"):
        get_task("csv:")


def test_quoted_fields_bom_and_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    rows = [f'"{i}, {i}",{i},{i % 2}' for i in range(3)] * 5  # 3 categories with commas inside
    path.write_text("\ufeffname,b,c\n" + "\n".join(rows) + "\n", encoding="utf-8")
    task = get_task(f"csv:{path}", target="c")
    assert task.feature_names is not None
    assert "name=0, 0" in task.feature_names and task.input.shape == (4,)
    assert get_task(f"csv:{path}", target="c") is task  # cached
    path.write_text("name,b,c\n" + "\n".join(rows + rows) + "\n")
    os.utime(path, ns=(1, 1))
    changed = get_task(f"csv:{path}", target="c")
    assert (
        changed is not task and sum(len(changed.split(s)) for s in ("train", "val", "test")) == 30
    )


def test_categorical_targets_and_stratification(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = rng.choice(["cat", "dog", "eel"], size=200, p=[0.6, 0.3, 0.1])
    rows = [[float(rng.normal()), lab] for lab in labels]
    task = get_task(f"csv:{_write(tmp_path / 's.csv', ['f', 'animal'], rows)}", target="animal")
    assert task.classes == ("cat", "dog", "eel")
    totals = np.array([(labels == c).sum() for c in ("cat", "dog", "eel")])
    for s in ("train", "val", "test"):
        y = task.split(s).y.numpy()
        got = np.bincount(y, minlength=3)
        assert np.all(np.abs(got - totals * len(y) / 200) < 1.0 + 1e-9)
