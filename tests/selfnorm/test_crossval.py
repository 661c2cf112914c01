"""archsmith.selfnorm.crossval: raw survival arrays, stratified folds, per-fold tasks."""

from __future__ import annotations

import numpy as np
import pytest
from sksurv.datasets import load_breast_cancer, load_gbsg2

from archsmith.errors import ArchsmithError
from archsmith.selfnorm.crossval import (
    SURVIVAL_DATASETS,
    SurvivalArrays,
    fold_task,
    inner_split,
    survival_arrays,
    survival_folds,
)


@pytest.fixture(scope="module")
def breast() -> SurvivalArrays:
    return survival_arrays("breast-cancer-survival")


def _n_encoded(frame) -> int:  # type: ignore[no-untyped-def]
    numeric = sum(frame[c].dtype.kind == "f" for c in frame.columns)
    onehot = sum(
        len(frame[c].cat.categories) for c in frame.columns if frame[c].dtype == "category"
    )
    return int(numeric + onehot)


@pytest.mark.parametrize(
    ("name", "loader", "event_field", "time_field"),
    [
        ("breast-cancer-survival", load_breast_cancer, "e.tdm", "t.tdm"),
        ("gbsg2", load_gbsg2, "cens", "time"),
    ],
)
def test_survival_arrays_match_raw_data(name, loader, event_field, time_field) -> None:  # type: ignore[no-untyped-def]
    assert name in SURVIVAL_DATASETS
    frame, outcome = loader()
    data = survival_arrays(name)
    x, time, event, numeric = data  # unpacks as the documented 4-tuple
    assert x.dtype == np.float64 and x.shape == (len(frame), _n_encoded(frame))
    assert time.shape == event.shape == (len(frame),) and event.dtype == bool
    assert int(event.sum()) == int(outcome[event_field].sum())
    np.testing.assert_array_equal(time, outcome[time_field])
    assert numeric.shape == (x.shape[1],) and int(numeric.sum()) == sum(
        frame[c].dtype.kind == "f" for c in frame.columns
    )
    # not standardized: the numeric columns are the raw values, in order
    raw = frame[[c for c in frame.columns if frame[c].dtype.kind == "f"]].to_numpy(np.float64)
    np.testing.assert_array_equal(x[:, numeric], raw)
    assert set(np.unique(x[:, ~numeric]).tolist()) <= {0.0, 1.0}


def test_survival_arrays_unknown_name() -> None:
    with pytest.raises(ArchsmithError, match="gbsg2"):
        survival_arrays("gbsg")


@pytest.mark.parametrize(("n_folds", "seed"), [(5, 0), (3, 7)])
def test_folds_are_disjoint_cover_all_and_stratified(
    breast: SurvivalArrays, n_folds: int, seed: int
) -> None:
    n = len(breast.time)
    folds = survival_folds(breast.time, breast.event, n_folds=n_folds, seed=seed)
    assert len(folds) == n_folds
    tests = np.concatenate([test for _, test in folds])
    assert np.array_equal(np.sort(tests), np.arange(n))  # disjoint and covering
    rate = breast.event.mean()
    for train, test in folds:
        assert np.intersect1d(train, test).size == 0
        assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(n))
        # stratified: a fold's event count is within one of its proportional share
        assert abs(breast.event[test].sum() - rate * len(test)) <= 1.0
        assert abs(breast.event[test].mean() - rate) < 0.03


def test_folds_depend_on_seed_only(breast: SurvivalArrays) -> None:
    a = survival_folds(breast.time, breast.event, seed=1)
    b = survival_folds(breast.time, breast.event, seed=1)
    c = survival_folds(breast.time, breast.event, seed=2)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x[1], y[1]) for x, y in zip(a, c, strict=True))


def test_inner_split_is_a_stratified_partition_of_train(breast: SurvivalArrays) -> None:
    train, _ = survival_folds(breast.time, breast.event, seed=0)[0]
    fit_idx, val_idx = inner_split(train, breast.event, val_fraction=0.15, seed=0)
    assert np.array_equal(np.sort(np.concatenate([fit_idx, val_idx])), np.sort(train))
    assert np.intersect1d(fit_idx, val_idx).size == 0
    assert len(val_idx) == int(np.ceil(0.15 * len(train)))
    rate = breast.event[train].mean()
    assert abs(breast.event[val_idx].sum() - rate * len(val_idx)) <= 1.0


def test_fold_task_standardizes_with_train_statistics_only() -> None:
    rng = np.random.default_rng(0)
    n = 40
    x = np.column_stack(
        [rng.normal(5.0, 3.0, n), rng.exponential(2.0, n), rng.integers(0, 2, n).astype(float)]
    )
    numeric = np.array([True, True, False])
    time = rng.uniform(1, 10, n)
    event = np.arange(n) % 3 == 0
    data = SurvivalArrays(x, time, event, numeric)
    train, val, test = np.arange(0, 20), np.arange(20, 30), np.arange(30, 40)
    x[30:, 0] += 100.0  # a shifted test part must not move the statistics

    task = fold_task(data, train, val, test, name="toy")
    mean = x[:20, :2].sum(0) / 20
    std = np.sqrt(((x[:20, :2] - mean) ** 2).sum(0) / 20)
    for split, idx in (("train", train), ("val", val), ("test", test)):
        got = task.split(split).x.double().numpy()
        np.testing.assert_allclose(got[:, :2], (x[idx, :2] - mean) / std, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(got[:, 2], x[idx, 2])  # indicator left as 0/1
        y = task.split(split).y.numpy()
        np.testing.assert_allclose(y[:, 0], time[idx], rtol=1e-6)
        np.testing.assert_array_equal(y[:, 1], event[idx].astype(np.float32))
    assert task.kind == "survival" and task.input.shape == (3,) and task.num_outputs == 1
    assert abs(float(task.test.x[:, 0].mean())) > 10  # the test shift stayed visible

    everything = fold_task(data, train, val, test, standardize="all")
    ind = everything.train.x[:, 2].double().numpy()
    assert abs(ind.mean()) < 1e-6 and abs(ind.std() - 1.0) < 1e-5
    raw = fold_task(data, train, val, test, standardize="none")
    np.testing.assert_allclose(raw.test.x.double().numpy(), x[test], rtol=1e-6)
