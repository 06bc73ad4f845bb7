"""The tables' RocksDB files: written only with what the changelog has acknowledged.

faust's RocksDB store keeps, beside the records, the changelog offset it has applied; a replica that
restarts on the same volume reads the changelog from there on. That is only right while the local
records are exactly the changelog up to that offset, so `GuardedStore` keeps it that way:

* A record is written locally when the changelog acknowledges it, together with the offset it got, in
  one RocksDB write batch (`apply_acked`): local state never runs ahead of the changelog, and never
  has a record whose offset it does not cover. Until then readers see the write through
  `ChangelogTable` (`stream_app.worker.tables`), which keeps it in memory.
* A write the changelog refused may still have landed (a timeout): from then on the partition's offset
  is not moved any more (`note_failed_write`), so a restart replays the changelog from before it.
* An acknowledgement that arrives after the partition was revoked, or kept by this replica in the
  other role (an active copy become a standby one, or the reverse), is not applied (the partition's
  *incarnation* changed): whoever recovers it next reads it from the changelog. Applied, it would move
  the offset past the new owner's records that this replica's standby reader has not read yet. A
  partition kept through the rebalance stops moving its offset from then on, as after a failed write,
  so the files never claim a record they lack.

* Restoring from the changelog skips a replaced owner's late writes (`stream_app.worker.fencing`), and
  files last in step with the changelog longer ago than its tombstones last are restored afresh.

This is faust-streaming's own store class with those hooks added (selected per table by
`GuardedTable`); pyproject pins the faust version it was read from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust
import rocksdict
from faust.stores.rocksdb import Store as FaustRocksStore
from faust.types import TP

from stream_app.metrics import worker_metrics as m
from stream_app.worker.catch_up import ChangelogRecord, TakeOver
from stream_app.worker.exceptions import Fenced
from stream_app.worker.fencing import FENCE_KEY, decode_fence, restore_decision
from stream_app.worker.tables import INTERNAL_PREFIX, stamp_from_headers, written_by_this_process

log = logging.getLogger(__name__)

GUARD_OPTION = "stream_app_guard"  # the key of `StoreGuard` in a table's ``options``
SYNCED_KEY = INTERNAL_PREFIX + b"synced-ms"  # local only: when this file last matched the changelog


@dataclass(frozen=True)
class StoreGuard:
    """How a table's local files are guarded (passed in the table's options)."""

    # files last in step with the changelog longer ago than this (s) are dropped when opened: deletions
    # made meanwhile may have had their tombstones compacted away (None: files are always trusted)
    stale_after: float | None = None
    # what a restore leaves on a key whose only record is a replaced owner's late write, given that
    # write's epoch and the fence before it (None: nothing)
    fenced_value: Callable[[int, int], bytes] | None = None


class GuardedStore(FaustRocksStore):
    """faust's RocksDB store, written only with acknowledged changelog records (see the module docstring)."""

    def __init__(self, url: Any, app: Any, table: Any, *, options: Any = None, **kwargs: Any) -> None:
        options = dict(options or {})  # faust pops its own keys from the dict it is given
        self.guard: StoreGuard = options.pop(GUARD_OPTION, None) or StoreGuard()
        super().__init__(url, app, table, options=options, **kwargs)
        self._incarnations: dict[int, int] = {}
        self._unsure: set[int] = set()  # partitions with a write that may have landed unacknowledged
        self._active: set[int] = set()  # the partitions this replica's copy was the active one of
        self._held: dict[int, TakeOver] = {}  # partitions being taken over: where local state stopped

    # ---- the live owner's writes ---------------------------------------------------------------------

    def incarnation(self, partition: int) -> int:
        """Return a number that changes whenever the partition is assigned or revoked."""
        return self._incarnations.get(partition, 0)

    def apply_acked(
        self, partition: int, incarnation: int, key: bytes, value: bytes | None, changelog_offset: int
    ) -> bool:
        """Write one acknowledged changelog record locally, with its offset; False if it is not ours to apply."""
        if incarnation != self.incarnation(partition):
            # revoked since it was sent: the next recovery reads it from the changelog. If the partition
            # came back (kept through a rebalance), this incarnation's later acknowledgements must not move
            # the offset past the record, or the files would claim it and a restart would never read it.
            self._unsure.add(partition)
            return False
        if key == FENCE_KEY and partition in self._held:
            return True  # a take-over's fence: `catch_up` stores it with the records before it
        db = self._db_for_partition(partition)
        batch = rocksdict.WriteBatch(raw_mode=True)
        if value is None:
            batch.delete(key)
        else:
            batch.put(key, value)
        # an unsure partition's files are in step only up to their offset; a held one's up to its take-over
        if partition not in self._unsure and partition not in self._held:
            batch.put(self.offset_key, str(changelog_offset).encode())
            batch.put(SYNCED_KEY, _now_ms())
        db.write(batch)
        return True

    def note_failed_write(self, partition: int, incarnation: int) -> None:
        """Note a failed changelog write: it may have landed anyway, so the partition's offset stays put.

        Also for a write of an earlier incarnation: the partition may have been kept through the
        rebalance, and the write may have landed after its recovery read the changelog.
        """
        if partition not in self._unsure:
            log.warning(
                "%s[%d]: a changelog write failed; the local offset stays put so a restart replays from before it",
                self.table_name,
                partition,
            )
            self._unsure.add(partition)

    # ---- opening: stale files are restored afresh ------------------------------------------------------

    def _open_for_partition(self, partition: int) -> Any:
        db = super()._open_for_partition(partition)
        reason = self._staleness(db)
        if reason is None:
            return db
        log.warning(
            "%s[%d]: local state %s; it may lack deletions whose tombstones were compacted away, so it is "
            "dropped and restored from the changelog",
            self.table_name,
            partition,
            reason,
        )
        db.close()
        del db
        rocksdict.Rdict.destroy(str(self.partition_path(partition)))
        m.LOCAL_STATE_DROPS.inc()
        return super()._open_for_partition(partition)

    def _staleness(self, db: Any) -> str | None:
        """Why the opened files cannot be trusted to resume from their offset, or None."""
        if self.guard.stale_after is None or next(iter(db.keys()), None) is None:
            return None  # unguarded, or empty: nothing to resume from
        synced = db.get(SYNCED_KEY)
        if synced is None:
            return "carries no time of its last sync (an earlier release wrote it)"
        age = time.time() - int(bytes(synced)) / 1000
        if age > self.guard.stale_after:
            return f"was last in step with the changelog {age / 3600:.1f} h ago"
        return None

    def apply_changelog_batch(self, batch: Any, to_key: Any, to_value: Any) -> None:
        """Apply restored changelog records, in order, except a replaced owner's late writes.

        As faust does, each partition's records and its new offset go in one write batch; the time the
        files are in step is noted with them. A record whose owner epoch lies below the newest fence
        before it never replaces a value (`stream_app.worker.fencing.restore_decision`).

        A record at or below the files' offset is already in them: a partition that stayed with this
        replica through a rebalance is recovered again while its owner goes on writing, and the
        acknowledged writes applied meanwhile (`apply_acked`) must not be replaced by older records.
        Likewise a record at or below one this batch applied: faust's buffer can hold records fetched
        before a rebalance's seek back to the files' offset, then the same records fetched again, and
        applying the second copy after the first would put older values back over newer ones.
        """
        changes: dict[int, dict[bytes, bytes | None]] = {}
        offsets: dict[Any, int] = {}
        applied: dict[Any, int] = {}
        standbys = self._standby_tps()
        for event in batch:
            message = event.message
            partition, key, value = message.partition, bytes(message.key), message.value
            if message.tp not in applied:
                applied[message.tp] = _or_minus_one(self.persisted_offset(message.tp))
            if message.offset <= applied[message.tp]:
                continue  # in the files already, or a copy this batch applied (fetched again after a seek)
            applied[message.tp] = offsets[message.tp] = message.offset
            m.CHANGELOG_RECORDS_RESTORED.labels(role="standby" if message.tp in standbys else "active").inc()
            pending = changes.setdefault(partition, {})
            fence = decode_fence(pending[FENCE_KEY] if FENCE_KEY in pending else self._local_fence(partition))
            value = None if value is None else bytes(value)
            self._restore(partition, pending, fence, key, value, message.headers, message.offset)
        for partition, pending in changes.items():
            self._db_for_partition(partition).write(_write_batch(pending))
        for tp, offset in offsets.items():
            if offset > _or_minus_one(self.persisted_offset(tp)):  # an acknowledged write may be newer
                self.set_persisted_offset(tp, offset)

    def _restore(
        self,
        partition: int,
        pending: dict[bytes, bytes | None],
        fence: int,
        key: bytes,
        value: bytes | None,
        headers: Any,
        offset: int,
    ) -> None:
        """Decide one restored record (``fence`` being the newest before it) into ``pending``."""
        current = pending[key] if key in pending else self._db_for_partition(partition).get(key)
        stamp = stamp_from_headers(headers)
        guard = self.guard.fenced_value
        marker = None if stamp is None or guard is None else guard(stamp.epoch, fence)
        decision = restore_decision(key, value, stamp, fence, has_value=current is not None, fenced_value=marker)
        if decision.fenced:
            m.FENCED_WRITES.labels(where="restore").inc()
            log.warning(
                "%s[%d]@%d: a write of replaced owner epoch %s after the fence of epoch %d is not restored",
                self.table_name,
                partition,
                offset,
                None if stamp is None else stamp.epoch,
                fence,
            )
        if decision.write:
            pending[key] = decision.value

    # ---- a take-over: what the last owner wrote between the restore and the fence (catch_up.py) -------

    def hold(self, partition: int) -> TakeOver:
        """Start (or go on with) this incarnation's take-over of ``partition``: where local state stops.

        From now on until `catch_up`, the files keep their offset and their fence: the fence's
        acknowledgement is not applied (a restore of the files would judge the records before it by
        it), so a replica stopped in between restores the range from the changelog. Asked again (the
        fence write retried), the same mark is returned.
        """
        held = self._held.get(partition)
        if held is None:
            topic = self.table.changelog_topic.get_topic_name()
            start = _or_minus_one(self.persisted_offset(TP(topic, partition))) + 1
            held = self._held[partition] = TakeOver(start, -1, self._local_fence(partition))
        return held

    def catch_up(self, partition: int, records: Sequence[ChangelogRecord], take_over: TakeOver) -> int:
        """Apply the records between local state's end and this owner's fence; returns the newest fence among them.

        Records are decided as a restore decides them, against the fences before them; this owner's
        fence is stored after them, with the fence's offset unless a write may have landed unseen.

        Raises:
            Fenced: the partition was revoked since the take-over began (its next take-over catches up).
        """
        held = self._held.get(partition)
        if held is None or (held.start, held.fence_before) != (take_over.start, take_over.fence_before):
            raise Fenced(f"{self.table_name}[{partition}]: revoked while it was being taken over")
        pending: dict[bytes, bytes | None] = {}
        fence_value, newest = take_over.fence_before, 0
        for record in records:
            if not take_over.start <= record.offset < take_over.end:
                continue
            m.CHANGELOG_RECORDS_RESTORED.labels(role="catch_up").inc()
            if record.key == FENCE_KEY:
                fence_value = record.value
                if not written_by_this_process(record.headers):  # another replica's take-over
                    newest = max(newest, decode_fence(record.value))
                continue
            fence = decode_fence(fence_value)
            self._restore(partition, pending, fence, record.key, record.value, record.headers, record.offset)
        # a write failed and may have landed unseen (unsure): the files stay in step up to where the
        # take-over began, fence and offset alike, so a restart restores the range again, and the
        # partition stays held (its offset put) until it is assigned again
        if partition not in self._unsure:
            pending[FENCE_KEY] = take_over.fence
            pending[self.offset_key] = str(take_over.end).encode()
            del self._held[partition]
        self._db_for_partition(partition).write(_write_batch(pending))
        return newest

    def _standby_tps(self) -> Any:
        return self._assigned("standbys") or set()

    def _local_fence(self, partition: int) -> bytes | None:
        value = self._db_for_partition(partition).get(FENCE_KEY)
        return None if value is None else bytes(value)

    async def on_recovery_completed(self, active_tps: Any, standby_tps: Any) -> None:
        """Note that the restored partitions' files are in step with their changelogs now."""
        await super().on_recovery_completed(active_tps, standby_tps)
        for tp in active_tps:
            if tp.topic in self.table.changelog_topic.topics:
                self._db_for_partition(tp.partition).put(SYNCED_KEY, _now_ms())

    # ---- assignment ----------------------------------------------------------------------------------

    async def on_rebalance(self, assigned: Any, revoked: Any, newly_assigned: Any, generation_id: int = 0) -> None:
        """Renew the incarnation of each partition kept in the other role, then rebalance as faust does.

        faust revokes and assigns only partitions that leave or join this replica; a changelog
        partition whose copy here turned from active to standby stays assigned, so its late
        acknowledgements would otherwise still count as this copy's own.
        """
        active = self._active_partitions()
        if active is not None:
            topics = self.table.changelog_topic.topics
            moved = {tp for tp in revoked | newly_assigned if tp.topic in topics}  # renewed by faust's calls
            for tp in assigned:
                turned = (tp.partition in active) != (tp.partition in self._active)
                if tp.topic in topics and tp not in moved and turned:
                    self._next_incarnation(tp.partition)
            self._active = active
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)

    def _active_partitions(self) -> set[int] | None:
        """Return the partitions whose active copy is this replica's in the assignment applied (None: unknown)."""
        actives = self._assigned("actives")
        if actives is None:
            return None
        return {tp.partition for tp in actives if tp.topic in self.table.changelog_topic.topics}

    def _assigned(self, role: str) -> Any:
        """Return faust's assigned ``actives`` or ``standbys`` (topic partitions), or None before any assignment."""
        try:
            return getattr(self.app.assignor, f"assigned_{role}")()
        except Exception:  # no assignment yet
            return None

    def revoke_partitions(self, table: Any, tps: Any) -> None:
        """Forget revoked partitions' in-flight writes (a new incarnation); note when they were last in sync."""
        for tp in tps:
            if tp.topic in table.changelog_topic.topics:
                self._next_incarnation(tp.partition)
                db = self._dbs.get(tp.partition)
                if db is not None:
                    db.put(SYNCED_KEY, _now_ms())
        super().revoke_partitions(table, tps)

    async def assign_partitions(self, table: Any, tps: Any, generation_id: int = 0) -> None:
        """Start a new incarnation of each newly assigned partition, then open it as faust does."""
        for tp in tps:
            if tp.topic in table.changelog_topic.topics:
                self._next_incarnation(tp.partition)
        await super().assign_partitions(table, tps, generation_id)

    def _next_incarnation(self, partition: int) -> None:
        self._incarnations[partition] = self.incarnation(partition) + 1
        self._unsure.discard(partition)  # recovery reads the changelog from the last offset applied
        self._held.pop(partition, None)  # a take-over under way is the old incarnation's


class GuardedTable(faust.Table):  # type: ignore[type-arg]
    """A faust table whose store is a `GuardedStore` (``App(..., Table=GuardedTable)``)."""

    def _new_store_by_url(self, url: Any) -> GuardedStore:
        return GuardedStore(
            url,
            self.app,
            self,
            table_name=self.name,
            key_type=self.key_type,
            key_serializer=self.key_serializer,
            value_serializer=self.value_serializer,
            value_type=self.value_type,
            loop=self.loop,
            options=self.options,
        )


def _write_batch(changes: dict[bytes, bytes | None]) -> Any:
    """One RocksDB write batch of ``changes`` (None: a deletion), noting the files in step now."""
    write = rocksdict.WriteBatch(raw_mode=True)
    for key, value in changes.items():
        if value is None:
            write.delete(key)
        else:
            write.put(key, value)
    write.put(SYNCED_KEY, _now_ms())
    return write


def _or_minus_one(offset: int | None) -> int:
    return -1 if offset is None else offset


def _now_ms() -> bytes:
    return str(int(time.time() * 1000)).encode()
