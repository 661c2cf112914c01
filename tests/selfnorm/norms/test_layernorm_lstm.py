"""Layer-normalized LSTM against a naive step-by-step loop written from Ba et al. (2016)."""

from __future__ import annotations

import pytest
import torch

from archsmith.selfnorm.norms import LayerNormLSTM, LayerNormLSTMCell
from helpers import rel_err
from norms_testing import assert_matches, perturb_parameters


def naive_ln(z: torch.Tensor, gain: torch.Tensor, shift: torch.Tensor, eps: float) -> torch.Tensor:
    """(z - mean) / sqrt(biased var + eps) * gain + shift over the last dimension."""
    n = z.shape[-1]
    mu = z.sum(-1, keepdim=True) / n
    var = ((z - mu) ** 2).sum(-1, keepdim=True) / n
    return (z - mu) / torch.sqrt(var + eps) * gain + shift


def naive_step(
    cell: LayerNormLSTMCell, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """[i, f, g, o] = LN(W_x x) + LN(W_h h); c' = s(f) c + s(i) tanh(g); h' = s(o) tanh(LN(c'))."""
    eps = cell.ln_ih.eps
    a = naive_ln(x @ cell.weight_ih.T, cell.ln_ih.weight, cell.ln_ih.bias, eps) + naive_ln(
        h @ cell.weight_hh.T, cell.ln_hh.weight, cell.ln_hh.bias, eps
    )
    hs = cell.hidden_size
    i, f, g, o = (a[:, k * hs : (k + 1) * hs] for k in range(4))
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    ln_c = naive_ln(c_new, cell.ln_cell.weight, cell.ln_cell.bias, eps)
    return torch.sigmoid(o) * torch.tanh(ln_c), c_new


@pytest.mark.parametrize(("b", "i", "h"), [(3, 4, 5), (1, 2, 7), (4, 6, 1)])
def test_cell_matches_naive_step(b: int, i: int, h: int) -> None:
    cell = LayerNormLSTMCell(i, h).double()
    perturb_parameters(cell)
    x = torch.randn(b, i, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(b, h, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(b, h, dtype=torch.float64, requires_grad=True)
    h1, c1 = cell(x, (h0, c0))
    rh, rc = naive_step(cell, x, h0, c0)
    inputs = [x, h0, c0, *cell.parameters()]
    if h == 1:  # LN over one hidden unit outputs its shift: ln_cell's gain gets no gradient
        inputs = [t for t in inputs if t is not cell.ln_cell.weight]
    assert_matches(torch.cat([h1, c1], 1), torch.cat([rh, rc], 1), inputs)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize(("b", "t", "i", "h"), [(2, 6, 3, 4), (1, 1, 5, 3), (3, 4, 2, 6)])
def test_sequence_matches_naive_loop(batch_first: bool, b: int, t: int, i: int, h: int) -> None:
    lstm = LayerNormLSTM(i, h, batch_first=batch_first).double()
    perturb_parameters(lstm)
    x = torch.randn(b, t, i, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(b, h, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(b, h, dtype=torch.float64, requires_grad=True)
    out, (hT, cT) = lstm(x if batch_first else x.transpose(0, 1), (h0, c0))
    if not batch_first:
        out = out.transpose(0, 1)
    assert out.shape == (b, t, h)
    hs, (rh, rc) = [], (h0, c0)
    for step in range(t):
        rh, rc = naive_step(lstm.cell, x[:, step], rh, rc)
        hs.append(rh)
    ref = torch.stack(hs, 1)
    inputs = [x, h0, c0, *lstm.parameters()]
    # every hidden state, and the final (h, c), with all gradients
    assert_matches(torch.cat([out.flatten(1), cT], 1), torch.cat([ref.flatten(1), rc], 1), inputs)
    assert rel_err(hT, rh) < 1e-12


def test_zero_initial_state_and_validation() -> None:
    lstm = LayerNormLSTM(3, 4).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    zeros = torch.zeros(2, 4, dtype=torch.float64)
    out, _ = lstm(x)
    assert rel_err(out, lstm(x, (zeros, zeros))[0]) < 1e-15
    with pytest.raises(ValueError, match="3-d"):
        lstm(torch.randn(2, 0, 3))
    with pytest.raises(ValueError, match="expects x"):
        lstm.cell(torch.randn(2, 5))


def test_input_weight_rescaling_invariance() -> None:
    """Ba et al. (2016), Table 1: layer norm makes the layer invariant to rescaling its weights."""
    cell = LayerNormLSTMCell(4, 5).double()
    perturb_parameters(cell)
    cell.ln_ih.eps = cell.ln_hh.eps = 1e-30  # so that only rounding separates the two runs
    x = torch.randn(3, 4, dtype=torch.float64)
    state = (torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64))
    h1, c1 = cell(x, state)
    with torch.no_grad():
        cell.weight_ih.mul_(4.0)
        cell.weight_hh.mul_(0.25)
    h2, c2 = cell(x, state)
    assert rel_err(h2, h1) < 1e-12 and rel_err(c2, c1) < 1e-12
