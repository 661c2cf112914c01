"""Seeded splits: deterministic, disjoint, covering, stratified."""

from __future__ import annotations

import numpy as np
import pytest

from archsmith.tasks.splits import split_indices


def _check_partition(parts: tuple[np.ndarray, ...], n: int) -> None:
    joined = np.concatenate(parts)
    assert len(joined) == n
    assert np.array_equal(np.sort(joined), np.arange(n))  # disjoint and covering


@pytest.mark.parametrize("n", [3, 10, 97, 1000])
def test_unstratified_split_is_a_seeded_partition(n: int) -> None:
    parts = split_indices(n, seed=3)
    _check_partition(parts, n)
    assert all(len(p) >= 1 for p in parts)
    again = split_indices(n, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    if n >= 97:
        assert len(parts[1]) == round(0.15 * n) and len(parts[2]) == round(0.15 * n)
        other = split_indices(n, seed=4)
        assert not np.array_equal(parts[1], other[1])


def test_stratified_split_keeps_class_proportions() -> None:
    rng = np.random.default_rng(0)
    labels = rng.choice(4, size=503, p=[0.5, 0.3, 0.15, 0.05])
    parts = split_indices(len(labels), stratify=labels, seed=0)
    _check_partition(parts, len(labels))
    counts = np.bincount(labels, minlength=4)
    for part in parts:
        got = np.bincount(labels[part], minlength=4)
        expected = counts * len(part) / len(labels)
        # largest-remainder rounding: each class is within one sample of its exact share
        assert np.all(np.abs(got - expected) < 1.0 + 1e-9), (got, expected)


def test_stratified_split_with_rare_classes_still_partitions() -> None:
    labels = np.array([0] * 8 + [1] + [2] * 2)  # a class of one and of two samples
    parts = split_indices(len(labels), stratify=labels, seed=1)
    _check_partition(parts, len(labels))
    assert all(len(p) >= 1 for p in parts)


def test_split_orders_are_shuffled_not_grouped_by_class() -> None:
    labels = np.repeat(np.arange(10), 50)
    train, _, _ = split_indices(len(labels), stratify=labels, seed=0)
    assert len(set(labels[train[:30]].tolist())) > 3
