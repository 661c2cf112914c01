"""Fast walks over a module tree, for the engine's per-block work in backward.

``nn.Module.modules()`` / ``parameters()`` build qualified names and run generators; in a deep
reversible stack they are called for every block on every step, where that bookkeeping showed
up in profiles. These walks visit the same objects without the names.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["parameters_requiring_grad", "submodules", "trainable_parameters"]


def submodules(module: nn.Module, skip: nn.Module | None = None) -> list[nn.Module]:
    """``module`` and all its descendants, breadth first (a module reachable twice is listed
    twice: callers must not mind); ``skip`` is listed but not entered."""
    out = [module]
    i = 0
    while i < len(out):
        if out[i] is not skip:
            out.extend([c for c in out[i]._modules.values() if c is not None])
        i += 1
    return out


def parameters_requiring_grad(modules: Sequence[nn.Module]) -> list[Tensor]:
    """The parameters held directly by ``modules`` that require grad, each once."""
    seen: set[int] = set()
    out: list[Tensor] = []
    for m in modules:
        for p in m._parameters.values():
            if p is not None and p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out


def trainable_parameters(module: nn.Module) -> list[Tensor]:
    """The parameters of ``module`` (and descendants) that require grad, each once."""
    return parameters_requiring_grad(submodules(module))
