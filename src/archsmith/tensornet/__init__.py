"""Family 3: tensor networks (TT/MPO, BTT, Tucker, CP layers; MPS and tree classifiers;
compression of pretrained models)."""

from archsmith.tensornet import classifiers as _classifiers  # noqa: F401  (registers models)
from archsmith.tensornet import layers as _layers  # noqa: F401  (registers linear layers)
from archsmith.tensornet.adaptive import GrowthRound, grow_bond, grow_tt_ranks  # noqa: F401
