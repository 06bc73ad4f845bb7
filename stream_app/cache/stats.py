"""In-process look-up statistics per tier, kept beside Prometheus for benchmarks and tests."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

MAX_LATENCY_SAMPLES = 100_000  # per tier; the oldest are dropped beyond it


@dataclass(frozen=True)
class TierStats:
    """Hits, misses, errors and look-up latency samples (seconds) of one tier."""

    hits: int
    misses: int
    errors: int
    lookup_seconds: tuple[float, ...]

    def percentile(self, q: float) -> float | None:
        """Look-up latency at percentile ``q`` (0 to 100) in seconds, or None without samples."""
        if not self.lookup_seconds:
            return None
        return float(np.percentile(np.asarray(self.lookup_seconds), q))

    @property
    def hit_rate(self) -> float | None:
        """Hits over look-ups, or None before any look-up."""
        total = self.hits + self.misses
        return self.hits / total if total else None


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of the whole cache: per tier, plus computations and coalesced waits."""

    tiers: dict[str, TierStats]
    computes: int
    coalesced: int
    corrupt: int

    def as_dict(self) -> dict[str, object]:
        """Plain data with p50/p95 in milliseconds, for a benchmark's JSON line."""
        tiers: dict[str, object] = {}
        for name, tier in self.tiers.items():
            p50, p95 = tier.percentile(50), tier.percentile(95)
            tiers[name] = {
                "hits": tier.hits,
                "misses": tier.misses,
                "errors": tier.errors,
                "p50_ms": None if p50 is None else p50 * 1000,
                "p95_ms": None if p95 is None else p95 * 1000,
            }
        return {
            "tiers": tiers,
            "computes": self.computes,
            "coalesced": self.coalesced,
            "corrupt": self.corrupt,
        }


class StatsRecorder:
    """Thread-safe counters behind :class:`CacheStats`."""

    def __init__(self, tiers: list[str]) -> None:
        self._lock = threading.Lock()
        self._hits = dict.fromkeys(tiers, 0)
        self._misses = dict.fromkeys(tiers, 0)
        self._errors = dict.fromkeys(tiers, 0)
        self._latency: dict[str, deque[float]] = {t: deque(maxlen=MAX_LATENCY_SAMPLES) for t in tiers}
        self._computes = 0
        self._coalesced = 0
        self._corrupt = 0

    def lookup(self, tier: str, hit: bool, seconds: float) -> None:
        """Record one look-up of one tier."""
        with self._lock:
            if hit:
                self._hits[tier] += 1
            else:
                self._misses[tier] += 1
            self._latency[tier].append(seconds)

    def error(self, tier: str) -> None:
        """Record a failed operation of one tier."""
        with self._lock:
            self._errors[tier] += 1

    def corrupt(self) -> None:
        """Record an entry that failed to decode."""
        with self._lock:
            self._corrupt += 1

    def computed(self) -> None:
        """Record one computation."""
        with self._lock:
            self._computes += 1

    def coalesced(self) -> None:
        """Record one caller that shared a concurrent computation."""
        with self._lock:
            self._coalesced += 1

    def snapshot(self) -> CacheStats:
        """Copy the counters out."""
        with self._lock:
            return CacheStats(
                tiers={
                    t: TierStats(self._hits[t], self._misses[t], self._errors[t], tuple(self._latency[t]))
                    for t in self._hits
                },
                computes=self._computes,
                coalesced=self._coalesced,
                corrupt=self._corrupt,
            )

    def reset(self) -> None:
        """Zero everything (a benchmark separates its passes with it)."""
        with self._lock:
            for table in (self._hits, self._misses, self._errors):
                for t in table:
                    table[t] = 0
            for samples in self._latency.values():
                samples.clear()
            self._computes = self._coalesced = self._corrupt = 0
