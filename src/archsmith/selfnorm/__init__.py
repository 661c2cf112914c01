"""Family 2: self-normalizing networks and normalization layers.

- :mod:`~archsmith.selfnorm.snn` — SELU networks with LeCun-normal init and AlphaDropout
  (Klambauer et al., 2017); registered models ``snn`` and ``snn_cox`` (SeNMo-style survival).
- :mod:`~archsmith.selfnorm.diagnose` — per-layer activation mean and variance.
"""

from archsmith.selfnorm import models as _models  # noqa: F401  (registers the models)
from archsmith.selfnorm.diagnose import LayerStats, diagnose
from archsmith.selfnorm.snn import SNN, lecun_normal_, selu_layer

__all__ = ["SNN", "LayerStats", "diagnose", "lecun_normal_", "selu_layer"]
