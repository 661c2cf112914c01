"""Healing: brief distillation of the compressed model onto the original's outputs.

CompactifAI (Tomut et al., 2024) replaces layers by truncated MPOs and then "heals" the model by
a short retraining; here the target is the original model's own output on unlabelled healing
data, so no labels are needed: for a sentence encoder the hidden states of every layer at every
token and the pooled embedding (token-level distillation as in TinyBERT, Jiao et al., 2020), for
a task model its logits. All parameters of the compressed
model train jointly (the factored layers and everything left dense), with AdamW, a linear
warm-up, cosine decay and gradient clipping.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.tensornet.compress.subject import Subject

__all__ = ["HealConfig", "heal"]


@dataclass(frozen=True)
class HealConfig:
    """Hyper-parameters of :func:`heal`.

    Attributes:
        steps: optimizer steps.
        lr: peak learning rate.
        batch_size: healing samples per step.
        weight_decay: AdamW's decoupled decay (0: pull towards the original, nothing else).
        warmup_fraction: share of the steps spent warming up linearly.
        seed: seeds the order of the healing data.
    """

    steps: int
    lr: float = 1e-4
    batch_size: int = 32
    weight_decay: float = 0.0
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ArchsmithError(f"--heal-steps must be >= 0, got {self.steps}")
        if not self.lr > 0:
            raise ArchsmithError(f"--heal-lr must be > 0, got {self.lr}")
        if self.batch_size < 1:
            raise ArchsmithError(f"--heal-batch-size must be >= 1, got {self.batch_size}")


def _lr(step: int, config: HealConfig) -> float:
    warmup = max(1, int(config.steps * config.warmup_fraction))
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, config.steps - warmup)
    return config.lr * 0.5 * (1 + math.cos(math.pi * progress))


def heal(
    model: nn.Module,
    subject: Subject,
    config: HealConfig,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``model`` for ``config.steps`` steps to match the original's outputs.

    Returns the distillation loss of every step (before that step's update). ``model`` is left in
    eval mode.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    losses: list[float] = []
    # eval mode throughout: dropout would make the student chase a noisy copy of a clean
    # teacher, and batch statistics of small healing batches would drift normalisation layers
    model.eval()
    try:
        for step in range(config.steps):
            batch = subject.heal_batch(step, config.batch_size, config.seed)
            for group in optimizer.param_groups:
                group["lr"] = _lr(step, config)
            loss = subject.distill_loss(model, batch)
            if not torch.isfinite(loss):
                raise ArchsmithError(
                    f"healing diverged at step {step + 1} (loss {loss.item()}); try a lower --heal-lr"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(step, losses[-1])
    finally:
        model.eval()
    return losses
