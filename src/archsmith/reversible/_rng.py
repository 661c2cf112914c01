"""Random-number-generator tapes: the state before each sub-function call, replayed in backward.

A reversible block recomputes its functions in backward, and in another order than forward (the
additive coupling evaluates G before F to invert itself). Dropout inside F or G must draw the same
mask both times, so the state of the generators is captured before every call of a sub-function
in forward and put back before the same call in backward, as ``torch.utils.checkpoint`` does for a
whole segment (``preserve_rng_state=True``).

A state is the CPU generator's (a 5 KiB byte tensor for the Mersenne twister) plus, when the
block's input lives on a GPU, that device's. These are bookkeeping, not activations: they do not
grow with the batch or the width, and they are not counted as saved activations.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["RngTape"]


class RngTape:
    """Generator states of one block, keyed by the block's own call-site numbers.

    In record mode :meth:`mark` captures the state before a call; in replay mode it restores the
    captured one. Replaying moves the global generators, so the caller wraps replays in
    :func:`torch.random.fork_rng` to give the surrounding code its stream back.

    Args:
        devices: the CUDA devices whose generators the block may draw from (empty on CPU).
    """

    def __init__(self, devices: list[torch.device]) -> None:
        self.devices = devices
        self.replay = False
        self._states: dict[int, tuple[Tensor, list[Tensor]]] = {}

    def mark(self, key: int) -> None:
        """Before call site ``key``: capture the state (record mode) or restore it (replay).

        A plain method, not a context manager: nothing is undone after the call, and the
        engine reaches this once per sub-function per step (a generator-based ``with`` cost
        more than the capture itself).
        """
        if self.replay:
            if key not in self._states:
                raise RuntimeError(
                    f"reversible backward calls sub-function {key}, which forward never called"
                )
            cpu, cuda = self._states[key]
            torch.set_rng_state(cpu)
            for device, state in zip(self.devices, cuda, strict=True):
                torch.cuda.set_rng_state(state, device)
            return
        if key in self._states:
            raise RuntimeError(
                f"a coupling called sub-function {key} twice in one forward; give every "
                "call its own key so that backward can replay each one's random state"
            )
        self._states[key] = (
            torch.get_rng_state(),
            [torch.cuda.get_rng_state(d) for d in self.devices],
        )
