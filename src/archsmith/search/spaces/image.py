"""The default space for images ``[C, H, W]`` (digits, ``npz:`` image sets): CNN stages.

Stage ``s`` has ``width * 2**s`` channels and runs at half the previous map size; there are at
most three stages, fewer on small images, so no stage's map falls below 2x2 (a norm over one
position is a constant).

=============  =============================================  ==============================
parameter      values                                         model
=============  =============================================  ==============================
model          ``cnn``, ``early_exit_cnn``, ``masked_cnn``,   (those that fit the task)
               ``rev_cnn``
width, stages  8..32 step 8; 1..3                             all
norm           registered norms that normalize feature maps   cnn, rev_cnn
act            registered activations but ``none``            cnn, rev_cnn
blocks         1..2 MBConv blocks per stage                   rev_cnn
expand_ratio   2, 4                                           rev_cnn
reversible     false (plain MBConv), true (reversible)        rev_cnn
mass           0.5..0.95 step 0.05: saliency mass kept        masked_cnn
gate           the model's ``gate`` literals                  early_exit_cnn
cost_weight    0.01..1 (log)                                  early_exit_cnn
=============  =============================================  ==============================

- ``cnn``: conv-norm-act stages with max-pooling (the baseline).
- ``rev_cnn``: stages of inverted bottlenecks (MBConv, Sandler et al. 2018) coupled
  RevNet-style (Gomez et al., 2017) so training memory is flat in depth; ``reversible=false``
  is the plain-autograd twin with the same layers.
- ``masked_cnn``: a dense stem, then ``stages`` conv blocks whose output channels are masked
  per input (Fire Together Wire Together, Elkerdawy et al., CVPR 2022).
- ``early_exit_cnn``: an exit head after every stage (JEI-DNN, Regol et al., ICLR 2024).
"""

from __future__ import annotations

from typing import Any

import optuna

from archsmith.errors import ArchsmithError
from archsmith.search.spaces import choices
from archsmith.search.spaces.base import model_spec
from archsmith.spec import Spec
from archsmith.tasks import Task

__all__ = ["MODELS", "image_space", "max_stages"]

MODELS = ("cnn", "early_exit_cnn", "masked_cnn", "rev_cnn")
WIDTH_LOW, WIDTH_HIGH, WIDTH_STEP = 8, 32, 8
MAX_STAGES = 3
EXPAND_RATIOS = (2, 4)
BLOCKS_HIGH = 2


def max_stages(task: Task) -> int:
    """The most stages whose maps stay >= 2x2 on ``task``'s images (at most 3, at least 1)."""
    side = min(_image_size(task))
    stages = 1
    while stages < MAX_STAGES and side // 2 >= 2:
        stages, side = stages + 1, side // 2
    return stages


def _image_size(task: Task) -> tuple[int, int]:
    shape = tuple(task.input.shape)
    if task.input.kind != "image" or len(shape) != 3:
        raise ArchsmithError(
            f"image space: task {task.name!r} gives {task.input.kind} inputs {list(shape)}, "
            "not [C, H, W] images"
        )
    return shape[1], shape[2]


def _norm_sizes(task: Task) -> tuple[list[int], list[int]]:
    """Every feature count a norm of ``cnn`` or ``rev_cnn`` sees in this space (stage widths,
    the two halves a reversible coupling splits them into, and those halves expanded), and
    every square map size it sees them at."""
    channels = {
        w * 2**s
        for w in range(WIDTH_LOW, WIDTH_HIGH + 1, WIDTH_STEP)
        for s in range(max_stages(task))
    }
    sizes = set(channels)
    for c in channels:
        for part in (c // 2, c - c // 2):
            sizes |= {part} | {max(1, round(part * r)) for r in EXPAND_RATIOS}
    side = min(_image_size(task))
    spatial = [max(1, side // 2**s) for s in range(max_stages(task))]
    return sorted(sizes), sorted(set(spatial))


def image_space(trial: optuna.Trial, task: Task) -> Spec:
    """A CNN design for the image ``task`` (classification or regression)."""
    stages_high = max_stages(task)
    model = trial.suggest_categorical("model", choices.compatible_models(MODELS, task))
    width = trial.suggest_int("width", WIDTH_LOW, WIDTH_HIGH, step=WIDTH_STEP)
    stages = trial.suggest_int("stages", 1, stages_high)
    channels = [width * 2**s for s in range(stages)]
    options: dict[str, Any]
    if model in ("cnn", "rev_cnn"):
        sizes, spatial = _norm_sizes(task)
        options = {
            "channels": channels,
            "norm_layer": trial.suggest_categorical("norm", choices.norms("image", sizes, spatial)),
            "act_layer": trial.suggest_categorical("act", choices.activations()),
        }
        if model == "rev_cnn":
            options["depths"] = [trial.suggest_int("blocks", 1, BLOCKS_HIGH)] * stages
            options["expand_ratio"] = trial.suggest_int(
                "expand_ratio", EXPAND_RATIOS[0], EXPAND_RATIOS[-1], step=2
            )
            options["reversible"] = trial.suggest_categorical("reversible", [False, True])
    elif model == "masked_cnn":
        options = {
            "channels": [width, *channels],  # the dense stem, then the masked stages
            # rounded: Optuna's stepped floats carry binary noise into the spec
            "mass": round(trial.suggest_float("mass", 0.5, 0.95, step=0.05), 6),
        }
    elif model == "early_exit_cnn":
        options = {
            "channels": channels,
            "gate": trial.suggest_categorical("gate", choices.literal_choices(model, "gate")),
            "cost_weight": trial.suggest_float("cost_weight", 0.01, 1.0, log=True),
        }
    else:  # a name in MODELS without a branch here
        raise AssertionError(f"image space: no options for model {model!r}")
    return model_spec(task, model, options)
