"""Local state never runs ahead of the changelog (issue 17 item 4)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faust
import pytest
from changelog_standin import HeldProducer, changelog_app
from faust.events import Event
from faust.types.tuples import Message

from stream_app.metrics import worker_metrics as m
from stream_app.worker.local_store import GUARD_OPTION, SYNCED_KEY, GuardedTable, StoreGuard
from stream_app.worker.tables import FAUST_OFFSET_KEY, ChangelogTable

CHANGELOG = "changelog"


def streams_table(app: faust.App) -> Any:
    return app.Table("streams", key_type=bytes, value_type=bytes, partitions=2)


def persisted(table: Any, partition: int) -> int | None:
    offset: int | None = table.data.persisted_offset(faust.types.TP(table.changelog_topic.get_topic_name(), partition))
    return offset


@pytest.fixture
def guarded(tmp_path: Path) -> tuple[Any, ChangelogTable, HeldProducer]:
    app, producer = changelog_app(tmp_path, GuardedTable)
    table = streams_table(app)
    return table, ChangelogTable(table), producer


async def test_a_write_reaches_the_local_file_only_with_its_acknowledgement(
    guarded: tuple[Any, ChangelogTable, HeldProducer],
) -> None:
    table, io, producer = guarded
    db = table.data._db_for_partition(0)
    write = io.put(0, b"s1", b"header")
    assert db.get(b"s1") is None  # a replica killed now must not keep what the changelog may never get
    assert io.get(0, b"s1") == b"header"  # the worker reads its own write meanwhile
    assert list(io.keys(0)) == [b"s1"]
    (sent,) = producer.waiting()
    offset = producer.ack(sent)
    await write
    assert db.get(b"s1") == b"header" and persisted(table, 0) == offset  # the record and its offset, together
    deletion = io.delete(0, b"s1")
    assert io.get(0, b"s1") is None and list(io.keys(0)) == [] and db.get(b"s1") == b"header"
    producer.ack_all()
    await deletion
    assert db.get(b"s1") is None and persisted(table, 0) == offset + 1


async def test_a_refused_write_is_forgotten_and_the_offset_stops_where_the_changelog_is_certain(
    guarded: tuple[Any, ChangelogTable, HeldProducer],
) -> None:
    table, io, producer = guarded
    first = io.put(0, b"s1", b"v1")
    offset = producer.ack(producer.waiting()[0])
    await first
    refused = io.put(0, b"s1", b"v2")
    producer.refuse(producer.waiting()[0], ConnectionError("request timed out"))  # it may have landed
    with pytest.raises(ConnectionError):
        await refused
    assert io.get(0, b"s1") == b"v1"  # readers see the stored value again
    later = io.put(0, b"s2", b"v3")
    producer.ack_all()
    await later
    db = table.data._db_for_partition(0)
    assert db.get(b"s2") == b"v3"
    assert persisted(table, 0) == offset  # a restart replays the changelog from before the doubtful write


async def test_an_acknowledgement_after_the_partition_was_revoked_is_left_to_the_next_recovery(
    guarded: tuple[Any, ChangelogTable, HeldProducer],
) -> None:
    table, io, producer = guarded
    table.data._db_for_partition(1)
    write = io.put(1, b"s1", b"late")
    table.data.revoke_partitions(table, {faust.types.TP(table.changelog_topic.get_topic_name(), 1)})
    assert io.get(1, b"s1") is None  # not this incarnation's state
    producer.ack_all()
    await write
    assert table.data._db_for_partition(1).get(b"s1") is None


async def test_two_writes_of_a_key_in_flight_are_applied_in_order(
    guarded: tuple[Any, ChangelogTable, HeldProducer],
) -> None:
    table, io, producer = guarded
    writes = [io.put(0, b"s1", b"v1"), io.put(0, b"s1", b"v2")]
    assert io.get(0, b"s1") == b"v2"
    producer.ack_all()
    await asyncio.gather(*writes)
    assert table.data._db_for_partition(0).get(b"s1") == b"v2" and io.get(0, b"s1") == b"v2"


def reopened(datadir: Path, stale_after: float | None, prepare: Callable[[Any], None]) -> Any:
    """Write ``prepare`` into partition 0's files, close them, and open them again as a restarted replica does."""
    app, _ = changelog_app(datadir, GuardedTable)
    table = app.Table("streams", key_type=bytes, value_type=bytes, partitions=1)
    db = table.data._db_for_partition(0)
    prepare(db)
    table.data._dbs.pop(0).close()
    again, _ = changelog_app(datadir, GuardedTable)
    options = {GUARD_OPTION: StoreGuard(stale_after=stale_after)}
    return again.Table("streams", key_type=bytes, value_type=bytes, partitions=1, options=options)


def synced(hours_ago: float) -> Callable[[Any], None]:
    def prepare(db: Any) -> None:
        db.put(b"s1", b"header")
        db.put(FAUST_OFFSET_KEY, b"41")
        db.put(SYNCED_KEY, str(int((time.time() - hours_ago * 3600) * 1000)).encode())

    return prepare


def test_files_in_step_with_the_changelog_recently_are_resumed(tmp_path: Path) -> None:
    table = reopened(tmp_path, stale_after=24 * 3600, prepare=synced(hours_ago=2))
    assert table.data._db_for_partition(0).get(b"s1") == b"header" and persisted(table, 0) == 41


@pytest.mark.parametrize("prepare", [synced(hours_ago=30), lambda db: db.put(b"s1", b"header from 0.x")])
def test_files_older_than_the_tombstones_last_are_restored_afresh(tmp_path: Path, prepare: Any) -> None:
    """Deletions made while the volume sat unused may be compacted away: nothing old may come back."""
    drops = m.LOCAL_STATE_DROPS._value.get()
    table = reopened(tmp_path, stale_after=24 * 3600, prepare=prepare)
    db = table.data._db_for_partition(0)
    assert db.get(b"s1") is None and persisted(table, 0) is None  # recovery reads the whole changelog
    assert m.LOCAL_STATE_DROPS._value.get() == drops + 1


def test_restored_records_mark_the_files_in_step(guarded: tuple[Any, ChangelogTable, HeldProducer]) -> None:
    table, _, _ = guarded
    topic = table.changelog_topic.get_topic_name()
    message = Message(topic, 0, 7, time.time(), 0, [], b"s1", b"header", None)
    before_ms = int(time.time() * 1000)
    table.data.apply_changelog_batch([Event(table.app, b"s1", b"header", [], message)], None, None)
    db = table.data._db_for_partition(0)
    assert db.get(b"s1") == b"header" and persisted(table, 0) == 7
    assert int(bytes(db.get(SYNCED_KEY))) >= before_ms
