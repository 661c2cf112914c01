"""Checking that a spec names only registered models, blocks and layers, before it is built.

Building would find an unregistered name too, but it can only say which option holds it
(``options.norm_layer``); a user's space chose it through a trial parameter, and the parameter
is what the user must fix, so the error names both.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from typing import Any

from archsmith.errors import ArchsmithError, did_you_mean
from archsmith.options import LayerName
from archsmith.registry import (
    get_block,
    get_model_entry,
    list_blocks,
    list_layers,
    list_models,
)
from archsmith.spec import Spec

__all__ = ["check_spec_names"]


def check_spec_names(
    spec: Spec, params: Mapping[str, Any] | None = None, *, where: str = "spec"
) -> None:
    """Raise a one-line :class:`ArchsmithError` at the first unregistered name in ``spec``:
    its model, a block type, or a value of an option typed as a layer name
    (``norm_layer``, ``attn_layer``, a ``norm`` block's ``layer``, ...).

    Args:
        params: the trial parameters the spec was made from; the error names the parameters
            whose value is the bad name.
        where: the error's prefix (``"space my_space.py:space"``).
    """
    if spec.model is not None:
        if spec.model not in list_models():
            _unknown(where, "model", "model", spec.model, list_models(), params)
        _check_layers(get_model_entry(spec.model).factory, spec.options, "options", where, params)
    for i, block in enumerate(spec.blocks or []):
        path = f"blocks[{i}]"
        if block.type not in list_blocks():
            _unknown(where, f"{path}.type", "block", block.type, list_blocks(), params)
        _check_layers(get_block(block.type), block.options, path, where, params)


def _layer_kind(annotation: Any) -> str | None:
    """The layer kind of an option annotated ``Annotated[..., LayerName(kind)]``, else None."""
    if typing.get_origin(annotation) is typing.Annotated:
        for extra in typing.get_args(annotation)[1:]:
            if isinstance(extra, LayerName):
                return extra.kind
    return None


def _check_layers(
    factory: Callable[..., Any],
    options: Mapping[str, Any],
    path: str,
    where: str,
    params: Mapping[str, Any] | None,
) -> None:
    hints = typing.get_type_hints(factory, include_extras=True)
    for option, value in options.items():
        kind = _layer_kind(hints.get(option))
        if kind is None or not isinstance(value, str):
            continue
        names = list_layers(kind)
        if value not in names:
            _unknown(where, f"{path}.{option}", f"{kind} layer", value, names, params)


def _unknown(
    where: str,
    path: str,
    what: str,
    value: str,
    registered: list[str],
    params: Mapping[str, Any] | None,
) -> None:
    chosen_by = [name for name, v in (params or {}).items() if isinstance(v, str) and v == value]
    source = (
        "parameter " + ", ".join(repr(n) for n in chosen_by) + f" chose {path}"
        if chosen_by
        else path
    )
    raise ArchsmithError(
        f"{where}: {source} = {value!r}, which is not a registered {what}"
        f"{did_you_mean(value, registered)} (registered: {', '.join(registered)})"
    )
