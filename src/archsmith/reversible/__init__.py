"""Family 1: reversible and invertible networks (training memory flat in depth).

- :mod:`~archsmith.reversible.couplings` — invertible blocks from arbitrary functions:
  :class:`AdditiveCoupling` (RevNet), :class:`MultiSplitCoupling` (N-way),
  :class:`AffineCoupling` (RealNVP-style, scale never zero).
- :mod:`~archsmith.reversible.engine` — :class:`ReversibleSequence`: forward keeps only the
  output, backward reconstructs each block's input and recomputes its local graph;
  ``reversible=False`` (or :func:`set_reversible`) gives the plain-autograd twin.
- :mod:`~archsmith.reversible.blocks` — reversible inverted bottlenecks (2D/3D) and Transformer
  layers; :mod:`~archsmith.reversible.models` registers ``rev_cnn`` and ``rev_transformer`` and
  the spec blocks ``rev_mbconv`` and ``rev_transformer``.
"""

from archsmith.reversible import irevnet as _irevnet  # noqa: F401  (registers models)
from archsmith.reversible import revcol as _revcol  # noqa: F401  (registers models)
from archsmith.reversible import unet3d as _unet3d  # noqa: F401  (registers models)
from archsmith.reversible.blocks import (
    InvertedBottleneck,
    ReversibleTransformer,
    rev_mbconv,
    rev_transformer_layer,
)
from archsmith.reversible.couplings import (
    AdditiveCoupling,
    AffineCoupling,
    Coupling,
    MultiSplitCoupling,
    ReverseStep,
    part_sizes,
)
from archsmith.reversible.engine import ReversibleSequence, set_reversible
from archsmith.reversible.models import RevCNN, RevTransformer, rev_cnn, rev_transformer

__all__ = [
    "AdditiveCoupling",
    "AffineCoupling",
    "Coupling",
    "InvertedBottleneck",
    "MultiSplitCoupling",
    "RevCNN",
    "RevTransformer",
    "ReverseStep",
    "ReversibleSequence",
    "ReversibleTransformer",
    "part_sizes",
    "rev_cnn",
    "rev_mbconv",
    "rev_transformer",
    "rev_transformer_layer",
    "set_reversible",
]
