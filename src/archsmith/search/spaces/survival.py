"""The default space for survival tasks (breast-cancer-survival, ``csv:`` tables with times and
events): Cox log-risk networks.

=============  ==========================================  ================================
parameter      values                                      model
=============  ==========================================  ================================
model          ``cox_mlp``, ``snn_cox``                    (those that fit the task)
width, depth   16..128 step 16; 1..4                       both: ``depth`` layers of ``width``
dropout        0..0.5 step 0.1                             both (AlphaDropout in ``snn_cox``)
norm           registered norms that normalize ``[B, F]``   cox_mlp (``none`` included)
act            registered activations but ``none``         cox_mlp
=============  ==========================================  ================================

``snn_cox`` is SeNMo's self-normalizing encoder (SELU, no normalization) under a Cox head;
``cox_mlp`` is the DeepSurv-style MLP with a chosen norm and activation. Survival sets hold a
few hundred patients, so the widths stay as small as the vector space's.
"""

from __future__ import annotations

from typing import Any

import optuna

from archsmith.search.spaces import choices
from archsmith.search.spaces.base import model_spec
from archsmith.search.spaces.vector import (
    DEPTH_HIGH,
    DEPTH_LOW,
    WIDTH_HIGH,
    WIDTH_LOW,
    WIDTH_STEP,
    WIDTHS,
)
from archsmith.spec import Spec
from archsmith.tasks import Task

__all__ = ["MODELS", "survival_space"]

MODELS = ("cox_mlp", "snn_cox")


def survival_space(trial: optuna.Trial, task: Task) -> Spec:
    """A Cox network design for the survival ``task``."""
    model = trial.suggest_categorical("model", choices.compatible_models(MODELS, task))
    width = trial.suggest_int("width", WIDTH_LOW, WIDTH_HIGH, step=WIDTH_STEP)
    depth = trial.suggest_int("depth", DEPTH_LOW, DEPTH_HIGH)
    # rounded: Optuna's stepped floats carry binary noise (0.30000000000000004) into the spec
    dropout = round(trial.suggest_float("dropout", 0.0, 0.5, step=0.1), 6)
    options: dict[str, Any]
    if model == "cox_mlp":
        options = {
            "hidden": [width] * depth,
            "dropout": dropout,
            "norm_layer": trial.suggest_categorical("norm", choices.norms("vector", WIDTHS)),
            "act_layer": trial.suggest_categorical("act", choices.activations()),
        }
    elif model == "snn_cox":
        options = {"width": width, "depth": depth, "dropout": dropout}
    else:  # a name in MODELS without a branch here
        raise AssertionError(f"survival space: no options for model {model!r}")
    return model_spec(task, model, options)
