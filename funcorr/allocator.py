"""Keep freed memory in the process: glibc's allocator settings for tensor-heavy CPU work.

By default glibc serves every allocation above 128 KiB-32 MiB with a fresh ``mmap`` and
returns it to the system on free, so each new tensor of a search or a head pass is
first-touched page by page (millions of minor page faults per benchmark run). Measured on the
2-core machine: gathers and products of the exact search's float64 settling ran 1.5-2.5x
faster, and a 21k-pixel exact match 0.9 s instead of 1.5 s, with the settings below
(``benchmarks/bench_match.py`` prints the search time).

The entry points (``funcorr`` commands, the benchmarks) call :func:`keep_freed_memory` once;
importing funcorr as a library changes nothing. It does nothing off glibc, or when the user set
a ``MALLOC_*`` variable or a ``glibc.malloc`` tunable themselves.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

#: mallopt parameters (glibc malloc.h).
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
#: Allocations below this come from the reusable heap (larger ones, such as a training cache,
#: still get their own mapping, returned on free).
MMAP_THRESHOLD = 256 << 20
#: Free heap kept at the top before it is returned to the system.
TRIM_THRESHOLD = 1 << 30
TOP_PAD = 64 << 20


def keep_freed_memory() -> bool:
    """Apply the settings above to this process; True when they were applied."""
    if any(key.startswith("MALLOC_") for key in os.environ) or "malloc" in os.environ.get(
        "GLIBC_TUNABLES", ""
    ):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        # glibc only: other C libraries' mallopt numbers mean other things.
        if not hasattr(libc, "gnu_get_libc_version"):
            return False
    except (OSError, AttributeError, TypeError):
        return False
    settings = (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (M_TOP_PAD, TOP_PAD),
    )
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)
