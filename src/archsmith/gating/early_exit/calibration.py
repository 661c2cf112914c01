"""Expected calibration error with equal-width confidence bins (Naeini et al., 2015; Guo et al.,
2017, "On Calibration of Modern Neural Networks")."""

from __future__ import annotations

import torch
from torch import Tensor

from archsmith.errors import ArchsmithError

__all__ = ["expected_calibration_error"]


def expected_calibration_error(probs: Tensor, labels: Tensor, n_bins: int = 15) -> float:
    """``sum_b |B_b| / N * |accuracy(B_b) - confidence(B_b)|`` over ``n_bins`` equal-width bins.

    Args:
        probs: ``[N, C]`` predicted class probabilities (rows sum to 1).
        labels: ``[N]`` true class ids.
        n_bins: bins ``(0, 1/n], (1/n, 2/n], ..., ((n-1)/n, 1]`` of the confidence
            ``max_c probs[:, c]`` (a confidence of exactly 0 falls in the first bin).

    Returns:
        The ECE in [0, 1] (0 for an empty input).
    """
    if n_bins < 1:
        raise ArchsmithError(f"n_bins: must be >= 1, got {n_bins}")
    if probs.dim() != 2 or labels.shape != probs.shape[:1]:
        raise ArchsmithError(
            f"ECE needs probs [N, C] and labels [N], got {list(probs.shape)} and "
            f"{list(labels.shape)}"
        )
    n = probs.shape[0]
    if n == 0:
        return 0.0
    conf, pred = probs.detach().double().max(dim=1)
    correct = (pred == labels).double()
    # bin i holds confidences in (i/n, (i+1)/n]: ceil(conf * n) - 1, clamped for conf = 0
    bins = (torch.ceil(conf * n_bins).long() - 1).clamp(0, n_bins - 1)
    conf_sum = torch.zeros(n_bins, dtype=torch.float64).index_add(0, bins, conf)
    acc_sum = torch.zeros(n_bins, dtype=torch.float64).index_add(0, bins, correct)
    # |acc_b - conf_b| * |B_b| / N  ==  |acc_sum_b - conf_sum_b| / N
    return float((acc_sum - conf_sum).abs().sum() / n)
