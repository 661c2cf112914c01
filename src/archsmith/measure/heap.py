"""A steady heap for timing: glibc's allocator told to keep the memory it frees.

By default glibc hands memory back to the OS whenever a free leaves more than a threshold at the
top of the heap, and it serves large blocks with ``mmap``, unmapped again on free. The next
allocation then page-faults that memory back in, zeroed. How often that happens depends on the
order of allocations, so one training step can cost 20-80% more in one process than in another.
A reversible backward, which frees each block's local graph and builds the next one, pays this
on every block: measured on this project's benchmark stacks (``archsmith bench reversible``,
depth 8, one thread, each implementation alone in its process), the reversible step took
1.5-1.8x plain autograd's under glibc's defaults and 1.3-1.45x with a steady heap, while plain
autograd's own step changed by under 10%.

PyTorch's CPU performance guide recommends a caching allocator (jemalloc, tcmalloc) for
training; :func:`steady_heap` is glibc's equivalent, set from inside the process: no ``mmap``
for large blocks, no trimming. The heap then stays at its high-water mark, and benchmarks
compare computation rather than the allocator's state. For a training run the same is had from
the environment: ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647``.
"""

from __future__ import annotations

import ctypes

__all__ = ["steady_heap"]

# mallopt parameter numbers from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


def steady_heap() -> bool:
    """Keep freed memory in the heap for the rest of this process (glibc ``mallopt``: no
    ``mmap`` blocks, no trimming).

    Process-wide and not undone: glibc cannot return to its adaptive thresholds once they are
    set. An explicit ``malloc_trim`` (which resident-memory readings call first) still hands
    free memory back.

    Returns:
        True where the allocator took both settings; False where there is no glibc (musl,
        macOS, Windows), which leaves the allocator as it is.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
