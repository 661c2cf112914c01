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
