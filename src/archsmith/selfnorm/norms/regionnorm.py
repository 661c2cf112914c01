"""Region Normalization, basic form (RN-B).

Yu, Guo, Jin, Wu, Chen, Li, Zhang & Liu, "Region Normalization for Image Inpainting", AAAI 2020
(arXiv:1911.10375). Normalizing a feature map of a corrupted image over all positions mixes the
statistics of the hole (filled with a constant) into those of the valid pixels: a mean and
variance shift. RN-B splits the positions by the inpainting mask and normalizes each region
with its own mean and variance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archsmith.registry import register_layer
from archsmith.selfnorm.norms._utils import channel_shape, check_channels_first

__all__ = ["RegionNorm"]


class RegionNorm(nn.Module):
    """Basic Region Normalization (RN-B), Yu et al. (2020).

    For each sample ``b``, channel ``c`` and region ``R`` (valid: ``mask == 1``; hole:
    ``mask == 0``)::

        mu    = mean_{p in R} x[b, c, p]
        var   = mean_{p in R} (x[b, c, p] - mu) ** 2          # biased
        y[b, c, p] = (x[b, c, p] - mu) / sqrt(var + eps) * gamma_R[c] + beta_R[c],  p in R

    Each region has its own per-channel affine ``gamma_R, beta_R: [C]`` (``weight``/``bias``
    for the valid region, ``hole_weight``/``hole_bias`` for the hole; init 1 and 0), following
    the paper's separate treatment of the two regions. An empty region (a sample with no hole,
    or nothing valid) contributes nothing: its statistics are computed over a clamped count of
    1 and its output is masked away, so no NaN or Inf appears in values or gradients.

    With ``mask=None`` the whole map is one valid region: the layer is plain instance
    normalization with the valid-region affine. That is what it does as a registered
    ``norm_layer`` inside blocks that call ``norm(x)``. No running statistics: train and eval
    agree.

    Shapes: ``x: [B, C, *spatial]`` (``[B, C, H, W]`` in the paper; ``[B, C, L]`` and volumes
    work the same); ``mask: [B, 1, *mask_spatial]`` (or ``[1, 1, ...]`` broadcast over the
    batch) with values in {0, 1}, 1 = valid (known) pixel. A mask at another resolution is
    resized with nearest-neighbour interpolation, as deeper layers of an inpainting network see
    downsampled maps. Returns ``[B, C, *spatial]``.

    Args:
        num_features: ``C``.
        eps: inside the square root (1e-5).
    """

    def __init__(self, num_features: int, *, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.hole_weight = nn.Parameter(torch.ones(num_features))
        self.hole_bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_channels_first(x, self.num_features, "RegionNorm", min_dim=3)
        shape = channel_shape(x)
        spatial = tuple(range(2, x.dim()))
        if mask is None:
            var, mean = torch.var_mean(x, dim=spatial, correction=0, keepdim=True)
            normed = (x - mean) / torch.sqrt(var + self.eps)
            return normed * self.weight.view(shape) + self.bias.view(shape)
        valid = self._prepare_mask(mask, x)
        out = self._region(x, valid, self.weight.view(shape), self.bias.view(shape))
        hole = 1.0 - valid
        return out + self._region(x, hole, self.hole_weight.view(shape), self.hole_bias.view(shape))

    def _prepare_mask(self, mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``mask`` as ``x``'s dtype, resized to ``x``'s spatial size: ``[B or 1, 1, *spatial]``."""
        if mask.dim() != x.dim() or mask.shape[1] != 1 or mask.shape[0] not in (1, x.shape[0]):
            raise ValueError(
                f"RegionNorm mask must be [B, 1, *spatial] (B={x.shape[0]} or 1) for x of shape "
                f"{tuple(x.shape)}, got {tuple(mask.shape)}"
            )
        mask = mask.to(x.dtype)
        if mask.shape[2:] != x.shape[2:]:
            mask = F.interpolate(mask, size=x.shape[2:], mode="nearest")
        return mask.detach()  # a region assignment, not something to learn through

    def _region(
        self, x: torch.Tensor, region: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
    ) -> torch.Tensor:
        """The normalized, affine-transformed values of ``x`` inside ``region`` (0 elsewhere)."""
        spatial = tuple(range(2, x.dim()))
        count = region.sum(dim=spatial, keepdim=True).clamp_min(1.0)  # [B, 1, 1...]; empty -> 1
        mean = (x * region).sum(dim=spatial, keepdim=True) / count  # [B, C, 1...]
        centred = (x - mean) * region  # positions outside the region must not enter the variance
        var = centred.square().sum(dim=spatial, keepdim=True) / count
        return region * ((x - mean) / torch.sqrt(var + self.eps) * weight + bias)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


register_layer("norm", "regionnorm")(RegionNorm)
