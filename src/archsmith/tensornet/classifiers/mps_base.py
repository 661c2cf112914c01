"""What the MPS trainers need of an MPS classifier, so they sit below the classifier itself.

:class:`~archsmith.tensornet.classifiers.mps.MPSClassifier` calls the DMRG sweeps
(:mod:`~archsmith.tensornet.classifiers.dmrg`) and the kernel-ridge start
(:mod:`~archsmith.tensornet.classifiers.kernel_init`) from its training hooks; those read and
write its sites through this base, and never import the classifier.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MPSBase"]


class MPSBase(nn.Module):
    """An MPS classifier as its trainers see it.

    Attributes (set by the subclass):
        cores: the ``N`` site tensors, ``[chi_left, d, chi_right]`` each, the label site
            ``[chi_left, d, C, chi_right]``.
        num_sites: ``N``; num_classes: ``C``; chi: the largest bond dimension;
        label_site: the site that carries the label index.
    """

    cores: nn.ParameterList
    num_sites: int
    num_classes: int
    chi: int
    label_site: int

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, *] -> phi: [B, N, d]``, the local feature map of every site."""
        raise NotImplementedError
