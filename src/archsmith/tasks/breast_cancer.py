"""``breast-cancer-survival``: time to distant metastasis of 198 breast-cancer patients.

The data set bundled with scikit-survival (``sksurv.datasets.load_breast_cancer``; Desmedt et al.
2007): 76 gene-expression values plus age, tumour size, and the categorical ``er`` and ``grade``
columns. Categorical columns are one-hot encoded with all their declared categories; numeric
columns are standardized with the train split's statistics (indicators stay 0/1). The target is
``(time, event)``; the split is stratified on ``event`` so every split has events to rank.
"""

from __future__ import annotations

import numpy as np
import torch

from archsmith.tasks.base import InputSpec, Split, Task
from archsmith.tasks.registry import register_task
from archsmith.tasks.splits import split_indices
from archsmith.tasks.standardize import standardize_splits
from archsmith.tasks.tabular import encode_features

__all__ = ["breast_cancer_survival"]


@register_task(
    "breast-cancer-survival",
    "198 breast-cancer patients, 80 clinical and gene-expression columns; time to metastasis",
)
def breast_cancer_survival(*, split_seed: int = 0) -> Task:
    """Survival task: ``x`` ``[N, 84]`` float32, ``y`` ``[N, 2]`` = (time in days, event)."""
    from sksurv.datasets import load_breast_cancer  # late: scikit-survival is slow to import

    frame, outcome = load_breast_cancer()
    x, names, numeric = encode_features(frame)
    # The structured array's fields are (event: bool, time: float); find them by type, not order.
    fields = outcome.dtype.names
    event_field = next(f for f in fields if outcome.dtype[f] == np.bool_)
    time_field = next(f for f in fields if f != event_field)
    y = np.stack([outcome[time_field], outcome[event_field]], axis=1).astype(np.float32)
    parts = split_indices(len(y), stratify=y[:, 1], seed=split_seed)
    x = standardize_splits(x, parts[0], columns=numeric).astype(np.float32)
    splits = [Split(torch.from_numpy(x[i]), torch.from_numpy(y[i])) for i in parts]
    return Task(
        "breast-cancer-survival",
        "survival",
        InputSpec("vector", (x.shape[1],)),
        *splits,
        feature_names=names,
    )
