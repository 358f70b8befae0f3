"""glibc's heap, tuned for the two kinds of work lenscope does: one policy, two knobs.

glibc returns a heap's free top to the system after large frees and serves allocations above a
dynamic threshold (up to 32 MB) with fresh mappings. Both cost page faults when the same sizes
are allocated again, and both let a long-running process grow when the sizes vary:

- **Requests** (the model worker: analyze, attribute, ... over and over, similar sizes) want
  their temporaries' pages kept: without that, each analyze of 256 tokens on the default model
  faults in ~7,000 fresh zeroed pages (~20,000 at 1,024), several ms a request.
  :func:`keep_heap` fixes both thresholds once (mmap at glibc's largest, 32 MB; trim at
  ``TRIM_THRESHOLD``), so up to 256 MB of freed pages stay in the heap, and the worker calls
  :func:`release_freed_memory` when it is idle or over its memory limit.
- **Streaming builds** (an index over millions of tokens: activations of varying shapes, batch
  after batch) want the opposite at shard boundaries: with the thresholds left dynamic the
  heap fragments and is not returned (a build over 10M tokens grew to 6 GB of RSS with a
  3M-parameter model), so each shard ends with :func:`release_freed_memory`
  (``malloc_trim(0)``: every free page, not only the top), which keeps a build at 100-180 MB
  over 400k tokens for a few ms a shard. Fixing a *low* mmap threshold instead was tried for
  builds: memory stayed flat but every later forward was 33% slower (fresh pages for every
  large tensor).

Only on glibc; elsewhere (musl, macOS) every function does nothing and returns False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache
from typing import Any

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 2**20
"""glibc's largest: smaller allocations (every temporary of a small model's forward) reuse heap pages."""
TRIM_THRESHOLD = 256 * 2**20
"""Free heap above this is still given back at once: a small model's requests fit under it (the
default model's 1,024-token analyze touches ~80 MB), a GPT-2-sized one's do not (~650 MB at
1,024 tokens, whose faults are a small share of a far longer forward)."""


@cache
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None  # musl has neither


def glibc_heap() -> bool:
    """Whether this process's heap is glibc's (the only one these knobs exist for)."""
    return _libc() is not None


def keep_heap() -> bool:
    """For a process that serves requests: keep freed pages (up to ``TRIM_THRESHOLD``) in the
    heap for its whole life. True when glibc took both settings."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def release_freed_memory() -> bool:
    """``malloc_trim(0)``: every free heap page back to the system; True when some were."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
