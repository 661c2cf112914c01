"""The default space for token sequences (mqar, selective-copy, token classification):
Transformer stacks.

=============  ==============================================  ============================
parameter      values                                          when
=============  ==============================================  ============================
attention      registered token mixers that run causally        always
               (``gla``, ``softmax``, ...) and ``hybrid``
reversible     false, true                                     attention is not ``hybrid``
mlp            registered MLP layers (``dense``, ``moe``, ...)  always
norm           registered norms over the last dim of           always
               ``[B, T, D]`` (``layernorm``, ``rmsnorm``, ...)
dim, depth     32..64 step 16; 1..3                            always
heads          1, 2, 4 (they divide every width)               always
=============  ==============================================  ============================

Which registered model is built:

- ``reversible=true``: ``rev_transformer`` with that token mixer (Reformer-style two-stream
  couplings, memory flat in depth; Kitaev et al., 2020);
- ``hybrid``: ``gla_lm`` with ``pattern="gs"``, GLA and softmax blocks alternating (the hybrid
  of Yang et al., 2024, section 6);
- ``gla``: ``gla_lm``, the family's GLA model (its short convolution on ``q, k, v`` is what
  lets two small layers learn associative recall);
- any other mixer (``softmax``, or one a family registers later): ``transformer``.

``mlp="moe"`` makes every block's MLP a top-k mixture of experts. Sizes are for tasks of a few
thousand short sequences on two CPU cores.
"""

from __future__ import annotations

from typing import Any

import optuna

from archsmith.search.spaces import choices
from archsmith.search.spaces.base import model_spec
from archsmith.spec import Spec
from archsmith.tasks import Task

__all__ = ["HYBRID", "sequence_space"]

DIM_LOW, DIM_HIGH, DIM_STEP = 32, 64, 16
DIMS = tuple(range(DIM_LOW, DIM_HIGH + 1, DIM_STEP))
HEADS = (1, 2, 4)
DEPTH_LOW, DEPTH_HIGH = 1, 3
MLP_RATIO = 4  # the models' default hidden width / dim
HYBRID = "hybrid"
_GLA_MODEL = "gla_lm"


def attention_choices(task: Task) -> list[str]:
    """The token mixers this space offers for ``task``: the registered attention layers that
    run at every width and head count, and ``hybrid`` where ``gla_lm`` can build one."""
    mixers = choices.attentions((d, h) for d in DIMS for h in HEADS)
    if {"gla", "softmax"} <= set(mixers) and choices.compatible_models([_GLA_MODEL], task):
        mixers.append(HYBRID)
    return sorted(mixers)


def sequence_space(trial: optuna.Trial, task: Task) -> Spec:
    """A Transformer-family design for the token ``task``."""
    models = set(choices.compatible_models(("gla_lm", "rev_transformer", "transformer"), task))
    attention = trial.suggest_categorical("attention", attention_choices(task))
    reversible = False
    if attention != HYBRID and "rev_transformer" in models:
        reversible = trial.suggest_categorical("reversible", [False, True])
    dim = trial.suggest_int("dim", DIM_LOW, DIM_HIGH, step=DIM_STEP)
    depth = trial.suggest_int("depth", DEPTH_LOW, DEPTH_HIGH)
    heads = trial.suggest_categorical("heads", list(HEADS))
    options: dict[str, Any] = {
        "dim": dim,
        "depth": depth,
        "num_heads": heads,
        "mlp_layer": trial.suggest_categorical(
            "mlp", choices.mlps((d, d * MLP_RATIO) for d in DIMS)
        ),
        "norm_layer": trial.suggest_categorical("norm", choices.norms("tokens", DIMS)),
    }
    if reversible:
        model = "rev_transformer"
        options["attn_layer"] = attention
    elif attention == HYBRID:
        model = _GLA_MODEL
        options["pattern"] = "gs"
    elif attention == "gla" and _GLA_MODEL in models:
        model = _GLA_MODEL
    else:
        model = "transformer"
        options["attn_layer"] = attention
    return model_spec(task, model, options)
