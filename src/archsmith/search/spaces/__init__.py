"""Search spaces, define-by-run: ``space(trial, task) -> Spec``.

A space calls ``trial.suggest_*`` (Optuna's trial API, so every Optuna sampler and archsmith's
own strategies can drive it) and returns an archsmith spec that names registered models and
layers. The chosen design is rebuilt without a study from its parameters
(:func:`rebuild`, through :class:`optuna.trial.FixedTrial`).

A default space per task kind (:func:`default_space`) draws on every family:

=============================  ===========================================================
task                           space
=============================  ===========================================================
vector classification,         :func:`~.vector.vector_space`: MLP (norm, activation, dense
regression                     or tensorized linear layers), SNN, early-exit MLP
image classification,          :func:`~.image.image_space`: CNN, plain or reversible MBConv
regression                     CNN, channel-masked CNN, early-exit CNN
token inputs (sequence tasks)  :func:`~.sequence.sequence_space`: softmax, GLA or hybrid
                               Transformers, plain or reversible, dense or MoE MLPs
survival                       :func:`~.survival.survival_space`: SNN-Cox, MLP-Cox
=============================  ===========================================================

Every layer choice is the set of registered layers that work in that block
(:mod:`~.choices` probes them), so a layer a family registers later joins the default spaces
without an edit here. Users pass their own space as ``FILE.py:FUNCTION``
(:func:`load_space`).
"""

from __future__ import annotations

from archsmith.errors import ArchsmithError
from archsmith.search.spaces.base import CheckedSpace, Space, model_spec
from archsmith.search.spaces.image import image_space
from archsmith.search.spaces.loading import load_space, parse_space_ref
from archsmith.search.spaces.names import check_spec_names
from archsmith.search.spaces.rebuild import rebuild
from archsmith.search.spaces.sequence import sequence_space
from archsmith.search.spaces.survival import survival_space
from archsmith.search.spaces.vector import vector_space
from archsmith.tasks import Task

__all__ = [
    "CheckedSpace",
    "Space",
    "check_spec_names",
    "default_space",
    "image_space",
    "load_space",
    "model_spec",
    "parse_space_ref",
    "rebuild",
    "sequence_space",
    "survival_space",
    "vector_space",
]


def default_space(task: Task) -> CheckedSpace:
    """The default space for ``task``, by its kind and input kind (see the module docstring).

    Tasks no default space covers (segmentation, 3D volumes) raise a one-line error that
    points to ``--space``.
    """
    kind, inputs, shape = task.kind, task.input.kind, tuple(task.input.shape)
    if kind == "survival" and inputs == "vector":
        return CheckedSpace(survival_space, "default survival space")
    if inputs == "tokens" and kind in ("sequence", "classification", "regression"):
        return CheckedSpace(sequence_space, "default sequence space")
    if kind in ("classification", "regression"):
        if inputs == "vector":
            return CheckedSpace(vector_space, "default vector space")
        if inputs == "image" and len(shape) == 3:
            return CheckedSpace(image_space, "default image space")
    raise ArchsmithError(
        f"no default search space for task {task.name!r} ({kind}, {inputs} inputs "
        f"{list(shape)}); pass one with --space FILE.py:FUNCTION"
    )
