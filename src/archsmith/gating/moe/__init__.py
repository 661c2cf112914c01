"""Mixture of experts: routers (top-k softmax, noisy top-k, dense-to-sparse temperature),
load-balancing and z-losses, capacity-limited sort-based dispatch, and the ``moe`` MLP layer
(``mlp_layer="moe"`` in any archsmith block)."""

from archsmith.gating.moe import models as _models  # noqa: F401  (registers moe_transformer)
from archsmith.gating.moe.dispatch import DispatchStats, capacity_of, moe_dispatch
from archsmith.gating.moe.layer import MoE, moe_stats
from archsmith.gating.moe.losses import load_balancing_loss, router_z_loss
from archsmith.gating.moe.router import (
    ROUTERS,
    DenseToSparseRouter,
    NoisyTopKRouter,
    Router,
    Routing,
    TopKRouter,
    make_router,
)

__all__ = [
    "ROUTERS",
    "DenseToSparseRouter",
    "DispatchStats",
    "MoE",
    "NoisyTopKRouter",
    "Router",
    "Routing",
    "TopKRouter",
    "capacity_of",
    "load_balancing_loss",
    "make_router",
    "moe_dispatch",
    "moe_stats",
    "router_z_loss",
]
