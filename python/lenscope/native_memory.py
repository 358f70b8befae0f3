"""Give freed tensor memory back to the system after each index shard.

glibc raises its mmap threshold dynamically after large frees (up to 32 MB); from then on each
batch's temporaries (activations of varying shapes) come from the heap, which fragments and is
not returned: an index build over 10M tokens grew to 6 GB of RSS with a 3M-parameter model.
``malloc_trim(0)`` after each shard returns the free heap pages (not only the top), so a
build's memory stays bounded (over 400k tokens: 100-180 MB instead of growing to 300 MB) at a
cost of a few ms a shard. Fixing the threshold instead (``mallopt``) kept memory flatter but
made every later forward in the process 33% slower (fresh pages for every large tensor), so it
is not done. Only on glibc; elsewhere nothing happens.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache
from typing import Any


@cache
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None  # musl has none
    except OSError:
        return None


def release_freed_memory() -> bool:
    """``malloc_trim(0)``; True when glibc released something."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
