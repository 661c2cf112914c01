"""The reference loop against hand-derived cases and flash-linear-attention's own reference."""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch

from archsmith.errors import ArchsmithError
from archsmith.gating.gla import naive_recurrent_gla
from helpers import rel_err


def test_no_decay_is_causal_linear_attention() -> None:
    # g = 0: S_t = sum_{s<=t} k_s^T v_s, so o_t = scale * q_t sum_{s<=t} k_s^T v_s
    b, t, h, d, dv = 2, 6, 2, 3, 4
    q, k = torch.randn(2, b, t, h, d, dtype=torch.float64)
    v = torch.randn(b, t, h, dv, dtype=torch.float64)
    o, final = naive_recurrent_gla(q, k, v, torch.zeros_like(q), output_final_state=True)
    states = torch.einsum("bthd,bthv->bthdv", k, v).cumsum(1)
    expected = torch.einsum("bthd,bthdv->bthv", q * d**-0.5, states)
    assert rel_err(o, expected) < 1e-12
    assert rel_err(final, states[:, -1]) < 1e-12


def test_two_steps_by_hand() -> None:
    # one head, D = 2, Dv = 1, scale 1: S_1 = k_1^T v_1 + diag(a_1) S_0, S_2 = diag(a_2) S_1 + ...
    q = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64).view(1, 2, 1, 2)
    k = torch.tensor([[0.5, 1.0], [2.0, 0.0]], dtype=torch.float64).view(1, 2, 1, 2)
    v = torch.tensor([[2.0], [-1.0]], dtype=torch.float64).view(1, 2, 1, 1)
    gates = torch.tensor([[0.5, 0.25], [0.1, 0.8]], dtype=torch.float64)
    s0 = torch.tensor([[1.0], [4.0]], dtype=torch.float64).view(1, 1, 2, 1)
    o, final = naive_recurrent_gla(
        q, k, v, gates.log().view(1, 2, 1, 2), scale=1.0, initial_state=s0, output_final_state=True
    )
    s1 = [0.5 * 1 + 0.5 * 2, 0.25 * 4 + 1.0 * 2]  # [1.5, 3.0]
    s2 = [0.1 * s1[0] + 2.0 * -1, 0.8 * s1[1] + 0.0]  # [-1.85, 2.4]
    expected = torch.tensor([1 * s1[0] + 2 * s1[1], 3 * s2[0] - 1 * s2[1]], dtype=torch.float64)
    assert rel_err(o.flatten(), expected) < 1e-14
    assert rel_err(final.flatten(), torch.tensor(s2, dtype=torch.float64)) < 1e-14


def _fla_naive() -> ModuleType:
    """fla's pure-PyTorch reference, loaded by file path: ``import fla.ops`` needs Triton."""
    spec = importlib.util.find_spec("fla")
    if spec is None or spec.origin is None:
        pytest.skip("flash-linear-attention (fla) is not installed")
    path = Path(spec.origin).parent / "ops" / "gla" / "naive.py"
    if not path.exists():
        pytest.skip(f"fla has no {path}")
    module_spec = importlib.util.spec_from_file_location("_fla_gla_naive", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_matches_fla_reference(case_factory) -> None:
    fla = _fla_naive()
    case = case_factory(t=11, d=8, dv=4)
    ours = case.run(naive_recurrent_gla)
    # fla computes in float32 whatever the input dtype: compare at float32 precision
    inputs = [x.detach().clone().requires_grad_() for x in (case.q, case.k, case.v, case.g)]
    init = case.initial.detach().clone().requires_grad_()
    o, final = fla.naive_recurrent_gla(*inputs, initial_state=init, output_final_state=True)
    loss = (o * case.grad_o).sum() + (final.double() * case.grad_final).sum()
    theirs = [o, final, *torch.autograd.grad(loss, [*inputs, init])]
    for a, b in zip(ours, theirs, strict=True):
        assert rel_err(a, b) < 1e-5


def test_bad_shapes_raise_one_line() -> None:
    x = torch.randn(1, 4, 2, 3)
    with pytest.raises(ArchsmithError, match="must have one shape"):
        naive_recurrent_gla(x, x[..., :2], x, x)
    with pytest.raises(ArchsmithError, match="initial_state"):
        naive_recurrent_gla(x, x, x, x, initial_state=torch.zeros(1, 2, 3, 4))
