import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cache_helpers import make_transcript
from prometheus_client import REGISTRY

from stream_app.cache.codec import encode_entry
from stream_app.cache.disk_tier import DiskTier
from stream_app.cache.memory_tier import MemoryTier
from stream_app.cache.transcript_cache import TranscriptCache
from stream_app.inference.types import WindowTranscript


class CountingCompute:
    """A compute that counts its calls and can be slowed so concurrent callers overlap."""

    def __init__(self, delay: float = 0.0, window_start: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self.window_start = window_start
        self._lock = threading.Lock()

    def __call__(self) -> WindowTranscript:
        return self.at(self.window_start)

    def at(self, window_start: float) -> WindowTranscript:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        return make_transcript(window_start)


@pytest.fixture
def tiers(tmp_path: Path) -> Iterator[tuple[MemoryTier, DiskTier]]:
    memory = MemoryTier(1_000_000, ttl=60)
    disk = DiskTier(tmp_path / "l2", size_limit=10_000_000, ttl=60)
    yield memory, disk
    disk.close()


def test_miss_computes_and_stores_in_every_tier(tiers: tuple[MemoryTier, DiskTier]) -> None:
    memory, disk = tiers
    cache = TranscriptCache([memory, disk])
    compute = CountingCompute()
    first = cache.get_or_compute("k", compute)
    assert first.cached is False and compute.calls == 1
    assert memory.get("k") is not None and disk.get("k") is not None
    second = cache.get_or_compute("k", compute)
    assert compute.calls == 1
    assert second.cached is True and second.words == first.words
    stats = cache.stats()
    assert (stats.tiers["memory"].hits, stats.tiers["memory"].misses) == (1, 1)
    assert (stats.tiers["disk"].hits, stats.tiers["disk"].misses) == (0, 1)
    assert stats.computes == 1


def test_disk_hit_is_promoted_to_memory(tiers: tuple[MemoryTier, DiskTier]) -> None:
    memory, disk = tiers
    disk.set("k", encode_entry(make_transcript(), 0.0))
    cache = TranscriptCache([memory, disk])
    compute = CountingCompute()
    got = cache.get_or_compute("k", compute)
    assert got.cached and compute.calls == 0
    assert memory.get("k") is not None
    cache.get_or_compute("k", compute)
    stats = cache.stats()
    assert stats.tiers["disk"].hits == 1 and stats.tiers["memory"].hits == 1


def test_words_follow_the_callers_window_start(tiers: tuple[MemoryTier, DiskTier]) -> None:
    cache = TranscriptCache(list(tiers))
    cache.get_or_compute("jingle", CountingCompute(window_start=12.0), window_start=12.0)
    later = cache.get_or_compute("jingle", CountingCompute(), window_start=600.0)
    assert later.words[0].start == 600.0
    assert later.words[-1].end == pytest.approx(600.0 + 2.0 + 0.4)


def test_corrupt_entries_are_deleted_and_recomputed(tiers: tuple[MemoryTier, DiskTier]) -> None:
    memory, disk = tiers
    memory.set("k", b"\x01{garbage")
    disk.set("k", b"\xff\x00")
    cache = TranscriptCache([memory, disk])
    compute = CountingCompute()
    got = cache.get_or_compute("k", compute)
    assert compute.calls == 1 and got.cached is False
    assert cache.stats().corrupt == 2
    # The bad entries were replaced by the fresh result.
    assert cache.get_or_compute("k", compute).cached is True
    assert compute.calls == 1


def test_corrupt_fast_tier_falls_through_to_a_good_slower_copy(tiers: tuple[MemoryTier, DiskTier]) -> None:
    memory, disk = tiers
    memory.set("k", b"\x01[]")
    disk.set("k", encode_entry(make_transcript(), 0.0))
    cache = TranscriptCache([memory, disk])
    compute = CountingCompute()
    assert cache.get_or_compute("k", compute).cached is True
    assert compute.calls == 0
    assert cache.lookup("k") is not None


def test_single_flight_computes_once_for_concurrent_callers(tiers: tuple[MemoryTier, DiskTier]) -> None:
    cache = TranscriptCache(list(tiers))
    compute = CountingCompute(delay=0.2)
    barrier = threading.Barrier(8)
    results: list[WindowTranscript] = []
    lock = threading.Lock()

    def call(i: int) -> None:
        barrier.wait()
        got = cache.get_or_compute("same", lambda: compute.at(float(i)), window_start=float(i))
        with lock:
            results.append(got)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert compute.calls == 1
    assert len(results) == 8
    assert sorted(r.words[0].start for r in results) == [float(i) for i in range(8)]
    assert cache.stats().computes == 1


def test_compute_errors_reach_the_caller_and_nothing_is_stored(tiers: tuple[MemoryTier, DiskTier]) -> None:
    memory, disk = tiers
    cache = TranscriptCache([memory, disk])

    def boom() -> WindowTranscript:
        raise RuntimeError("model failed")

    with pytest.raises(RuntimeError, match="model failed"):
        cache.get_or_compute("k", boom)
    assert memory.get("k") is None and disk.get("k") is None
    assert cache.get_or_compute("k", CountingCompute()).cached is False


def test_lookup_and_store_for_batching_callers(tiers: tuple[MemoryTier, DiskTier]) -> None:
    cache = TranscriptCache(list(tiers))
    assert cache.lookup("k", window_start=5.0) is None
    cache.store("k", make_transcript(5.0), window_start=5.0)
    got = cache.lookup("k", window_start=9.0)
    assert got is not None and got.words[0].start == 9.0


def test_no_tiers_still_computes_once_per_call() -> None:
    cache = TranscriptCache([])
    compute = CountingCompute()
    cache.get_or_compute("k", compute)
    cache.get_or_compute("k", compute)
    assert compute.calls == 2


def test_prometheus_counts_hits_misses_and_bytes(tiers: tuple[MemoryTier, DiskTier]) -> None:
    def sample(name: str, tier: str) -> float:
        return REGISTRY.get_sample_value(name, {"tier": tier}) or 0.0

    before_miss = sample("stream_app_cache_misses_total", "memory")
    before_hit = sample("stream_app_cache_hits_total", "memory")
    before_count = sample("stream_app_cache_lookup_seconds_count", "disk")
    memory, disk = tiers
    cache = TranscriptCache([memory, disk])
    cache.get_or_compute("metrics-key", CountingCompute())
    cache.get_or_compute("metrics-key", CountingCompute())
    assert sample("stream_app_cache_misses_total", "memory") == before_miss + 1
    assert sample("stream_app_cache_hits_total", "memory") == before_hit + 1
    assert sample("stream_app_cache_lookup_seconds_count", "disk") == before_count + 1
    assert sample("stream_app_cache_bytes", "memory") == memory.bytes_held() > 0


def test_stats_report_percentiles(tiers: tuple[MemoryTier, DiskTier]) -> None:
    cache = TranscriptCache(list(tiers))
    for i in range(20):
        cache.get_or_compute(f"k{i % 5}", CountingCompute())
    report = cache.stats().as_dict()
    memory = report["tiers"]["memory"]  # type: ignore[index]
    assert memory["hits"] == 15 and memory["misses"] == 5
    assert memory["p95_ms"] is not None and memory["p95_ms"] >= memory["p50_ms"]
    cache.reset_stats()
    assert cache.stats().tiers["memory"].hits == 0
