"""Chunkwise GLA against the reference loop (outputs, final states, gradients of q, k, v, g and
the initial state), in both in-chunk forms, at odd lengths, and under strong decay."""

import pytest
import torch
import torch.nn.functional as F

from archsmith.errors import ArchsmithError
from archsmith.gating.gla import chunk_gla, chunk_gla_flops, naive_recurrent_gla
from helpers import rel_err

# (chunk_size, sub_chunk_size, factorized_max): default split, secondary chunking forced
# everywhere (0), and a low bound that mixes both forms across chunks
LAYOUTS = [(8, 4, None), (8, 4, 0.0), (16, 4, 3.0), (4, 4, 0.0), (64, 16, None), (64, 16, 0.0)]


@pytest.mark.parametrize("initial", [False, True])
@pytest.mark.parametrize(("chunk", "sub", "bound"), LAYOUTS)
def test_chunk_matches_naive_float64(
    case_factory, initial: bool, chunk: int, sub: int, bound
) -> None:
    case = case_factory(t=37, initial=initial)  # 37: not a multiple of any chunk size
    got = case.run(chunk_gla, chunk_size=chunk, sub_chunk_size=sub, factorized_max=bound)
    for a, b in zip(got, case.run(naive_recurrent_gla), strict=True):
        assert rel_err(a, b) < 1e-8


@pytest.mark.parametrize("initial", [False, True])
@pytest.mark.parametrize("bound", [None, 0.0])
def test_chunk_matches_naive_float32(case_factory, initial: bool, bound) -> None:
    case = case_factory(t=45, initial=initial, dtype=torch.float32)
    reference = case.to(torch.float64).run(naive_recurrent_gla)
    got = case.run(chunk_gla, chunk_size=16, sub_chunk_size=4, factorized_max=bound)
    for a, b in zip(got, reference, strict=True):
        assert rel_err(a, b) < 1e-5


@pytest.mark.parametrize("t", [1, 3, 16, 17])
def test_chunk_short_and_boundary_lengths(case_factory, t: int) -> None:
    case = case_factory(t=t, h=1)
    for a, b in zip(case.run(chunk_gla, chunk_size=16), case.run(naive_recurrent_gla), strict=True):
        assert rel_err(a, b) < 1e-8


def test_chunk_strong_decay_matches_naive(case_factory) -> None:
    # gates between about -20 and -0.7 per step: sub-chunk decays far past exp's range
    case = case_factory(t=40, gate_scale=20.0)
    case.g = case.g.clamp(max=-0.7)
    got = case.run(chunk_gla, chunk_size=16, sub_chunk_size=4)
    for a, b in zip(got, case.run(naive_recurrent_gla), strict=True):
        assert rel_err(a, b) < 1e-8


@pytest.mark.parametrize("initial", [False, True])
def test_chunk_log_gates_down_to_minus_20_float32(case_factory, initial: bool) -> None:
    # per-step log gates spread over [-20, 0]: chunks of either in-chunk form, float32 inputs
    case = case_factory(t=50, initial=initial, dtype=torch.float32)
    gen = torch.Generator().manual_seed(3)
    case.g = -20.0 * torch.rand(case.g.shape, generator=gen)
    reference = case.to(torch.float64).run(naive_recurrent_gla)
    got = case.run(chunk_gla, chunk_size=16, sub_chunk_size=4)
    for a, b in zip(got, reference, strict=True):
        assert torch.isfinite(a).all()
        assert rel_err(a, b) < 1e-5


def test_chunk_gradcheck() -> None:
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 6, 1, 2, dtype=torch.float64, generator=gen) for _ in range(3))
    g = F.logsigmoid(torch.randn(1, 6, 1, 2, dtype=torch.float64, generator=gen))
    s0 = torch.randn(1, 1, 2, 2, dtype=torch.float64, generator=gen)
    inputs = [x.requires_grad_() for x in (q, k, v, g, s0)]

    def fn(*xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        o, final = chunk_gla(
            *xs[:4],
            initial_state=xs[4],
            output_final_state=True,
            chunk_size=4,
            sub_chunk_size=2,
            factorized_max=0.5,
        )
        assert final is not None
        return o, final

    assert torch.autograd.gradcheck(fn, inputs)


def test_no_nan_at_16k_with_strong_decay() -> None:
    gen = torch.Generator().manual_seed(0)
    t, d = 16384, 4
    q, k, v = (torch.randn(1, t, 1, d, generator=gen) for _ in range(3))
    g = -20.0 + torch.randn(1, t, 1, d, generator=gen)  # about -20 per step, float32
    inputs = [x.requires_grad_() for x in (q, k, v, g)]
    o, final = chunk_gla(*inputs, output_final_state=True)
    assert final is not None
    assert torch.isfinite(o).all() and torch.isfinite(final).all()
    (o.sum() + final.sum()).backward()
    for x in inputs:
        assert x.grad is not None and torch.isfinite(x.grad).all()
    # with so little memory each output is nearly scale * q_t k_t^T v_t (the current token)
    local = (q * k).sum(-1, keepdim=True) * d**-0.5 * v
    assert rel_err(o, local) < 1e-5


def test_no_nan_at_16k_mixed_gates_with_initial_state() -> None:
    # gates from -20 to 0 per step (weak and strong chunks side by side) and a state in
    gen = torch.Generator().manual_seed(1)
    t, h, d = 16384, 1, 4
    q, k, v = (torch.randn(1, t, h, d, generator=gen) for _ in range(3))
    g = -20.0 * torch.rand(1, t, h, d, generator=gen) ** 4  # most gates weak, a tail down to -20
    s0 = torch.randn(1, h, d, d, generator=gen)
    inputs = [x.requires_grad_() for x in (q, k, v, g, s0)]
    o, final = chunk_gla(*inputs[:4], initial_state=inputs[4], output_final_state=True)
    assert final is not None
    assert torch.isfinite(o).all() and torch.isfinite(final).all()
    (o.square().mean() + final.square().mean()).backward()
    for x in inputs:
        assert x.grad is not None and torch.isfinite(x.grad).all()
    # the last 64 tokens (one chunk) against the reference loop started from the chunk's state
    tail = slice(t - 64, t)
    with torch.no_grad():
        _, state = chunk_gla(
            *(x[:, : t - 64] for x in (q, k, v, g)), initial_state=s0, output_final_state=True
        )
        ref, ref_final = naive_recurrent_gla(
            *(x[:, tail].double() for x in (q, k, v, g)),
            initial_state=state.double(),
            output_final_state=True,
        )
    assert rel_err(o[:, tail], ref) < 1e-5
    assert rel_err(final, ref_final) < 1e-5


def _saved_bytes(t: int) -> int:
    q, k, v = (torch.randn(1, t, 2, 16, requires_grad=True) for _ in range(3))
    g = F.logsigmoid(torch.randn(1, t, 2, 16)).requires_grad_()
    total = 0

    def pack(x: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += x.numel() * x.element_size()
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        chunk_gla(q, k, v, g, chunk_size=32)
    return total


def test_saved_memory_is_linear_in_length() -> None:
    small, large = _saved_bytes(512), _saved_bytes(2048)
    assert small > 0
    assert 3.5 * small <= large <= 4.5 * small


def test_flop_count_formula() -> None:
    # one chunk of C = T tokens: 2 T^2 D + 2 T^2 Dv + 4 T D Dv multiply-adds x 2
    assert chunk_gla_flops(1, 64, 1, 32, 16, chunk_size=64) == 2 * 64 * 64 * 48 + 4 * 64 * 32 * 16
    assert chunk_gla_flops(2, 65, 3, 8, chunk_size=64, backward=True) == 3 * chunk_gla_flops(
        2, 128, 3, 8, chunk_size=64
    )


def test_bad_chunk_sizes_raise() -> None:
    x = torch.randn(1, 8, 1, 4)
    with pytest.raises(ArchsmithError, match="must divide"):
        chunk_gla(x, x, x, x, chunk_size=12, sub_chunk_size=8)
    with pytest.raises(ArchsmithError, match=">= 1"):
        chunk_gla(x, x, x, x, chunk_size=0)
