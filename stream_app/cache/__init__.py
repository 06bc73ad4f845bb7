"""The transcription cache: L1 memory, L2 disk and L3 Redis, content-addressed by the window's audio."""

from stream_app.cache.breaker import BreakerState, CircuitBreaker
from stream_app.cache.codec import decode_entry, encode_entry
from stream_app.cache.exceptions import CacheError, CorruptEntryError, TierUnavailableError
from stream_app.cache.factory import build_cache
from stream_app.cache.keys import cache_key
from stream_app.cache.stats import CacheStats, TierStats
from stream_app.cache.transcript_cache import TranscriptCache

__all__ = [
    "BreakerState",
    "CacheError",
    "CacheStats",
    "CircuitBreaker",
    "CorruptEntryError",
    "TierStats",
    "TierUnavailableError",
    "TranscriptCache",
    "build_cache",
    "cache_key",
    "decode_entry",
    "encode_entry",
]
