"""i-RevNet: gradients against the autograd twin, the exact inverse, a naive forward written from
the paper's block equations, and saved activations flat in depth."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archsmith.build import create_model
from archsmith.cost import measure
from archsmith.errors import ArchsmithError
from archsmith.reversible.couplings import AdditiveCoupling
from archsmith.reversible.invertible_ops import DownsamplingCoupling, InvertibleDownsampling
from archsmith.reversible.irevnet import IRevNet
from helpers import rel_err


def _pair(dtype: torch.dtype, shape: tuple[int, int, int], **kw: object) -> tuple[IRevNet, IRevNet]:
    rev = IRevNet(shape, 5, reversible=True, **kw).to(dtype)  # type: ignore[arg-type]
    with torch.no_grad():  # away from the init (BN affine = identity)
        for p in rev.parameters():
            p.add_(0.1 * torch.randn_like(p))
    twin = IRevNet(shape, 5, reversible=False, **kw).to(dtype)  # type: ignore[arg-type]
    twin.load_state_dict(rev.state_dict())
    return rev, twin


CASES = [
    # (input shape, channels, couplings per stage): odd sizes, odd widths, depth 1 to 8
    ((1, 8, 8), 16, (1,)),
    ((3, 12, 4), 14, (1, 3)),
    ((3, 8, 8), 13, (1, 1, 1)),
    ((2, 4, 12), 9, (8,)),
]


# the "fold" layout differs from "strided" only where a stage downsamples: one-stage cases once
LAYOUT_CASES = [
    (downsampling, *case)
    for downsampling in ("strided", "fold")
    for case in CASES
    if downsampling == "strided" or len(case[2]) > 1
]


@pytest.mark.parametrize(
    ("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-4)], ids=["f64", "f32"]
)
@pytest.mark.parametrize(("downsampling", "shape", "channels", "blocks"), LAYOUT_CASES)
def test_gradients_match_the_autograd_twin(
    dtype: torch.dtype,
    tol: float,
    shape: tuple[int, int, int],
    channels: int,
    blocks: tuple[int, ...],
    downsampling: str,
) -> None:
    torch.manual_seed(0)
    kw = dict(channels=channels, blocks=blocks, dropout=0.2, downsampling=downsampling)
    rev, twin = _pair(dtype, shape, **kw)
    x = torch.randn(5, *shape, dtype=dtype)
    g = torch.randn(5, 5, dtype=dtype)
    results = []
    for model in (rev, twin):
        xi = x.clone().requires_grad_()
        torch.manual_seed(3)  # the same dropout masks
        out = model(xi)
        out.backward(g)
        results.append((out.detach(), xi.grad, [p.grad for p in model.parameters()]))
    (out_r, dx_r, dp_r), (out_t, dx_t, dp_t) = results
    assert rel_err(out_r, out_t) < tol
    assert dx_r is not None and dx_t is not None and rel_err(dx_r, dx_t) < tol
    for a, b in zip(dp_r, dp_t, strict=True):
        assert a is not None and b is not None and rel_err(a, b) < tol
    for (name, a), b in zip(rev.named_buffers(), twin.buffers(), strict=True):
        assert rel_err(a, b) < tol, name  # running statistics: updated once, as in the twin
        if name.endswith("num_batches_tracked"):
            assert int(a) == 1


def _warm_statistics(model: IRevNet, shape: tuple[int, ...]) -> None:
    """BatchNorm running statistics from a few batches (cumulative average), then eval mode:
    the network as it is inverted after training."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, *shape))
    model.eval()


@pytest.mark.parametrize("downsampling", ["strided", "fold"])
@pytest.mark.parametrize(
    ("shape", "channels", "blocks", "perturbed"),
    [
        *[(*case, True) for case in CASES],
        ((1, 8, 8), 16, (4, 4), True),
        # 32 i-RevNet blocks (16 couplings) at their initialization: the test networks above
        # get noise of 0.1 on every weight, which raises each residual function's gain; over
        # 16 couplings their inverse's rounding error reaches 3e-5. At a sane scale this
        # depth keeps about 3e-6 (see the reconstruction table of `archsmith bench reversible`).
        ((3, 16, 16), 16, (8, 8), False),
    ],
)
def test_inverse_recovers_the_input_to_1e5_in_float32(
    shape: tuple[int, int, int],
    channels: int,
    blocks: tuple[int, ...],
    perturbed: bool,
    downsampling: str,
) -> None:
    torch.manual_seed(0)
    kw = dict(channels=channels, blocks=blocks, dropout=0.2, downsampling=downsampling)
    fresh = IRevNet(shape, 5, **kw)  # type: ignore[arg-type]
    model = _pair(torch.float32, shape, **kw)[0] if perturbed else fresh
    _warm_statistics(model, shape)
    x = torch.randn(4, *shape)
    with torch.no_grad():
        z = model.features(x)
        assert z.shape[1] == channels * 4 ** (len(blocks) - 1)
        assert rel_err(model.inverse(z), x) < 1e-5


def naive_features(model: IRevNet, x: torch.Tensor) -> torch.Tensor:
    """i-RevNet from the paper: fold, pad each half, then blocks (x1, x2) -> (x2, x1 + F(x2));
    a downsampling block is (x1, x2) -> (S x2, S x1 + F(x2)) with F strided and S
    pixel_unshuffle ("fold" instead folds both halves by pixel_unshuffle on their own)."""
    c = x.shape[1] * 4
    h = F.pixel_unshuffle(x, 2)
    first_width = model.pad.extra + c
    half_in, half_out = (c + 1) // 2, (first_width + 1) // 2
    z = torch.zeros(x.shape[0], first_width, *h.shape[2:], dtype=x.dtype)
    z[:, :half_in] = h[:, :half_in]
    z[:, half_out : half_out + c - half_in] = h[:, half_in:]
    for block in model.trunk.blocks():
        if isinstance(block, InvertibleDownsampling):
            z = F.pixel_unshuffle(z, 2)
            continue
        if isinstance(block, DownsamplingCoupling):
            k = (z.shape[1] + 1) // 2
            x1, x2 = z[:, :k], z[:, k:]
            x1, x2 = F.pixel_unshuffle(x2, 2), F.pixel_unshuffle(x1, 2) + block.f(x2)
            x1, x2 = x2, x1 + block.g(x2)
            z = torch.cat([x1, x2], 1)
            continue
        assert isinstance(block, AdditiveCoupling)
        k = (z.shape[1] + 1) // 2
        x1, x2 = z[:, :k], z[:, k:]
        # two i-RevNet blocks; their two swaps cancel
        x1, x2 = x2, x1 + block.f(x2)
        x1, x2 = x2, x1 + block.g(x2)
        z = torch.cat([x1, x2], 1)
    return z


@pytest.mark.parametrize("downsampling", ["strided", "fold"])
def test_trunk_is_the_papers_block_sequence(downsampling: str) -> None:
    kw = dict(channels=14, blocks=(2, 1, 2), downsampling=downsampling)
    model = _pair(torch.float64, (3, 16, 8), **kw)[0].eval()
    kinds = [type(b) for b in model.trunk.blocks()]
    assert (DownsamplingCoupling in kinds) == (downsampling == "strided")
    x = torch.randn(3, 3, 16, 8, dtype=torch.float64)
    with torch.no_grad():
        assert rel_err(model.features(x), naive_features(model, x)) < 1e-12


def test_downsampling_coupling_gradcheck() -> None:
    """The fused backward of the paper's downsampling block against autograd's numerical
    Jacobian, through the engine (input and parameter gradients)."""
    from archsmith.reversible.engine import ReversibleSequence
    from archsmith.reversible.irevnet import IRevNetBottleneck

    torch.manual_seed(0)
    f = IRevNetBottleneck(2, 12, 3, stride=2, norm_layer="none")
    g = IRevNetBottleneck(12, 8, 3, norm_layer="none")
    seq = ReversibleSequence([DownsamplingCoupling(f, g)]).double()
    x = torch.randn(2, 5, 4, 6, dtype=torch.float64, requires_grad=True)
    params = list(seq.parameters())
    assert seq(x).shape == (2, 20, 2, 3)

    def run(x: torch.Tensor, *ps: torch.Tensor) -> torch.Tensor:
        return seq(x)

    assert torch.autograd.gradcheck(run, (x, *params), eps=1e-6, atol=1e-6)


def _saved_bytes(blocks: list[int], reversible: bool) -> int:
    model = create_model("irevnet", task="digits", blocks=blocks, reversible=reversible)
    return measure(model, torch.randn(8, 1, 8, 8), timing=False).saved_activation_bytes


def test_saved_activations_stay_flat_in_depth_while_the_twin_grows() -> None:
    rev = [_saved_bytes(b, True) for b in ([1, 1], [6, 6])]
    twin = [_saved_bytes(b, False) for b in ([1, 1], [6, 6])]
    assert rev[0] == rev[1]  # the trunk keeps its output whatever its depth
    assert twin[1] > 4 * twin[0]  # 12 couplings against 2
    assert twin[0] > rev[0]


def test_bad_shapes_raise_one_line_errors() -> None:
    with pytest.raises(ArchsmithError, match="divisible by 8"):
        IRevNet((1, 8, 12), 10, 16, (1, 1, 1))
    with pytest.raises(ArchsmithError, match=r"irevnet\.channels"):
        IRevNet((3, 8, 8), 10, 8, (1,))
    with pytest.raises(ArchsmithError, match=r"irevnet\.blocks"):
        IRevNet((1, 8, 8), 10, 16, ())
    with pytest.raises(ArchsmithError, match="image"):
        create_model("irevnet", task="digits-flat")
