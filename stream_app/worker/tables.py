"""The worker's faust tables, addressed by partition, with changelog acknowledgements to await.

faust's ``table[key] = value`` routes by the record being processed and drops the changelog send's
future, so a failed changelog write is only logged (and after a rebalance another replica restores
stale state). The worker writes from tasks that outlive the record that started them and must know
when its state is durable, so it goes one level down: the changelog topic's ``send_soon`` with the
partition named, keeping the future, and the partition's RocksDB file.

The local file is written only once the changelog has acknowledged a record (`GuardedStore.apply_acked`,
with the record's offset, in one batch), so a replica restarted on the same volume never holds state
the changelog never got. Between the send and the acknowledgement the write is kept in memory here and
every read sees it, as if it were stored (the worker reads a stream's records back when it reloads one);
a write that fails is forgotten, and reads see the stored value again. The RocksDB access
(``_db_for_partition``) is faust-streaming's own internals; pyproject pins the version it was read from.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from faust.stores.rocksdb import Store as FaustRocksStore

from stream_app.worker.catch_up import ChangelogReader, ChangelogRecord, TakeOver

# faust's RocksDB store keeps the changelog offset it has applied under this key, beside our records
FAUST_OFFSET_KEY: bytes = FaustRocksStore.offset_key
# our own bookkeeping keys start with a NUL byte: never a stream id (printable), page or held chunk key
INTERNAL_PREFIX = b"\x00stream-app:"


def is_internal(key: bytes) -> bool:
    """Whether ``key`` is bookkeeping (faust's or ours) rather than a record of the worker's state."""
    return key == FAUST_OFFSET_KEY or key.startswith(INTERNAL_PREFIX)


EPOCH_HEADER = "stream-app-epoch"
INPUT_OFFSET_HEADER = "stream-app-input-offset"
# a fence record's header naming the process that wrote it: a take-over's catch-up tells its own
# fences (a retried write that landed twice, an abandoned take-over of this process) from another's
FENCER_HEADER = "stream-app-fencer"
THIS_PROCESS = uuid.uuid4().hex.encode()


@dataclass(frozen=True)
class WriteStamp:
    """Who wrote a state record and for which input: carried by every changelog record as headers.

    ``epoch`` is the writer's owner epoch of the partition (it grows with every new owner, see
    `stream_app.worker.fencing`), so a restore can tell a late write of a replaced owner; ``input_offset``
    is the input offset the written state reflects (-1 when none applies), as quix-streams keeps it.
    """

    epoch: int
    input_offset: int = -1

    def headers(self) -> list[tuple[str, bytes]]:
        """Return the changelog record headers that carry the stamp."""
        return [(EPOCH_HEADER, str(self.epoch).encode()), (INPUT_OFFSET_HEADER, str(self.input_offset).encode())]


def stamp_from_headers(headers: Any) -> WriteStamp | None:
    """Read a changelog record's stamp (None for records of an earlier release, or of other writers)."""
    found = _header_map(headers)
    epoch = found.get(EPOCH_HEADER)
    try:
        offset = found.get(INPUT_OFFSET_HEADER)
        return None if epoch is None else WriteStamp(int(epoch), -1 if offset is None else int(offset))
    except ValueError:
        return None


def written_by_this_process(headers: Any) -> bool:
    """Whether a fence record with these headers was written by this process."""
    return _header_map(headers).get(FENCER_HEADER) == THIS_PROCESS


def _header_map(headers: Any) -> dict[str, Any]:
    """Return a changelog record's headers by name (faust: a mapping or pairs; confluent-kafka: pairs or None)."""
    return dict(headers.items() if isinstance(headers, dict) else headers or ())


class TableIO(Protocol):
    """A key-value table split by partition, whose writes return the changelog's acknowledgement."""

    def get(self, partition: int, key: bytes) -> bytes | None:
        """Read a key of one partition."""
        ...

    def put(self, partition: int, key: bytes, value: bytes, stamp: WriteStamp | None = None) -> Awaitable[object]:
        """Write (readable at once); the result completes when the changelog has the record."""
        ...

    def delete(self, partition: int, key: bytes, stamp: WriteStamp | None = None) -> Awaitable[object]:
        """Delete (at once for readers); the result completes when the changelog has the tombstone."""
        ...

    def keys(self, partition: int) -> Iterator[bytes]:
        """Iterate one partition's keys (bookkeeping keys such as faust's offset are not listed)."""
        ...

    def fence(self, partition: int, key: bytes, value: bytes, stamp: WriteStamp) -> Awaitable[TakeOver]:
        """Write a take-over's fence record; the result says where it landed and where local state stopped."""
        ...

    def catch_up(self, partition: int, take_over: TakeOver) -> Awaitable[int]:
        """Apply what the changelog holds between local state and the fence; returns the newest fence among it."""
        ...


class LocalFiles(Protocol):
    """What `ChangelogTable` needs of a table's store (`stream_app.worker.local_store.GuardedStore`)."""

    def _db_for_partition(self, partition: int) -> Any: ...

    def incarnation(self, partition: int) -> int:
        """Return a number that changes whenever the partition is assigned or revoked."""
        ...

    def apply_acked(
        self, partition: int, incarnation: int, key: bytes, value: bytes | None, changelog_offset: int
    ) -> bool:
        """Write one acknowledged changelog record locally, with its offset."""
        ...

    def note_failed_write(self, partition: int, incarnation: int) -> None:
        """Note a failed changelog write (it may have landed)."""
        ...

    def hold(self, partition: int) -> TakeOver:
        """Start a take-over: where local state stops (its offset is held there until `catch_up`)."""
        ...

    def catch_up(self, partition: int, records: Sequence[ChangelogRecord], take_over: TakeOver) -> int:
        """Apply the records between local state and the fence; returns the newest fence among them."""
        ...


@dataclass(frozen=True)
class _Pending:
    """A write sent to the changelog and not yet acknowledged or failed."""

    incarnation: int
    value: bytes | None  # None: a deletion


class ChangelogTable:
    """`TableIO` over one faust RocksDB table (rocksdict driver, raw bytes) with a `GuardedStore`."""

    def __init__(self, table: Any, reader: ChangelogReader | None = None) -> None:
        self._table = table
        self._reader = reader  # None: a take-over never reads its changelog back (a table used alone)
        self._order = itertools.count()
        self._pending: dict[tuple[int, bytes], dict[int, _Pending]] = {}  # (partition, key) -> write no. -> write
        self._applied: dict[tuple[int, bytes], int] = {}  # the newest write applied locally, per key in flight

    @property
    def name(self) -> str:
        """The table's name."""
        return str(self._table.name)

    @property
    def _store(self) -> LocalFiles:
        store: LocalFiles = self._table.data
        return store

    def _db(self, partition: int) -> Any:
        return self._store._db_for_partition(partition)

    def get(self, partition: int, key: bytes) -> bytes | None:
        """Read a key of one partition: the newest write in flight, else the stored value."""
        pending = self._newest_pending(partition, key)
        if pending is not None:
            return pending.value
        value = self._db(partition).get(key)
        return None if value is None else bytes(value)

    def put(self, partition: int, key: bytes, value: bytes, stamp: WriteStamp | None = None) -> Awaitable[object]:
        """Send the record to the changelog partition of the same number; stored locally once acknowledged."""
        return self._send(partition, key, value, stamp)

    def delete(self, partition: int, key: bytes, stamp: WriteStamp | None = None) -> Awaitable[object]:
        """Send a tombstone; deleted locally once acknowledged."""
        return self._send(partition, key, None, stamp)

    def keys(self, partition: int) -> Iterator[bytes]:
        """Iterate one partition's keys (writes in flight included), leaving out faust's offset and our bookkeeping."""
        pending = {
            key: newest.value
            for (p, key) in list(self._pending)
            if p == partition and (newest := self._newest_pending(partition, key)) is not None
        }
        for raw in self._db(partition).keys():  # noqa: SIM118 (rocksdict iterates items)
            key = bytes(raw)
            if key not in pending and not is_internal(key):
                yield key
        for key, value in pending.items():
            if value is not None and not is_internal(key):
                yield key

    async def fence(self, partition: int, key: bytes, value: bytes, stamp: WriteStamp) -> TakeOver:
        """Write a take-over's fence (`stream_app.worker.catch_up`): local state's end is held until `catch_up`."""
        held = self._store.hold(partition)
        sent = await self._send(partition, key, value, stamp, [(FENCER_HEADER, THIS_PROCESS)])
        offset = getattr(sent, "offset", None)
        if not isinstance(offset, int):
            raise TypeError(f"{self.name}[{partition}]: the fence's acknowledgement carries no offset ({sent!r})")
        return replace(held, end=offset, fence=value)

    async def catch_up(self, partition: int, take_over: TakeOver) -> int:
        """Read the changelog between local state's end and the fence back, and apply it.

        Raises:
            ConnectionError: the changelog could not be read (retry it).
        """
        records: Sequence[ChangelogRecord] = ()
        if take_over.gap:
            if self._reader is None:  # not applied: the offset stays held, so a restart reads them
                return 0
            topic = self._table.changelog_topic.get_topic_name()
            records = await self._reader.read(topic, partition, take_over.start, take_over.end)
        return self._store.catch_up(partition, records, take_over)

    def _send(
        self,
        partition: int,
        key: bytes,
        value: bytes | None,
        stamp: WriteStamp | None,
        extra_headers: list[tuple[str, bytes]] | None = None,
    ) -> Awaitable[object]:
        store, number = self._store, next(self._order)
        incarnation = store.incarnation(partition)
        slot = (partition, key)
        self._pending.setdefault(slot, {})[number] = _Pending(incarnation, value)

        def acknowledged(sent: Any) -> None:  # faust calls it as the broker acknowledges, before any waiter runs
            if number > self._applied.get(slot, -1):  # never an older write over a newer one of the same key
                self._applied[slot] = number
                store.apply_acked(partition, incarnation, key, value, sent.result().offset)

        future: asyncio.Future[object] = self._table.changelog_topic.send_soon(
            key=key,
            value=value,
            partition=partition,
            headers=[*(stamp.headers() if stamp else []), *(extra_headers or [])] or None,
            key_serializer="raw",
            value_serializer="raw",
            callback=acknowledged,
            eager_partitioning=True,
        )
        outcome: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda done: self._settled(slot, number, incarnation, done, outcome))
        return outcome  # completes once the write has left the in-flight view (stored or forgotten)

    def _settled(
        self,
        slot: tuple[int, bytes],
        number: int,
        incarnation: int,
        done: asyncio.Future[object],
        outcome: asyncio.Future[object],
    ) -> None:
        writes = self._pending.get(slot, {})
        writes.pop(number, None)
        if not writes:
            self._pending.pop(slot, None)
            self._applied.pop(slot, None)
        failed = done.cancelled() or done.exception() is not None
        if failed:
            self._store.note_failed_write(slot[0], incarnation)
        if outcome.done():
            return
        if done.cancelled():
            outcome.cancel()
        elif failed:
            outcome.set_exception(done.exception())  # type: ignore[arg-type]
        else:
            outcome.set_result(done.result())

    def _newest_pending(self, partition: int, key: bytes) -> _Pending | None:
        writes = self._pending.get((partition, key))
        if not writes:
            return None
        incarnation = self._store.incarnation(partition)
        current = [number for number, write in writes.items() if write.incarnation == incarnation]
        return writes[max(current)] if current else None  # a revoked partition's writes are not its state now
