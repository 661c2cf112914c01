"""Early-exit networks: a backbone of blocks with a classifier head after each block, and a rule
that stops every sample at its first accepted exit.

Two rules:

- ``gate="joint"`` — JEI-DNN (Regol et al., ICLR 2024): a learned gate after each head
  (:class:`~archsmith.gating.early_exit.gates.JointGate`) gives the stopping probability
  ``g_l``, hence the exit distribution ``pi_l = g_l prod_{j<l}(1 - g_j)``. The paper's
  objective is the expected loss under ``pi`` plus the price of the expected compute,
  ``sum_l pi_l (CE_l + lambda c_l)``, with ``c_l`` the compute to reach exit ``l`` as a
  fraction of the whole network (FLOPs from the torch FLOP counter) and ``lambda =
  cost_weight``. It is split, as in the paper, into a bi-level pair made one loss by
  stop-gradients (``sg``):

  * heads and backbone (the inference modules): ``sum_l w_l CE_l`` with
    ``w_l = (1 - im_mix) sg[pi_l] + im_mix / L``: each head is trained mostly on the samples
    the gates send to it (JEI-DNN's cure for the train-test mismatch), with a uniform share
    so every head keeps learning;
  * gates, ``gate_loss="oracle"`` (default, the paper's surrogate): the objective is linear in
    ``pi``, so per sample its minimizer puts all mass on the exit ``t = argmin_l
    (sg[CE_l] + lambda c_l)``; each gate ``l`` is fitted to that decision by a class-balanced
    binary cross-entropy with target ``[l >= t]`` (stop at ``t`` and at every later exit);
  * gates, ``gate_loss="expected"``: gradient descent on ``sum_l pi_l (sg[CE_l] + lambda
    c_l)`` itself. Being linear in each ``g_l`` it drives the gates to saturate at 0 or 1
    for whole regions of inputs (no calibrated exit probabilities); kept for comparison.

  At inference a sample stops at the first exit with ``g_l >= threshold`` (default 0.5).
- ``gate="confidence"`` — the usual baseline: heads trained with the mean of the exit losses,
  a sample stops at the first exit whose max softmax probability is ``>= threshold`` (tau).

Forward passes:

- eval mode: only the samples still running go through each later block; the output
  ``[B, C]`` holds each sample's logits from the exit where it stopped. ``last_exit: [B]``
  (0-based exit index) and ``last_flops: [B]`` (FLOPs spent on the sample) are recorded.
- training mode: all exits run; the output is the log of the mixture ``sum_l pi_l
  softmax(z_l)`` (``pi`` uniform for the confidence rule), a proper predictive distribution
  through which every parameter gets a gradient. The trainer calls :meth:`training_loss`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from archsmith.errors import ArchsmithError
from archsmith.gating.early_exit.gates import JointGate, exit_distribution

__all__ = ["EarlyExitNetwork", "GateKind", "oracle_gate_loss"]

GateKind = Literal["joint", "confidence"]
LossFn = Callable[[Tensor, Tensor], Tensor]


def _counted(module: nn.Module, x: Tensor) -> tuple[Tensor, int]:
    """``(module(x), FLOPs of that call)`` by the torch FLOP counter (what
    :func:`archsmith.cost.measure` uses: matmuls and convolutions; elementwise ops count 0)."""
    with FlopCounterMode(display=False) as counter:
        out = module(x)
    return out, int(counter.get_total_flops())


class EarlyExitNetwork(nn.Module):
    """Blocks ``f_1..f_L``, heads ``h_1..h_L`` (``h_l`` reads ``f_l``'s output) and an exit rule.

    Args:
        blocks: L modules; block ``l`` maps the previous block's output (the input for
            ``l = 1``) to the next.
        heads: L modules mapping block ``l``'s output to logits ``[B, C]``.
        in_shape: per-sample input shape (FLOPs are counted once on a dummy sample).
        gate: ``"joint"`` (learned JEI-DNN gate) or ``"confidence"`` (max-softmax threshold).
        cost_weight: lambda, the price of compute in the joint objective (in loss units per
            whole network); ignored by the confidence rule.
        threshold: inference acceptance level: ``g_l >= threshold`` (joint, default 0.5) or
            max softmax ``>= threshold`` (confidence, default 0.9). May be changed any time.
        im_mix: uniform share of the heads' sample weights under the joint rule.
        gate_loss: ``"oracle"`` (class-balanced BCE toward the per-sample best exit, the
            paper's surrogate) or ``"expected"`` (the expected loss + cost, differentiated
            directly).

    Attributes:
        exit_flops: ``[L]`` FLOPs per sample to reach and decide at exit ``l`` (blocks, heads
            and gates up to ``l``), from the torch FLOP counter.
        last_exit, last_flops: per-sample exit index and FLOPs of the last eval forward.
    """

    def __init__(
        self,
        blocks: Sequence[nn.Module],
        heads: Sequence[nn.Module],
        in_shape: tuple[int, ...],
        *,
        gate: GateKind = "joint",
        cost_weight: float = 0.1,
        threshold: float | None = None,
        im_mix: float = 0.5,
        gate_loss: Literal["oracle", "expected"] = "oracle",
    ) -> None:
        super().__init__()
        if len(blocks) != len(heads) or not blocks:
            raise ArchsmithError(
                f"early exit: need as many heads as blocks (>= 1), got {len(blocks)} and "
                f"{len(heads)}"
            )
        if gate not in ("joint", "confidence"):
            raise ArchsmithError(f"gate: must be 'joint' or 'confidence', got {gate!r}")
        if cost_weight < 0:
            raise ArchsmithError(f"cost_weight: must be >= 0, got {cost_weight}")
        if gate_loss not in ("oracle", "expected"):
            raise ArchsmithError(f"gate_loss: must be 'oracle' or 'expected', got {gate_loss!r}")
        if not 0 <= im_mix <= 1:
            raise ArchsmithError(f"im_mix: must be in [0, 1], got {im_mix}")
        self.blocks = nn.ModuleList(blocks)
        self.heads = nn.ModuleList(heads)
        self.gate_kind: GateKind = gate
        self.gates = nn.ModuleList(
            JointGate() for _ in range(len(blocks) - 1 if gate == "joint" else 0)
        )
        self.cost_weight = cost_weight
        self.im_mix = im_mix
        self.gate_loss = gate_loss
        self.threshold = (0.5 if gate == "joint" else 0.9) if threshold is None else threshold
        self.exit_flops: Tensor
        self.register_buffer("exit_flops", self._stage_flops(in_shape).cumsum(0), persistent=False)
        self.last_exit: Tensor | None = None
        self.last_flops: Tensor | None = None

    @property
    def num_exits(self) -> int:
        return len(self.blocks)

    @property
    def exit_costs(self) -> Tensor:
        """``[L]`` compute to reach each exit as a fraction of the full network (last = 1)."""
        return self.exit_flops / self.exit_flops[-1].clamp_min(1)

    # ------------------------------------------------------------------------------------------
    # FLOPs

    @torch.no_grad()
    def _stage_flops(self, in_shape: tuple[int, ...]) -> Tensor:
        """``[L]`` per-sample FLOPs of stage ``l``: block ``l``, head ``l`` and gate ``l``."""
        flags = [(m, m.training) for m in self.modules()]
        self.eval()  # a batch of one: no batch statistics, and no running-stat updates
        try:
            h = torch.zeros(1, *in_shape)
            flops = []
            for i, (block, head) in enumerate(zip(self.blocks, self.heads, strict=True)):
                h, f_block = _counted(block, h)
                logits, f_head = _counted(head, h)
                f_gate = _counted(self.gates[i], logits)[1] if i < len(self.gates) else 0
                flops.append(f_block + f_head + f_gate)
        finally:
            for m, flag in flags:
                m.training = flag
        return torch.tensor(flops, dtype=torch.float64)

    # ------------------------------------------------------------------------------------------
    # forward passes

    def _all_exits(self, x: Tensor) -> tuple[list[Tensor], Tensor, Tensor]:
        """Every exit's logits ``L x [B, C]``, the gate logits ``[B, L - 1]`` (``[B, 0]`` for
        the confidence rule) and the exit distribution ``pi: [B, L]``."""
        logits = []
        h = x
        for block, head in zip(self.blocks, self.heads, strict=True):
            h = block(h)
            logits.append(head(h))
        b = x.shape[0]
        if self.gate_kind == "joint":
            gate_logits = [
                cast(JointGate, gate).logit(z) for gate, z in zip(self.gates, logits, strict=False)
            ]
            g = torch.stack(gate_logits, dim=1) if gate_logits else logits[0].new_zeros(b, 0)
            pi = exit_distribution(torch.sigmoid(g))
        else:
            g = logits[0].new_zeros(b, 0)
            pi = logits[0].new_full((b, self.num_exits), 1.0 / self.num_exits)
        return logits, g, pi

    def _accepts(self, i: int, logits: Tensor) -> Tensor:
        """``[B]`` bool: does exit ``i`` stop these samples?"""
        if i == self.num_exits - 1:
            return torch.ones(logits.shape[0], dtype=torch.bool, device=logits.device)
        if self.gate_kind == "joint":
            return self.gates[i](logits) >= self.threshold
        return logits.softmax(-1).amax(-1) >= self.threshold

    def forward(self, x: Tensor) -> Tensor:
        """``x: [B, ...] -> [B, C]``: stopped-exit logits (eval) or mixture log-probs (train)."""
        if self.training:
            logits, _, pi = self._all_exits(x)
            log_probs = torch.stack([z.log_softmax(-1) for z in logits], dim=1)  # [B, L, C]
            return torch.logsumexp(log_probs + pi.clamp_min(1e-12).log().unsqueeze(-1), dim=1)
        return self._early_exit(x)

    def _early_exit(self, x: Tensor) -> Tensor:
        b = x.shape[0]
        out: Tensor | None = None
        exit_at = torch.full((b,), -1, dtype=torch.long, device=x.device)
        active = torch.arange(b, device=x.device)  # ids of the samples still running
        h = x
        for i, (block, head) in enumerate(zip(self.blocks, self.heads, strict=True)):
            h = block(h)  # only the running samples
            z = head(h)
            if out is None:
                out = z.new_zeros(b, z.shape[-1])
            stop = self._accepts(i, z)
            out[active[stop]] = z[stop]
            exit_at[active[stop]] = i
            keep = ~stop
            if not bool(keep.any()):
                break
            active, h = active[keep], h[keep]
        assert out is not None
        self.last_exit = exit_at
        self.last_flops = self.exit_flops.to(x.device)[exit_at]
        return out

    # ------------------------------------------------------------------------------------------
    # training objective

    def training_loss(self, x: Tensor, y: Tensor, task_loss: LossFn) -> Tensor:
        """The training objective of one batch (see the module docstring); ``task_loss`` is the
        task's mean loss, applied per sample."""
        logits, gate_logits, pi = self._all_exits(x)
        per_sample = torch.stack([_per_sample_loss(task_loss, z, y) for z in logits], dim=1)
        if self.gate_kind == "confidence":
            return per_sample.mean(dim=1).mean()
        weights = (1 - self.im_mix) * pi.detach() + self.im_mix / self.num_exits
        heads = (weights * per_sample).sum(dim=1).mean()
        priced = per_sample.detach() + self.cost_weight * self.exit_costs.to(pi.dtype)  # [B, L]
        if self.gate_loss == "expected":
            return heads + (pi * priced).sum(dim=1).mean()
        return heads + oracle_gate_loss(gate_logits, priced.argmin(dim=1))

    def expected_cost(self, x: Tensor) -> Tensor:
        """``[B]`` expected fraction of the network's compute under the (soft) exit
        distribution ``pi`` (training-time view of the joint gate)."""
        _, _, pi = self._all_exits(x)
        return (pi * self.exit_costs.to(pi.dtype)).sum(dim=1)


def oracle_gate_loss(gate_logits: Tensor, best_exit: Tensor) -> Tensor:
    """Class-balanced binary cross-entropy of the gates toward the per-sample best exit.

    Args:
        gate_logits: ``[B, L - 1]`` logits of the stopping probabilities ``g_l``.
        best_exit: ``[B]`` the exit ``t`` (0-based, up to ``L - 1``) each sample should take.

    Gate ``l`` has target 1 when ``l >= t`` (stop here or, having passed ``t``, as soon as
    possible) and 0 before. Positives and negatives each carry half the total weight, so the
    rarer decision is not ignored (as in JEI-DNN's training code).
    """
    if gate_logits.shape[1] == 0:
        return gate_logits.sum()
    exits = torch.arange(gate_logits.shape[1], device=gate_logits.device)
    target = (exits.unsqueeze(0) >= best_exit.unsqueeze(1)).to(gate_logits.dtype)  # [B, L-1]
    bce = F.binary_cross_entropy_with_logits(gate_logits, target, reduction="none")
    pos = target.sum()
    neg = target.numel() - pos
    if pos == 0 or neg == 0:
        return bce.mean()
    weight = torch.where(target > 0, 0.5 / pos, 0.5 / neg)
    return (weight * bce).sum()


def _per_sample_loss(task_loss: LossFn, logits: Tensor, y: Tensor) -> Tensor:
    """``[B]``: ``task_loss`` (a batch mean) of each sample alone, vectorized with vmap."""
    per = torch.func.vmap(lambda z, t: task_loss(z.unsqueeze(0), t.unsqueeze(0)))(logits, y)
    if per.dim() != 1 or not math.prod(per.shape) == logits.shape[0]:
        raise ArchsmithError("early exit: the task loss must reduce to a scalar per sample")
    return per
