import os
import tracemalloc

from cache_helpers import ManualClock

from stream_app.cache.memory_tier import ENTRY_OVERHEAD, MemoryTier

OVER = ENTRY_OVERHEAD  # what each entry costs besides its key and value


def test_get_returns_what_was_set() -> None:
    tier = MemoryTier(1000, ttl=60)
    assert tier.get("a") is None
    assert tier.set("a", b"x" * 10)
    assert tier.get("a") == b"x" * 10
    assert tier.bytes_held() == 11 + OVER


def test_evicts_least_recently_used_by_bytes() -> None:
    tier = MemoryTier(300 + 3 * OVER, ttl=60)
    for name in "abc":
        tier.set(name, bytes(99))  # 100 bytes each with the key
    assert tier.bytes_held() == 300 + 3 * OVER
    tier.get("a")  # a is now the most recently used
    tier.set("d", bytes(149 + OVER))  # needs 150 + 2 OVER: b and c must go, a stays
    assert "a" in tier and "d" in tier
    assert "b" not in tier and "c" not in tier
    assert tier.bytes_held() == 250 + 3 * OVER


def test_bytes_never_exceed_capacity_under_mixed_sizes() -> None:
    tier = MemoryTier(5000 + 10 * OVER, ttl=60)
    for i in range(500):
        tier.set(f"k{i}", bytes((i * 37) % 900))
        assert tier.bytes_held() <= 5000 + 10 * OVER
    held = [(f"k{i}", v) for i in range(500) if (v := tier.get(f"k{i}")) is not None]
    assert sum(len(k) + len(v) + OVER for k, v in held) == tier.bytes_held()


def test_the_memory_it_takes_stays_within_its_capacity() -> None:
    """Many small entries: the objects around each key and value count, not only their bytes."""
    capacity = 4 << 20
    entries = [(os.urandom(32), os.urandom(300)) for _ in range(20_000)]  # ~ 9 MB of entries for a 4 MB tier
    tracemalloc.start()
    try:
        tier = MemoryTier(capacity, ttl=60)
        for key, value in entries:
            tier.set(key.hex(), bytes(bytearray(value)))
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tier.bytes_held() <= capacity
    assert used <= capacity * 1.15, f"{used >> 10} KiB traced for a {capacity >> 10} KiB tier"


def test_refuses_an_entry_larger_than_capacity_without_evicting() -> None:
    tier = MemoryTier(100 + OVER, ttl=60)
    tier.set("a", bytes(10))
    assert not tier.set("huge", bytes(200))
    assert "a" in tier and "huge" not in tier


def test_replacing_a_key_updates_bytes() -> None:
    tier = MemoryTier(1000, ttl=60)
    tier.set("a", bytes(100))
    tier.set("a", bytes(10))
    assert tier.bytes_held() == 11 + OVER and len(tier) == 1


def test_entries_expire_after_ttl() -> None:
    clock = ManualClock()
    tier = MemoryTier(1000, ttl=2.0, clock=clock)
    tier.set("a", b"v")
    clock.advance(1.9)
    assert tier.get("a") == b"v"
    clock.advance(0.2)
    assert tier.get("a") is None
    assert tier.bytes_held() == 0


def test_delete() -> None:
    tier = MemoryTier(1000, ttl=60)
    tier.set("a", b"v")
    tier.delete("a")
    tier.delete("missing")
    assert tier.get("a") is None and tier.bytes_held() == 0
