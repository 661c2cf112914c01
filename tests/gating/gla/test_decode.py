"""Chunked prefill followed by one-step decoding equals the full forward."""

import pytest
import torch

from archsmith.errors import ArchsmithError
from archsmith.gating.gla import chunk_gla, fused_recurrent_gla_step, naive_recurrent_gla
from helpers import rel_err


@pytest.mark.parametrize("prefill", [0, 1, 20])
def test_prefill_then_decode_equals_full_forward(case_factory, prefill: int) -> None:
    case = case_factory(t=29)
    full, full_final = naive_recurrent_gla(
        case.q, case.k, case.v, case.g, initial_state=case.initial, output_final_state=True
    )
    state = case.initial
    outputs = []
    if prefill:
        o, state = chunk_gla(
            *(x[:, :prefill] for x in (case.q, case.k, case.v, case.g)),
            initial_state=state,
            output_final_state=True,
            chunk_size=8,
        )
        outputs.append(o)
    for i in range(prefill, case.q.shape[1]):
        o, state = fused_recurrent_gla_step(
            case.q[:, i], case.k[:, i], case.v[:, i], case.g[:, i], state
        )
        outputs.append(o.unsqueeze(1))
    assert rel_err(torch.cat(outputs, 1), full) < 1e-12
    assert rel_err(state, full_final) < 1e-12


def test_step_leaves_input_state_alone() -> None:
    q = k = g = torch.zeros(1, 1, 2)
    state = torch.ones(1, 1, 2, 3)
    _, new = fused_recurrent_gla_step(q, k, torch.ones(1, 1, 3), g - 1.0, state)
    assert torch.equal(state, torch.ones(1, 1, 2, 3))
    assert torch.allclose(new, torch.full((1, 1, 2, 3), torch.e**-1.0))


def test_step_bad_state_raises() -> None:
    x = torch.zeros(1, 2, 4)
    with pytest.raises(ArchsmithError, match="state"):
        fused_recurrent_gla_step(x, x, x, x, torch.zeros(1, 2, 4, 5))


def _decode_all(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole sequence by one-step decoding, in the ops' signature."""
    state, outputs = initial_state, []
    for i in range(q.shape[1]):
        o, state = fused_recurrent_gla_step(q[:, i], k[:, i], v[:, i], g[:, i], state)
        outputs.append(o)
    assert state is not None
    return torch.stack(outputs, 1), state


@pytest.mark.parametrize("initial", [False, True])
def test_step_gradients_match_naive(case_factory, initial: bool) -> None:
    case = case_factory(t=13, initial=initial)
    for a, b in zip(case.run(_decode_all), case.run(naive_recurrent_gla), strict=True):
        assert rel_err(a, b) < 1e-8


def test_prefill_then_decode_float32(case_factory) -> None:
    case = case_factory(t=40, dtype=torch.float32)
    reference = case.to(torch.float64)
    full, full_final = naive_recurrent_gla(
        reference.q,
        reference.k,
        reference.v,
        reference.g,
        initial_state=reference.initial,
        output_final_state=True,
    )
    o, state = chunk_gla(
        *(x[:, :33] for x in (case.q, case.k, case.v, case.g)),
        initial_state=case.initial,
        output_final_state=True,
        chunk_size=16,
    )
    rest, state = _decode_all(*(x[:, 33:] for x in (case.q, case.k, case.v, case.g)), state)
    assert rel_err(torch.cat([o, rest], 1), full) < 1e-5
    assert rel_err(state, full_final) < 1e-5
