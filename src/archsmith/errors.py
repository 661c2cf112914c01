"""User-facing errors.

Anything a user can get wrong (an unknown name, a bad option value, a malformed file) raises
:class:`ArchsmithError` with one line that names the problem. The CLI prints that line and exits
with status 2; library callers can catch it. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["ArchsmithError", "did_you_mean"]


class ArchsmithError(ValueError):
    """A problem with the user's input, explained in one line."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for close matches of ``name`` in ``choices``, else ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    # A transposed pair of letters ("mpl" for "mlp") is the commonest typo; rank such
    # anagrams first (the sort is stable, so difflib's order holds otherwise).
    close.sort(key=lambda c: sorted(c) != sorted(name))
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"
