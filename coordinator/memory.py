"""Keep the coordinator's memory proportional to what it holds, not to what it once held.

glibc raises its mmap threshold each time a large mmapped block is freed (up to 32 MiB), so
after a few 1 MiB upload chunks have come and gone, later chunks are carved from per-thread
arenas that are rarely returned to the OS. With 16 concurrent uploads of 3.4 MiB this showed
as 130 MiB of peak RSS growth for 54 MiB of updates (scripts/bench_coordinator_memory.py);
with the threshold pinned at 128 KiB, 45 MiB. Pinning it is what MALLOC_MMAP_THRESHOLD_
does from the environment; doing it here makes it the default.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
THRESHOLD_BYTES = 128 * 1024


def pin_mmap_threshold(threshold_bytes: int = THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold (disables its dynamic growth); False where not glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # musl, macOS: no mallopt
    ok = bool(mallopt(M_MMAP_THRESHOLD, int(threshold_bytes)))
    log.debug("mmap threshold pinned at %d B: %s", threshold_bytes, ok)
    return ok
