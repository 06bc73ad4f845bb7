"""Local state never runs ahead of the changelog (issue 17 item 4)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import faust
import pytest
from changelog_standin import HeldProducer, changelog_app
from faust.assignor.client_assignment import ClientAssignment
from faust.events import Event
from faust.types.tuples import Message

from stream_app.metrics import worker_metrics as m
from stream_app.worker.exceptions import StateCorrupt
from stream_app.worker.fencing import FENCE_KEY, encode_fence
from stream_app.worker.local_store import GUARD_OPTION, SYNCED_KEY, GuardedTable, StoreGuard
from stream_app.worker.records import decode_stream_record, encode_fenced
from stream_app.worker.tables import FAUST_OFFSET_KEY, ChangelogTable, WriteStamp, stamp_from_headers

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


async def write_across_a_kept_rebalance(
    table: Any, io: ChangelogTable, producer: HeldProducer
) -> tuple[int, Awaitable[object]]:
    """Store v1 of s1, then send v2 and revoke and assign partition 0 again while it is in flight.

    Returns the offset v1 got and v2's write.
    """
    tp = faust.types.TP(table.changelog_topic.get_topic_name(), 0)
    first = io.put(0, b"s1", b"v1")
    before = producer.ack(producer.waiting()[0])
    await first
    across = io.put(0, b"s1", b"v2")
    table.data.revoke_partitions(table, {tp})
    await table.data.assign_partitions(table, {tp})
    return before, across


async def test_a_partition_kept_through_a_rebalance_never_claims_a_write_acknowledged_across_it(
    guarded: tuple[Any, ChangelogTable, HeldProducer],
) -> None:
    table, io, producer = guarded
    before, across = await write_across_a_kept_rebalance(table, io, producer)
    producer.ack_all()
    await across
    later = io.put(0, b"s2", b"v3")
    producer.ack_all()
    await later
    db = table.data._db_for_partition(0)
    assert db.get(b"s1") == b"v1" and db.get(b"s2") == b"v3"  # v2 is only in the changelog
    assert persisted(table, 0) == before  # so a restart reads the changelog from before it


def assign(table: Any, *, actives: list[int], standbys: list[int]) -> None:
    """Give the app's assignor an assignment, as a rebalance's sync does before faust's callbacks."""
    topic = table.changelog_topic.get_topic_name()
    table.app.assignor._assignment = ClientAssignment(actives={topic: actives}, standbys={topic: standbys})


async def as_active_copy(table: Any) -> Any:
    """Assign changelog partition 0 to this replica as the active copy (a rebalance); return it."""
    tp = faust.types.TP(table.changelog_topic.get_topic_name(), 0)
    assign(table, actives=[0], standbys=[])
    await table.data.on_rebalance({tp}, set(), {tp})
    return tp


async def test_a_copy_kept_as_a_standby_never_takes_a_late_acknowledgement_of_its_active_days(
    guarded: tuple[Any, ChangelogTable, HeldProducer],
) -> None:
    # faust keeps a changelog partition assigned when its copy here turns from active to standby (no
    # revoke, no assign); an acknowledgement of the active days landing after that must not move the
    # offset, or the standby reader would skip the new owner's records written before it
    table, io, producer = guarded
    tp = await as_active_copy(table)
    first = io.put(0, b"s1", b"v1")
    before = producer.ack(producer.waiting()[0])
    await first
    late = io.put(0, b"s1", b"v2")
    assign(table, actives=[], standbys=[0])
    await table.data.on_rebalance({tp}, set(), set())
    assert io.get(0, b"s1") == b"v1"  # the write in flight is not the standby copy's state
    producer.ack_all()
    await late
    assert table.data._db_for_partition(0).get(b"s1") == b"v1"  # v2 comes through the standby reader
    assert persisted(table, 0) == before


async def test_a_copy_that_keeps_its_role_applies_acknowledgements_across_a_rebalance(
    guarded: tuple[Any, ChangelogTable, HeldProducer],
) -> None:
    table, io, producer = guarded
    tp = await as_active_copy(table)
    across = io.put(0, b"s1", b"v1")
    await table.data.on_rebalance({tp}, set(), set())  # another partition moved; this one stays active
    offset = producer.ack(producer.waiting()[0])
    await across
    assert table.data._db_for_partition(0).get(b"s1") == b"v1" and persisted(table, 0) == offset


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


def test_records_fetched_again_within_a_batch_never_put_older_values_back(
    guarded: tuple[Any, ChangelogTable, HeldProducer],
) -> None:
    # faust's buffer kept 114-117 from before a rebalance, and the seek back to the files' offset (113)
    # fetched 114-115 again: the second copies must not replace what 116 and 117 wrote
    table, _, _ = guarded
    topic = table.changelog_topic.get_topic_name()
    values = {114: b"v114", 115: b"v115", 116: b"v116", 117: b"v117"}

    def event(offset: int) -> Event:
        message = Message(topic, 0, offset, time.time(), 0, [], b"s1", values[offset], None)
        return Event(table.app, b"s1", values[offset], [], message)

    table.data.apply_changelog_batch([event(o) for o in (114, 115, 116, 117, 114, 115)], None, None)
    assert table.data._db_for_partition(0).get(b"s1") == b"v117" and persisted(table, 0) == 117


async def test_a_recovery_of_a_partition_that_stayed_never_replaces_newer_acknowledged_writes(
    guarded: tuple[Any, ChangelogTable, HeldProducer],
) -> None:
    """faust recovers every active partition at each rebalance, also one whose owner goes on writing."""
    table, io, producer = guarded
    topic = table.changelog_topic.get_topic_name()
    old = io.put(0, b"s1", b"v1")
    first = producer.ack(producer.waiting()[0])
    newer = io.put(0, b"s1", b"v2")
    second = producer.ack(producer.waiting()[0])
    await old
    await newer
    replayed = Message(topic, 0, first, time.time(), 0, [], b"s1", b"v1", None)  # read before v2 was applied
    table.data.apply_changelog_batch([Event(table.app, b"s1", b"v1", [], replayed)], None, None)
    db = table.data._db_for_partition(0)
    assert db.get(b"s1") == b"v2" and persisted(table, 0) == second
    tail = Message(topic, 0, second + 1, time.time(), 0, [], b"s2", b"v3", None)  # another owner's, later
    table.data.apply_changelog_batch([Event(table.app, b"s2", b"v3", [], tail)], None, None)
    assert db.get(b"s2") == b"v3" and persisted(table, 0) == second + 1


def restored(tmp_path: Path, records: list[tuple[bytes, bytes | None, int | None]], fenced: bool) -> Any:
    """Restore ``(key, value, writer epoch)`` changelog records, in order, into a fresh table."""
    app, _ = changelog_app(tmp_path, GuardedTable)
    guard = StoreGuard(fenced_value=encode_fenced if fenced else None)
    table = app.Table("streams", key_type=bytes, value_type=bytes, partitions=1, options={GUARD_OPTION: guard})
    topic = table.changelog_topic.get_topic_name()
    events = []
    for offset, (key, value, epoch) in enumerate(records):
        headers = [] if epoch is None else WriteStamp(epoch, offset).headers()
        message = Message(topic, 0, offset, time.time(), 0, headers, key, value, None)
        events.append(Event(app, key, value, headers, message))
    table.data.apply_changelog_batch(events[:2], None, None)  # restored in batches, as faust does
    table.data.apply_changelog_batch(events[2:], None, None)
    return table.data._db_for_partition(0)


def fence(epoch: int) -> tuple[bytes, bytes, int]:
    return FENCE_KEY, encode_fence(epoch), epoch


async def test_a_late_write_of_a_replaced_owner_is_not_restored_over_its_successors_state(tmp_path: Path) -> None:
    fenced = m.FENCED_WRITES.labels(where="restore")._value.get()
    db = restored(
        tmp_path,
        [fence(1), (b"s", b"owner 1", 1), fence(2), (b"s", b"owner 2", 2), (b"s", b"owner 1, late", 1)],
        fenced=True,
    )
    assert db.get(b"s") == b"owner 2"
    assert m.FENCED_WRITES.labels(where="restore")._value.get() == fenced + 1


@pytest.mark.parametrize("fenced", [True, False])
async def test_a_late_write_left_alone_by_compaction_is_reported_lost_not_taken_as_current(
    tmp_path: Path, fenced: bool
) -> None:
    """Compaction kept only the late write of the key: the streams table marks it, the audio table leaves it out."""
    db = restored(tmp_path, [fence(2), (b"x", b"y", 2), (b"s", b"owner 1, late", 1)], fenced=fenced)
    if fenced:
        with pytest.raises(StateCorrupt, match="replaced owner"):
            decode_stream_record(bytes(db.get(b"s")))
    else:
        assert db.get(b"s") is None
    assert db.get(b"x") == b"y"


async def test_records_of_an_earlier_release_and_writes_before_a_fence_are_restored(tmp_path: Path) -> None:
    db = restored(tmp_path, [(b"old", b"v0", None), (b"s", b"owner 1", 1), fence(2), (b"old", b"v1", None)], True)
    assert (db.get(b"old"), db.get(b"s")) == (b"v1", b"owner 1")


async def test_every_changelog_record_carries_its_writers_stamp(
    guarded: tuple[Any, ChangelogTable, HeldProducer],
) -> None:
    _, io, producer = guarded
    io.put(0, b"s", b"v", WriteStamp(5, 1234))
    (sent,) = producer.waiting()
    assert stamp_from_headers(sent.message.headers) == WriteStamp(5, 1234)


async def test_a_write_of_a_kept_partition_refused_across_a_rebalance_stops_its_offset_too(
    guarded: tuple[Any, ChangelogTable, HeldProducer],
) -> None:
    table, io, producer = guarded
    before, doubtful = await write_across_a_kept_rebalance(table, io, producer)  # it times out: may have landed
    producer.refuse(producer.waiting()[0], ConnectionError("request timed out"))
    with pytest.raises(ConnectionError):
        await doubtful
    later = io.put(0, b"s2", b"v3")
    producer.ack_all()
    await later
    assert table.data._db_for_partition(0).get(b"s2") == b"v3"
    assert persisted(table, 0) == before  # a restart reads the changelog from before the doubtful write
