"""Input-dependent channel masks: Fire Together Wire Together (FTWT; Elkerdawy, Elhoushi, Zhang
and Ray, "Fire Together Wire Together: A Dynamic Pruning Approach with Self-Supervised Mask
Prediction", CVPR 2022).

Every masked conv block ``conv -> BN -> ReLU`` carries a small *mask predictor* (decision
head): from the block's input, globally average-pooled, a linear layer predicts one logit per
output channel. At inference a channel whose probability ``sigmoid(logit)`` is below
``threshold`` is not computed (its output is 0), so each sample runs its own sub-network.

The predictor is trained by self-supervision: the teacher mask comes from the dense block's own
output. Each channel's heatmap saliency is ``max_{h,w} |out[c]|`` (FTWT's criterion); the
teacher keeps the smallest set of most-salient channels whose share of the total saliency
reaches ``mass`` (the paper's "mass of heatmaps" criterion ``r``: a per-sample number of
channels, larger for inputs whose activity is spread out), and the predictor is fitted to it by
binary cross-entropy (set as the block's ``aux_loss``, which the trainer adds). As in the
paper's default ("decoupled") mode the predictor reads a detached input, so the mask loss does
not reshape the backbone; the training forward multiplies the dense output by the predicted
binary mask, so the backbone learns to work under its own masks. By default
(``mask_grad="ste"``) that binary mask also passes the task gradient to the predictor straight
through (Bengio et al., 2013): a signal of which kept channels the task needs, and what lets
every parameter train under the task loss alone; ``mask_grad="none"`` is FTWT's strictly
decoupled training (the predictor learns from the BCE alone).

Two small choices, stated here: the teacher keeps the channel that crosses ``mass`` (the set
*covers* ``mass``; FTWT's code drops it, which can leave a sample with no channel at all), and
channels with zero saliency are never kept (as in FTWT).

Compute: the eval forward gathers the filters that at least one sample of the batch keeps (and
the input channels that at least one sample has), so a batch pays for the union of its masks;
``last_flops: [B]`` records what each sample costs on its own (per-sample gather: ``2 k^2
kept_in kept_out H W`` per conv, plus the predictor's linear layer) - for a batch of one the
two coincide, which the tests check against :func:`archsmith.cost.measure`.

``archsmith bench channel-masks`` trains ``masked_cnn`` on digits at several ``mass`` values
and reports test accuracy against mean FLOPs per sample.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Annotated, Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsmith.errors import ArchsmithError
from archsmith.models.cnn import ConvNormAct
from archsmith.options import Range
from archsmith.recipe import Recipe
from archsmith.registry import register_block, register_model

__all__ = [
    "ChannelMaskedConv",
    "MaskGrad",
    "MaskPredictor",
    "MaskedCNN",
    "MaskedConvBlock",
    "channel_saliency",
    "masked_cnn",
    "masked_conv",
    "mass_mask",
]

MaskGrad = Literal["ste", "none"]
_TIE = 1e-6  # shares within this of ``mass`` count as reaching it (float cumsum rounding)


def channel_saliency(out: Tensor) -> Tensor:
    """``[B, C, H, W] -> [B, C]``: each channel's heatmap peak ``max_{h,w} |out|`` (FTWT),
    detached (it only defines the teacher mask)."""
    return out.detach().abs().amax(dim=(2, 3))


def mass_mask(saliency: Tensor, mass: float) -> Tensor:
    """The teacher mask ``[B, C]`` (bool) from channel saliencies ``[B, C]``.

    Per sample, channels are ranked by their share ``s_c / sum_c s_c``; channel ``c`` is kept
    when the channels ranked strictly above it hold less than ``mass`` of the total (so the kept
    set is the smallest top set covering ``mass``) and its own saliency is positive.
    ``mass = 1`` keeps every active channel.
    """
    if not 0 < mass <= 1:
        raise ArchsmithError(f"mass: must be in (0, 1], got {mass}")
    total = saliency.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(saliency.dtype).tiny)
    share, order = (saliency / total).sort(dim=-1, descending=True)
    above = share.cumsum(dim=-1) - share  # [B, C] share held by higher-ranked channels
    keep_sorted = (above < mass - _TIE) & (share > 0)
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)


class MaskPredictor(nn.Module):
    """FTWT's decision head: ``[B, C_in, H, W] -> [B, C_out]`` logits, global average pooling
    then a linear layer. The bias starts at +2 (every channel kept, ``sigmoid(2) = 0.88``), so
    the backbone trains dense until the predictor has learned its targets."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, out_channels)
        nn.init.constant_(self.linear.bias, 2.0)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.mean(dim=(2, 3)))


class ChannelMaskedConv(nn.Module):
    """``conv(k x k, same padding) -> BN -> ReLU`` whose output channels are masked per sample.

    Shapes: ``forward(x: [B, C_in, H, W], in_mask: [B, C_in] | None) -> (out: [B, C_out, H, W],
    mask: [B, C_out])``; ``in_mask`` marks the input channels that are nonzero for each sample
    (the previous block's mask; None: all), used for gathering and FLOP counting only.

    Args:
        in_channels, out_channels, kernel_size: the convolution.
        mass: the teacher's kept share of the saliency mass, in (0, 1].
        threshold: a channel is computed when ``sigmoid(logit) >= threshold``.
        mask_loss_weight: weight of the predictor's BCE in ``aux_loss``.
        detach_input: the predictor reads ``x.detach()`` (FTWT "decoupled"); False lets the
            mask loss reach the previous layers too ("joint").
        mask_grad: ``"ste"``: in training the binary mask passes the task gradient to the
            predictor straight through (``hard + p - sg[p]``, value unchanged), so the task
            also tells the predictor which kept channels matter; ``"none"``: the predictor
            learns from the BCE alone (FTWT's strictly decoupled training).

    Attributes:
        aux_loss: ``mask_loss_weight * BCE(logits, teacher)`` after a training forward, else
            None. last_mask, last_target: ``[B, C_out]`` predicted and teacher masks of the
            last forward (teacher: training only). last_flops: ``[B]`` per-sample FLOPs of the
            last eval forward (conv and predictor). last_batch_flops: FLOPs the batch-union
            gather really spent.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        mass: float = 0.9,
        threshold: float = 0.5,
        mask_loss_weight: float = 1.0,
        detach_input: bool = True,
        mask_grad: MaskGrad = "ste",
    ) -> None:
        super().__init__()
        if mask_grad not in ("ste", "none"):
            raise ArchsmithError(f"mask_grad: must be 'ste' or 'none', got {mask_grad!r}")
        if not 0 < mass <= 1:
            raise ArchsmithError(f"mass: must be in (0, 1], got {mass}")
        if not 0 <= threshold <= 1:
            raise ArchsmithError(f"threshold: must be in [0, 1], got {threshold}")
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.predictor = MaskPredictor(in_channels, out_channels)
        self.mass, self.threshold = mass, threshold
        self.mask_loss_weight, self.detach_input = mask_loss_weight, detach_input
        self.mask_grad = mask_grad
        self.aux_loss: Tensor | None = None
        self.last_mask: Tensor | None = None
        self.last_target: Tensor | None = None
        self.last_flops: Tensor | None = None
        self.last_batch_flops = 0

    def predict_mask(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(logits [B, C_out], mask [B, C_out] bool)`` for the input ``x``."""
        logits = self.predictor(x.detach() if self.detach_input else x)
        return logits, torch.sigmoid(logits.detach()) >= self.threshold

    def dense(self, x: Tensor) -> Tensor:
        """The unmasked block ``relu(bn(conv(x)))``: ``[B, C_in, H, W] -> [B, C_out, H, W]``."""
        return F.relu(self.bn(self.conv(x)))

    def forward(self, x: Tensor, in_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        logits, mask = self.predict_mask(x)
        self.last_mask = mask
        if self.training:
            out = self.dense(x)
            target = mass_mask(channel_saliency(out), self.mass)
            self.last_target = target
            bce = F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))
            self.aux_loss = self.mask_loss_weight * bce
            gate = mask.to(out.dtype)
            if self.mask_grad == "ste":
                p = torch.sigmoid(logits)
                gate = gate + p - p.detach()
            return out * gate[:, :, None, None], mask
        self.aux_loss = None
        self.last_target = None
        return self._gathered(x, mask, in_mask), mask

    def _gathered(self, x: Tensor, mask: Tensor, in_mask: Tensor | None) -> Tensor:
        """Eval forward computing only the filters some sample keeps, on the input channels
        some sample has; equal to ``dense(x) * mask`` (zero input channels add nothing)."""
        b, _, h, w = x.shape
        c_out = self.conv.out_channels
        out_idx = mask.any(dim=0).nonzero().squeeze(1)  # [K_out]
        in_idx = (
            torch.arange(x.shape[1], device=x.device)
            if in_mask is None
            else in_mask.any(dim=0).nonzero().squeeze(1)
        )
        spatial = h * w
        k2 = self.conv.kernel_size[0] * self.conv.kernel_size[1]
        kept_in = (
            torch.full((b,), x.shape[1], device=x.device) if in_mask is None else in_mask.sum(dim=1)
        )
        predictor_flops = 2 * self.predictor.linear.in_features * c_out
        self.last_flops = (2 * k2 * spatial) * kept_in * mask.sum(dim=1) + predictor_flops
        self.last_batch_flops = 2 * k2 * spatial * b * len(in_idx) * len(out_idx)
        self.last_batch_flops += b * predictor_flops
        out = x.new_zeros(b, c_out, h, w)
        if len(out_idx) == 0 or len(in_idx) == 0:
            return out
        weight = self.conv.weight.index_select(0, out_idx).index_select(1, in_idx)
        conv = self.conv
        y = F.conv2d(x.index_select(1, in_idx), weight, None, conv.stride, conv.padding)
        bn = self.bn
        assert bn.running_mean is not None and bn.running_var is not None
        y = F.batch_norm(
            y,
            bn.running_mean.index_select(0, out_idx),
            bn.running_var.index_select(0, out_idx),
            bn.weight.index_select(0, out_idx),
            bn.bias.index_select(0, out_idx),
            training=False,
            eps=bn.eps,
        )
        out = out.index_copy(1, out_idx, F.relu(y))
        return out * mask.to(out.dtype)[:, :, None, None]

    def extra_repr(self) -> str:
        return (
            f"mass={self.mass}, threshold={self.threshold}, detach_input={self.detach_input}, "
            f"mask_grad={self.mask_grad}"
        )


class MaskedConvBlock(ChannelMaskedConv):
    """:class:`ChannelMaskedConv` as a plain ``x -> out`` module (the ``masked_conv`` spec block):
    ``[B, C_in, H, W] -> [B, C_out, H, W]``.

    Without a mask from the previous block it takes each sample's input channels that are
    identically zero as skipped (exact: a zero channel adds nothing to any output), so after
    another masked block (and max-pooling) it counts and gathers as :class:`MaskedCNN` does.
    """

    def forward(self, x: Tensor, in_mask: Tensor | None = None) -> Tensor:  # type: ignore[override]
        if in_mask is None and not self.training:
            in_mask = x.detach().abs().amax(dim=(2, 3)) > 0  # [B, C_in]
        return super().forward(x, in_mask)[0]


@register_block("masked_conv")
def masked_conv(
    in_shape: tuple[int, ...],
    out_channels: Annotated[int, Range(min=1)],
    kernel_size: Annotated[int, Range(min=1)] = 3,
    mass: Annotated[float, Range(min=0.0, max=1.0, min_inclusive=False)] = 0.9,
    threshold: Annotated[float, Range(min=0.0, max=1.0)] = 0.5,
    mask_loss_weight: Annotated[float, Range(min=0.0)] = 1.0,
    detach_input: bool = True,
    mask_grad: MaskGrad = "ste",
) -> nn.Module:
    """Conv (same padding) -> BN -> ReLU with FTWT input-dependent output-channel masks."""
    if len(in_shape) != 3:
        raise ArchsmithError(f"masked_conv needs [C, H, W] input, got shape {list(in_shape)}")
    if kernel_size % 2 == 0:
        raise ArchsmithError(f"kernel_size: must be odd, got {kernel_size}")
    return MaskedConvBlock(
        in_shape[0],
        out_channels,
        kernel_size,
        mass=mass,
        threshold=threshold,
        mask_loss_weight=mask_loss_weight,
        detach_input=detach_input,
        mask_grad=mask_grad,
    )


class MaskedCNN(nn.Module):
    """A dense stem conv, then FTWT-masked conv blocks, each followed by 2x2 max-pooling while
    the map is >= 2x2; global average pooling and a linear head.

    The stem stays dense: its input (the image, pooled to ``C_in`` numbers) says too little to
    choose channels from, and its output is what the first predictor reads.

    Shapes: ``x: [B, C, H, W] -> [B, num_outputs]``.

    Attributes:
        last_flops: ``[B]`` per-sample forward FLOPs of the last eval forward (stem, masked
            blocks, head), counted as the torch FLOP counter counts a batch of one.
        dense_flops: per-sample FLOPs with every channel kept and no predictors.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: tuple[int, int],
        num_outputs: int,
        channels: Sequence[int] = (32, 64, 128),
        *,
        mass: float = 0.9,
        threshold: float = 0.5,
        mask_loss_weight: float = 1.0,
        detach_input: bool = True,
        mask_grad: MaskGrad = "ste",
    ) -> None:
        super().__init__()
        if len(channels) < 2:
            raise ArchsmithError("channels: need a stem and at least one masked block")
        h, w = image_size
        self.stem = ConvNormAct(in_channels, channels[0])
        self.stem_pool: nn.Module = nn.MaxPool2d(2) if min(h, w) >= 2 else nn.Identity()
        stem_flops = 2 * 9 * in_channels * channels[0] * h * w
        dense_flops = stem_flops
        if min(h, w) >= 2:
            h, w = h // 2, w // 2
        self.blocks = nn.ModuleList()
        self.pools = nn.ModuleList()
        for c_in, c_out in itertools.pairwise(channels):
            self.blocks.append(
                ChannelMaskedConv(
                    c_in,
                    c_out,
                    mass=mass,
                    threshold=threshold,
                    mask_loss_weight=mask_loss_weight,
                    detach_input=detach_input,
                    mask_grad=mask_grad,
                )
            )
            dense_flops += 2 * 9 * c_in * c_out * h * w
            self.pools.append(nn.MaxPool2d(2) if min(h, w) >= 2 else nn.Identity())
            if min(h, w) >= 2:
                h, w = h // 2, w // 2
        self.head = nn.Linear(channels[-1], num_outputs)
        head_flops = 2 * channels[-1] * num_outputs
        self.stem_flops, self.head_flops = stem_flops, head_flops
        self.dense_flops = dense_flops + head_flops
        self.last_flops: Tensor | None = None

    @property
    def masked_blocks(self) -> list[ChannelMaskedConv]:
        return [cast(ChannelMaskedConv, b) for b in self.blocks]

    def set_threshold(self, value: float) -> None:
        """Change every block's inference threshold (no retraining)."""
        for block in self.masked_blocks:
            block.threshold = value

    def forward(self, x: Tensor) -> Tensor:
        h = self.stem_pool(self.stem(x))
        in_mask: Tensor | None = None
        flops = x.new_full((x.shape[0],), float(self.stem_flops + self.head_flops))
        for block, pool in zip(self.masked_blocks, self.pools, strict=True):
            h, in_mask = block(h, in_mask)
            h = pool(h)  # max-pooling keeps a zeroed channel at zero
            if not self.training and block.last_flops is not None:
                flops = flops + block.last_flops.to(flops.dtype)
        self.last_flops = None if self.training else flops
        return self.head(h.mean(dim=(2, 3)))

    def kept_share(self) -> float:
        """Mean share of masked-block output channels kept in the last forward."""
        masks = [b.last_mask for b in self.masked_blocks if b.last_mask is not None]
        shares = [m.float().mean() for m in masks]
        return float(torch.stack(shares).mean()) if shares else 1.0


@register_model(
    "masked_cnn",
    default_task="digits",
    inputs=("image",),
    task_kinds=("classification", "regression"),
    family="gating",
    recipe=Recipe(
        epochs=20,
        patience=None,
        note="archsmith bench channel-masks' budget: 20 epochs at every kept mass (no early "
        "stopping, so each run trains as long; the best validation epoch's weights are kept).",
    ),
)
def masked_cnn(
    in_shape: tuple[int, ...],
    num_outputs: int,
    channels: tuple[Annotated[int, Range(min=1)], ...] = (32, 64, 128),
    mass: Annotated[float, Range(min=0.0, max=1.0, min_inclusive=False)] = 0.9,
    threshold: Annotated[float, Range(min=0.0, max=1.0)] = 0.5,
    mask_loss_weight: Annotated[float, Range(min=0.0)] = 1.0,
    detach_input: bool = True,
    mask_grad: MaskGrad = "ste",
) -> nn.Module:
    """CNN with input-dependent channel masks (Fire Together Wire Together, CVPR 2022)."""
    c, h, w = in_shape
    return MaskedCNN(
        c,
        (h, w),
        num_outputs,
        channels,
        mass=mass,
        threshold=threshold,
        mask_loss_weight=mask_loss_weight,
        detach_input=detach_input,
        mask_grad=mask_grad,
    )
