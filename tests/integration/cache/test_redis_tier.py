import time
from pathlib import Path

import pytest
import redis
from cache_fixtures import RedisServer, caching, transcript

from stream_app.cache import build_cache
from stream_app.cache.breaker import CircuitBreaker
from stream_app.cache.codec import encode_entry
from stream_app.cache.redis_tier import KEY_PREFIX, RedisTier

pytestmark = pytest.mark.integration


def _tier(server: RedisServer, *, ttl: float = 60.0, max_value_size: int = 1_000_000) -> RedisTier:
    return RedisTier(server.url, ttl=ttl, timeout=0.5, max_value_size=max_value_size, breaker=CircuitBreaker(3, 1.0))


def test_round_trip_with_ttl(redis_server: RedisServer) -> None:
    tier = _tier(redis_server)
    assert tier.get("k") is None
    assert tier.set("k", b"entry")
    assert tier.get("k") == b"entry"
    client = redis_server.client()
    assert 0 < client.pttl(KEY_PREFIX + "k") <= 60_000
    tier.delete("k")
    assert client.exists(KEY_PREFIX + "k") == 0
    tier.close()


def test_entries_expire(redis_server: RedisServer) -> None:
    tier = _tier(redis_server, ttl=0.2)
    tier.set("k", b"entry")
    deadline = time.monotonic() + 5
    while tier.get("k") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tier.get("k") is None
    tier.close()


def test_values_over_the_size_limit_are_not_stored(redis_server: RedisServer) -> None:
    tier = _tier(redis_server, max_value_size=100)
    assert not tier.set("big", bytes(101))
    assert tier.set("small", bytes(100))
    assert redis_server.client().exists(KEY_PREFIX + "big") == 0
    tier.close()


def test_redis_hit_is_promoted_to_memory_and_disk(redis_server: RedisServer, tmp_path: Path) -> None:
    redis_server.client().set(KEY_PREFIX + "k", encode_entry(transcript(3.0), 3.0))
    cache = build_cache(caching(redis_server.url, tmp_path / "l2"))
    assert cache.tier_names == ["memory", "disk", "redis"]
    calls: list[int] = []
    got = cache.get_or_compute("k", lambda: calls.append(1) or transcript(), window_start=20.0)
    assert got.cached and not calls
    assert got.words[0].start == 20.0
    redis_server.client().flushall()
    again = cache.get_or_compute("k", lambda: calls.append(1) or transcript(), window_start=20.0)
    assert again.cached and not calls
    stats = cache.stats().tiers
    assert stats["redis"].hits == 1 and stats["memory"].hits == 1
    cache.close()
    # The disk copy survives a restart of the process (a fresh cache on the same folder).
    reopened = build_cache(caching(redis_server.url, tmp_path / "l2", cache_levels="disk"))
    assert reopened.lookup("k") is not None
    reopened.close()


def test_computed_result_lands_in_redis(redis_server: RedisServer, tmp_path: Path) -> None:
    cache = build_cache(caching(redis_server.url, tmp_path / "l2"))
    cache.get_or_compute("fresh", lambda: transcript())
    assert redis_server.client().exists(KEY_PREFIX + "fresh") == 1
    cache.close()


def test_corrupt_redis_entry_is_replaced(redis_server: RedisServer, tmp_path: Path) -> None:
    client = redis_server.client()
    client.set(KEY_PREFIX + "k", b"\x01{broken")
    cache = build_cache(caching(redis_server.url, tmp_path / "l2", cache_levels="redis"))
    calls: list[int] = []
    got = cache.get_or_compute("k", lambda: calls.append(1) or transcript())
    assert calls == [1] and not got.cached
    assert cache.stats().corrupt == 1
    stored = client.get(KEY_PREFIX + "k")
    assert isinstance(stored, bytes) and stored == encode_entry(transcript(), 0.0)
    cache.close()


def test_levels_come_from_configuration(redis_server: RedisServer, tmp_path: Path) -> None:
    cache = build_cache(caching(redis_server.url, tmp_path / "l2", cache_levels=["redis", "memory"]))
    assert cache.tier_names == ["memory", "redis"]
    cache.close()


def test_a_key_of_another_type_is_a_miss_not_an_outage(redis_server: RedisServer, tmp_path: Path) -> None:
    """Redis answered WRONGTYPE: that key fails, not Redis; the breaker stays closed for every other key."""
    client = redis_server.client()
    client.set(KEY_PREFIX + "good", encode_entry(transcript(), 0.0))
    tier = _tier(redis_server)
    for _ in range(5):  # more than the breaker's 3 failures
        client.lpush(KEY_PREFIX + "odd", b"not an entry")
        with pytest.raises(redis.ResponseError):
            tier.get("odd")
        assert client.exists(KEY_PREFIX + "odd") == 0  # deleted: the entry can be stored again
    assert tier.breaker.allow()
    assert tier.get("good") == encode_entry(transcript(), 0.0)
    cache = build_cache(caching(redis_server.url, tmp_path / "l2", cache_levels="redis"))
    client.lpush(KEY_PREFIX + "odd", b"not an entry")
    calls: list[int] = []
    got = cache.get_or_compute("odd", lambda: calls.append(1) or transcript())
    assert calls == [1] and not got.cached
    cache.close()
    tier.close()
