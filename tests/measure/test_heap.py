"""``steady_heap``: glibc keeps freed memory resident afterwards (checked in a fresh process,
since the setting is process-wide and cannot be undone)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import sys
from archsmith.measure.heap import steady_heap

def rss():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) * 1024 for l in fh if l.startswith("VmRSS:"))

took = steady_heap() if sys.argv[1] == "steady" else None
block = bytearray(64 * 2**20)  # zero-filled: every page touched
peak = rss()
del block
print(took, peak - rss())
"""


def _freed_bytes_returned(mode: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc only")
def test_freed_memory_stays_resident_only_with_a_steady_heap() -> None:
    took, returned = _freed_bytes_returned("default")
    assert took == "None" and returned > 48 * 2**20  # an mmap block, unmapped on free
    took, returned = _freed_bytes_returned("steady")
    assert took == "True" and returned < 8 * 2**20  # kept in the heap
