"""What every cache tier offers: bytes in, bytes out, by key."""

from __future__ import annotations

from typing import Protocol


class CacheTier(Protocol):
    """One level of the cache. Methods may raise; the cache turns any failure into a miss."""

    name: str

    def get(self, key: str) -> bytes | None:
        """Return the stored entry, or None when absent or expired."""
        ...

    def set(self, key: str, value: bytes) -> bool:
        """Store an entry with the tier's TTL; return False when the tier declined it (too large)."""
        ...

    def delete(self, key: str) -> None:
        """Remove an entry (a corrupt one, typically)."""
        ...

    def bytes_held(self) -> int | None:
        """Bytes this tier holds now, or None when it cannot say cheaply."""
        ...

    def close(self) -> None:
        """Release files, sockets and connections."""
        ...
