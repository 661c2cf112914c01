"""``breast-cancer-survival``: time to distant metastasis of 198 breast-cancer patients.

The data set bundled with scikit-survival (``sksurv.datasets.load_breast_cancer``; Desmedt et al.
2007): 76 gene-expression values plus age, tumour size, and the categorical ``er`` and ``grade``
columns. Categorical columns are one-hot encoded with all their declared categories; numeric
columns are standardized with the train split's statistics (indicators stay 0/1). The target is
``(time, event)``; the split is stratified on ``event`` so every split has events to rank.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np

from archsmith.options import Range
from archsmith.tasks.base import Task
from archsmith.tasks.registry import register_task
from archsmith.tasks.survival_data import survival_task
from archsmith.tasks.tabular import encode_features

__all__ = ["breast_cancer_survival"]


@register_task(
    "breast-cancer-survival",
    "198 breast-cancer patients, 80 clinical and gene-expression columns; time to metastasis",
)
def breast_cancer_survival(
    *,
    split_seed: int = 0,
    aux_label: Literal["er", "grade"] | None = None,
    aux_weight: Annotated[float, Range(min=0.0)] = 1.0,
) -> Task:
    """Survival task: ``x`` ``[N, 84]`` float32, ``y`` ``[N, 2]`` = (time in days, event).

    ``aux_label="er"`` or ``"grade"`` takes that clinical column out of the features and makes
    it an auxiliary class label (``y`` ``[N, 3]``), learned jointly with the risk by a second
    head, weighted by ``aux_weight`` in the loss (SeNMo's survival + classification heads).
    """
    from sksurv.datasets import load_breast_cancer  # late: scikit-survival is slow to import

    frame, outcome = load_breast_cancer()
    labels = None
    if aux_label is not None:
        labels = frame[aux_label].astype(str).to_numpy()
        frame = frame.drop(columns=[aux_label])
    x, names, numeric = encode_features(frame)
    # The structured array's fields are (event: bool, time: float); find them by type, not order.
    fields = outcome.dtype.names
    event_field = next(f for f in fields if outcome.dtype[f] == np.bool_)
    time_field = next(f for f in fields if f != event_field)
    return survival_task(
        "breast-cancer-survival",
        x,
        outcome[time_field],
        outcome[event_field].astype(np.int64),
        split_seed=split_seed,
        standardize=True,
        numeric_features=numeric,
        feature_names=names,
        aux_labels=labels,
        aux_weight=aux_weight,
    )
