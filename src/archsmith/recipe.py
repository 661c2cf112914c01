"""Recipes: the training settings a registered model recommends for itself.

A model whose good numbers need settings other than the trainer's defaults says so where it is
registered, so that ``archsmith train``, the benchmarks and the search all train it the same
way and every number in the README is one plain command away::

    @register_model("snn", ..., recipe=Recipe(lr=1e-4, weight_decay=0.0, note="..."))

Precedence, everywhere: a setting the user gives > the model's recipe > the trainer's default
(:class:`archsmith.train.TrainConfig`, which does the merging in
:func:`archsmith.train.resolve_config`). A recipe only names what differs; everything it leaves
unset stays the trainer's default.

"Unset" is its own value (:data:`UNSET`), not ``None``: for the trainer ``patience=None``
already means "never stop early" and ``grad_clip=None`` "no clipping", and a recipe must be able
to say either.

Besides training settings a recipe may carry model ``options`` that its settings were chosen
with (the MPS classifier's kernel start, whose small learning rate would only crawl from the
default start). ``archsmith train --model NAME`` builds the model with them under the user's
``--opt``; the run's ``spec.json`` holds every option the model was built with, so a spec
rebuilds what was trained whatever the recipe says later. Plain
:func:`archsmith.build.create_model` does not apply them: a factory's defaults stay its
defaults.

This module is a leaf (below the registry, which stores a recipe on each model entry).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Final, Literal

__all__ = ["RECIPE_SETTINGS", "UNSET", "Recipe", "Unset", "format_setting"]


class _Unset(enum.Enum):
    UNSET = "unset"

    def __repr__(self) -> str:
        return "UNSET"


#: the value of a recipe field the recipe does not set
UNSET: Final = _Unset.UNSET
Unset = Literal[_Unset.UNSET]


@dataclass(frozen=True)
class Recipe:
    """Recommended training settings of one registered model; every field defaults to unset.

    The settings mean what the :class:`archsmith.train.TrainConfig` fields of the same names
    mean (``batch_size="full"``: the whole training split in every step). ``seed`` and
    ``eval_batch_size`` are not here: they belong to a run, not to a model.

    Attributes:
        options: model options the settings were chosen with (see the module docstring).
        note: why these settings, in a sentence or two; ``archsmith models NAME`` shows it.
    """

    lr: float | Unset = UNSET
    weight_decay: float | Unset = UNSET
    epochs: int | Unset = UNSET
    batch_size: int | Literal["full"] | Unset = UNSET
    weights: Literal["best", "last", "swa"] | Unset = UNSET
    swa_start: float | Unset = UNSET
    patience: int | Unset | None = UNSET
    warmup_fraction: float | Unset = UNSET
    min_lr_ratio: float | Unset = UNSET
    grad_clip: float | Unset | None = UNSET
    options: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""

    def __post_init__(self) -> None:
        # the registry shares one recipe between every caller: a read-only view keeps one
        # caller's edits out of the next one's model
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def settings(self) -> dict[str, Any]:
        """The training settings this recipe sets, by :class:`TrainConfig` field name."""
        return {
            name: getattr(self, name)
            for name in RECIPE_SETTINGS
            if getattr(self, name) is not UNSET
        }

    def is_empty(self) -> bool:
        """Whether the recipe sets nothing (the trainer's defaults and the factory's options)."""
        return not self.settings() and not self.options

    def describe(self, *, options: bool = True) -> str:
        """One line: ``lr=0.0001 weight_decay=0 options: init=kernel``; ``-`` when empty
        (``options=False``: the training settings only)."""
        parts = [f"{k}={format_setting(v)}" for k, v in self.settings().items()]
        if self.options and options:
            parts.append(
                "options: " + " ".join(f"{k}={format_setting(v)}" for k, v in self.options.items())
            )
        return " ".join(parts) or "-"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the set settings, plus ``options`` and ``note`` when present."""
        out: dict[str, Any] = self.settings()
        if self.options:
            out["options"] = dict(self.options)
        if self.note:
            out["note"] = self.note
        return out


def format_setting(value: Any) -> str:
    """A setting or option value as the command line spells it: ``1e-04``, ``off`` for None
    (``--patience off``), JSON for lists."""
    if value is None:
        return "off"  # patience / grad_clip: None switches the feature off
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


#: the recipe fields that are training settings (all but ``options`` and ``note``)
RECIPE_SETTINGS: tuple[str, ...] = tuple(
    f.name for f in fields(Recipe) if f.name not in ("options", "note")
)
