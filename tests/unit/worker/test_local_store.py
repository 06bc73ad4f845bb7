"""Local state never runs ahead of the changelog (issue 17 item 4)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust
import pytest
from changelog_standin import HeldProducer, changelog_app

from stream_app.worker.local_store import GuardedTable
from stream_app.worker.tables import ChangelogTable

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
