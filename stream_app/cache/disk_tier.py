"""L2: entries on local disk with diskcache (SQLite plus files), bounded in size, with a TTL.

Survives a restart of the worker, so a replayed stream after a crash is answered from here.
"""

from __future__ import annotations

from pathlib import Path

import diskcache

_SQLITE_TIMEOUT = 1.0  # seconds a look-up waits for another process's write lock before failing


class DiskTier:
    """A diskcache folder whose total volume diskcache keeps under ``size_limit`` by culling old entries."""

    name = "disk"

    def __init__(self, path: Path, size_limit: int, ttl: float) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._ttl = ttl
        # least-recently-stored eviction keeps a read from being a write, which keeps hits fast.
        self._cache = diskcache.Cache(
            str(path),
            size_limit=size_limit,
            timeout=_SQLITE_TIMEOUT,
            eviction_policy="least-recently-stored",
        )

    def get(self, key: str) -> bytes | None:
        """Return the entry, or None when absent or expired."""
        value = self._cache.get(key, default=None)
        if value is None:
            return None
        if not isinstance(value, bytes):
            self._cache.delete(key)
            return None
        return value

    def set(self, key: str, value: bytes) -> bool:
        """Store the entry with the TTL; diskcache culls the oldest entries past the size limit."""
        return bool(self._cache.set(key, value, expire=self._ttl))

    def delete(self, key: str) -> None:
        """Remove the entry if present."""
        self._cache.delete(key)

    def bytes_held(self) -> int:
        """Bytes on disk: SQLite pages plus value files."""
        return int(self._cache.volume())

    def close(self) -> None:
        """Close the SQLite connections."""
        self._cache.close()
