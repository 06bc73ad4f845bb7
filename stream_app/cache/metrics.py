"""Prometheus metrics of the transcription cache, in the default registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# 50 µs (an L1 hit) up to 60 s (a look-up stuck behind a saturated disk). Between 0.1 and 10 ms, where
# disk and Redis answer, no bound is more than 1.5x the one before, so a p95 read from the buckets
# (`histogram_quantile`) is within that step of the true figure; coarser steps above and below.
LOOKUP_BUCKETS = (
    0.00005,
    0.0001,
    0.00015,
    0.0002,
    0.0003,
    0.0004,
    0.0005,
    0.00075,
    0.001,
    0.0015,
    0.002,
    0.003,
    0.004,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

CACHE_HITS = Counter("stream_app_cache_hits_total", "Cache look-ups answered by a tier.", ["tier"])
CACHE_MISSES = Counter("stream_app_cache_misses_total", "Cache look-ups a tier could not answer.", ["tier"])
CACHE_LOOKUP_SECONDS = Histogram(
    "stream_app_cache_lookup_seconds",
    "Time one tier took to answer a look-up, hit or miss.",
    ["tier"],
    buckets=LOOKUP_BUCKETS,
)
CACHE_BYTES = Gauge("stream_app_cache_bytes", "Bytes a cache tier holds (where it can say).", ["tier"])
CACHE_ERRORS = Counter(
    "stream_app_cache_errors_total",
    "Cache operations that failed and were turned into a miss or a skipped write.",
    ["tier", "kind"],
)
CACHE_BREAKER_STATE = Gauge(
    "stream_app_cache_breaker_state",
    "Circuit breaker of a tier: 0 closed, 1 half-open, 2 open.",
    ["tier"],
)
CACHE_DECODE_LOOKUPS = Counter(
    "stream_app_cache_decode_lookups_total",
    "Decodes looked up in the cache, by decode kind (tick, cut, file) and result (hit: any tier, miss: none).",
    ["kind", "result"],
)
CACHE_BYPASSED = Counter(
    "stream_app_cache_bypassed_total",
    "Decodes sent to the model without a look-up or a store, by decode kind (previews: see WindowCache.admits).",
    ["kind"],
)
CACHE_COMPUTES = Counter(
    "stream_app_cache_computes_total",
    "Windows computed because no tier held them (single flight counts one per key).",
)
CACHE_COALESCED = Counter(
    "stream_app_cache_coalesced_total",
    "Look-ups that waited for a concurrent computation of the same key instead of computing.",
)
