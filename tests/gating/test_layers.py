"""GLA layers against a from-the-equations reimplementation, mode agreement, prefill + decode,
direction checks, and ViG's 2D locality injection."""

import pytest
import torch
import torch.nn.functional as F

from archsmith.errors import ArchsmithError
from archsmith.gating.gla import naive_recurrent_gla
from archsmith.gating.layers import GatedLinearAttention, VisionGatedLinearAttention
from archsmith.registry import get_layer
from helpers import rel_err


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def _heads(x: torch.Tensor, h: int) -> torch.Tensor:
    return x.view(*x.shape[:2], h, -1)


def reference_gla_layer(layer: GatedLinearAttention, x: torch.Tensor) -> torch.Tensor:
    """Yang et al. (2024), section 5, written out: projections, gate logsigmoid(x W1 W2 + b)/16,
    the recurrence (reference loop), per-head RMSNorm, swish output gate, output projection."""
    h = layer.num_heads
    q, k, v = (_heads(x @ p.weight.T, h) for p in (layer.q_proj, layer.k_proj, layer.v_proj))
    w1, w2 = layer.gk_proj[0], layer.gk_proj[1]
    gates = F.logsigmoid(x @ w1.weight.T @ w2.weight.T + w2.bias) / 16
    if layer.causal:
        o = naive_recurrent_gla(q, k, v, _heads(gates, h))[0]
    else:
        fwd, bwd = gates.chunk(2, dim=-1)
        o_f = naive_recurrent_gla(q, k, v, _heads(fwd, h))[0]
        flip = [t.flip(1) for t in (q, k, v, _heads(bwd, h))]
        o = (o_f + naive_recurrent_gla(*flip)[0].flip(1)) / 2
    o = _rms(o, layer.g_norm.weight, layer.g_norm.eps).flatten(2)
    gate = x @ layer.g_proj.weight.T + layer.g_proj.bias
    return (o * gate * torch.sigmoid(gate)) @ layer.o_proj.weight.T


@pytest.mark.parametrize("causal", [True, False])
def test_layer_matches_reference(causal: bool) -> None:
    layer = GatedLinearAttention(12, 3, causal=causal, chunk_size=4).double()
    x = torch.randn(2, 11, 12, dtype=torch.float64, requires_grad=True)
    out, ref = layer(x), reference_gla_layer(layer, x)
    assert rel_err(out, ref) < 1e-10
    grad = torch.randn_like(out)
    params = [x, *layer.parameters()]
    for a, b in zip(
        torch.autograd.grad(out, params, grad), torch.autograd.grad(ref, params, grad), strict=True
    ):
        assert rel_err(a, b) < 1e-9


@pytest.mark.parametrize("causal", [True, False])
def test_modes_agree(causal: bool) -> None:
    x = torch.randn(2, 9, 8, dtype=torch.float64)
    outs = []
    for mode in ("chunk", "recurrent", "parallel"):
        torch.manual_seed(0)
        layer = GatedLinearAttention(8, 2, causal=causal, mode=mode, chunk_size=4).double()
        out = layer(x)
        out.square().sum().backward()
        outs.append([out, *(p.grad for p in layer.parameters())])
    for other in outs[1:]:
        for a, b in zip(outs[0], other, strict=True):
            assert rel_err(a, b) < 1e-10


def test_prefill_then_step_equals_forward() -> None:
    layer = GatedLinearAttention(16, 4, chunk_size=4).double()
    x = torch.randn(3, 14, 16, dtype=torch.float64)
    full = layer(x)
    y, state = layer.prefill(x[:, :9])
    ys = [y]
    for t in range(9, 14):
        y_t, state = layer.step(x[:, t], state)
        ys.append(y_t.unsqueeze(1))
    assert rel_err(torch.cat(ys, 1), full) < 1e-12


@pytest.mark.parametrize("causal", [True, False])
def test_direction(causal: bool) -> None:
    layer = GatedLinearAttention(8, 2, causal=causal)
    x = torch.randn(1, 6, 8)
    changed = x.clone()
    changed[:, -1] += 1.0
    first_moved = not torch.allclose(layer(x)[:, 0], layer(changed)[:, 0])
    assert first_moved == (not causal)


def test_bidirectional_layer_cannot_decode() -> None:
    layer = GatedLinearAttention(8, 2, causal=False)
    with pytest.raises(ArchsmithError, match="causal"):
        layer.step(torch.randn(1, 8))


def test_registered_as_attn_layer() -> None:
    factory = get_layer("attn", "gla")
    layer = factory(16, 4, causal=True, dropout=0.0)
    assert isinstance(layer, GatedLinearAttention)
    assert layer(torch.randn(2, 5, 16)).shape == (2, 5, 16)


def test_bad_mode_raises() -> None:
    with pytest.raises(ArchsmithError, match="mode"):
        GatedLinearAttention(8, 2, mode="fast")  # type: ignore[arg-type]


def test_vision_layer_matches_reference() -> None:
    layer = VisionGatedLinearAttention(8, 2, (3, 4)).double()
    x = torch.randn(2, 12, 8, dtype=torch.float64)
    grid = x.transpose(1, 2).reshape(2, 8, 3, 4)
    local = F.silu(F.conv2d(grid, layer.local[0].weight, padding=1, groups=8)).flatten(2)
    local = local.transpose(1, 2)  # [B, T, dim]
    h = layer.num_heads
    q, k, v = (_heads(local @ p.weight.T, h) for p in (layer.q_proj, layer.k_proj, layer.v_proj))
    w1, w2 = layer.gk_proj[0], layer.gk_proj[1]
    fwd, bwd = (F.logsigmoid(local @ w1.weight.T @ w2.weight.T + w2.bias) / 16).chunk(2, -1)
    o_f = naive_recurrent_gla(q, k, v, _heads(fwd, h))[0]
    o_b = naive_recurrent_gla(*(t.flip(1) for t in (q, k, v, _heads(bwd, h))))[0].flip(1)
    o = _rms((o_f + o_b) / 2, layer.g_norm.weight, layer.g_norm.eps)
    lh = _rms(_heads(local, h), layer.l_norm.weight, layer.l_norm.eps)
    r = torch.sigmoid(_heads(local @ layer.g_proj.weight.T + layer.g_proj.bias, h))
    ref = (o * r + lh * (1 - r)).flatten(2) @ layer.o_proj.weight.T
    assert rel_err(layer(x), ref) < 1e-10
