"""Layer-normalized LSTM.

Ba, Kiros & Hinton, "Layer Normalization" (arXiv:1607.06450, 2016), recurrent case (their
LSTM equations): layer normalization of the summed inputs needs no batch statistics, so it
applies unchanged at every time step, and it keeps the recurrent pre-activations at a fixed
scale however long the sequence. The paper normalizes the input-to-hidden and
hidden-to-hidden terms separately (each with its own gain and bias) and the cell state before
the output ``tanh``::

    [f, i, o, g] = LN(W_h h_{t-1}) + LN(W_x x_t) + b
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(LN(c_t))
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["LayerNormLSTM", "LayerNormLSTMCell"]

State = tuple[torch.Tensor, torch.Tensor]


class LayerNormLSTMCell(nn.Module):
    """One step of the layer-normalized LSTM of Ba et al. (2016).

    ``ln_ih`` and ``ln_hh`` normalize the whole ``4 * hidden_size`` pre-activation vector of
    ``W_ih x`` and ``W_hh h`` (one statistic per vector, as in the paper, not one per gate);
    ``ln_cell`` normalizes ``c_t`` before the output ``tanh``. The paper's separate bias ``b``
    is folded into the shifts of ``ln_ih`` and ``ln_hh`` (their sum plays its role exactly).
    Gates are laid out ``[i, f, g, o]`` as in ``nn.LSTMCell``; the weights are initialized
    ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))`` as there, gains 1 and shifts 0.

    Shapes: ``x: [B, input_size]``, ``state = (h, c)`` each ``[B, hidden_size]`` (zeros when
    ``None``) -> ``(h', c')`` each ``[B, hidden_size]``.

    Args:
        input_size: features of ``x``.
        hidden_size: features of ``h`` and ``c``.
        eps: of the three layer norms (1e-5).
    """

    def __init__(self, input_size: int, hidden_size: int, *, eps: float = 1e-5) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.ln_ih = nn.LayerNorm(4 * hidden_size, eps=eps)
        self.ln_hh = nn.LayerNorm(4 * hidden_size, eps=eps)
        self.ln_cell = nn.LayerNorm(hidden_size, eps=eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        nn.init.uniform_(self.weight_ih, -bound, bound)
        nn.init.uniform_(self.weight_hh, -bound, bound)
        for ln in (self.ln_ih, self.ln_hh, self.ln_cell):
            ln.reset_parameters()

    def forward(self, x: torch.Tensor, state: State | None = None) -> State:
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(
                f"LayerNormLSTMCell expects x: [B, {self.input_size}], got {tuple(x.shape)}"
            )
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        h, c = state
        gates = self.ln_ih(x @ self.weight_ih.T) + self.ln_hh(h @ self.weight_hh.T)  # [B, 4H]
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(self.ln_cell(c))
        return h, c

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class LayerNormLSTM(nn.Module):
    """A single-layer :class:`LayerNormLSTMCell` run over a sequence, Ba et al. (2016).

    Shapes: ``x: [B, T, input_size]`` (``[T, B, input_size]`` when ``batch_first=False``),
    ``state = (h0, c0)`` each ``[B, hidden_size]`` (zeros when ``None``) ->
    ``(output, (h_T, c_T))`` with ``output: [B, T, hidden_size]`` (``[T, B, hidden_size]``
    when ``batch_first=False``), the hidden state after every step. Unlike ``nn.LSTM`` the
    states carry no leading ``num_layers`` dimension.
    """

    def __init__(
        self, input_size: int, hidden_size: int, batch_first: bool = True, *, eps: float = 1e-5
    ) -> None:
        super().__init__()
        self.batch_first = batch_first
        self.cell = LayerNormLSTMCell(input_size, hidden_size, eps=eps)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        time_dim = 1 if self.batch_first else 0
        if x.dim() != 3 or x.shape[time_dim] == 0:
            raise ValueError(
                f"LayerNormLSTM expects a non-empty 3-d sequence, got {tuple(x.shape)}"
            )
        outputs = []
        for x_t in x.unbind(time_dim):  # T tensors [B, input_size]; the recurrence is sequential
            state = self.cell(x_t, state)
            outputs.append(state[0])
        assert state is not None  # T >= 1 steps ran
        return torch.stack(outputs, dim=time_dim), state

    def extra_repr(self) -> str:
        return f"batch_first={self.batch_first}"
