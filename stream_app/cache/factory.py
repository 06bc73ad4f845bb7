"""Build the cache the configuration asks for."""

from __future__ import annotations

from stream_app.cache import metrics
from stream_app.cache.breaker import BreakerState, CircuitBreaker
from stream_app.cache.disk_tier import DiskTier
from stream_app.cache.memory_tier import MemoryTier
from stream_app.cache.redis_tier import RedisTier
from stream_app.cache.tier import CacheTier
from stream_app.cache.transcript_cache import TranscriptCache
from stream_app.config.settings import CACHE_LEVELS, CachingSettings, expand_path


def build_cache(settings: CachingSettings) -> TranscriptCache:
    """Make the tiers named in ``cache_levels``, always ordered memory, disk, Redis (fastest first).

    Building never contacts Redis: an absent Redis shows up as misses and an open breaker later.
    """
    tiers: list[CacheTier] = []
    for level in CACHE_LEVELS:
        if level not in settings.cache_levels:
            continue
        if level == "memory":
            tiers.append(MemoryTier(settings.l1_size, settings.ttl))
        elif level == "disk":
            tiers.append(DiskTier(expand_path(settings.l2_path), settings.l2_size, settings.ttl))
        elif level == "redis":
            tiers.append(_redis_tier(settings))
    return TranscriptCache(tiers)


def _redis_tier(settings: CachingSettings) -> RedisTier:
    gauge = metrics.CACHE_BREAKER_STATE.labels("redis")
    gauge.set(BreakerState.CLOSED)

    def on_change(state: BreakerState) -> None:
        gauge.set(state)

    breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset, on_change=on_change)
    return RedisTier(
        settings.l3_redis_url,
        ttl=settings.ttl,
        timeout=settings.redis_timeout,
        max_value_size=settings.max_value_size,
        breaker=breaker,
    )
