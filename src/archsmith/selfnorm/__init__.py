"""Family 2: self-normalizing networks and normalization layers.

- :mod:`~archsmith.selfnorm.snn` — SELU networks with LeCun-normal init and AlphaDropout
  (Klambauer et al., 2017); registered models ``snn`` and ``snn_cox`` (SeNMo-style survival).
- :mod:`~archsmith.selfnorm.diagnose` — per-layer activation mean and variance
  (``archsmith diagnose ... --png``).
- :mod:`~archsmith.selfnorm.norms` — EvoNorm-B0/S0, batch-channel norm with weight-standardized
  convolutions, IBN, region norm, LayerNorm LSTM; registered as ``norm_layer`` names.
- :mod:`~archsmith.selfnorm.optim` — AdamP and SGDP (Heo et al., 2021).
"""

from archsmith.selfnorm import models as _models  # noqa: F401  (registers the models)
from archsmith.selfnorm.diagnose import LayerStats, diagnose
from archsmith.selfnorm.norms import (
    IBN,
    BatchChannelNorm,
    EvoNormB0,
    EvoNormS0,
    LayerNormLSTM,
    LayerNormLSTMCell,
    RegionNorm,
    WSConv2d,
)
from archsmith.selfnorm.optim import SGDP, AdamP
from archsmith.selfnorm.snn import SNN, lecun_normal_, selu_layer

__all__ = [
    "IBN",
    "SGDP",
    "SNN",
    "AdamP",
    "BatchChannelNorm",
    "EvoNormB0",
    "EvoNormS0",
    "LayerNormLSTM",
    "LayerNormLSTMCell",
    "LayerStats",
    "RegionNorm",
    "WSConv2d",
    "diagnose",
    "lecun_normal_",
    "selu_layer",
]
