"""Errors of the transcription cache; none of them ever reaches a caller of ``get_or_compute``."""

from __future__ import annotations


class CacheError(Exception):
    """Base class of the cache's own errors."""


class CorruptEntryError(CacheError, ValueError):
    """A stored entry could not be decoded: it is deleted and the window recomputed."""


class TierUnavailableError(CacheError):
    """A tier refused the operation without trying (its circuit breaker is open)."""


class RedisAccessError(ConnectionError):
    """Redis refused this client (credentials, certificate) or did not answer; the message names the cause."""
