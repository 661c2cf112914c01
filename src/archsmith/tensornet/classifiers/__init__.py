"""Tensor-network classifiers: the MPS classifier (``mps``, trained by gradient descent or by
DMRG-style sweeps) and the tree tensor network (``ttn``)."""

from archsmith.tensornet.classifiers.dmrg import DMRGResult, dmrg_fit, dmrg_sweep
from archsmith.tensornet.classifiers.feature_map import local_feature_map
from archsmith.tensornet.classifiers.mps import MPSClassifier, mps
from archsmith.tensornet.classifiers.ttn import TTNClassifier, fit_isometries, ttn

__all__ = [
    "DMRGResult",
    "MPSClassifier",
    "TTNClassifier",
    "dmrg_fit",
    "dmrg_sweep",
    "fit_isometries",
    "local_feature_map",
    "mps",
    "ttn",
]
