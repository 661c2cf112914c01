"""Building modules: a registered model for a task, or a spec's block list.

This is the floor where the registry (names to factories), the tasks (input shapes, output sizes)
and specs meet::

    model = create_model("mlp", task="digits", hidden=[128, 128])
    model = build({"task": "digits", "blocks": [{"type": "conv", "out_channels": 16},
                                                {"type": "global_pool"}]})

Both check every option against the factory's signature (:func:`archsmith.options.bind_options`,
with the registered layer names for ``norm_layer=``-style options), fill the task's context
(``in_shape``, ``num_outputs``, ``vocab_size``, ``per_position``) and set ``archsmith_spec`` on the
module: the JSON spec that rebuilds it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.options import bind_options
from archsmith.registry import ModelEntry, get_block, get_model_entry, list_layers
from archsmith.spec import BlockSpec, Spec
from archsmith.tasks import Task, get_task

__all__ = ["SpecModel", "build", "check_compatible", "create_model"]


def create_model(name: str, *, task: Task | str | None = None, **options: Any) -> nn.Module:
    """Build the registered model ``name``.

    Args:
        task: a :class:`~archsmith.tasks.Task` or task name whose input shape and outputs
            size the model; defaults to the model's ``default_task``.
        **options: the model's own options; unknown ones or bad values raise
            :class:`ArchsmithError` naming ``options.<name>``.

    The returned module carries ``archsmith_spec``, the JSON spec that rebuilds it.
    """
    entry = get_model_entry(name)
    task_obj = get_task(task or entry.default_task) if isinstance(task, str | None) else task
    check_compatible(entry, task_obj)
    kwargs = bind_options(
        entry.factory,
        options,
        path="options",
        context=task_obj.model_kwargs(),
        layer_names=list_layers,
    )
    model = entry.factory(**kwargs)
    model.archsmith_spec = Spec(  # type: ignore[assignment]
        task=task_obj.name,
        model=name,
        options=dict(options),
        task_options=dict(task_obj.options),
    )
    return model


def check_compatible(entry: ModelEntry, task: Task) -> None:
    """Raise a one-line error when ``entry`` cannot take ``task``'s inputs or targets."""
    if task.input.kind not in entry.inputs:
        raise ArchsmithError(
            f"model {entry.name!r} takes {'/'.join(entry.inputs)} inputs, but task "
            f"{task.name!r} gives {task.input.kind}"
        )
    if task.kind not in entry.task_kinds:
        raise ArchsmithError(
            f"model {entry.name!r} solves {'/'.join(entry.task_kinds)} tasks, but task "
            f"{task.name!r} is {task.kind}"
        )


class SpecModel(nn.Sequential):
    """The module built from a block-list spec: a sequential of the blocks (then the head)."""


def build(spec: Spec | dict[str, Any], task: Task | str | None = None) -> nn.Module:
    """Build the ``nn.Module`` that ``spec`` describes, sized for ``task``.

    Args:
        spec: a :class:`Spec` or its JSON dict.
        task: overrides ``spec.task`` (a :class:`~archsmith.tasks.Task` or a task name).

    Returns a module with ``archsmith_spec`` set to the (task-resolved) spec.
    """
    if not isinstance(spec, Spec):
        spec = Spec.from_dict(spec)
    if isinstance(task, str) or task is None:
        name = task or spec.task
        if name is None:
            raise ArchsmithError("task: the spec names no task and none was given")
        task_obj = get_task(name, **spec.task_options)
    else:
        task_obj = task
    if spec.model is not None:
        return create_model(spec.model, task=task_obj, **spec.options)
    assert spec.blocks is not None
    blocks = list(spec.blocks)
    if blocks[-1].type != "head":
        blocks.append(BlockSpec("head"))
    context = task_obj.model_kwargs()
    shape = tuple(task_obj.input.shape)
    dtype = torch.long if task_obj.input.kind == "tokens" else torch.float32
    modules: list[nn.Module] = []
    for i, block in enumerate(blocks):
        path = f"blocks[{i}]"
        factory = get_block(block.type, path=f"{path}.type")
        kwargs = bind_options(
            factory,
            block.options,
            path=path,
            context={**context, "in_shape": shape},
            layer_names=list_layers,
        )
        try:
            module = factory(**kwargs)
        except ArchsmithError as err:
            raise ArchsmithError(f"{path} ({block.type}): {err}") from None
        shape, dtype = _infer_output(module, shape, dtype, f"{path} ({block.type})")
        modules.append(module)
    model = SpecModel(*modules)
    model.archsmith_spec = Spec(  # type: ignore[assignment]
        task=task_obj.name, blocks=spec.blocks, task_options=dict(task_obj.options)
    )
    return model


def _infer_output(
    module: nn.Module, shape: tuple[int, ...], dtype: torch.dtype, where: str
) -> tuple[tuple[int, ...], torch.dtype]:
    """Per-sample output shape and dtype of ``module`` from a dry run on two zero samples."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(torch.zeros((2, *shape), dtype=dtype))
    except Exception as err:  # any failure here means the blocks do not fit together
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ArchsmithError(
            f"{where}: cannot take input of shape {list(shape)}: {first}"
        ) from None
    finally:
        module.train(was_training)
    return tuple(out.shape[1:]), out.dtype
