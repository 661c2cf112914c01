"""Linear layers (kind ``linear``): factories ``(in_features, out_features, bias=True)``
mapping ``[..., in] -> [..., out]``. The tensor-network family registers ``tt``, ``btt``, ...
"""

from __future__ import annotations

from torch import nn

from archsmith.registry import register_layer

__all__ = ["dense_linear"]


@register_layer("linear", "dense")
def dense_linear(in_features: int, out_features: int, bias: bool = True) -> nn.Module:
    """A dense :class:`torch.nn.Linear`."""
    return nn.Linear(in_features, out_features, bias=bias)
