"""csv:PATH survival data (duration=, event=): targets, splits, features, metric, errors."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from lifelines.utils import concordance_index

from archsmith.build import create_model
from archsmith.errors import ArchsmithError
from archsmith.tasks import Task, cox_ph_loss, get_task
from archsmith.tasks.registry import _build
from archsmith.tasks.splits import split_indices
from archsmith.train import TrainConfig, fit

SPLITS = ("train", "val", "test")
STAGES = ("I", "II", "III")


def _write_patients(path: Path, n: int = 80, seed: int = 0) -> str:
    """age (float), stage (3 categories), dose (int), sex (2 categories), time, event.

    Times are distinct (no ties, so every concordance implementation agrees), written with
    3 decimals or as whole numbers; about 40% of the rows are censored.
    """
    rng = np.random.default_rng(seed)
    times = rng.permutation(np.arange(1, n + 1)) * 7.25 + rng.uniform(0, 1, n).round(3)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["age", "stage", "dose", "time", "sex", "event"])
        for i in range(n):
            t = f"{times[i]:.3f}" if i % 3 else str(int(times[i]))
            writer.writerow(
                [
                    f"{rng.normal(60, 10):.2f}",
                    STAGES[int(rng.integers(3))],
                    int(rng.integers(0, 5)) * 10,
                    t,
                    "fm"[i % 2],
                    int(rng.uniform() < 0.6),
                ]
            )
    return str(path)


def _task(path: str, **options: object) -> Task:
    return get_task(f"csv:{path}", duration="time", event="event", **options)


def test_survival_task_matches_the_file(tmp_path: Path) -> None:
    path = _write_patients(tmp_path / "patients.csv")
    task = _task(path)
    assert task.kind == "survival" and task.num_outputs == 1
    assert task.metric_names == ("c_index",) and task.primary_metric == "c_index"
    assert task.greater_is_better
    assert task.feature_names is not None
    names = task.feature_names
    assert sorted(names) == sorted(
        ["age", "dose", "stage=I", "stage=II", "stage=III", "sex=f", "sex=m"]
    )
    assert task.input.kind == "vector" and task.input.shape == (7,)

    # Recompute everything from the file, independently of the csv loader.
    frame = pd.read_csv(path)
    assert len(frame) == 80
    event = frame["event"].to_numpy()
    parts = dict(zip(SPLITS, split_indices(len(frame), stratify=event, seed=0), strict=True))
    outcome = frame[["time", "event"]].to_numpy(dtype=np.float64).astype(np.float32)
    train = parts["train"]
    for s in SPLITS:
        idx, data = parts[s], task.split(s)
        assert data.y.dtype == torch.float32 and data.y.shape == (len(idx), 2)
        np.testing.assert_array_equal(data.y.numpy(), outcome[idx])
        x = data.x.numpy()
        assert x.dtype == np.float32
        for col in ("age", "dose"):  # numeric: standardized with the train split's statistics
            raw = frame[col].to_numpy(dtype=np.float64)
            mean, std = raw[train].mean(), raw[train].std()
            np.testing.assert_allclose(
                x[:, names.index(col)], (raw[idx] - mean) / std, rtol=1e-5, atol=1e-5
            )
        for col, values in (("stage", STAGES), ("sex", ("f", "m"))):  # one-hot, not scaled
            for v in values:
                expected = (frame[col].to_numpy()[idx] == v).astype(np.float32)
                np.testing.assert_array_equal(x[:, names.index(f"{col}={v}")], expected)

    # Stratified on the event: every split's event rate is the data's, to the nearest whole.
    rate = event.mean()
    for s in SPLITS:
        y = task.split(s).y
        assert abs(float(y[:, 1].sum()) - rate * len(y)) < 1.0 + 1e-9


def test_unstandardized_features_are_the_file_values(tmp_path: Path) -> None:
    path = _write_patients(tmp_path / "p.csv")
    task = _task(path, standardize=False, split_seed=5)
    frame = pd.read_csv(path)
    parts = split_indices(len(frame), stratify=frame["event"].to_numpy(), seed=5)
    names = task.feature_names
    assert names is not None
    for idx, s in zip(parts, SPLITS, strict=True):
        np.testing.assert_allclose(
            task.split(s).x[:, names.index("age")].numpy(),
            frame["age"].to_numpy()[idx].astype(np.float32),
        )


def test_c_index_and_loss_match_lifelines_and_cox(tmp_path: Path) -> None:
    path = _write_patients(tmp_path / "p.csv")
    task = _task(path)
    frame = pd.read_csv(path)
    parts = split_indices(len(frame), stratify=frame["event"].to_numpy(), seed=0)
    gen = torch.Generator().manual_seed(1)
    for idx, s in zip(parts, SPLITS, strict=True):
        data = task.split(s)
        risk = torch.randn(len(data), 1, generator=gen)
        got = task.metrics(risk, data.y)["c_index"]
        expected = concordance_index(
            frame["time"].to_numpy()[idx], -risk.reshape(-1).numpy(), frame["event"].to_numpy()[idx]
        )
        assert math.isclose(got, expected, rel_tol=1e-9), s
        loss = task.loss(risk, data.y)
        ref = cox_ph_loss(risk.reshape(-1), data.y[:, 0], data.y[:, 1])
        assert torch.equal(loss, ref) and loss.item() > 0


def test_event_words_are_read_as_0_and_1(tmp_path: Path) -> None:
    path = _write_patients(tmp_path / "p.csv")
    frame = pd.read_csv(path)
    base = _task(path)
    for yes, no in (("yes", "no"), ("True", "False"), ("TRUE", "false"), ("1.0", "0")):
        other = frame.assign(event=np.where(frame["event"] == 1, yes, no))
        other_path = tmp_path / f"p_{yes}.csv"
        other.to_csv(other_path, index=False)
        task = _task(str(other_path))
        for s in SPLITS:
            assert torch.equal(task.split(s).y, base.split(s).y), (yes, s)
            assert torch.equal(task.split(s).x, base.split(s).x), (yes, s)


def test_options_round_trip(tmp_path: Path) -> None:
    path = _write_patients(tmp_path / "p.csv")
    task = _task(path, split_seed=3)
    assert task.options == {"duration": "time", "event": "event", "split_seed": 3}
    options = json.loads(json.dumps(task.options))  # as a spec file stores them
    _build.cache_clear()  # a real rebuild, not the cached object
    again = get_task(task.name, **options)
    assert again is not task and again.kind == "survival"
    assert again.feature_names == task.feature_names
    for s in SPLITS:
        assert torch.equal(again.split(s).x, task.split(s).x)
        assert torch.equal(again.split(s).y, task.split(s).y)
    other = _task(path, split_seed=4)
    assert not torch.equal(other.test.y, task.test.y)


def test_cox_mlp_fits_a_csv_survival_task(tmp_path: Path) -> None:
    task = _task(_write_patients(tmp_path / "p.csv"))
    model = create_model("cox_mlp", task=task)
    spec: Any = model.archsmith_spec  # the Spec create_model attached
    assert spec.task_options == task.options
    result = fit(model, task, TrainConfig(epochs=3, batch_size=16), progress=False)
    assert result.epochs_run == 3
    for metrics in (result.val, result.test):
        assert math.isfinite(metrics["c_index"]) and 0.0 <= metrics["c_index"] <= 1.0
        assert math.isfinite(metrics["loss"])


def _lines(n: int = 20) -> list[str]:
    """Header then ``n`` rows of age, city, time, event (both outcomes present)."""
    cities = ("oslo", "rome")
    return ["age,city,time,event"] + [
        f"{30 + i},{cities[i % 2]},{i + 1}.5,{int(i % 3 == 0)}" for i in range(n)
    ]


def _with(row: int, line: str, lines: list[str] | None = None) -> str:
    """The default file with row ``row`` (1-based, header = 1) replaced by ``line``."""
    lines = list(lines or _lines())
    lines[row - 1] = line
    return "\n".join(lines) + "\n"


BASE = "\n".join(_lines()) + "\n"
SURV = {"duration": "time", "event": "event"}

MALFORMED = [
    # (file text, options, expected message fragment)
    (
        BASE,
        {"duration": "tme", "event": "event"},
        r"duration column 'tme' not found in '.*x\.csv' \(did you mean 'time'\?\) "
        r"\(columns: age, city, time, event\)$",
    ),
    (
        BASE,
        {"duration": "time", "event": "evnt"},
        r"event column 'evnt' not found in '.*x\.csv' \(did you mean 'event'\?\)",
    ),
    (
        _with(5, "33,rome,abc,1"),
        SURV,
        r"'.*x\.csv' duration column 'time' has a non-numeric value 'abc' at row 5: "
        r"durations must be numbers$",
    ),
    (
        _with(8, "33,rome,-2.5,0"),
        SURV,
        r"duration column 'time' has a negative value '-2\.5' at row 8: durations must be >= 0$",
    ),
    (_with(6, "33,rome,nan,1"), SURV, r"column 'time' has a missing value at row 6$"),
    (_with(6, "33,rome,,1"), SURV, r"column 'time' has a missing value at row 6$"),
    (_with(4, "33,rome,2,NA"), SURV, r"column 'event' has a missing value at row 4$"),
    (_with(3, "33,rome,inf,1"), SURV, r"column 'time' has a non-finite value 'inf' at row 3$"),
    (
        _with(7, "33,rome,2,2"),
        SURV,
        r"'.*x\.csv' event column 'event' has a value '2' at row 7: events must be 1 "
        r"\(observed\) or 0 \(censored\), or true/false, yes/no$",
    ),
    (_with(9, "33,rome,2,0.5"), SURV, r"event column 'event' has a value '0\.5' at row 9"),
    (_with(10, "33,rome,2,-1"), SURV, r"event column 'event' has a value '-1' at row 10"),
    (_with(2, "33,rome,2,maybe"), SURV, r"event column 'event' has a value 'maybe' at row 2"),
    (
        "\n".join(["age,city,time,event"] + [f"{i},oslo,{i + 1},0" for i in range(20)]) + "\n",
        SURV,
        r"'.*x\.csv' event column 'event' has no events: the Cox partial likelihood needs at "
        r"least one$",
    ),
    (
        "\n".join(["age,time,event"] + [f"{i},{i + 1},no" for i in range(20)]) + "\n",
        SURV,
        r"event column 'event' has no events",
    ),
    ("\n".join(_lines(9)) + "\n", SURV, r"has 9 data rows: need at least 10 to split"),
    (
        BASE,
        {"target": "age", **SURV},
        r"csv task takes either target=COLUMN or duration=COLUMN with event=COLUMN "
        r"\(survival\), not both$",
    ),
    (
        BASE,
        {"target": "age", "event": "event"},
        r"either target=COLUMN or duration=COLUMN with event=COLUMN",
    ),
    (
        BASE,
        {"duration": "time"},
        r"csv survival task needs event=COLUMN \(--event\) as well as duration=; "
        r"columns of '.*x\.csv': age, city, time, event$",
    ),
    (
        BASE,
        {"event": "event"},
        r"csv survival task needs duration=COLUMN \(--duration\) as well as event=",
    ),
    (
        BASE,
        {**SURV, "kind": "regression"},
        r"csv task with duration= and event= is a survival task: kind='regression' does not "
        r"apply",
    ),
    (BASE, {"duration": "time", "event": "time"}, r"two different columns, both are 'time'"),
    (
        "\n".join(["time,event"] + [f"{i + 1},{i % 2}" for i in range(20)]) + "\n",
        SURV,
        r"no feature columns besides the outcome columns 'time', 'event'$",
    ),
    (BASE, {}, r"csv task needs target=COLUMN .*or duration=COLUMN and event=COLUMN"),
    (BASE, {**SURV, "evnt": "event"}, r"csv\.evnt: unknown option \(did you mean 'event'\?\)"),
]


@pytest.mark.parametrize(("text", "options", "message"), MALFORMED)
def test_malformed_survival_csv_raises_one_clear_line(
    tmp_path: Path, text: str, options: dict[str, str], message: str
) -> None:
    path = tmp_path / "x.csv"
    path.write_text(text)
    with pytest.raises(ArchsmithError, match=message) as info:
        get_task(f"csv:{path}", **options)
    assert "\n" not in str(info.value)


def test_the_valid_base_file_builds(tmp_path: Path) -> None:
    """The error cases above differ from this file by one row or option."""
    path = tmp_path / "x.csv"
    path.write_text(BASE)
    task = get_task(f"csv:{path}", **SURV)
    assert task.kind == "survival" and sum(len(task.split(s)) for s in SPLITS) == 20


def test_duration_row_numbers_count_blank_lines(tmp_path: Path) -> None:
    lines = _lines()
    lines.insert(3, "")  # line 4 is blank
    lines[8] = "33,rome,-1,0"  # line 9 of the file
    path = tmp_path / "b.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ArchsmithError, match=r"negative value '-1' at row 9:"):
        get_task(f"csv:{path}", **SURV)


def test_aux_label_column_becomes_the_third_target_column(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    _write_patients(path)
    plain = get_task(f"csv:{path}", duration="time", event="event")
    task = get_task(f"csv:{path}", duration="time", event="event", aux_label="stage")
    assert task.aux_classes == STAGES and task.num_outputs == 1 + len(STAGES)
    assert task.metric_names == ("c_index", "aux_accuracy")
    assert not any(name.startswith("stage") for name in task.feature_names or ())
    frame = pd.read_csv(path)
    for split in SPLITS:
        a, b = plain.split(split), task.split(split)
        assert torch.equal(a.y, b.y[:, :2])  # same rows in the same splits
        # the class index of each row is its stage's position in the sorted stages
        for time, label in zip(b.y[:, 0].tolist(), b.y[:, 2].tolist(), strict=True):
            row = frame.iloc[int(np.argmin(np.abs(frame["time"].to_numpy() - time)))]
            assert STAGES[int(label)] == row["stage"]


AUX_ERRORS = [
    ({"aux_label": "nope"}, r"aux_label column 'nope' not found"),
    ({"aux_label": "time"}, r"aux_label must be a column other than the duration and the event"),
]


@pytest.mark.parametrize(("options", "message"), AUX_ERRORS)
def test_bad_aux_label_is_one_line(tmp_path: Path, options: dict[str, str], message: str) -> None:
    path = tmp_path / "p.csv"
    _write_patients(path)
    with pytest.raises(ArchsmithError, match=message) as info:
        get_task(f"csv:{path}", duration="time", event="event", **options)
    assert "\n" not in str(info.value)


def test_aux_label_needs_survival_data(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    _write_patients(path)
    with pytest.raises(ArchsmithError, match=r"aux_label= applies to survival data"):
        get_task(f"csv:{path}", target="age", aux_label="stage")


def test_joint_loss_is_cox_plus_weighted_cross_entropy(tmp_path: Path) -> None:
    """Against a hand-written log-softmax cross-entropy and the (separately tested) Cox loss."""
    path = tmp_path / "p.csv"
    _write_patients(path)
    task = get_task(
        f"csv:{path}", duration="time", event="event", aux_label="stage", aux_weight=0.3
    )
    torch.manual_seed(0)
    y = task.train.y
    output = torch.randn(len(y), 4, dtype=torch.float64, requires_grad=True)
    labels = y[:, 2].long()
    logits = output[:, 1:]
    log_probs = logits - logits.exp().sum(dim=1, keepdim=True).log()
    ce = -log_probs[torch.arange(len(y)), labels].mean()
    expected = cox_ph_loss(output[:, 0], y[:, 0], y[:, 1]) + 0.3 * ce
    got = task.loss(output, y)
    assert abs(float(got) - float(expected)) < 1e-10
    (g1,) = torch.autograd.grad(got, output)
    (g2,) = torch.autograd.grad(expected, output)
    assert torch.allclose(g1, g2, atol=1e-12)
    metrics = task.metrics(output.detach(), y)
    assert metrics["aux_accuracy"] == pytest.approx(
        float((logits.argmax(1) == labels).double().mean())
    )
