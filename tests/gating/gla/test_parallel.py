"""The quadratic form against the reference loop: outputs, final states and all gradients."""

import pytest
import torch

from archsmith.gating.gla import naive_recurrent_gla, parallel_gla
from helpers import rel_err


@pytest.mark.parametrize("initial", [False, True])
@pytest.mark.parametrize(("t", "gate_scale"), [(1, 1.0), (13, 1.0), (29, 1 / 16), (21, 12.0)])
def test_parallel_matches_naive_float64(
    case_factory, initial: bool, t: int, gate_scale: float
) -> None:
    case = case_factory(t=t, initial=initial, gate_scale=gate_scale)
    for a, b in zip(case.run(parallel_gla), case.run(naive_recurrent_gla), strict=True):
        assert rel_err(a, b) < 1e-8


@pytest.mark.parametrize("initial", [False, True])
def test_parallel_matches_naive_float32(case_factory, initial: bool) -> None:
    case = case_factory(t=19, initial=initial, dtype=torch.float32)
    reference = case.to(torch.float64).run(naive_recurrent_gla)
    for a, b in zip(case.run(parallel_gla), reference, strict=True):
        assert rel_err(a, b) < 1e-5


def test_parallel_without_final_state(case_factory) -> None:
    case = case_factory(t=5)
    o, final = parallel_gla(case.q, case.k, case.v, case.g)
    assert final is None
    assert rel_err(o, naive_recurrent_gla(case.q, case.k, case.v, case.g)[0]) < 1e-12
