"""Family 1: reversible and invertible networks (training memory flat in depth)."""

from archsmith.reversible import irevnet as _irevnet  # noqa: F401  (registers models)
from archsmith.reversible import revcol as _revcol  # noqa: F401  (registers models)
from archsmith.reversible import unet3d as _unet3d  # noqa: F401  (registers models)
