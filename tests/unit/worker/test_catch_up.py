"""A take-over reads back what the last owner wrote between the restore and the fence (operations.md's race)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import faust
import pytest
from changelog_standin import changelog_app
from faust.events import Event
from faust.types.tuples import Message
from processor_standin import Worker

from stream_app.metrics import worker_metrics as m
from stream_app.streaming import LiveConfig
from stream_app.testing.tables import MemoryTable
from stream_app.worker.catch_up import ChangelogRecord, TakeOver
from stream_app.worker.exceptions import Fenced, StateCorrupt
from stream_app.worker.fencing import FENCE_KEY, OwnerEpochs, decode_fence, encode_fence
from stream_app.worker.local_store import GUARD_OPTION, GuardedTable, StoreGuard
from stream_app.worker.records import decode_stream_record, encode_fenced
from stream_app.worker.store import StreamStore
from stream_app.worker.tables import FENCER_HEADER, THIS_PROCESS, ChangelogTable, WriteStamp

Entry = tuple[bytes, bytes | None, int | None]  # key, value (None: a tombstone), writer epoch (None: unstamped)


class LogReader:
    """The changelog partition as the broker holds it: every record, by offset (the test appends late writes)."""

    def __init__(self) -> None:
        self.records: list[ChangelogRecord] = []
        self.reads: list[tuple[int, int]] = []

    def append(self, key: bytes, value: bytes | None, epoch: int | None, ours: bool = False) -> int:
        offset = len(self.records)
        headers = [] if epoch is None else WriteStamp(epoch, offset).headers()
        if ours:  # written by this process's ChangelogTable
            headers.append((FENCER_HEADER, THIS_PROCESS))
        self.records.append(ChangelogRecord(offset, key, value, headers))
        return offset

    async def read(self, topic: str, partition: int, start: int, end: int) -> Sequence[ChangelogRecord]:
        self.reads.append((start, end))
        return [record for record in self.records if start <= record.offset < end]


def fence(epoch: int) -> Entry:
    return FENCE_KEY, encode_fence(epoch), epoch


class Replica:
    """A replica's streams table over a changelog `LogReader`: restored from it, writing to it through a producer."""

    def __init__(self, datadir: Path, log: LogReader) -> None:
        app, self.producer = changelog_app(datadir, GuardedTable)
        guard = StoreGuard(fenced_value=encode_fenced)
        self.table = app.Table("streams", key_type=bytes, value_type=bytes, partitions=1, options={GUARD_OPTION: guard})
        self.topic = self.table.changelog_topic.get_topic_name()
        self.io = ChangelogTable(self.table, log)
        self.log, self.app = log, app
        self.db = self.table.data._db_for_partition(0)

    def restore(self) -> None:
        """Restore the changelog as it is now (faust's recovery up to the ends it read at the assignment)."""
        events = []
        for record in self.log.records:
            message = Message(self.topic, 0, record.offset, time.time(), 0, record.headers, record.key,
                              record.value, None)  # fmt: skip
            events.append(Event(self.app, record.key, record.value, record.headers, message))
        self.table.data.apply_changelog_batch(events, None, None)

    async def take_over(self, epoch: int) -> tuple[TakeOver, int]:
        """Fence under ``epoch`` and catch up; returns the take-over's mark and the newest fence found."""
        mark = await self.fence(epoch)
        return mark, await self.io.catch_up(0, mark)

    async def fence(self, epoch: int, revoke: bool = False) -> TakeOver:
        """Write the fence (the broker appends it to the log); ``revoke``: the partition is revoked meanwhile."""
        sent = asyncio.ensure_future(self.io.fence(0, FENCE_KEY, encode_fence(epoch), WriteStamp(epoch)))
        await asyncio.sleep(0)
        if revoke:
            self.table.data._next_incarnation(0)
        (fut,) = self.producer.waiting()
        assert dict(fut.message.headers)[FENCER_HEADER] == THIS_PROCESS
        self.producer.offsets[self.topic] = self.log.append(FENCE_KEY, encode_fence(epoch), epoch, ours=True)
        self.producer.ack(fut)
        return await sent

    def offset(self) -> int | None:
        found: int | None = self.table.data.persisted_offset(faust.types.TP(self.topic, 0))
        return found


def restored(datadir: Path, entries: list[Entry]) -> tuple[LogReader, Replica]:
    """A changelog holding ``entries``, and a replica that has restored it."""
    log = LogReader()
    for entry in entries:
        log.append(*entry)
    replica = Replica(datadir, log)
    replica.restore()
    return log, replica


async def test_a_header_the_last_owner_stored_after_the_restore_is_read_back_before_the_fence_counts(
    tmp_path: Path,
) -> None:
    log, replica = restored(tmp_path, [fence(1), (b"s", b"header 1", 1)])  # the new owner restored up to here ...
    late = log.append(b"s", b"header 2", 1)  # ... while the old owner went on, then closed the partition
    mark, found = await replica.take_over(2)
    assert (mark.start, mark.end, decode_fence(mark.fence_before)) == (late, late + 1, 1)
    assert log.reads == [(late, late + 1)]
    assert replica.io.get(0, b"s") == b"header 2" and found == 0  # it goes on from the newest header
    assert decode_fence(replica.db.get(FENCE_KEY)) == 2 and replica.offset() == late + 1  # fence and offset


async def test_the_offset_is_held_below_the_gap_until_it_is_caught_up(tmp_path: Path) -> None:
    """A replica killed between the fence's acknowledgement and the catch-up restarts from before the gap."""
    log, replica = restored(tmp_path, [fence(1)])
    log.append(b"s", b"header 2", 1)
    mark = await replica.fence(2)
    assert replica.table.data.hold(0) == TakeOver(1, -1, encode_fence(1))  # a retried fence keeps the first mark
    # neither the fence nor its offset is in the files yet: a restart now restores the range as it is
    assert replica.offset() == 0 and decode_fence(replica.db.get(FENCE_KEY)) == 1
    replica.table.data._next_incarnation(0)  # the replica stops; the partition is restored again
    replica.restore()
    assert replica.db.get(b"s") == b"header 2" and decode_fence(replica.db.get(FENCE_KEY)) == 2
    with pytest.raises(Fenced):  # that take-over was abandoned with its incarnation
        await replica.io.catch_up(0, mark)
    assert replica.offset() == 2


async def test_after_the_catch_up_the_files_hold_the_fence_and_its_offset(tmp_path: Path) -> None:
    log, replica = restored(tmp_path, [fence(1)])
    log.append(b"s", b"header 2", 1)
    await replica.take_over(2)
    replica.table.data._next_incarnation(0)
    applied = m.CHANGELOG_RECORDS_RESTORED.labels(role="active")._value.get()
    replica.restore()  # nothing after the fence: nothing is restored again
    assert m.CHANGELOG_RECORDS_RESTORED.labels(role="active")._value.get() == applied
    assert (replica.db.get(b"s"), decode_fence(replica.db.get(FENCE_KEY)), replica.offset()) == (b"header 2", 2, 2)


async def test_late_writes_in_the_gap_are_decided_as_a_restore_decides_them(tmp_path: Path) -> None:
    """A write of an owner replaced before the last one is still fenced; a tombstone deletes."""
    log, replica = restored(tmp_path, [fence(1), (b"a", b"a 1", 1), (b"gone", b"g 1", 1), fence(2), (b"b", b"b 2", 2)])
    fenced = m.FENCED_WRITES.labels(where="restore")._value.get()
    log.append(b"a", b"a 1, late", 1)  # owner 1 after owner 2's fence: not current
    log.append(b"c", b"c 1, late", 1)  # the same, where the key has nothing: marked lost
    log.append(b"b", b"b 2, later", 2)
    log.append(b"gone", None, 2)
    _, found = await replica.take_over(3)
    assert replica.io.get(0, b"a") == b"a 1" and replica.io.get(0, b"b") == b"b 2, later"
    assert replica.io.get(0, b"gone") is None
    with pytest.raises(StateCorrupt, match="replaced owner"):
        decode_stream_record(bytes(replica.db.get(b"c")))
    assert m.FENCED_WRITES.labels(where="restore")._value.get() == fenced + 2
    assert found == 0


async def test_a_fence_found_in_the_gap_is_reported_and_never_stored_over_the_owners_own(tmp_path: Path) -> None:
    log, replica = restored(tmp_path, [fence(1)])
    log.append(*fence(2))  # another replica took the partition over meanwhile, with the same epoch
    log.append(b"s", b"header of the other", 2)
    _, found = await replica.take_over(2)
    assert found == 2
    assert replica.io.get(0, b"s") == b"header of the other"
    assert decode_fence(replica.db.get(FENCE_KEY)) == 2


async def test_no_gap_reads_nothing(tmp_path: Path) -> None:
    log, replica = restored(tmp_path, [fence(1)])
    mark, found = await replica.take_over(2)
    assert not mark.gap and log.reads == [] and found == 0 and replica.offset() == 1


async def test_a_take_over_of_an_earlier_incarnation_catches_up_nothing(tmp_path: Path) -> None:
    """Revoked and assigned again during the take-over: the new incarnation's own take-over catches up."""
    log, replica = restored(tmp_path, [fence(1)])
    log.append(b"s", b"late", 1)
    mark = await replica.fence(2, revoke=True)  # revoked while the fence was in flight
    with pytest.raises(Fenced):
        await replica.io.catch_up(0, mark)
    assert replica.db.get(b"s") is None and replica.offset() == 0


class RacedTable(MemoryTable):
    """A table whose first catch-up finds another replica's fence of ``epoch``."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.raced = epoch

    async def catch_up(self, partition: int, take_over: TakeOver) -> int:
        found, self.raced = self.raced, 0
        return found


async def test_a_take_over_raced_by_another_replica_is_repeated_above_its_epoch() -> None:
    store = StreamStore(RacedTable(4), MemoryTable(), LiveConfig(), OwnerEpochs())
    worker = Worker(store)
    retries = m.TAKE_OVER_RETRIES._value.get()
    await worker.processor.claim(worker.part)
    assert worker.part.epoch == 5 and decode_fence(store.streams.get(0, FENCE_KEY)) == 5
    assert m.TAKE_OVER_RETRIES._value.get() == retries + 1


async def test_a_retried_take_over_writes_and_reads_only_what_failed() -> None:
    """One changelog refused its fence: the retry fences that one alone (a second fence would look like a race)."""
    streams, audio = MemoryTable(), MemoryTable()
    store = StreamStore(streams, audio, LiveConfig(), OwnerEpochs())
    audio.fail_next = 1
    write = store.fence(0, 1)
    with pytest.raises(ConnectionError):
        await write()
    assert (streams.writes, audio.writes) == (1, 1)
    await write()
    assert (streams.writes, audio.writes) == (1, 2)
    assert store.next_epoch(0) == 2


async def test_a_fence_of_this_process_in_the_gap_is_no_race(tmp_path: Path) -> None:
    """A fence try that timed out but landed, then the retry's: the take-over is not repeated for it."""
    log, replica = restored(tmp_path, [fence(1)])
    log.append(FENCE_KEY, encode_fence(2), 2, ours=True)
    _, found = await replica.take_over(2)
    assert found == 0 and decode_fence(replica.db.get(FENCE_KEY)) == 2


async def test_a_take_over_with_a_write_that_may_have_landed_unseen_keeps_the_files_where_it_began(
    tmp_path: Path,
) -> None:
    log, replica = restored(tmp_path, [fence(1)])
    log.append(b"s", b"header 2", 1)
    first = asyncio.ensure_future(replica.io.fence(0, FENCE_KEY, encode_fence(2), WriteStamp(2)))
    await asyncio.sleep(0)
    (fut,) = replica.producer.waiting()
    replica.producer.refuse(fut, TimeoutError("no answer"))  # it may have landed
    with pytest.raises(TimeoutError):
        await first
    log.append(FENCE_KEY, encode_fence(2), 2, ours=True)  # it did
    mark = await replica.fence(2)  # the retry
    assert mark.start == 1 and await replica.io.catch_up(0, mark) == 0
    assert replica.io.get(0, b"s") == b"header 2"  # read back all the same
    assert replica.offset() == 0 and decode_fence(replica.db.get(FENCE_KEY)) == 1  # a restart restores the range
    assert replica.table.data.hold(0) == TakeOver(1, -1, encode_fence(1))  # held until assigned again


class SlowTable(MemoryTable):
    """A table whose catch-up takes a while (or fails at once, with ``fail``)."""

    def __init__(self, fail: bool) -> None:
        super().__init__()
        self.fail, self.finished = fail, False

    async def catch_up(self, partition: int, take_over: TakeOver) -> int:
        if self.fail:
            raise ConnectionError("changelog unreadable")
        await asyncio.sleep(0.05)
        self.finished = True
        return 0


async def test_a_failed_catch_up_leaves_no_read_running_behind_it() -> None:
    """The other table's read is awaited before the failure is raised: a revocation then cancels nothing unseen."""
    streams, audio = SlowTable(fail=False), SlowTable(fail=True)
    store = StreamStore(streams, audio, LiveConfig(), OwnerEpochs())
    marks = await store.fence(0, 1)()
    read = store.catch_up(0, marks)
    with pytest.raises(ConnectionError):
        await read()
    assert streams.finished
    audio.fail = False
    assert await read() == 0 and audio.finished
