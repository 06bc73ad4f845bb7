from __future__ import annotations

from pathlib import Path
from typing import Any

import faust
import pytest

from stream_app.streaming import LiveConfig
from stream_app.worker.store import StreamStore
from stream_app.worker.tables import ChangelogTable

FAUST_OFFSET_KEY = b"__faust\x00offset__"  # where faust's RocksDB store keeps the changelog offset it applied


@pytest.fixture
def app(tmp_path: Path) -> faust.App:
    """A faust app that is never started: its tables' RocksDB files are real, nothing connects."""
    return faust.App(f"t-{tmp_path.name}", broker="kafka://127.0.0.1:1", store="rocksdb://", datadir=str(tmp_path))


def table(app: faust.App, name: str) -> Any:
    return app.Table(name, key_type=bytes, value_type=bytes, partitions=2)


def test_faust_offset_key_is_not_listed_as_a_stream(app: faust.App) -> None:
    streams = table(app, "streams")
    db = streams.data._db_for_partition(0)
    db.put(b"s1", b"x")
    db.put(FAUST_OFFSET_KEY, b"41")  # what faust writes after every changelog record it applied
    store = StreamStore(ChangelogTable(streams), ChangelogTable(table(app, "audio")), LiveConfig())
    assert list(store.stream_keys(0)) == ["s1"]
    assert list(ChangelogTable(streams).keys(0)) == [b"s1"]
