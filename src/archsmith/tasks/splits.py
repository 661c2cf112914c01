"""Fixed, seeded train/val/test splits, stratified when labels are given.

Every call with the same inputs and seed returns the same indices, so a task's splits are part
of its definition: results on ``digits`` are comparable across runs and machines.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_FRACTIONS", "split_indices"]

#: Fractions of the samples that go to (train, val, test).
DEFAULT_FRACTIONS = (0.70, 0.15, 0.15)


def split_indices(
    n: int,
    *,
    stratify: np.ndarray | None = None,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint index arrays ``(train, val, test)`` that together cover ``range(n)``.

    Args:
        n: number of samples (at least 3, so each split gets one).
        stratify: ``[n]`` labels; each label's share of val and test is then as close to its
            share of the whole data as whole numbers allow (largest-remainder rounding).
        fractions: (train, val, test) fractions; val and test get ``round(f * n)`` samples, at
            least one each, and train the rest.
        seed: the split seed; the same seed always gives the same split.

    Returns:
        three int64 arrays, each in a seeded random order (so a split's first samples are a
        fair sample of it, not one class).
    """
    if n < 3:
        raise ValueError(f"need at least 3 samples to split, got {n}")
    rng = np.random.default_rng(seed)
    n_val = max(1, round(fractions[1] * n))
    n_test = max(1, round(fractions[2] * n))
    if n_val + n_test >= n:
        raise ValueError(f"fractions {fractions} leave no training samples out of {n}")
    if stratify is None:
        perm = rng.permutation(n)
        test, val, train = perm[:n_test], perm[n_test : n_test + n_val], perm[n_test + n_val :]
        return train.astype(np.int64), val.astype(np.int64), test.astype(np.int64)

    labels = np.asarray(stratify).reshape(-1)
    if labels.shape[0] != n:
        raise ValueError(f"stratify has {labels.shape[0]} labels for {n} samples")
    _, group = np.unique(labels, return_inverse=True)
    group = group.reshape(-1)
    counts = np.bincount(group)
    # Test first, then val from what remains, each by largest-remainder quotas per label.
    q_test = _quotas(counts, n_test)
    q_val = _quotas(counts - q_test, n_val)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for g in range(counts.shape[0]):
        members = rng.permutation(np.flatnonzero(group == g))
        t, v = q_test[g], q_val[g]
        parts[2].append(members[:t])
        parts[1].append(members[t : t + v])
        parts[0].append(members[t + v :])
    train, val, test = (rng.permutation(np.concatenate(p)).astype(np.int64) for p in parts)
    return train, val, test


def _quotas(available: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` over groups in proportion to ``available`` ``[G]`` (whole numbers, each at
    most its group's ``available``), giving leftovers to the largest fractional parts."""
    ideal = available * (total / available.sum())
    quota = np.minimum(np.floor(ideal).astype(np.int64), available)
    # Stable sort on the negated remainder: ties go to the lower group index, deterministically.
    for g in np.argsort(-(ideal - quota), kind="stable"):
        if quota.sum() >= total:
            break
        if quota[g] < available[g]:
            quota[g] += 1
    return quota
