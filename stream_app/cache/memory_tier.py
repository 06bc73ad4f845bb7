"""L1: an in-process LRU of encoded entries, bounded in bytes, with a TTL."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class MemoryTier:
    """Least-recently-used eviction by bytes (key, value and the objects around them) under ``capacity``."""

    name = "memory"

    def __init__(self, capacity: int, ttl: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._capacity = capacity
        self._ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        """Return the entry and mark it most recently used; drop it if it expired."""
        with self._lock:
            item = self._entries.get(key)
            if item is None:
                return None
            expires_at, value = item
            if self._clock() >= expires_at:
                self._remove(key)
                return None
            self._entries.move_to_end(key)
            return value

    def set(self, key: str, value: bytes) -> bool:
        """Store the entry, evicting the least recently used until it fits; refuse one larger than all."""
        cost = _cost(key, value)
        if cost > self._capacity:
            return False
        with self._lock:
            if key in self._entries:
                self._remove(key)
            while self._bytes + cost > self._capacity:
                oldest = next(iter(self._entries))
                self._remove(oldest)
            self._entries[key] = (self._clock() + self._ttl, value)
            self._bytes += cost
            return True

    def delete(self, key: str) -> None:
        """Remove the entry if present."""
        with self._lock:
            if key in self._entries:
                self._remove(key)

    def bytes_held(self) -> int:
        """Bytes of keys and values held."""
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def close(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _remove(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self._bytes -= _cost(key, value)


ENTRY_OVERHEAD = 240  # bytes: the str and bytes objects, the tuple, the expiry and the dict slot (tracemalloc: 228)


def _cost(key: str, value: bytes) -> int:
    return len(key) + len(value) + ENTRY_OVERHEAD
