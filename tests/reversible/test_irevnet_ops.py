"""i-RevNet's parameter-free invertible maps: space-to-depth against torch's pixel_unshuffle and a
naive loop, exact inverses, and injective padding."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from archsmith.errors import ArchsmithError
from archsmith.reversible.invertible_ops import InjectivePad, SpaceToDepth


def naive_space_to_depth(x: torch.Tensor, r: int) -> torch.Tensor:
    """out[b, c * r**n + flat(offset), *i] = x[b, c, *(i * r + offset)], with loops."""
    b, c, *spatial = x.shape
    n = len(spatial)
    out = torch.empty(b, c * r**n, *(s // r for s in spatial), dtype=x.dtype)
    for ch in range(c):
        for k, offset in enumerate(itertools.product(range(r), repeat=n)):
            for idx in itertools.product(*(range(s // r) for s in spatial)):
                src = tuple(i * r + o for i, o in zip(idx, offset, strict=True))
                out[(slice(None), ch * r**n + k, *idx)] = x[(slice(None), ch, *src)]  # type: ignore[index]
    return out


@pytest.mark.parametrize(("shape", "r"), [((2, 3, 4, 6), 2), ((1, 2, 6, 3), 3), ((3, 1, 8, 8), 4)])
def test_space_to_depth_2d_is_pixel_unshuffle(shape: tuple[int, ...], r: int) -> None:
    x = torch.randn(shape)
    y = SpaceToDepth(r, spatial_dims=2)(x)
    assert torch.equal(y, F.pixel_unshuffle(x, r))
    assert torch.equal(SpaceToDepth(r, 2).inverse(y), x)
    assert torch.equal(SpaceToDepth(r, 2).inverse(y), F.pixel_shuffle(y, r))


@pytest.mark.parametrize(
    ("shape", "r"), [((2, 3, 4, 2, 6), 2), ((1, 2, 3, 6, 3), 3), ((2, 3, 6), 2)]
)
def test_space_to_depth_1d_3d_matches_naive_loops_and_inverts_exactly(
    shape: tuple[int, ...], r: int
) -> None:
    x = torch.randn(shape, dtype=torch.float64)
    op = SpaceToDepth(r, spatial_dims=len(shape) - 2)
    y = op(x)
    assert torch.equal(y, naive_space_to_depth(x, r))
    assert torch.equal(op.inverse(y), x)
    z = torch.randn_like(y)
    assert torch.equal(op(op.inverse(z)), z)  # a bijection: the other way round too


def test_space_to_depth_rejects_what_it_cannot_fold() -> None:
    with pytest.raises(ArchsmithError, match="divisible"):
        SpaceToDepth(2, 2)(torch.randn(1, 1, 5, 4))
    with pytest.raises(ArchsmithError, match="5-d input"):
        SpaceToDepth(2, 3)(torch.randn(1, 1, 4, 4))
    with pytest.raises(ArchsmithError, match="depth-to-space"):
        SpaceToDepth(2, 2).inverse(torch.randn(1, 3, 2, 2))
    with pytest.raises(ArchsmithError, match="spatial dims"):
        SpaceToDepth(2, 4)


def test_injective_pad_appends_zeros_and_its_inverse_drops_them() -> None:
    x = torch.randn(2, 3, 4, 5, requires_grad=True)
    pad = InjectivePad(5)
    y = pad(x)
    assert y.shape == (2, 8, 4, 5)
    assert torch.equal(y[:, :3], x) and torch.equal(y[:, 3:], torch.zeros(2, 5, 4, 5))
    assert torch.equal(pad.inverse(y), x)
    g = torch.randn_like(y)
    (grad,) = torch.autograd.grad(y, x, g)
    assert torch.equal(grad, g[:, :3])  # the appended zeros take no gradient back
    assert InjectivePad(0)(x) is x
    with pytest.raises(ArchsmithError, match="more than 5 channels"):
        pad.inverse(torch.randn(2, 5, 4, 5))


@pytest.mark.parametrize(("channels", "extra"), [(4, 12), (3, 4), (5, 1), (2, 0)])
def test_grouped_injective_pad_gives_each_half_its_own_zeros(channels: int, extra: int) -> None:
    x = torch.randn(2, channels, 3, 2)
    y = InjectivePad(extra, groups=2)(x)
    out = channels + extra
    # naive: the first ceil(C/2) input channels lead the first ceil(out/2) output channels,
    # the rest lead the second part; everything else is zero
    a_in, a_out = (channels + 1) // 2, (out + 1) // 2
    ref = torch.zeros(2, out, 3, 2)
    ref[:, :a_in] = x[:, :a_in]
    ref[:, a_out : a_out + channels - a_in] = x[:, a_in:]
    assert torch.equal(y, ref)
    assert torch.equal(InjectivePad(extra, groups=2).inverse(y), x)
