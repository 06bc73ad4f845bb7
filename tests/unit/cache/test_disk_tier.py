import os
import time
from pathlib import Path

from stream_app.cache.disk_tier import DiskTier


def test_round_trip_and_survives_reopen(tmp_path: Path) -> None:
    tier = DiskTier(tmp_path / "l2", size_limit=10_000_000, ttl=60)
    tier.set("k", b"entry")
    assert tier.get("k") == b"entry"
    tier.close()
    reopened = DiskTier(tmp_path / "l2", size_limit=10_000_000, ttl=60)
    assert reopened.get("k") == b"entry"
    reopened.delete("k")
    assert reopened.get("k") is None
    reopened.close()


def test_volume_stays_within_size_limit(tmp_path: Path) -> None:
    limit = 300_000
    tier = DiskTier(tmp_path / "l2", size_limit=limit, ttl=60)
    for i in range(200):
        tier.set(f"k{i}", os.urandom(10_000))
    assert tier.bytes_held() <= limit
    assert tier.get("k0") is None  # the oldest were culled
    assert tier.get("k199") is not None
    tier.close()


def test_entries_expire(tmp_path: Path) -> None:
    tier = DiskTier(tmp_path / "l2", size_limit=10_000_000, ttl=0.2)
    tier.set("k", b"entry")
    assert tier.get("k") == b"entry"
    deadline = time.monotonic() + 5
    while tier.get("k") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tier.get("k") is None
    tier.close()


def test_non_bytes_value_is_treated_as_absent(tmp_path: Path) -> None:
    tier = DiskTier(tmp_path / "l2", size_limit=10_000_000, ttl=60)
    tier._cache.set("k", {"not": "bytes"})
    assert tier.get("k") is None
    tier.close()


def test_an_unusable_folder_leaves_the_tier_out_instead_of_failing_the_start(tmp_path: Path) -> None:
    """A full or read-only volume makes the worker slower, never unable to start."""
    from stream_app.cache.factory import open_disk_tier

    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert open_disk_tier(blocked / "l2", 10_000_000, 60) is None


def test_a_damaged_database_is_moved_aside_and_a_fresh_one_opened(tmp_path: Path) -> None:
    from stream_app.cache.factory import open_disk_tier

    tier = DiskTier(tmp_path / "l2", size_limit=10_000_000, ttl=60)
    tier.set("k", b"entry")
    tier.close()
    database = tmp_path / "l2" / "cache.db"
    database.write_bytes(b"\xff" * 4096 + database.read_bytes()[4096:])  # the header page overwritten
    fresh = open_disk_tier(tmp_path / "l2", 10_000_000, 60)
    assert fresh is not None and fresh.get("k") is None
    assert fresh.set("k", b"again") and fresh.get("k") == b"again"
    fresh.close()
    assert [p.name.startswith("l2.damaged-") for p in tmp_path.iterdir() if p.name != "l2"] == [True]
