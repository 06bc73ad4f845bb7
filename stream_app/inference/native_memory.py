"""Giving a retired model's memory back to the system (glibc's allocator), and saying how much went.

CTranslate2 allocates a model's weights with ``malloc``. Freed, they stay in glibc's heaps (one arena
per thread that allocated, up to 8 per core) until something asks for them back: after a live switch
round trip the worker kept the retired model's resident memory although it was unloaded (glibc also
raises its mmap threshold each time a large block mapped on its own is freed, up to 32 MB, so later
tensors land in the heaps rather than in mappings of their own that ``free`` would unmap).
`release_free_memory` runs ``malloc_trim(0)``, which hands every arena's free pages back. Elsewhere
(musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


def release_free_memory() -> bool:
    """Return the allocator's free pages to the system (``malloc_trim(0)``); True when glibc did so."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))
