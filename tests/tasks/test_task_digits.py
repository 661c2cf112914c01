"""digits / digits-flat against scikit-learn's data."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from archsmith.errors import ArchsmithError
from archsmith.tasks import get_task


def test_digits_shapes_dtypes_and_range() -> None:
    task = get_task("digits")
    assert task.kind == "classification" and task.num_outputs == 10
    assert task.input.kind == "image" and task.input.shape == (1, 8, 8)
    assert (len(task.train), len(task.val), len(task.test)) == (1257, 270, 270)
    for name in ("train", "val", "test"):
        s = task.split(name)
        assert s.x.dtype == torch.float32 and s.y.dtype == torch.int64
        assert s.x.shape[1:] == (1, 8, 8) and s.y.shape == (len(s),)
        assert float(s.x.min()) >= 0.0 and float(s.x.max()) <= 1.0
        assert set(s.y.tolist()) == set(range(10))
    assert task.metric_names == ("accuracy",) and task.primary_metric == "accuracy"
    assert task.greater_is_better


def test_digits_flat_holds_the_same_samples_in_the_same_order() -> None:
    image, flat = get_task("digits"), get_task("digits-flat")
    assert flat.input.kind == "vector" and flat.input.shape == (64,)
    for name in ("train", "val", "test"):
        a, b = image.split(name), flat.split(name)
        assert torch.equal(a.x.reshape(len(a), 64), b.x)
        assert torch.equal(a.y, b.y)


def test_digits_splits_cover_the_data_set_exactly() -> None:
    data = load_digits()
    expected = Counter(
        (tuple((row / 16.0).astype(np.float32).tolist()), int(t))
        for row, t in zip(data.data, data.target, strict=True)
    )
    task = get_task("digits-flat")
    got: Counter[tuple[tuple[float, ...], int]] = Counter()
    for name in ("train", "val", "test"):
        s = task.split(name)
        got.update((tuple(row.tolist()), int(t)) for row, t in zip(s.x.numpy(), s.y, strict=True))
    assert got == expected


def test_digits_split_is_stratified_and_seeded() -> None:
    task = get_task("digits")
    total = np.bincount(load_digits().target, minlength=10)
    for name in ("train", "val", "test"):
        s = task.split(name)
        got = np.bincount(s.y.numpy(), minlength=10)
        assert np.all(np.abs(got - total * len(s) / total.sum()) < 1.0 + 1e-9)
    other = get_task("digits", split_seed=1)
    assert not torch.equal(other.val.y, task.val.y)
    assert torch.equal(get_task("digits", split_seed=1).val.x, other.val.x)


def test_digits_model_kwargs_summary_and_batches() -> None:
    task = get_task("digits")
    assert task.model_kwargs() == {"in_shape": (1, 8, 8), "num_outputs": 10}
    x, y = task.example_batch(5, split="val")
    assert torch.equal(x, task.val.x[:5]) and torch.equal(y, task.val.y[:5])
    summary = task.summary()
    assert summary["sizes"] == {"train": 1257, "val": 270, "test": 270}
    assert summary["input"] == {"kind": "image", "shape": [1, 8, 8]}
    assert summary["metrics"] == ["accuracy"] and summary["kind"] == "classification"
    with pytest.raises(ArchsmithError, match=r"unknown split 'tset'.*'test'"):
        task.split("tset")
    with pytest.raises(ArchsmithError, match="batch size"):
        task.example_batch(0)


def test_standardize_uses_train_statistics_per_pixel() -> None:
    import numpy as np

    raw = get_task("digits-flat")
    std = get_task("digits-flat", standardize=True)
    x = raw.train.x.double().numpy()
    mean, sd = x.mean(0), x.std(0)
    expected = np.where(sd > 0, (raw.test.x.double().numpy() - mean) / np.where(sd > 0, sd, 1), 0.0)
    assert np.allclose(std.test.x.double().numpy(), expected, atol=1e-5)
    train = std.train.x.double()
    varying = sd > 0
    assert train[:, varying].mean(0).abs().max() < 1e-5
    assert (train[:, varying].std(0, unbiased=False) - 1).abs().max() < 1e-4
    assert torch.equal(std.train.y, raw.train.y)  # same samples, same order
    image = get_task("digits", standardize=True)
    assert torch.equal(image.test.x.reshape(len(image.test), -1), std.test.x)
