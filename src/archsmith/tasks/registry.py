"""Task registry: ``register_task`` / ``get_task`` / ``list_tasks``.

A task factory is a function of keyword options with typed defaults::

    @register_task("mqar", "multi-query associative recall (Zoology)")
    def mqar(*, seq_len: Annotated[int, Range(min=4)] = 64, ...) -> Task: ...

:func:`get_task` checks the user's options against that signature (the annotations and their
:class:`~archsmith.options.Range` bounds) before calling it, so an unknown option or a bad value
is one :class:`ArchsmithError` naming ``task.option``. User data comes in as ``csv:PATH`` or
``npz:PATH``; those loaders take the path as their first argument.

Tasks are cached: the same name and options give the same :class:`Task` object (for user files,
until the file changes), so treat tasks as read-only.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from archsmith.errors import ArchsmithError, did_you_mean
from archsmith.options import bind_options
from archsmith.tasks.base import Task

__all__ = [
    "TaskEntry",
    "get_task",
    "list_tasks",
    "register_task",
    "register_user_loader",
]

TaskFactory = Callable[..., Task]


@dataclass(frozen=True)
class TaskEntry:
    """A registered task: its name, one-line description and factory."""

    name: str
    description: str
    factory: TaskFactory


_TASKS: dict[str, TaskEntry] = {}
# "csv" -> loader(path, **options): the prefixes of ``PREFIX:PATH`` task names.
_USER_LOADERS: dict[str, TaskEntry] = {}


def register_task(name: str, description: str) -> Callable[[TaskFactory], TaskFactory]:
    """Decorator: register ``factory(**options) -> Task`` under ``name``."""

    def decorate(factory: TaskFactory) -> TaskFactory:
        old = _TASKS.get(name)
        if old is not None and old.factory is not factory:
            raise ValueError(f"task {name!r} is already registered")
        _TASKS[name] = TaskEntry(name, description, factory)
        return factory

    return decorate


def register_user_loader(prefix: str, description: str) -> Callable[[TaskFactory], TaskFactory]:
    """Decorator: ``loader(path, **options) -> Task`` serves task names ``PREFIX:PATH``."""

    def decorate(loader: TaskFactory) -> TaskFactory:
        _USER_LOADERS[prefix] = TaskEntry(prefix, description, loader)
        return loader

    return decorate


def list_tasks() -> list[str]:
    """Names of the registered tasks, sorted (user data prefixes not included)."""
    return sorted(_TASKS)


def get_task(name: str, **options: Any) -> Task:
    """The task called ``name``, built with ``options`` (cached).

    Args:
        name: a registered name (see :func:`list_tasks`), ``csv:PATH`` or ``npz:PATH``.
        **options: the task's options, e.g. ``get_task("mqar", seq_len=128)`` or
            ``get_task("csv:houses.csv", target="price")``.

    Raises:
        ArchsmithError: unknown name (with a suggestion), unknown option, bad option value, or a
            malformed user file.
    """
    if not isinstance(name, str):
        raise ArchsmithError(f"task name must be a string, got {name!r}")
    prefix, sep, path = name.partition(":")
    version: Hashable = None
    if sep and prefix in _USER_LOADERS:
        if not path:
            raise ArchsmithError(f"task {name!r}: give a file after '{prefix}:'")
        version = _file_version(path)
    elif name not in _TASKS:
        choices = [*_TASKS, *(f"{p}:PATH" for p in _USER_LOADERS)]
        raise ArchsmithError(
            f"unknown task {name!r}{did_you_mean(name, _TASKS)} (tasks: {', '.join(choices)})"
        )
    key = tuple(sorted((k, _freeze(v)) for k, v in options.items()))
    try:
        hash(key)
    except TypeError:  # an unhashable option value (never valid anyway): skip the cache
        return _build_uncached(name, options)
    return _build(name, version, key)


def _file_version(path: str) -> Hashable:
    """Modification time and size of ``path``, so the cache notices an edited file."""
    try:
        st = os.stat(path)
    except OSError:
        return None  # the loader reports the problem in its own words
    # abspath: the same relative name means another file after a chdir.
    return (os.path.abspath(path), st.st_mtime_ns, st.st_size)


def _freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


@functools.lru_cache(maxsize=32)
def _build(name: str, version: Hashable, options: tuple[tuple[str, Any], ...]) -> Task:
    del version  # part of the cache key only
    return _build_uncached(name, dict(options))


def _build_uncached(name: str, options: Mapping[str, Any]) -> Task:
    prefix, sep, path = name.partition(":")
    if sep and prefix in _USER_LOADERS:
        entry = _USER_LOADERS[prefix]
        kwargs = bind_options(entry.factory, options, path=prefix, context_params=(), skip=1)
        task = entry.factory(path, **kwargs)
    else:
        entry = _TASKS[name]
        kwargs = bind_options(entry.factory, options, path=name, context_params=())
        task = entry.factory(**kwargs)
    if not task.description:
        task.description = entry.description
    # The user's options (not the defaults): get_task(task.name, **task.options) rebuilds it.
    task.options = dict(options)
    return task
