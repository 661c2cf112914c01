"""Tabular classification sets that scikit-learn ships (no download):

- ``wdbc`` — Wisconsin diagnostic breast cancer (569 samples, 30 features, 2 classes);
- ``wine`` — wine cultivars (178 samples, 13 features, 3 classes).

Features are standardized with the train split's statistics; splits 70/15/15, stratified.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from archsmith.tasks.base import Task
from archsmith.tasks.registry import register_task
from archsmith.tasks.supervised import supervised_task

__all__ = ["wdbc", "wine"]


def _sklearn_task(name: str, loader: Callable[..., Any], split_seed: int) -> Task:
    data = loader()
    return supervised_task(
        name,
        np.asarray(data.data, dtype=np.float64),
        np.asarray(data.target),
        kind="classification",
        input_kind="vector",
        split_seed=split_seed,
        standardize=True,
        feature_names=tuple(str(f) for f in data.feature_names),
    )


@register_task("wdbc", "breast cancer diagnosis (Wisconsin), 30 features, 2 classes")
def wdbc(*, split_seed: int = 0) -> Task:
    """scikit-learn's ``load_breast_cancer``: malignant vs benign from 30 cell-nucleus features."""
    from sklearn.datasets import load_breast_cancer

    return _sklearn_task("wdbc", load_breast_cancer, split_seed)


@register_task("wine", "wine cultivar from 13 chemical measurements, 3 classes")
def wine(*, split_seed: int = 0) -> Task:
    """scikit-learn's ``load_wine``: three cultivars from 13 chemical measurements."""
    from sklearn.datasets import load_wine

    return _sklearn_task("wine", load_wine, split_seed)
