"""Exit gates: the JEI-DNN learned gate and the exit distribution it induces.

JEI-DNN (Regol, Chataoui and Coates, "Jointly-Learned Exit and Inference for a Dynamic Neural
Network", ICLR 2024) puts a small gate after each intermediate inference module (exit head).
The gate reads *detached* uncertainty statistics of that head's prediction and outputs the
probability ``g_l`` of stopping there, given that the sample reached exit ``l``. Exiting is
sequential, so the probability of stopping exactly at exit ``l`` of ``L`` is

    pi_l = g_l * prod_{j < l} (1 - g_j),   pi_L = prod_{j < L} (1 - g_j)

(the last exit takes every sample still running), and ``sum_l pi_l = 1``. The paper also
writes a clipped variant ``min(g_l, 1 - sum_{j<l} g_j)``; the product form used here is the
proper sequential-stopping distribution and needs no clipping.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["NUM_UNCERTAINTY_FEATURES", "JointGate", "exit_distribution", "uncertainty_features"]

#: confidence logit, top-2 logit gap, negative log normalized entropy
NUM_UNCERTAINTY_FEATURES = 3


def uncertainty_features(logits: Tensor) -> Tensor:
    """``[B, 3]`` detached uncertainty statistics of ``logits: [B, C]``, on log scales:

    - ``log p_max - log(1 - p_max)``: the logit of the max probability;
    - ``z_1 - z_2 = log(p_1 / p_2)``: the gap between the two largest logits;
    - ``-log(H / log C)``: the negative log of the normalized entropy.

    Log scales matter: a trained head's max probability sits in a narrow band near 1 where the
    easy and the hard samples differ by 1e-3; in log-odds they differ by units, which a linear
    gate separates with ordinary weights.
    """
    z = logits.detach().float()
    log_p = z.log_softmax(dim=-1)
    c = z.shape[-1]
    top = log_p.topk(min(2, c), dim=-1).values  # [B, 2]
    conf = top[:, 0] - torch.log1p(-top[:, 0].exp().clamp(max=1 - 1e-7))
    gap = top[:, 0] - top[:, 1] if c > 1 else torch.zeros_like(conf)
    entropy = -(log_p.exp() * log_p).sum(-1) / max(math.log(c), 1e-12)
    neg_log_h = -torch.log(entropy.clamp_min(1e-7))
    return torch.stack([conf, gap, neg_log_h], dim=-1).to(logits.dtype)


class JointGate(nn.Module):
    """The learnable uncertainty gate of JEI-DNN: ``g = sigmoid(w . u(logits) + b)``.

    Shapes: ``logits: [B, C] -> [B]`` stopping probabilities. Gradients reach ``w`` and ``b``
    only (the features are detached: the gate decides, it does not reshape the head).
    """

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(NUM_UNCERTAINTY_FEATURES, 1)

    def logit(self, logits: Tensor) -> Tensor:
        """Gate logits ``[B]`` (before the sigmoid)."""
        return self.linear(uncertainty_features(logits)).squeeze(-1)

    def forward(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(self.logit(logits))


def exit_distribution(stop_probs: Tensor) -> Tensor:
    """``pi: [B, L]`` from the stopping probabilities ``g: [B, L - 1]`` of the first ``L - 1``
    exits: ``pi_l = g_l prod_{j<l} (1 - g_j)``, ``pi_L = prod_{j<L} (1 - g_j)``."""
    b = stop_probs.shape[0]
    ones = stop_probs.new_ones(b, 1)
    reach = torch.cumprod(torch.cat([ones, 1 - stop_probs], dim=1), dim=1)  # [B, L]
    stop = torch.cat([stop_probs, ones], dim=1)  # the last exit always stops
    return reach * stop
