"""Reversible blocks against naive references written from their papers' equations."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsmith.errors import ArchsmithError
from archsmith.reversible import (
    InvertedBottleneck,
    ReversibleTransformer,
    rev_mbconv,
    rev_transformer_layer,
    set_reversible,
)
from helpers import rel_err


def batch_norm(x: Tensor, bn: Any) -> Tensor:
    """Training-mode batch norm from Ioffe & Szegedy (2015): per channel, biased variance."""
    dims = [0, *range(2, x.dim())]
    mean = x.mean(dims, keepdim=True)
    var = x.var(dims, unbiased=False, keepdim=True)
    shape = [1, -1] + [1] * (x.dim() - 2)
    return (x - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(shape) + bn.bias.view(shape)


def naive_mbconv(x: Tensor, m: InvertedBottleneck, dims: int) -> Tensor:
    """MobileNetV2 (Sandler et al. 2018, table 1): 1x1 expand + ReLU, depthwise + ReLU,
    linear 1x1 projection; a batch norm after each convolution."""
    conv = F.conv2d if dims == 2 else F.conv3d
    k = m.depthwise.weight.shape[-1]
    h = torch.relu(batch_norm(conv(x, m.expand.weight), m.norm1))
    h = conv(h, m.depthwise.weight, padding=k // 2, groups=h.shape[1])
    h = torch.relu(batch_norm(h, m.norm2))
    return batch_norm(conv(h, m.project.weight), m.norm3)


@pytest.mark.parametrize(("dims", "shape"), [(2, (3, 5, 4, 7)), (3, (2, 5, 3, 4, 5))])
def test_inverted_bottleneck_matches_mobilenet_v2(dims: int, shape: tuple[int, ...]) -> None:
    m = InvertedBottleneck(5, 3, expand_ratio=3, kernel_size=5, dims=dims).double()
    with torch.no_grad():
        for bn in (m.norm1, m.norm2, m.norm3):
            bn.weight.uniform_(0.5, 1.5)  # type: ignore[operator]
            bn.bias.uniform_(-0.5, 0.5)  # type: ignore[operator]
    x = torch.randn(shape, dtype=torch.float64)
    out = m(x)
    assert out.shape == (shape[0], 3, *shape[2:])
    assert rel_err(out, naive_mbconv(x, m, dims)) < 1e-12
    assert m.expand.weight.shape[0] == 15  # hidden = in_channels * expand_ratio


def test_inverted_bottleneck_layer_options() -> None:
    m = InvertedBottleneck(4, 4, norm_layer="none", act_layer="gelu")
    assert isinstance(m.norm1, nn.Identity) and isinstance(m.act1, nn.GELU)
    assert m.expand.bias is not None  # no norm to absorb the bias
    assert InvertedBottleneck(4, 4).expand.bias is None
    with pytest.raises(ArchsmithError, match="dims"):
        InvertedBottleneck(4, 4, dims=1)
    with pytest.raises(ArchsmithError, match="odd"):
        InvertedBottleneck(4, 4, kernel_size=4)


def test_rev_mbconv_odd_channels() -> None:
    coupling = rev_mbconv(7)
    x = torch.randn(2, 7, 4, 4)
    assert coupling(x).shape == x.shape
    assert coupling.f.expand.in_channels == 3 and coupling.f.project.out_channels == 4  # type: ignore[union-attr]
    coupling.eval()
    with torch.no_grad():
        assert rel_err(coupling.inverse(coupling(x)), x) < 1e-5


def test_rev_transformer_layer_matches_reformer_equations() -> None:
    layer = rev_transformer_layer(8, num_heads=2, causal=True).double()
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    x1, x2 = x[..., :8], x[..., 8:]
    norm_f, attn = layer.f[0], layer.f[1]  # type: ignore[index]
    norm_g, mlp = layer.g[0], layer.g[1]  # type: ignore[index]
    # Kitaev et al. 2020, eq. (3): Y1 = X1 + Attention(X2), Y2 = X2 + FeedForward(Y1), pre-norm
    y1 = x1 + attn(norm_f(x2))
    y2 = x2 + mlp(norm_g(y1))
    assert rel_err(layer(x), torch.cat([y1, y2], -1)) < 1e-12
    # causal: the first token's output does not depend on later tokens
    x_later = x.clone()
    x_later[:, 1:] += 1.0
    assert rel_err(layer(x_later)[:, 0], layer(x)[:, 0]) < 1e-12


def test_reversible_transformer_duplicates_and_averages_streams() -> None:
    model = ReversibleTransformer(8, depth=3, num_heads=2).double()
    x = torch.randn(2, 6, 8, dtype=torch.float64)
    h = torch.cat([x, x], -1)
    for layer in model.layers.couplings:
        h = layer(h)
    expected = 0.5 * (h[..., :8] + h[..., 8:])
    assert rel_err(model(x), expected) < 1e-12
    leaf = x.clone().requires_grad_()
    (dx,) = torch.autograd.grad(model(leaf).square().sum(), leaf)
    twin_leaf = x.clone().requires_grad_()
    (ref,) = torch.autograd.grad(set_reversible(model, False)(twin_leaf).square().sum(), twin_leaf)
    assert rel_err(dx, ref) < 1e-10


def test_rev_transformer_heads_must_divide() -> None:
    with pytest.raises(ArchsmithError, match="divisible"):
        rev_transformer_layer(6, num_heads=4)
