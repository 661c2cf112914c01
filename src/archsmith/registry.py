"""Registries: models (timm style) and layer types that any block can take by name.

Models::

    @register_model("mlp", default_task="digits", inputs=("vector", "image"))
    def mlp(in_shape: tuple[int, ...], num_outputs: int, hidden: tuple[int, ...] = (256,)) -> nn.Module:
        ...

    list_models("*cnn*")
    get_model_entry("mlp").factory

This module is a leaf of the package: it maps names to factories and knows nothing of tasks or
specs. Building a model for a task (checking that the two fit, validating options, filling
``in_shape``, ``num_outputs``, ``vocab_size`` and ``per_position`` from the task) happens one floor
up, in :func:`archsmith.build.create_model`.

Families register themselves as plugins: each names its package under the
``archsmith.plugins`` entry-point group (``pyproject.toml``), and the first look-up imports them
all, so that ``list_models()`` sees every family without the user importing it and a third-party
package can add a family the same way.

Layers: four kinds, each a name -> factory map, so that ``norm_layer="evonorm_s0"`` or
``linear_layer="tt"`` plugs one family's layer into another family's block.

=========  ====================================================  ===========================
kind       factory signature                                     tensor contract
=========  ====================================================  ===========================
norm       ``(num_features) -> Module``                          see each layer's docstring
act        ``() -> Module``                                      elementwise
attn       ``(dim, num_heads, *, causal, dropout) -> Module``    ``[B, T, D] -> [B, T, D]``
linear     ``(in_features, out_features, bias=True) -> Module``  ``[..., in] -> [..., out]``
=========  ====================================================  ===========================
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata

from torch import nn

from archsmith.errors import ArchsmithError, did_you_mean
from archsmith.recipe import Recipe

__all__ = [
    "LAYER_KINDS",
    "PLUGIN_GROUP",
    "LayerArg",
    "ModelEntry",
    "get_block",
    "get_layer",
    "get_model_entry",
    "list_blocks",
    "list_layers",
    "list_models",
    "register_block",
    "register_layer",
    "register_model",
]

LAYER_KINDS = ("norm", "act", "attn", "linear", "mlp")

#: a layer type as blocks take it: a registered name, a class or factory, or None ("none")
LayerArg = str | Callable[..., nn.Module] | None

#: The entry-point group whose modules register built-in (and third-party) models, blocks and
#: layers when imported; archsmith's own families are listed in its ``pyproject.toml``.
PLUGIN_GROUP = "archsmith.plugins"

_MODELS: dict[str, ModelEntry] = {}
_LAYERS: dict[str, dict[str, Callable[..., nn.Module]]] = {kind: {} for kind in LAYER_KINDS}
_BLOCKS: dict[str, Callable[..., nn.Module]] = {}
_loaded = False


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its factory and what it is for."""

    name: str
    factory: Callable[..., nn.Module]
    default_task: str
    inputs: tuple[str, ...]
    task_kinds: tuple[str, ...]
    family: str
    description: str
    tags: tuple[str, ...] = field(default=())
    #: recommended training settings (and the options they were chosen with); empty: the
    #: trainer's defaults. See :mod:`archsmith.recipe`.
    recipe: Recipe = field(default_factory=Recipe)


def _load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for entry_point in metadata.entry_points(group=PLUGIN_GROUP):
        entry_point.load()


def register_model(
    name: str,
    *,
    default_task: str,
    inputs: Iterable[str] = ("vector", "image"),
    task_kinds: Iterable[str] = ("classification", "regression"),
    family: str = "baseline",
    description: str | None = None,
    tags: Iterable[str] = (),
    recipe: Recipe | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a model factory under ``name``.

    Args:
        default_task: the task the model is built for in tests and ``archsmith cost``.
        inputs: input kinds it accepts (``vector``, ``image``, ``tokens``).
        task_kinds: task kinds it can solve (``classification``, ``regression``,
            ``survival``, ``sequence``).
        family: the archsmith family (``baseline``, ``reversible``, ...).
        description: one line; defaults to the first line of the factory's docstring.
        recipe: the training settings the model's reported numbers were reached with, used by
            ``archsmith train``, the benchmarks and the search unless the user overrides them
            (:class:`~archsmith.recipe.Recipe`; ``None``: the trainer's defaults).
    """

    def decorate(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS and _MODELS[name].factory is not fn:
            raise ValueError(f"model {name!r} is already registered")
        doc = description or (fn.__doc__ or "").strip().splitlines()[0:1]
        _MODELS[name] = ModelEntry(
            name=name,
            factory=fn,
            default_task=default_task,
            inputs=tuple(inputs),
            task_kinds=tuple(task_kinds),
            family=family,
            description=doc if isinstance(doc, str) else (doc[0] if doc else ""),
            tags=tuple(tags),
            recipe=recipe or Recipe(),
        )
        return fn

    return decorate


def list_models(pattern: str = "*", *, family: str | None = None) -> list[str]:
    """Registered model names matching the shell-style ``pattern``, sorted."""
    _load_plugins()
    return sorted(
        n
        for n, e in _MODELS.items()
        if fnmatch.fnmatch(n, pattern) and (family is None or e.family == family)
    )


def get_model_entry(name: str) -> ModelEntry:
    """The :class:`ModelEntry` for ``name``; unknown names raise with close matches."""
    _load_plugins()
    if name not in _MODELS:
        raise ArchsmithError(
            f"unknown model {name!r}{did_you_mean(name, _MODELS)} (see 'archsmith models')"
        )
    return _MODELS[name]


def register_layer(
    kind: str, name: str
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a layer factory of ``kind`` (one of :data:`LAYER_KINDS`) under ``name``."""
    if kind not in _LAYERS:
        raise ValueError(f"unknown layer kind {kind!r}; kinds: {LAYER_KINDS}")

    def decorate(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _LAYERS[kind] and _LAYERS[kind][name] is not fn:
            raise ValueError(f"{kind} layer {name!r} is already registered")
        _LAYERS[kind][name] = fn
        return fn

    return decorate


def list_layers(kind: str) -> list[str]:
    """Registered layer names of ``kind``, sorted."""
    _load_plugins()
    if kind not in _LAYERS:
        raise ArchsmithError(f"unknown layer kind {kind!r}{did_you_mean(kind, LAYER_KINDS)}")
    return sorted(_LAYERS[kind])


def get_layer(kind: str, layer: str | Callable[..., nn.Module] | None) -> Callable[..., nn.Module]:
    """Resolve ``layer`` to a factory: a registered name, a class/partial (returned as is), or
    ``None`` (the ``"none"`` layer of ``kind`` when there is one: blocks switch parts off that way).
    """
    if callable(layer):
        return layer
    names = list_layers(kind)
    key = "none" if layer is None else layer
    if key not in _LAYERS[kind]:
        raise ArchsmithError(
            f"unknown {kind} layer {key!r}{did_you_mean(key, names)} (registered: {', '.join(names)})"
        )
    return _LAYERS[kind][key]


def register_block(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a spec block factory under ``name``.

    A block factory takes ``in_shape`` (the per-sample shape of its input, without the batch
    dimension) plus typed keyword options, and may ask for ``num_outputs``, ``vocab_size`` and
    ``per_position`` from the task. :func:`archsmith.build.build` infers its output shape.
    """

    def decorate(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _BLOCKS and _BLOCKS[name] is not fn:
            raise ValueError(f"block {name!r} is already registered")
        _BLOCKS[name] = fn
        return fn

    return decorate


def list_blocks() -> list[str]:
    """Registered spec block names, sorted."""
    _load_plugins()
    return sorted(_BLOCKS)


def get_block(name: str, *, path: str = "type") -> Callable[..., nn.Module]:
    """The block factory ``name``; unknown names raise naming ``path``."""
    _load_plugins()
    if name not in _BLOCKS:
        raise ArchsmithError(
            f"{path}: unknown block {name!r}{did_you_mean(name, _BLOCKS)} "
            f"(blocks: {', '.join(sorted(_BLOCKS))})"
        )
    return _BLOCKS[name]
