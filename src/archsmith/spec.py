"""Architecture specs: plain JSON that names registered models or blocks, never code.

Two forms::

    {"archsmith_spec": 1, "task": "digits", "model": "cnn", "options": {"channels": [16, 32]}}

    {"archsmith_spec": 1, "task": "digits",
     "blocks": [{"type": "conv", "out_channels": 16}, {"type": "pool"},
                {"type": "flatten"}, {"type": "linear", "out_features": 64},
                {"type": "act", "layer": "relu"}]}

A block list is built left to right: each block receives the per-sample shape the previous
one produced (found by a dry run), and a ``head`` block sized for the task is appended when the
list does not end with one. Every problem is reported with the field's path, e.g.
``blocks[3].out_features: must be >= 1, got 0``. Since only registered names and JSON values
can appear, loading a spec can never import or run arbitrary code.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from archsmith.errors import ArchsmithError, did_you_mean
from archsmith.io import atomic_write_json
from archsmith.options import bind_options
from archsmith.registry import create_model, get_block, get_model_entry

if TYPE_CHECKING:
    from archsmith.tasks import Task

__all__ = ["BlockSpec", "Spec", "SpecModel", "build", "load_spec"]

SPEC_VERSION = 1
_TOP_FIELDS = ("archsmith_spec", "task", "task_options", "model", "options", "blocks")


@dataclass
class BlockSpec:
    """One block of a block-list spec: its registered ``type`` and its options."""

    type: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.options}


@dataclass
class Spec:
    """An architecture: a registered ``model`` with ``options``, or a list of ``blocks``.

    ``task`` (with ``task_options``) names what the model is built for; it sizes the inputs
    and outputs and may be left out when a task is passed to :func:`build`.
    """

    task: str | None = None
    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    blocks: list[BlockSpec] | None = None
    task_options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"archsmith_spec": SPEC_VERSION}
        if self.task is not None:
            out["task"] = self.task
        if self.task_options:
            out["task_options"] = dict(self.task_options)
        if self.model is not None:
            out["model"] = self.model
            out["options"] = _jsonable(self.options, "options")
        if self.blocks is not None:
            out["blocks"] = [
                _jsonable(b.to_dict(), f"blocks[{i}]") for i, b in enumerate(self.blocks)
            ]
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Spec:
        """Parse and structurally validate a spec (option values are checked by :func:`build`)."""
        if not isinstance(data, dict):
            raise ArchsmithError(f"spec: expected a JSON object, got {type(data).__name__}")
        for key in data:
            if key not in _TOP_FIELDS:
                raise ArchsmithError(
                    f"{key}: unknown spec field{did_you_mean(key, _TOP_FIELDS)} "
                    f"(fields: {', '.join(_TOP_FIELDS)})"
                )
        version = data.get("archsmith_spec", SPEC_VERSION)
        if version != SPEC_VERSION:
            raise ArchsmithError(f"archsmith_spec: unsupported version {version!r} (expected 1)")
        task = data.get("task")
        if task is not None and not isinstance(task, str):
            raise ArchsmithError(f"task: expected a task name, got {task!r}")
        task_options = _object(data.get("task_options", {}), "task_options")
        has_model, has_blocks = "model" in data, "blocks" in data
        if has_model == has_blocks:
            raise ArchsmithError("spec: give exactly one of 'model' or 'blocks'")
        if has_model:
            model = data["model"]
            if not isinstance(model, str):
                raise ArchsmithError(f"model: expected a model name, got {model!r}")
            get_model_entry(model)
            options = _object(data.get("options", {}), "options")
            return cls(task=task, model=model, options=options, task_options=task_options)
        if "options" in data:
            raise ArchsmithError(
                "options: only a 'model' spec takes options; blocks carry their own"
            )
        raw = data["blocks"]
        if not isinstance(raw, list) or not raw:
            raise ArchsmithError("blocks: expected a non-empty list of blocks")
        blocks = []
        for i, item in enumerate(raw):
            entry = _object(item, f"blocks[{i}]")
            kind = entry.pop("type", None)
            if not isinstance(kind, str):
                raise ArchsmithError(f"blocks[{i}].type: expected a block name, got {kind!r}")
            get_block(kind, path=f"blocks[{i}].type")
            blocks.append(BlockSpec(kind, entry))
        return cls(task=task, blocks=blocks, task_options=task_options)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the spec as JSON (atomically)."""
        return atomic_write_json(path, self.to_dict())


def load_spec(path: str | os.PathLike[str]) -> Spec:
    """Read a spec file; unreadable or malformed files raise one-line errors."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise ArchsmithError(f"cannot read spec {str(path)!r}: {reason}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ArchsmithError(
            f"spec {str(path)!r} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    return Spec.from_dict(data)


class SpecModel(nn.Sequential):
    """The module built from a block-list spec: a sequential of the blocks (then the head)."""


def build(spec: Spec | dict[str, Any], task: Task | str | None = None) -> nn.Module:
    """Build the ``nn.Module`` that ``spec`` describes, sized for ``task``.

    Args:
        spec: a :class:`Spec` or its JSON dict.
        task: overrides ``spec.task`` (a :class:`~archsmith.tasks.Task` or a task name).

    Returns a module with ``archsmith_spec`` set to the (task-resolved) spec.
    """
    from archsmith.tasks import get_task

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
            factory, block.options, path=path, context={**context, "in_shape": shape}
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


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ArchsmithError(f"{path}: expected a JSON object, got {value!r}")
    return dict(value)


def _jsonable(value: Any, path: str) -> Any:
    """Check that ``value`` is plain JSON (a spec must not carry classes or callables)."""
    if isinstance(value, dict):
        return {k: _jsonable(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ArchsmithError(
        f"{path}: {value!r} cannot be written to a JSON spec (use a registered name)"
    )
