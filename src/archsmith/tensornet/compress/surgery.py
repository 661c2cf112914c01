"""Finding the dense layers to compress and swapping modules by their dotted names."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

__all__ = ["linear_layers", "linear_params", "module_params", "set_submodule"]


def linear_layers(
    model: nn.Module, keep: Callable[[str, nn.Linear], bool] = lambda name, layer: True
) -> dict[str, nn.Linear]:
    """``{dotted name: layer}`` of every ``nn.Linear`` in ``model`` that ``keep`` accepts, in
    module order."""
    return {
        name: module
        for name, module in model.named_modules()
        if type(module) is nn.Linear
        and keep(name, module)  # not subclasses (NonDynamicallyQuantizable...)
    }


def linear_params(layer: nn.Linear) -> int:
    """Weights plus bias of a dense layer."""
    return layer.in_features * layer.out_features + (
        layer.out_features if layer.bias is not None else 0
    )


def module_params(module: nn.Module) -> int:
    """Distinct parameters of ``module`` (shared tensors counted once)."""
    return sum(p.numel() for p in module.parameters())


def set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule at dotted path ``name`` (e.g. ``encoder.layer.0.output.dense``)."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    if not hasattr(parent, child):
        raise KeyError(f"{name!r} is not a submodule")
    setattr(parent, child, module)
