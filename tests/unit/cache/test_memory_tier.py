from cache_helpers import ManualClock

from stream_app.cache.memory_tier import MemoryTier


def test_get_returns_what_was_set() -> None:
    tier = MemoryTier(1000, ttl=60)
    assert tier.get("a") is None
    assert tier.set("a", b"x" * 10)
    assert tier.get("a") == b"x" * 10
    assert tier.bytes_held() == 11


def test_evicts_least_recently_used_by_bytes() -> None:
    tier = MemoryTier(300, ttl=60)
    for name in "abc":
        tier.set(name, bytes(99))  # 100 bytes each with the key
    assert tier.bytes_held() == 300
    tier.get("a")  # a is now the most recently used
    tier.set("d", bytes(149))  # needs 150: b and c must go, a stays
    assert "a" in tier and "d" in tier
    assert "b" not in tier and "c" not in tier
    assert tier.bytes_held() == 250


def test_bytes_never_exceed_capacity_under_mixed_sizes() -> None:
    tier = MemoryTier(5000, ttl=60)
    for i in range(500):
        tier.set(f"k{i}", bytes((i * 37) % 900))
        assert tier.bytes_held() <= 5000
    assert sum(len(f"k{i}") + len(v) for i in range(500) if (v := tier.get(f"k{i}")) is not None) == (tier.bytes_held())


def test_refuses_an_entry_larger_than_capacity_without_evicting() -> None:
    tier = MemoryTier(100, ttl=60)
    tier.set("a", bytes(10))
    assert not tier.set("huge", bytes(200))
    assert "a" in tier and "huge" not in tier


def test_replacing_a_key_updates_bytes() -> None:
    tier = MemoryTier(1000, ttl=60)
    tier.set("a", bytes(100))
    tier.set("a", bytes(10))
    assert tier.bytes_held() == 11 and len(tier) == 1


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
