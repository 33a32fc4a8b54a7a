"""The allocator settings of the entry points: applied on glibc, left alone when the user tuned it."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import ctypes, ctypes.util, sys
from funcorr.allocator import keep_freed_memory
applied = keep_freed_memory()
# mallinfo2 is glibc >= 2.33; M_MMAP_THRESHOLD itself is not readable, so observe it: a
# 100 MB block is mmapped (not counted in the heap's arena) under the default threshold only.
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
block = libc.malloc(100 << 20)
print(applied, libc.mallinfo2().hblkhd >= 100 << 20)
"""


def _run(env_extra: dict) -> str:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_large_blocks_come_from_the_heap_after_the_settings():
    assert _run({}) == "True False"  # applied: the 100 MB block is not a separate mapping


def test_user_tuning_is_left_alone():
    assert _run({"MALLOC_MMAP_THRESHOLD_": "131072"}) == "False True"
    assert _run({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"}) == "False True"
