"""Validation of user options against a factory's signature.

Models, blocks and layers are plain functions (or classes) with typed keyword parameters. A spec
or a command line supplies their options as JSON values; :func:`bind_options` checks each value
against the parameter's annotation and constraints and reports the first problem by its path::

    blocks[3].rank: must be >= 1
    options.hidden[1]: expected an integer, got 'wide'

Constraints ride on :data:`typing.Annotated` metadata (:class:`Range`, :class:`LayerName`), so a
factory's signature is the single source of truth for what it accepts. This module sits below
the registry: the caller that knows the registered layers passes ``layer_names`` in.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

from archsmith.errors import ArchsmithError, did_you_mean

__all__ = ["LayerName", "LayerNames", "Range", "bind_options", "check_value", "option_names"]

#: Parameters filled from the task or the previous block, never by the user.
CONTEXT_PARAMS = ("in_shape", "num_outputs", "vocab_size", "per_position")

#: ``layer_names(kind)`` -> the registered layer names of ``kind`` (the registry's ``list_layers``)
LayerNames = Callable[[str], Sequence[str]]


@dataclass(frozen=True)
class Range:
    """Numeric bounds for an option: ``Annotated[int, Range(min=1)]``."""

    min: float | None = None
    max: float | None = None
    min_inclusive: bool = True
    max_inclusive: bool = True

    def check(self, value: float, path: str) -> None:
        if self.min is not None:
            if self.min_inclusive and value < self.min:
                raise ArchsmithError(f"{path}: must be >= {self.min}, got {value}")
            if not self.min_inclusive and value <= self.min:
                raise ArchsmithError(f"{path}: must be > {self.min}, got {value}")
        if self.max is not None:
            if self.max_inclusive and value > self.max:
                raise ArchsmithError(f"{path}: must be <= {self.max}, got {value}")
            if not self.max_inclusive and value >= self.max:
                raise ArchsmithError(f"{path}: must be < {self.max}, got {value}")


@dataclass(frozen=True)
class LayerName:
    """Marks an option that names a registered layer of ``kind`` (norm, act, attn, linear).

    A string must be a registered name; Python callers may also pass a class or a callable,
    which a JSON spec cannot express (so a spec never reaches arbitrary code).
    """

    kind: str


def option_names(
    fn: Callable[..., Any], *, context_params: Sequence[str] = CONTEXT_PARAMS, skip: int = 0
) -> list[str]:
    """The user-settable keyword options of ``fn``: its parameters after the first ``skip``,
    less ``context_params`` and ``*args``/``**kwargs``."""
    params = list(inspect.signature(fn).parameters.values())[skip:]
    return [
        p.name
        for p in params
        if p.name not in context_params and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def bind_options(
    fn: Callable[..., Any],
    options: Mapping[str, Any],
    *,
    path: str,
    context: Mapping[str, Any] | None = None,
    context_params: Sequence[str] = CONTEXT_PARAMS,
    skip: int = 0,
    layer_names: LayerNames | None = None,
) -> dict[str, Any]:
    """Check ``options`` against ``fn``'s signature and return the keyword arguments to call it.

    Args:
        path: prefix of error messages (``blocks[3]`` gives ``blocks[3].rank: ...``).
        context: values for ``context_params`` (``in_shape``, ``num_outputs``, ...), passed
            only to the parameters ``fn`` declares; the user may not set those.
        context_params: the parameter names reserved for context (tasks have none).
        skip: leading parameters the caller passes positionally (a user loader's file path).
        layer_names: the registered layer names of a kind, to check :class:`LayerName` options;
            without it such an option need only be a string (or a class or callable).

    Unknown options, bad values and missing required options raise :class:`ArchsmithError`
    naming ``path.option``.
    """
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn, include_extras=True)
    allowed = option_names(fn, context_params=context_params, skip=skip)
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        if key not in allowed:
            listing = ", ".join(allowed) if allowed else "none"
            raise ArchsmithError(
                f"{path}.{key}: unknown option{did_you_mean(key, allowed)} (options: {listing})"
            )
        kwargs[key] = check_value(hints.get(key, Any), value, f"{path}.{key}", layer_names)
    for key, value in (context or {}).items():
        if key in sig.parameters:
            kwargs[key] = value
    missing = [
        name
        for name, p in list(sig.parameters.items())[skip:]
        if p.default is inspect.Parameter.empty
        and name not in kwargs
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if missing:
        raise ArchsmithError(f"{path}.{missing[0]}: required option is missing")
    return kwargs


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def check_value(
    annotation: Any, value: Any, path: str, layer_names: LayerNames | None = None
) -> Any:
    """Return ``value`` converted to ``annotation`` (JSON lists become tuples) or raise.

    ``layer_names`` checks :class:`LayerName` options against the registered names.
    """
    constraints: tuple[Any, ...] = ()
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *extra = typing.get_args(annotation)
        constraints = tuple(extra)
    for c in constraints:
        if isinstance(c, LayerName):
            return _check_layer(c.kind, value, path, layer_names)
    value = _check_type(annotation, value, path, layer_names)
    for c in constraints:
        if isinstance(c, Range) and isinstance(value, int | float) and not isinstance(value, bool):
            c.check(value, path)
    return value


def _check_layer(kind: str, value: Any, path: str, layer_names: LayerNames | None) -> Any:
    if value is None or callable(value):
        return value
    if not isinstance(value, str):
        raise ArchsmithError(f"{path}: expected the name of a {kind} layer, got {value!r}")
    if layer_names is None:
        return value
    names = list(layer_names(kind))
    if value not in names:
        raise ArchsmithError(
            f"{path}: unknown {kind} layer {value!r}{did_you_mean(value, names)} "
            f"(registered: {', '.join(names)})"
        )
    return value


def _check_type(tp: Any, value: Any, path: str, layer_names: LayerNames | None) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is inspect.Parameter.empty:
        return value
    if origin is Literal:
        if value not in args:
            raise ArchsmithError(
                f"{path}: must be one of {', '.join(repr(a) for a in args)}, got {value!r}"
            )
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arm in args:
            if arm is type(None):
                continue
            try:
                return check_value(arm, value, path, layer_names)
            except ArchsmithError as err:
                errors.append(str(err))
        raise ArchsmithError(errors[0] if len(errors) == 1 else f"{path}: invalid value {value!r}")
    if tp is type(None):
        if value is not None:
            raise ArchsmithError(f"{path}: must be null, got {value!r}")
        return None
    if tp is bool:
        if not isinstance(value, bool):
            raise ArchsmithError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArchsmithError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ArchsmithError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ArchsmithError(f"{path}: expected a string, got {value!r}")
        return value
    if origin in (tuple, list, collections.abc.Sequence):
        if not isinstance(value, list | tuple):
            raise ArchsmithError(f"{path}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ArchsmithError(f"{path}: expected {len(args)} items, got {len(value)}")
            return tuple(
                check_value(a, v, f"{path}[{i}]", layer_names)
                for i, (a, v) in enumerate(zip(args, value, strict=True))
            )
        item = args[0] if args else Any
        return tuple(check_value(item, v, f"{path}[{i}]", layer_names) for i, v in enumerate(value))
    if isinstance(tp, type):
        if not isinstance(value, tp):
            raise ArchsmithError(f"{path}: expected {_type_name(tp)}, got {value!r}")
        return value
    return value
