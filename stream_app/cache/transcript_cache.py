"""The multi-level transcription cache: look up fastest tier first, promote hits, compute once on a miss.

Any tier failure (Redis down, disk locked, an entry that no longer decodes) becomes a miss: the cache
can make the service faster, never less available.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import redis

from stream_app.cache import metrics
from stream_app.cache.breaker import BreakerState, CircuitBreaker
from stream_app.cache.codec import decode_entry, encode_entry
from stream_app.cache.exceptions import CorruptEntryError, TierUnavailableError
from stream_app.cache.single_flight import SingleFlight
from stream_app.cache.stats import CacheStats, StatsRecorder
from stream_app.cache.tier import CacheTier
from stream_app.inference.types import WindowTranscript

log = logging.getLogger(__name__)

_Found = tuple[bytes, WindowTranscript]


class TranscriptCache:
    """Tiers in order of speed (memory, disk, Redis), looked up in that order.

    Entries are stored with word times relative to the window start; callers pass the stream time of
    their window so that the same audio at another time gets correctly placed words back.
    """

    def __init__(self, tiers: Sequence[CacheTier]) -> None:
        self._tiers = list(tiers)
        self._flight: SingleFlight[_Found] = SingleFlight()
        self._stats = StatsRecorder([t.name for t in self._tiers])

    @property
    def tier_names(self) -> list[str]:
        """Names of the tiers, fastest first."""
        return [t.name for t in self._tiers]

    def get_or_compute(
        self,
        key: str,
        compute: Callable[[], WindowTranscript],
        *,
        window_start: float = 0.0,
    ) -> WindowTranscript:
        """Return the cached transcript for ``key``, or compute, store and return it.

        Concurrent calls for one key in this process compute it once; the others wait for that result.

        Args:
            key: from :func:`stream_app.cache.keys.cache_key`.
            compute: transcribes the window; its words are in stream time from ``window_start``.
            window_start: stream time of the window's first sample, seconds.

        Raises:
            Exception: only what ``compute`` raised; cache failures are never raised.
        """
        if self._tiers and self._tiers[0].name == "memory":
            found = self._find(key, window_start, last=1)
            if found is not None:
                return found[1]
            first_slow = 1
        else:
            first_slow = 0

        def work() -> _Found:
            # Another flight for this key may have filled L1 since our look-up; ask it quietly.
            if first_slow == 1:
                again = self._quiet_get(self._tiers[0], key, window_start)
                if again is not None:
                    return again
            hit = self._find(key, window_start, first=first_slow)
            if hit is not None:
                return hit
            transcript = compute()
            self._stats.computed()
            metrics.CACHE_COMPUTES.inc()
            entry = encode_entry(transcript, window_start)
            self._write(key, entry, self._tiers)
            return entry, transcript

        (entry, transcript), leader = self._flight.run(key, work)
        if leader:
            return transcript
        self._stats.coalesced()
        metrics.CACHE_COALESCED.inc()
        return decode_entry(entry, window_start)

    def lookup(self, key: str, *, window_start: float = 0.0) -> WindowTranscript | None:
        """Look ``key`` up in every tier (promoting a hit), without computing; None on a miss.

        For callers that batch their misses into one model call and then :meth:`store` the results.
        """
        found = self._find(key, window_start)
        return None if found is None else found[1]

    def store(self, key: str, transcript: WindowTranscript, *, window_start: float = 0.0) -> None:
        """Store a computed transcript (words in stream time from ``window_start``) in every tier."""
        self._write(key, encode_entry(transcript, window_start), self._tiers)

    def breaker_states(self) -> dict[str, BreakerState]:
        """State of each tier that sits behind a circuit breaker (Redis), for health checks."""
        states: dict[str, BreakerState] = {}
        for tier in self._tiers:
            breaker = getattr(tier, "breaker", None)
            if isinstance(breaker, CircuitBreaker):
                states[tier.name] = breaker.state
        return states

    def stats(self) -> CacheStats:
        """Per-tier hits, misses, errors and latency samples since start (or the last reset)."""
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        """Zero the in-process statistics (Prometheus counters are left alone)."""
        self._stats.reset()

    def close(self) -> None:
        """Close every tier's files and connections."""
        for tier in self._tiers:
            try:
                tier.close()
            except Exception:
                log.warning("closing cache tier %s failed", tier.name, exc_info=True)

    def _find(self, key: str, window_start: float, *, first: int = 0, last: int | None = None) -> _Found | None:
        """Look up tiers ``first`` to ``last`` (exclusive) in order; copy a hit into every faster tier."""
        stop = len(self._tiers) if last is None else last
        for index in range(first, stop):
            tier = self._tiers[index]
            began = time.perf_counter()
            found = self._get(tier, key, window_start)
            elapsed = time.perf_counter() - began
            self._stats.lookup(tier.name, found is not None, elapsed)
            metrics.CACHE_LOOKUP_SECONDS.labels(tier.name).observe(elapsed)
            if found is None:
                metrics.CACHE_MISSES.labels(tier.name).inc()
                continue
            metrics.CACHE_HITS.labels(tier.name).inc()
            self._write(key, found[0], self._tiers[:index])
            return found
        return None

    def _get(self, tier: CacheTier, key: str, window_start: float) -> _Found | None:
        """One tier's answer, decoded; a failure or a corrupt entry is a miss (the entry is deleted)."""
        try:
            entry = tier.get(key)
        except TierUnavailableError:
            self._error(tier.name, "unavailable")
            return None
        except (redis.RedisError, OSError):
            self._error(tier.name, "backend")
            return None
        except Exception:
            log.warning("cache tier %s failed a look-up", tier.name, exc_info=True)
            self._error(tier.name, "backend")
            return None
        if entry is None:
            return None
        try:
            return entry, decode_entry(entry, window_start)
        except CorruptEntryError as exc:
            log.warning("deleting corrupt cache entry %s from %s: %s", key, tier.name, exc)
            self._stats.corrupt()
            self._error(tier.name, "corrupt")
            self._delete(tier, key)
            return None

    def _quiet_get(self, tier: CacheTier, key: str, window_start: float) -> _Found | None:
        try:
            entry = tier.get(key)
            return None if entry is None else (entry, decode_entry(entry, window_start))
        except Exception:
            return None

    def _write(self, key: str, entry: bytes, tiers: Sequence[CacheTier]) -> None:
        for tier in tiers:
            try:
                tier.set(key, entry)
            except TierUnavailableError:
                self._error(tier.name, "unavailable")
            except Exception as exc:
                log.debug("cache tier %s failed a write: %s", tier.name, exc)
                self._error(tier.name, "write")
            self._update_bytes(tier)

    def _delete(self, tier: CacheTier, key: str) -> None:
        try:
            tier.delete(key)
        except Exception as exc:
            log.debug("cache tier %s failed a delete: %s", tier.name, exc)
            self._error(tier.name, "write")

    def _error(self, tier: str, kind: str) -> None:
        self._stats.error(tier)
        metrics.CACHE_ERRORS.labels(tier, kind).inc()

    def _update_bytes(self, tier: CacheTier) -> None:
        try:
            held = tier.bytes_held()
        except Exception:
            return
        if held is not None:
            metrics.CACHE_BYTES.labels(tier.name).set(held)
