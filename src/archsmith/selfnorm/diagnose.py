"""Per-layer activation statistics: does a network keep its signal at mean 0, variance 1?

:func:`diagnose` runs one forward pass and records, for every activation output (or every leaf
module), the mean and variance over the batch and the features. A self-normalizing network
keeps both near (0, 1) at every depth; a ReLU network with default initialisation lets the
variance collapse or explode.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["LayerStats", "diagnose"]

#: Modules whose outputs are the "activations" of a layer.
_ACTIVATIONS = (
    nn.SELU,
    nn.ReLU,
    nn.GELU,
    nn.SiLU,
    nn.ELU,
    nn.Tanh,
    nn.Sigmoid,
    nn.LeakyReLU,
)


@dataclass(frozen=True)
class LayerStats:
    """Statistics of one module's output over the batch and all of its features."""

    index: int  # depth order in which the forward pass reached the module
    name: str  # qualified module name, e.g. "body.3.1"
    kind: str  # module class
    mean: float
    var: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def diagnose(
    model: nn.Module, x: torch.Tensor, *, layers: str = "activations", train: bool = False
) -> list[LayerStats]:
    """Mean and variance of every layer's output on input ``x``.

    Args:
        model: any module; left in the train/eval mode it had.
        x: an input batch ``[B, ...]`` (standardized, for the self-normalizing property).
        layers: ``"activations"`` (outputs of activation modules) or ``"leaves"`` (every module
            without children).
        train: run in train mode (dropout on); default eval.

    Returns:
        One :class:`LayerStats` per recorded module, in the order the forward pass reached them.
    """
    if layers not in ("activations", "leaves"):
        raise ValueError(f"layers must be 'activations' or 'leaves', got {layers!r}")
    stats: list[LayerStats] = []

    def wanted(module: nn.Module) -> bool:
        if layers == "activations":
            return isinstance(module, _ACTIVATIONS)
        return next(module.children(), None) is None

    def hook(name: str) -> Any:
        def record(module: nn.Module, _inputs: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor) and output.is_floating_point():
                out = output.double()
                stats.append(
                    LayerStats(
                        len(stats),
                        name,
                        type(module).__name__,
                        float(out.mean()),
                        float(out.var(unbiased=False)),
                    )
                )

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if wanted(m)]
    was_training = model.training
    model.train(train)
    try:
        model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return stats
