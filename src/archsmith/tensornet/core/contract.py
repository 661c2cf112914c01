"""Tensor contractions planned once by opt_einsum and cached per equation and shapes.

``contract("bi,ij->bj", x, w)`` builds an :func:`opt_einsum.contract_expression` for these
shapes on first use (the pairwise order with the fewest FLOPs) and reuses it on every later call
with the same shapes, so planning costs nothing in a training loop.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import opt_einsum
import torch

__all__ = ["contract", "expression", "path_flops"]


@lru_cache(maxsize=1024)
def expression(equation: str, shapes: tuple[tuple[int, ...], ...], optimize: str = "auto") -> Any:
    """The cached :func:`opt_einsum.contract_expression` for ``equation`` on ``shapes``."""
    return opt_einsum.contract_expression(equation, *shapes, optimize=optimize)


def contract(equation: str, *operands: torch.Tensor, optimize: str = "auto") -> torch.Tensor:
    """``einsum(equation, *operands)`` along the path opt_einsum planned for these shapes."""
    shapes = tuple(tuple(op.shape) for op in operands)
    out: torch.Tensor = expression(equation, shapes, optimize)(*operands, backend="torch")
    return out


@lru_cache(maxsize=1024)
def path_flops(equation: str, shapes: tuple[tuple[int, ...], ...], optimize: str = "auto") -> int:
    """FLOPs of the pairwise path opt_einsum plans for ``equation`` on ``shapes`` (its own
    count: a multiply-add is 2 when summed over, as in ``PathInfo.opt_cost``)."""
    _, info = opt_einsum.contract_path(equation, *shapes, shapes=True, optimize=optimize)
    return int(info.opt_cost)
