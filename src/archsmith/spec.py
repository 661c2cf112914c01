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
can appear, loading a spec can never import or run arbitrary code. :func:`archsmith.build.build`
turns a spec into a module.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsmith.errors import ArchsmithError, did_you_mean
from archsmith.io import atomic_write_json
from archsmith.registry import get_block, get_model_entry

__all__ = ["BlockSpec", "Spec", "load_spec"]

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
    and outputs and may be left out when a task is passed to :func:`archsmith.build.build`.
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
        """Parse and structurally validate a spec (option values are checked when it is built)."""
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
