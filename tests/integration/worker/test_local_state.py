"""A table's local files hold only what its changelog acknowledged (real broker, faust's own producer)."""

from __future__ import annotations

import uuid
from pathlib import Path

import faust
import pytest

from stream_app.config import Settings
from stream_app.local import delete_topics, ensure_topics
from stream_app.worker.local_store import GuardedTable
from stream_app.worker.tables import ChangelogTable


async def test_a_write_the_changelog_refuses_never_reaches_the_local_files(settings: Settings, tmp_path: Path) -> None:
    app_id = f"test-local-{uuid.uuid4().hex}"
    changelog = f"{app_id}-streams-changelog"
    # a changelog that refuses records over 2 kB, as a broker refuses what breaks its limits
    ensure_topics(
        settings,
        [changelog],
        partitions=1,
        include_service_topics=False,
        config={"cleanup.policy": "compact", "max.message.bytes": "2000"},
    )
    app = faust.App(
        app_id,
        broker=f"kafka://{settings.kafka.bootstrap_servers}",
        store="rocksdb://",
        datadir=str(tmp_path),
        Table=GuardedTable,
        producer_acks=-1,
    )
    table = app.Table("streams", key_type=bytes, value_type=bytes, partitions=1)
    io = ChangelogTable(table)
    await app.producer.start()
    try:
        with pytest.raises(Exception, match="MessageSizeTooLarge"):
            await io.put(0, b"refused", b"x" * 5000)
        await io.put(0, b"stored", b"y")
        db = table.data._db_for_partition(0)
        assert db.get(b"refused") is None  # a restart on this volume must not find it
        assert io.get(0, b"refused") is None
        assert db.get(b"stored") == b"y"
    finally:
        await app.producer.stop()
        delete_topics(settings, [changelog])
