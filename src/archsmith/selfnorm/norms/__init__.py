"""Normalization layers for the self-normalizing family.

Importing this package registers the ``norm`` layers ``evonorm_b0``, ``evonorm_s0``, ``bcn``,
``ibn`` and ``regionnorm`` (factories ``(num_features) -> nn.Module``, channels at dimension 1),
so any archsmith block takes e.g. ``norm_layer="evonorm_s0"``. :class:`WSConv2d` and the
layer-normalized LSTM are plain classes, not registered norms.

- ``evonorm_b0`` / ``evonorm_s0``: :class:`EvoNormB0`, :class:`EvoNormS0` (Liu et al. 2020)
- ``bcn``: :class:`BatchChannelNorm`, with :class:`WSConv2d` (Qiao et al. 2019/2020)
- ``ibn``: :class:`IBN`, IBN-a (Pan et al. 2018), built on :class:`InstanceNorm`
- ``regionnorm``: :class:`RegionNorm`, RN-B (Yu et al. 2020)
- not norms: :class:`LayerNormLSTMCell`, :class:`LayerNormLSTM` (Ba et al. 2016)
"""

from archsmith.selfnorm.norms.bcn import BatchChannelNorm, WSConv2d
from archsmith.selfnorm.norms.evonorm import EvoNormB0, EvoNormS0
from archsmith.selfnorm.norms.ibn import IBN, InstanceNorm
from archsmith.selfnorm.norms.layernorm_lstm import LayerNormLSTM, LayerNormLSTMCell
from archsmith.selfnorm.norms.regionnorm import RegionNorm

__all__ = [
    "IBN",
    "BatchChannelNorm",
    "EvoNormB0",
    "EvoNormS0",
    "InstanceNorm",
    "LayerNormLSTM",
    "LayerNormLSTMCell",
    "RegionNorm",
    "WSConv2d",
]
