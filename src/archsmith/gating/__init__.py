"""Family 4: gating and dynamic networks (gated linear attention, mixture of experts, early
exit, input-dependent channel masks)."""

from archsmith.gating import channel_masks as _channel_masks  # noqa: F401  (registers models)
from archsmith.gating import early_exit as _early_exit  # noqa: F401  (registers models)
from archsmith.gating import layers as _layers  # noqa: F401  (registers attn_layer="gla")
from archsmith.gating import models as _models  # noqa: F401  (registers models)
from archsmith.gating import moe as _moe  # noqa: F401  (registers MLP types)
