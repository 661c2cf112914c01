"""The controller's recurrent policy and its REINFORCE loss (Zoph & Le, 2017; GraphNAS, Gao et
al., 2020).

An LSTM cell walks through the decisions of one design in the order the space asks for them.
At step t it reads the embedding of the previous action ``x_t`` (zeros at t = 0), updates its
state ``(h_t, c_t) = LSTMCell(x_t, (h_{t-1}, c_{t-1}))`` and scores the K choices of decision t
with that decision's own linear head, ``logits_t = W_d h_t + b_d`` (shape ``(K,)``); the action
``a_t`` ~ softmax(``tanh_c * tanh(logits_t / temperature)``) — the bounded logits of ENAS and
GraphNAS, which keep every choice's probability above ``exp(-2 tanh_c)`` times the top one's so
the policy cannot collapse after a few lucky rewards — and ``x_{t+1} = E_d[a_t]`` is the
decision's embedding of it. With ``tanh_c=None`` the logits are used as they are.

Decisions are created on first sight, keyed by their name and distribution, and initialised
from a generator seeded by (seed, key): the policy's weights never depend on the order in which
a process met its decisions, so every process replaying the same trials holds the same policy.
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np
import torch
from torch import nn

__all__ = ["Policy", "reinforce_loss"]

State = tuple[torch.Tensor, torch.Tensor]


def _generator(seed: int, tag: str) -> torch.Generator:
    words = np.random.SeedSequence([seed, zlib.crc32(tag.encode())]).generate_state(2)
    return torch.Generator().manual_seed(int(words[0]) << 32 | int(words[1]))


def _init_uniform(module: nn.Module, generator: torch.Generator, init_range: float) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-init_range, init_range, generator=generator)


class Policy(nn.Module):
    """The controller's policy (see the module docstring).

    Args:
        hidden: units of the LSTM cell and of each action embedding.
        seed: seeds every initialisation (with the decision's key).
        tanh_c, temperature: logits become ``tanh_c * tanh(logits / temperature)``; ``tanh_c``
            ``None`` keeps raw logits (divided by ``temperature``).
        init_range: weights start uniform in ``[-init_range, init_range]`` (ENAS: 0.1).
    """

    def __init__(
        self,
        hidden: int,
        seed: int,
        *,
        tanh_c: float | None = 2.5,
        temperature: float = 1.0,
        init_range: float = 0.1,
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.seed = seed
        self.tanh_c = tanh_c
        self.temperature = temperature
        self.init_range = init_range
        self.cell = nn.LSTMCell(hidden, hidden)
        _init_uniform(self.cell, _generator(seed, "cell"), init_range)
        self.heads = nn.ModuleDict()
        self.embeds = nn.ModuleDict()

    @staticmethod
    def _slot(key: str) -> str:
        return "d" + hashlib.sha1(key.encode()).hexdigest()[:20]

    def has(self, key: str) -> bool:
        return self._slot(key) in self.heads

    def add(self, key: str, n: int) -> list[nn.Parameter]:
        """Create decision ``key`` with ``n`` choices (if new); returns its new parameters."""
        slot = self._slot(key)
        if slot in self.heads:
            if self.heads[slot].out_features != n:
                raise ValueError(f"decision {key!r} had {self.heads[slot].out_features} choices")
            return []
        generator = _generator(self.seed, key)
        head, embed = nn.Linear(self.hidden, n), nn.Embedding(n, self.hidden)
        _init_uniform(head, generator, self.init_range)
        _init_uniform(embed, generator, self.init_range)
        self.heads[slot], self.embeds[slot] = head, embed
        return [*head.parameters(), *embed.parameters()]

    def start(self) -> tuple[torch.Tensor, State]:
        """The first input and state: zeros of shape ``(1, hidden)``."""
        zeros = torch.zeros(1, self.hidden)
        return zeros, (zeros, zeros.clone())

    def step(self, x: torch.Tensor, state: State, key: str) -> tuple[torch.Tensor, State]:
        """One decision: its logits ``(K,)`` (bounded as configured) and the new state."""
        h, c = self.cell(x, state)
        raw = self.heads[self._slot(key)](h)[0] / self.temperature
        logits = raw if self.tanh_c is None else self.tanh_c * torch.tanh(raw)
        return logits, (h, c)

    def embed(self, key: str, action: int) -> torch.Tensor:
        """The next input after choosing ``action`` of decision ``key``: shape ``(1, hidden)``."""
        return self.embeds[self._slot(key)](torch.tensor([action]))

    def log_prob(self, decisions: list[tuple[str, int]]) -> torch.Tensor:
        """``sum_t log pi(a_t | a_<t)`` of one design, ``decisions = [(key, action), ...]``."""
        x, state = self.start()
        total = torch.zeros(())
        for key, action in decisions:
            logits, state = self.step(x, state, key)
            total = total + torch.log_softmax(logits, dim=0)[action]
            x = self.embed(key, action)
        return total


def reinforce_loss(log_prob: torch.Tensor, reward: float, baseline: float) -> torch.Tensor:
    """REINFORCE with a baseline (Williams, 1992): ``-(reward - baseline) * log_prob``, whose
    gradient is the policy-gradient estimate ``-(R - b) grad log pi(a)``."""
    return -(reward - baseline) * log_prob
