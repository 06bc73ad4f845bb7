import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cache_fixtures import RedisServer, caching, free_port, transcript
from prometheus_client import REGISTRY

from stream_app.cache import BreakerState, TranscriptCache, build_cache
from stream_app.cache.redis_tier import KEY_PREFIX
from stream_app.inference.types import WindowTranscript

pytestmark = pytest.mark.integration


def _breaker_state(cache: TranscriptCache) -> BreakerState:
    return cache.breaker_states()["redis"]


def _counting(calls: list[str], key: str) -> Callable[[], WindowTranscript]:
    def compute() -> WindowTranscript:
        calls.append(key)
        return transcript(text=f"window {key}")

    return compute


def _run_until_closed(cache: TranscriptCache, calls: list[str], prefix: str) -> int:
    """Keep transcribing new windows until the breaker closes again; return how many it took."""
    deadline = time.monotonic() + 20
    n = 0
    while _breaker_state(cache) is not BreakerState.CLOSED:
        assert time.monotonic() < deadline, "breaker never closed after Redis came back"
        key = f"{prefix}{n}"
        assert cache.get_or_compute(key, _counting(calls, key)).text == f"window {key}"
        n += 1
        time.sleep(0.05)
    return n


def test_redis_stopped_mid_run_then_restarted(redis_server: RedisServer, tmp_path: Path) -> None:
    cache = build_cache(caching(redis_server.url, tmp_path / "l2", cache_levels="redis"))
    calls: list[str] = []
    for i in range(3):
        cache.get_or_compute(f"before{i}", _counting(calls, f"before{i}"))
    assert _breaker_state(cache) is BreakerState.CLOSED

    redis_server.stop()
    for i in range(6):
        key = f"down{i}"
        got = cache.get_or_compute(key, _counting(calls, key))
        assert got.text == f"window {key}" and not got.cached
    assert _breaker_state(cache) is BreakerState.OPEN
    assert REGISTRY.get_sample_value("stream_app_cache_breaker_state", {"tier": "redis"}) == BreakerState.OPEN
    assert cache.stats().tiers["redis"].errors >= 2

    redis_server.start()  # same port, empty
    _run_until_closed(cache, calls, "after")
    assert REGISTRY.get_sample_value("stream_app_cache_breaker_state", {"tier": "redis"}) == 0
    cache.get_or_compute("back", _counting(calls, "back"))
    assert redis_server.client().exists(KEY_PREFIX + "back") == 1
    assert cache.get_or_compute("back", _counting(calls, "back")).cached
    assert calls.count("back") == 1
    cache.close()


def test_stuck_redis_times_out_into_misses(redis_server: RedisServer, tmp_path: Path) -> None:
    cache = build_cache(caching(redis_server.url, tmp_path / "l2", cache_levels="redis"))
    calls: list[str] = []
    cache.get_or_compute("warm", _counting(calls, "warm"))  # opens a pooled connection
    redis_server.pause()
    try:
        for i in range(5):
            key = f"stuck{i}"
            assert cache.get_or_compute(key, _counting(calls, key)).text == f"window {key}"
        assert _breaker_state(cache) is BreakerState.OPEN
    finally:
        redis_server.resume()
    _run_until_closed(cache, calls, "resumed")
    assert cache.get_or_compute("warm", _counting(calls, "warm")).cached
    cache.close()


def test_redis_absent_from_the_start_is_only_misses(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    cache = build_cache(caching(url, tmp_path / "l2"))
    calls: list[str] = []
    for i in range(4):
        cache.get_or_compute(f"k{i}", _counting(calls, f"k{i}"))
    assert len(calls) == 4
    # Memory and disk still serve repeats while Redis is away.
    assert cache.get_or_compute("k0", _counting(calls, "k0")).cached
    assert _breaker_state(cache) is BreakerState.OPEN
    cache.close()
