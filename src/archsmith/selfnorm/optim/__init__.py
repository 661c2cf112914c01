"""Optimizers for scale-invariant weights: AdamP and SGDP (Heo et al., ICLR 2021).

Most weights of a normalized network (every conv or linear layer followed by BatchNorm or
LayerNorm) are scale invariant; momentum optimizers inflate their norms and so shrink their
effective learning rate. :class:`AdamP` and :class:`SGDP` drop the norm-increasing (radial)
part of each update on such weights and behave as AdamW / SGD everywhere else.

- :mod:`~archsmith.selfnorm.optim.projection` — the scale-invariance test and the projection.
- :mod:`~archsmith.selfnorm.optim.adamp` — :class:`AdamP`.
- :mod:`~archsmith.selfnorm.optim.sgdp` — :class:`SGDP`.
"""

from archsmith.selfnorm.optim.adamp import AdamP
from archsmith.selfnorm.optim.sgdp import SGDP

__all__ = ["SGDP", "AdamP"]
