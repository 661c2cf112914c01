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


def naive_short_conv(x: torch.Tensor, weight: torch.Tensor, left: int) -> torch.Tensor:
    """Depthwise convolution then SiLU as a loop over output positions: ``x: [B, T, C]``,
    ``weight: [C, K]``; output ``t`` sums ``weight[:, j] * x[t - left + j]`` over the taps
    ``j`` that land inside the sequence (zeros outside)."""
    t_len, kernel = x.shape[1], weight.shape[1]
    out = []
    for t in range(t_len):
        acc = torch.zeros_like(x[:, 0])
        for j in range(kernel):
            s = t - left + j
            if 0 <= s < t_len:
                acc = acc + weight[:, j] * x[:, s]
        out.append(acc)
    return F.silu(torch.stack(out, 1))


def reference_gla_layer(layer: GatedLinearAttention, x: torch.Tensor) -> torch.Tensor:
    """Yang et al. (2024), section 5, written out: projections (with a short conv each when the
    layer has one, fla's ``use_short_conv``), gate logsigmoid(x W1 W2 + b)/16, the recurrence
    (reference loop), per-head RMSNorm, swish output gate, output projection."""
    h = layer.num_heads
    qkv = [x @ p.weight.T for p in (layer.q_proj, layer.k_proj, layer.v_proj)]
    if layer.conv is not None:
        kernel = layer.short_conv
        weights = layer.conv.weight[:, 0].split([t.shape[-1] for t in qkv])
        left = kernel - 1 if layer.causal else kernel // 2
        qkv = [naive_short_conv(t, w, left) for t, w in zip(qkv, weights, strict=True)]
    q, k, v = (_heads(t, h) for t in qkv)
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


@pytest.mark.parametrize("short_conv", [0, 1, 3, 4])
@pytest.mark.parametrize("causal", [True, False])
def test_layer_matches_reference(causal: bool, short_conv: int) -> None:
    layer = GatedLinearAttention(12, 3, causal=causal, chunk_size=4, short_conv=short_conv)
    layer = layer.double()
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


@pytest.mark.parametrize("short_conv", [0, 4])
@pytest.mark.parametrize("prompt", [0, 2, 9])
def test_prefill_then_step_equals_forward(short_conv: int, prompt: int) -> None:
    # prompt 2 is shorter than the conv's K - 1 = 3 remembered inputs
    layer = GatedLinearAttention(16, 4, chunk_size=4, short_conv=short_conv).double()
    x = torch.randn(3, 14, 16, dtype=torch.float64)
    full = layer(x)
    state = None
    ys = []
    if prompt:
        y, state = layer.prefill(x[:, :prompt])
        ys.append(y)
    for t in range(prompt, 14):
        y_t, state = layer.step(x[:, t], state)
        ys.append(y_t.unsqueeze(1))
    assert rel_err(torch.cat(ys, 1), full) < 1e-12


@pytest.mark.parametrize("short_conv", [0, 4])
def test_prefill_continues_from_state(short_conv: int) -> None:
    layer = GatedLinearAttention(16, 4, chunk_size=4, short_conv=short_conv).double()
    x = torch.randn(2, 13, 16, dtype=torch.float64)
    full, full_state = layer.prefill(x)
    parts, state = [], None
    for lo, hi in ((0, 2), (2, 7), (7, 13)):
        y, state = layer.prefill(x[:, lo:hi], state)
        parts.append(y)
    assert rel_err(torch.cat(parts, 1), full) < 1e-12
    assert state is not None
    for a, b in zip(
        (state,) if short_conv == 0 else state,
        (full_state,) if short_conv == 0 else full_state,
        strict=True,
    ):
        assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
        assert rel_err(a, b) < 1e-12


def test_short_conv_is_causal_and_local() -> None:
    # a change at token 5 reaches q, k, v of tokens 5..8 only (kernel 4), and through the
    # recurrence every later output, but never an earlier one
    torch.manual_seed(0)
    layer = GatedLinearAttention(8, 2, short_conv=4).double()
    x = torch.randn(1, 12, 8, dtype=torch.float64)
    changed = x.clone()
    changed[:, 5] += 1.0
    before, _ = layer._qkvg(x)
    after, _ = layer._qkvg(changed)
    for a, b in zip(before[:3], after[:3], strict=True):  # q, k, v
        moved = [not torch.allclose(a[0, t], b[0, t]) for t in range(12)]
        assert moved == [t in range(5, 9) for t in range(12)]
    out, out2 = layer(x), layer(changed)
    assert torch.equal(out[:, :5], out2[:, :5])


def test_short_conv_state_mismatch_raises() -> None:
    with_conv = GatedLinearAttention(8, 2, short_conv=4)
    without = GatedLinearAttention(8, 2)
    _, state = with_conv.prefill(torch.randn(1, 3, 8))
    _, plain = without.prefill(torch.randn(1, 3, 8))
    with pytest.raises(ArchsmithError, match="short_conv"):
        with_conv.step(torch.randn(1, 8), plain)
    with pytest.raises(ArchsmithError, match="short_conv"):
        without.step(torch.randn(1, 8), state)
    with pytest.raises(ArchsmithError, match="short_conv"):
        GatedLinearAttention(8, 2, short_conv=-1)


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
