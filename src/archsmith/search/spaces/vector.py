"""The default space for feature vectors (digits-flat, wine, wdbc, ``csv:`` tables).

Parameters (conditional ones under the ``model`` that asks for them):

=============  ===========================================  ================================
parameter      values                                       model
=============  ===========================================  ================================
model          ``early_exit_mlp``, ``mlp``, ``snn``         (those that fit the task)
width, depth   16..128 step 16; 1..4                        all: ``depth`` layers of ``width``
norm           registered norms that normalize ``[B, F]``    mlp (``none`` included)
act            registered activations but ``none``          mlp
linear         registered linear layers (dense, ``tt``,     mlp
               ``tt_fast``, ``btt``, ``tucker``, ``cp``)
rank           2, 4, 8, 16                                  mlp with a tensorized ``linear``
gate           the model's ``gate`` literals                early_exit_mlp
cost_weight    0.01..1 (log)                                early_exit_mlp
=============  ===========================================  ================================

- ``snn`` is the self-normalizing branch: SELU, LeCun-normal init and AlphaDropout with no
  normalization layer (Klambauer et al., 2017).
- ``mlp`` is the normalized branch: ``[linear -> norm -> act] x depth``. Its linear layer may
  be a tensor network, whose rank is then a choice too (``linear_rank``).
- ``early_exit_mlp`` puts an exit after every layer: JEI-DNN's learned gate or a confidence
  threshold (Regol et al., 2024).

Widths are multiples of 16 so tensorized layers factor into balanced modes without padding.
At these sizes a candidate trains on digits in seconds on two CPU cores.
"""

from __future__ import annotations

import math
from typing import Any

import optuna

from archsmith.search.spaces import choices
from archsmith.search.spaces.base import model_spec
from archsmith.spec import Spec
from archsmith.tasks import Task

__all__ = ["MODELS", "RANKS", "WIDTHS", "vector_space"]

MODELS = ("early_exit_mlp", "mlp", "snn")
WIDTH_LOW, WIDTH_HIGH, WIDTH_STEP = 16, 128, 16
WIDTHS = tuple(range(WIDTH_LOW, WIDTH_HIGH + 1, WIDTH_STEP))
DEPTH_LOW, DEPTH_HIGH = 1, 4
#: ranks of a tensorized linear layer: from a few percent of the dense weights up to near-dense
RANKS = (2, 4, 8, 16)


def linear_pairs(in_features: int) -> list[tuple[int, int]]:
    """Every ``(in, out)`` a hidden layer of the space maps: the input to a width, and a width
    to itself (hidden layers share one width)."""
    return [(in_features, w) for w in WIDTHS] + [(w, w) for w in WIDTHS]


def vector_space(trial: optuna.Trial, task: Task) -> Spec:
    """An MLP-family design for ``task`` (a vector-input classification or regression task)."""
    model = trial.suggest_categorical("model", choices.compatible_models(MODELS, task))
    width = trial.suggest_int("width", WIDTH_LOW, WIDTH_HIGH, step=WIDTH_STEP)
    depth = trial.suggest_int("depth", DEPTH_LOW, DEPTH_HIGH)
    options: dict[str, Any]
    if model == "mlp":
        features = math.prod(task.input.shape)
        options = {
            "hidden": [width] * depth,
            "norm_layer": trial.suggest_categorical("norm", choices.norms("vector", WIDTHS)),
            "act_layer": trial.suggest_categorical("act", choices.activations()),
            "linear_layer": trial.suggest_categorical(
                "linear", choices.linears(linear_pairs(features))
            ),
        }
        if options["linear_layer"] != "dense":
            options["linear_rank"] = trial.suggest_categorical("rank", list(RANKS))
    elif model == "early_exit_mlp":
        options = {
            "width": width,
            "depth": depth,
            "gate": trial.suggest_categorical("gate", choices.literal_choices(model, "gate")),
            "cost_weight": trial.suggest_float("cost_weight", 0.01, 1.0, log=True),
        }
    elif model == "snn":
        options = {"width": width, "depth": depth}
    else:  # a name in MODELS without a branch here
        raise AssertionError(f"vector space: no options for model {model!r}")
    return model_spec(task, model, options)
