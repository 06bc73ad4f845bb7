"""What the worker does with each input record, and with its streams between records.

`handle` runs in the partition's reader for every record, in offset order, and never waits for
inference: it decodes the chunk (bad input goes to the dead-letter topic), applies it to its stream's
buffer in memory, writes whole audio pages, and starts a step (`stream_app.worker.steps`) when
windows are ready and the stream has none running. `tick` runs every fraction of a second: it stores
streams with changes (so their records are acknowledged), ends streams the partition has moved
``idle_timeout`` past (by the records' own timestamps, see `PartitionState`: a stalled reader ends
nothing, and nothing on the input topic can end a stream), expires ended markers, and adopts the
streams of a partition restored from its changelog.

Sessions: a stream's first record opens session ``"<partition>.<offset>"`` (deterministic, so a
replay makes the same segment ids). A stream that sends again after its end continues in a new
session, its timeline going on where it stopped; its chunks from before the end are late: counted
and dead-lettered (``after_end``), never silently dropped. A stream whose stored state turns out
missing, stale or damaged is started afresh in a new session whose first segment marks the loss.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from stream_app.metrics import worker_metrics as m
from stream_app.streaming import LiveConfig, StreamBuffer, StreamSession
from stream_app.streaming.buffer import ApplyResult
from stream_app.wire.chunk import SAMPLE_RATE, AudioChunk
from stream_app.wire.chunk_codec import decode_chunk
from stream_app.wire.dlq import dead_letter_record
from stream_app.wire.exceptions import ChunkRejected
from stream_app.worker.acks import Ticket
from stream_app.worker.exceptions import Fenced, StateCorrupt
from stream_app.worker.live import LiveStream
from stream_app.worker.outputs import Outputs
from stream_app.worker.partitions import PartitionState
from stream_app.worker.records import EndedMarker, StreamHeader
from stream_app.worker.retry import RateLimitedLog
from stream_app.worker.steps import StepRunner
from stream_app.worker.store import StreamStore

log = logging.getLogger(__name__)

ADOPT_BATCH = 256  # keys read between yields to the event loop while adopting a restored partition
RECOVERY_LIMIT = 3  # steps failing on a bug from the same stored state before its decode is given up
RECOVERY_BACKOFF = 0.1  # s before a failed step runs again, doubled for each failure in a row...
RECOVERY_BACKOFF_MAX = 30.0  # ...up to this: a step failing outside its decode must not spin the loop


@dataclass(frozen=True)
class InputRecord:
    """One record of the input topic, as any consumer delivers it."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    topic: str
    partition: int
    offset: int
    timestamp_ms: int = 0  # the broker's record timestamp


@dataclass(frozen=True)
class ProcessorLimits:
    """Stream lifetime and size limits."""

    idle_timeout: float
    ended_retention: float
    max_chunk_bytes: int
    flush_interval: float
    eos_grace: float = 5.0  # an end of stream held behind a hole closes the stream this long after it came


class StreamProcessor:
    """Records in, steps out; see the module docstring."""

    def __init__(
        self,
        store: StreamStore,
        outputs: Outputs,
        steps: StepRunner,
        live_config: LiveConfig,
        limits: ProcessorLimits,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        previews_allowed: Callable[[], bool] = lambda: True,
    ) -> None:
        self.store = store
        self.outputs = outputs
        self.steps = steps
        self.live_config = live_config
        self.limits = limits
        self.clock = clock
        self.monotonic = monotonic
        self.previews_allowed = previews_allowed
        self.partitions: dict[int, PartitionState] = {}
        self.draining = False  # the replica is stopping: no record is taken and no step started but stores
        self._log = RateLimitedLog(log)
        self._last_flush = 0.0
        self._recoveries: dict[tuple[str, int], int] = {}
        self._failures: dict[str, int] = {}  # steps failed in a row, per stream (the retry's backoff)

    # ---- records ----------------------------------------------------------------------------------

    def handle(self, record: InputRecord, ticket: Ticket, part: PartitionState) -> None:
        """Apply one record; never raises for bad input and never waits for inference."""
        if part.next_offset is None:
            log.info("partition %d: reading from offset %d", record.partition, record.offset)
        part.note_read(record.offset, record.timestamp_ms / 1000.0, self.clock())
        try:
            chunk = decode_chunk(record.key, record.value, record.headers, max_bytes=self.limits.max_chunk_bytes)
        except ChunkRejected as error:
            m.CHUNKS.labels(outcome="rejected").inc()
            self._reject(record, error, ticket, part)
            return
        m.CHUNK_BYTES.inc(len(record.value or b""))
        try:
            live = part.streams.get(chunk.stream_id)
            if live is not None and live.closing:  # it is being ended: decide once its marker is stored
                live.deferred.append((record, ticket))
                return
            live = live or self._open(chunk, record, ticket, part)
            if live is not None and self._keyed(live.key_digest, chunk, record, ticket, part):
                self._apply(live, chunk, record, ticket, part)
        except Fenced as exc:  # the partition was revoked while the reader waited: its next owner reads it
            m.FENCED_WRITES.labels(where="write").inc()
            log.info("record %s[%d]@%d not applied: %s", record.topic, record.partition, record.offset, exc)
        except Exception as exc:  # a bug of ours on this input: dead-letter it, keep the partition going
            m.PROCESSING_ERRORS.labels(kind="bug").inc()
            log.exception("record %s[%d]@%d could not be applied", record.topic, record.partition, record.offset)
            self._reject(record, ChunkRejected("processing_error", f"{type(exc).__name__}: {exc}"), ticket, part)

    def _open(self, chunk: AudioChunk, record: InputRecord, ticket: Ticket, part: PartitionState) -> LiveStream | None:
        """Load the stream from the tables, or start it: new, resumed after its end, or reset."""
        token = f"{record.partition}.{record.offset}"
        stored: StreamHeader | EndedMarker | None = None
        try:
            stored = self.store.read(part.partition, chunk.stream_id)
            if isinstance(stored, StreamHeader):
                live = self.store.restore(part.partition, chunk.stream_id, stored)
                live.epoch = part.epoch
                part.streams[chunk.stream_id] = live
                if chunk.seq > live.session.buffer.next_seq:  # not read by this owner, or never sent
                    log.warning(
                        "stream %s: stored state goes on at seq %d (input offset %d); the first record read, "
                        "%s[%d]@%d, carries seq %d (the sequence numbers between were not read here, or skipped)",
                        chunk.stream_id,
                        live.session.buffer.next_seq,
                        stored.input_offset,
                        record.topic,
                        record.partition,
                        record.offset,
                        chunk.seq,
                    )
                return live
        except StateCorrupt as exc:
            # a header that reads but does not restore still names the stream's key: only its recorder restarts it
            digest = stored.key_digest if isinstance(stored, StreamHeader) else ""
            if not self._keyed(digest, chunk, record, ticket, part):
                return None
            m.STATE_RESETS.inc()
            m.PROCESSING_ERRORS.labels(kind="state").inc()
            log.error(
                "stream %s: stored state unusable (%s); starting it afresh in session %s", chunk.stream_id, exc, token
            )
            buffer = StreamBuffer(self.live_config, first_seq=chunk.seq, resume_at=chunk.offset)
            live = self._start(chunk, record, part, token, buffer)
            live.key_digest = digest or chunk.key_digest
            at = round(chunk.offset / SAMPLE_RATE, 3)
            live.session.merger.gap(at, at, "state_lost", f"stored state unusable: {exc}")
            live.outbox.extend(live.session.merger.flush(chunk.offset))
            return live
        if isinstance(stored, EndedMarker):
            if chunk.seq <= stored.last_seq and record.offset <= stored.input_offset:
                # read again after a restart or a hand-over: the stream ended before its offset was committed
                m.CHUNKS.labels(outcome="duplicate").inc()
                ticket.done()
                return None
            if chunk.seq <= stored.last_seq:
                m.LATE_CHUNKS.inc()
                self._reject(
                    record,
                    ChunkRejected("after_end", f"seq {chunk.seq}: stream ended at seq {stored.last_seq}"),
                    ticket,
                    part,
                )
                return None
            # refused or acknowledged above whatever its key (it changes nothing); resuming takes the key
            if not self._keyed(stored.key_digest, chunk, record, ticket, part):
                return None
            log.info("stream %s resumes after its end at seq %d: session %s", chunk.stream_id, stored.last_seq, token)
            live = self._start(chunk, record, part, token, session_buffer(self.live_config, stored))
            live.key_digest = stored.key_digest or chunk.key_digest
            live.origin_ms = stored.origin_ms or live.origin_ms
            return live
        return self._start(chunk, record, part, token, session_buffer(self.live_config, None))

    def _start(
        self, chunk: AudioChunk, record: InputRecord, part: PartitionState, token: str, buffer: StreamBuffer
    ) -> LiveStream:
        session = StreamSession(chunk.stream_id, self.live_config, session=token, buffer=buffer)
        origin = record.timestamp_ms - chunk.offset * 1000 // SAMPLE_RATE if record.timestamp_ms > 0 else 0
        live = LiveStream(chunk.stream_id, part.partition, session, origin_ms=max(0, origin), epoch=part.epoch)
        live.key_digest = chunk.key_digest  # the first chunk's key is the stream's (none: open to every writer)
        part.streams[chunk.stream_id] = live
        return live

    def _keyed(self, digest: str, chunk: AudioChunk, record: InputRecord, ticket: Ticket, part: PartitionState) -> bool:
        """Whether the chunk carries its stream's key (a stream started without one takes any chunk).

        A chunk with another key, or none, is dead-lettered as ``wrong_stream_key``: the stream is untouched.
        """
        if not digest or chunk.key_digest == digest:
            return True
        m.WRONG_KEYS.inc()
        carried = "another key" if chunk.key_digest else "no key"
        detail = f"seq {chunk.seq} carries {carried}, not the key stream {chunk.stream_id!r} started with"
        self._reject(record, ChunkRejected("wrong_stream_key", detail), ticket, part)
        return False

    def _apply(
        self, live: LiveStream, chunk: AudioChunk, record: InputRecord, ticket: Ticket, part: PartitionState
    ) -> None:
        applied = live.session.feed(chunk)
        self._count(live.stream_id, applied)
        if chunk.seq in applied.late:
            m.LATE_CHUNKS.inc()
            self._reject(
                record, ChunkRejected("after_end", f"seq {chunk.seq} arrived after the stream's end"), ticket, part
            )
            return
        if chunk.seq in applied.late_lost:  # its place was filled with silence and marked as a gap already
            m.LATE_CHUNKS.inc()
            detail = f"seq {chunk.seq} arrived after it was declared lost; its span is a lost_chunks gap"
            self._reject(record, ChunkRejected("late_chunk", detail), ticket, part)
            return
        at = record.timestamp_ms / 1000.0 if record.timestamp_ms > 0 else part.progress or self.clock()
        part.touch(live.stream_id, at)
        live.record_ms = max(live.record_ms, int(at * 1000))
        live.input_offset = max(live.input_offset, record.offset)
        if not (applied.accepted or applied.held or applied.late or applied.dropped_samples):
            ticket.done()  # a duplicate: nothing changed
            return
        live.last_chunk_ms = max(live.last_chunk_ms, chunk.produced_at_ms)
        live.unstored.append(chunk)
        if applied.accepted:
            live.note_chunk(record.offset)
        self.store.write_audio(live)
        live.waiting.append(ticket)
        live.dirty = True
        part.dirty.add(live.stream_id)
        self.schedule(live, part)

    def _reject(self, record: InputRecord, error: ChunkRejected, ticket: Ticket, part: PartitionState) -> None:
        m.DEAD_LETTERS.labels(reason=error.reason).inc()
        self._log.log(
            logging.WARNING,
            f"reject:{error.reason}",
            "rejected record %s[%d]@%d: %s",
            record.topic,
            record.partition,
            record.offset,
            error,
        )
        key, value, headers = dead_letter_record(
            record.key, record.value, record.headers, error, record.topic, record.partition, record.offset
        )

        async def send() -> None:
            await self.outputs.dead_letter(key, value, headers)
            ticket.done()

        part.scope.spawn(send(), name=f"dlq-{record.partition}-{record.offset}")

    # ---- steps ------------------------------------------------------------------------------------

    def schedule(self, live: LiveStream, part: PartitionState) -> None:
        """Start the stream's next step if it has work (new audio, a decode due) and none running.

        Previews are best effort: while the inference pool is behind they are left out, so a step only
        runs the decodes that shape finals and the previews space out by themselves.
        """
        if live.busy or live.evicting or part.scope.closed:
            return
        if live.session.has_work(previews=self._previews_for(live)):
            self._run(live, part, close=False)

    def _previews_for(self, live: LiveStream) -> bool:
        """Previews for this stream now: the pool has room and the stream is live, not catching up.

        A stream whose audio came faster than real time (a backlog after a failover, a file sent at
        once) or whose records wait behind the reader has nobody watching words appear one by one: its
        decodes go to the commits that make its finals.
        """
        if not self.previews_allowed():
            return False
        now_ms = self.clock() * 1000.0
        slack_ms = 2000.0 + 2 * self.live_config.commit_step / SAMPLE_RATE * 1000.0
        if live.record_ms > 0 and now_ms - live.record_ms > slack_ms:
            return False
        if live.origin_ms > 0:
            audio_ms = live.session.buffer.stream_end / SAMPLE_RATE * 1000.0
            if audio_ms - (now_ms - live.origin_ms) > slack_ms:
                return False
        return True

    def _run(self, live: LiveStream, part: PartitionState, *, close: bool, flush_only: bool = False) -> None:
        if self.draining and not flush_only:
            return  # handing over: the next owner runs the step from the stored state
        live.busy = True
        live.closing = live.closing or close

        async def run() -> None:
            try:
                if flush_only:
                    await self.steps.publish_and_store(live, [])
                else:
                    await self.steps.step(live, close=close, previews=self._previews_for(live))
            except (asyncio.CancelledError, Fenced):
                raise
            except Exception:  # a bug of ours: go back to the stored state and apply the chunks since again
                m.PROCESSING_ERRORS.labels(kind="bug").inc()
                log.exception("stream %s: a step failed; resuming from its stored state", live.stream_id)
                live.busy = False
                self._recover(live, part, close=close)
                return
            finally:
                live.busy = False
            self._failures.pop(live.stream_id, None)
            self._after(live, part, evicted_by="idle" if close else "end_of_stream")

        if part.scope.spawn(run(), name=f"step-{live.stream_id}") is None:
            live.busy = False

    def _recover(self, live: LiveStream, part: PartitionState, *, close: bool) -> None:
        """Replace a stream whose step failed by its stored state plus the chunks applied since.

        Nothing the failed step did is kept: its decode runs again from the same state (and meets the
        same words), so no decode is lost or taken twice. A stream that keeps failing at the same point
        keeps its records unacknowledged, which the stuck-ack check reports as unhealthy.
        """
        try:
            stored = self.store.read(part.partition, live.stream_id)
            if isinstance(stored, StreamHeader):
                fresh = self.store.restore(part.partition, live.stream_id, stored)
            else:  # nothing stored for this session yet: it starts as `_open` started it
                ended = stored if isinstance(stored, EndedMarker) else None
                buffer = session_buffer(self.live_config, ended)
                fresh = LiveStream(
                    live.stream_id,
                    part.partition,
                    StreamSession(live.stream_id, self.live_config, session=live.session_token, buffer=buffer),
                )
        except StateCorrupt as exc:
            log.error("stream %s: stored state unusable while recovering (%s)", live.stream_id, exc)
            return
        fresh.epoch, fresh.origin_ms, fresh.last_chunk_ms = live.epoch, live.origin_ms, live.last_chunk_ms
        fresh.record_ms, fresh.input_offset, fresh.served_at = live.record_ms, live.input_offset, live.served_at
        fresh.key_digest = live.key_digest
        fresh.waiting, fresh.chunk_ends = live.waiting, live.chunk_ends  # the failed step's outbox is made again
        fresh.deferred, fresh.closing = live.deferred, live.closing
        for chunk in live.unstored:
            fresh.session.feed(chunk)
        fresh.unstored = list(live.unstored)
        fresh.dirty = True
        key = (live.stream_id, fresh.version)
        self._recoveries[key] = self._recoveries.get(key, 0) + 1
        if self._recoveries[key] >= RECOVERY_LIMIT:  # the same state fails every time: give its decode up
            log.error(
                "stream %s: a step failed %d times from the same state; giving its decode up",
                live.stream_id,
                self._recoveries[key],
            )
            fresh.attempts = max(fresh.attempts, self.steps.limits.max_attempts)
            self._recoveries.pop(key, None)
        part.streams[live.stream_id] = fresh
        part.dirty.add(live.stream_id)
        failures = self._failures[live.stream_id] = self._failures.get(live.stream_id, 0) + 1
        delay = min(RECOVERY_BACKOFF_MAX, RECOVERY_BACKOFF * 2 ** (failures - 1))
        fresh.busy = True  # no step until the backoff is over (records still arrive and are applied by it)
        fresh.backing_off = True  # ...but no step runs: a hand-over does not wait for it

        async def again() -> None:
            try:
                await asyncio.sleep(delay)
            finally:
                fresh.busy = fresh.backing_off = False
            if part.streams.get(live.stream_id) is not fresh:
                return  # evicted or replaced meanwhile
            if close or fresh.closing:
                self._run(fresh, part, close=True)
            else:
                self.schedule(fresh, part)

        if part.scope.spawn(again(), name=f"retry-{live.stream_id}") is None:
            fresh.busy = False

    def _after(self, live: LiveStream, part: PartitionState, evicted_by: str) -> None:
        if not live.dirty:
            part.dirty.discard(live.stream_id)
        if live.evicting:
            self._failures.pop(live.stream_id, None)
            part.streams.pop(live.stream_id, None)
            part.activity.pop(live.stream_id, None)
            part.dirty.discard(live.stream_id)
            part.add_marker(live.stream_id, int((self.clock() + self.limits.ended_retention) * 1000))
            m.STREAMS_EVICTED.labels(cause=evicted_by).inc()
            for record, ticket in live.deferred:  # arrived while it was ended: late, or a new session
                self.handle(record, ticket, part)
            live.deferred = []
            return
        if live.stream_id not in part.activity:  # put back by the idle end while its step ran
            part.touch(live.stream_id, self._record_time(live, part))
        self.schedule(live, part)

    # ---- the timer ----------------------------------------------------------------------------------

    def tick(self, in_recovery: bool) -> None:
        """Store changed streams, end idle ones, expire markers, adopt restored partitions."""
        now = self.monotonic()
        flush = now - self._last_flush >= self.limits.flush_interval
        if flush:
            self._last_flush = now
        for part in list(self.partitions.values()):
            if part.scope.closed:
                continue
            if flush:
                self._flush(part)
            self._end_idle(part)
            self._end_held_ends(part)
            self._expire_markers(part)
            if not part.adopted and not in_recovery:
                part.adopted = True
                part.scope.spawn(self._claim_and_adopt(part), name=f"adopt-{part.partition}")
        m.LIVE_STREAMS.set(sum(max(len(p.activity), len(p.streams)) for p in self.partitions.values()))
        m.ENDED_MARKERS.set(sum(p.marker_count for p in self.partitions.values()))

    # ---- handing over (stream_app.worker.handover) ----------------------------------------------------

    def busy_streams(self) -> set[tuple[int, str]]:
        """Streams with a step running, as ``(partition, stream id)``."""
        return {
            (p, sid) for p, part in self.partitions.items() if not part.scope.closed
            for sid, live in part.streams.items() if live.busy and not live.backing_off
        }  # fmt: skip

    def unstored_streams(self) -> set[tuple[int, str]]:
        """Streams with changes not yet stored, as ``(partition, stream id)``."""
        return {(p, sid) for p, part in self.partitions.items() if not part.scope.closed for sid in part.dirty}

    def store_changed(self) -> None:
        """Start storing every changed stream that has no step running (their records are acknowledged then)."""
        for part in list(self.partitions.values()):
            if not part.scope.closed:
                self._flush(part)

    def _flush(self, part: PartitionState) -> None:
        for stream_id in list(part.dirty):
            live = part.streams.get(stream_id)
            if live is None:
                part.dirty.discard(stream_id)
            elif not live.busy:
                self._run(live, part, close=False, flush_only=True)

    def _end_idle(self, part: PartitionState) -> None:
        """End the streams the partition's records (or its quiet end) have left ``idle_timeout`` behind."""
        for stream_id, seen in part.idle(self.limits.idle_timeout):
            live = part.streams.get(stream_id)
            if live is None:
                part.scope.spawn(self._end_dormant(part, stream_id), name=f"idle-{stream_id}")
            elif live.busy:
                part.touch(stream_id, seen)  # its step will finish first; look again at the next tick
            else:
                log.info(
                    "stream %s idle: partition %d moved %.0f s past its last record; flushing and ending it",
                    stream_id,
                    part.partition,
                    part.progress - seen,
                )
                self._run(live, part, close=True)

    def _end_held_ends(self, part: PartitionState) -> None:
        """Close a stream whose end of stream has waited ``eos_grace`` (partition time) behind a hole."""
        for live in list(part.streams.values()):
            if live.busy or live.closing or not live.session.buffer.eos_held:
                continue
            if part.progress - self._record_time(live, part) >= self.limits.eos_grace:
                log.info(
                    "stream %s: its end of stream waited %.0f s behind a hole; ending it",
                    live.stream_id,
                    self.limits.eos_grace,
                )
                self._run(live, part, close=True)

    def _record_time(self, live: LiveStream, part: PartitionState) -> float:
        """Return the stream's newest record time (s); unknown (an earlier release's header): the partition's now."""
        return live.record_ms / 1000.0 if live.record_ms > 0 else part.progress or self.clock()

    async def _end_dormant(self, part: PartitionState, stream_id: str) -> None:
        """End a stream restored from the changelog that never sent again."""
        if stream_id in part.streams:
            return
        try:
            stored = self.store.read(part.partition, stream_id)
            if not isinstance(stored, StreamHeader):
                return
            live = self.store.restore(part.partition, stream_id, stored)
            live.epoch = part.epoch
        except StateCorrupt as exc:
            m.STATE_RESETS.inc()
            log.error("stream %s: stored state unusable (%s); dropping it", stream_id, exc)
            await self.outputs.durable(
                lambda: self.store.forget(part.partition, stream_id, part.epoch), "dropping a stream's state"
            )
            return
        part.streams[stream_id] = live
        self._run(live, part, close=True)

    def _expire_markers(self, part: PartitionState) -> None:
        for stream_id in part.expired_markers(int(self.clock() * 1000)):
            if stream_id not in part.streams:
                part.scope.spawn(self._expire(part, stream_id), name=f"expire-{stream_id}")

    async def _expire(self, part: PartitionState, stream_id: str) -> None:
        try:
            stored = self.store.read(part.partition, stream_id)
        except StateCorrupt:
            stored = None
        now_ms = int(self.clock() * 1000)
        expired = isinstance(stored, EndedMarker) and stored.ended_ms + self.limits.ended_retention * 1000 <= now_ms
        if expired and stream_id not in part.streams:
            await self.outputs.durable(
                lambda: self.store.forget(part.partition, stream_id, part.epoch), "expiring an ended marker"
            )

    def claim(self, part: PartitionState) -> Awaitable[None]:
        """Take the partition over (once): an owner epoch above its last fence, fenced durably.

        Nothing of the partition is written before this is done, so every late write of its previous
        owner that lands after the fence is recognised as such on a restore (`stream_app.worker.fencing`).

        Raises:
            Fenced: the partition was revoked already.
        """
        if part.claim is None:
            part.claim = part.scope.spawn(self._claim(part), name=f"claim-{part.partition}")
            if part.claim is None:
                raise Fenced(f"partition {part.partition} was revoked before it was taken over")
        return asyncio.shield(part.claim)

    def release(self, partition: int) -> None:
        """Accept no state write for ``partition`` any more (it was revoked)."""
        self.store.release(partition)

    async def _claim(self, part: PartitionState) -> None:
        found = 0  # the newest fence another owner wrote after this replica's restore
        caught_up = 0  # changelog offsets between the restore and the fence, every try
        while True:
            epoch = max(self.store.next_epoch(part.partition), found + 1)
            fenced = await self.outputs.durable(
                self.store.fence(part.partition, epoch), "fencing the partition's last owner"
            )
            found = await self.outputs.durable(
                self.store.catch_up(part.partition, fenced), "reading what the last owner wrote before the fence"
            )
            caught_up += sum(max(0, mark.end - mark.start) for mark in fenced)
            if found < epoch:
                break
            m.TAKE_OVER_RETRIES.inc()
            log.warning(
                "partition %d: owner epoch %d was taken by another replica before its fence landed; taking over again",
                part.partition,
                found,
            )
        part.epoch = epoch
        log.info("partition %d: owner epoch %d (%d changelog offset(s) caught up)", part.partition, epoch, caught_up)

    async def _claim_and_adopt(self, part: PartitionState) -> None:
        await self.claim(part)
        await self._adopt(part)

    async def _adopt(self, part: PartitionState) -> None:
        """Watch the streams a restored partition holds (they may never send again)."""
        now, count = part.progress or self.clock(), 0
        for stream_id in self.store.stream_keys(part.partition):
            count += 1
            if count % ADOPT_BATCH == 0:
                await asyncio.sleep(0)
            if stream_id in part.streams or stream_id in part.activity:
                continue
            try:
                stored = self.store.read(part.partition, stream_id)
            except StateCorrupt:
                part.activity[stream_id] = now  # the idle end finds it unusable and drops it
                continue
            if isinstance(stored, EndedMarker):
                part.add_marker(stream_id, stored.ended_ms + int(self.limits.ended_retention * 1000))
            elif stored is not None:  # idle once the partition moves on past its last record
                part.touch(stream_id, stored.record_ms / 1000.0 if stored.record_ms > 0 else now)
        if count:
            log.info("partition %d: watching %d stored stream(s)", part.partition, count)

    # ---- metrics ----------------------------------------------------------------------------------

    def _count(self, stream_id: str, applied: ApplyResult) -> None:
        m.CHUNKS.labels(outcome="accepted").inc(len(applied.accepted))
        m.CHUNKS.labels(outcome="held").inc(len(applied.held))
        m.CHUNKS.labels(outcome="duplicate").inc(len(applied.duplicates))
        m.CHUNKS.labels(outcome="late").inc(len(applied.late))
        for loss in applied.losses:
            m.GAPS.inc()
            self._log.log(logging.WARNING, f"gap:{stream_id}", "stream %s: %s: %s", stream_id, loss.reason, loss.detail)
        if applied.overlap_samples:
            m.OVERLAPPING_AUDIO.inc(applied.overlap_samples / SAMPLE_RATE)
            self._log.log(
                logging.WARNING,
                f"overlap:{stream_id}",
                "stream %s: %d samples of a chunk repeat stream time already received (its offset is behind the "
                "audio sent before it): dropped, the earlier audio kept",
                stream_id,
                applied.overlap_samples,
            )
        if applied.dropped_samples:
            m.DROPPED_AUDIO.inc(applied.dropped_samples / SAMPLE_RATE)
            self._log.log(
                logging.WARNING,
                f"cap:{stream_id}",
                "stream %s: buffer cap dropped %d samples",
                stream_id,
                applied.dropped_samples,
            )


def session_buffer(config: LiveConfig, ended: EndedMarker | None) -> StreamBuffer:
    """Return the buffer a session starts with: a new stream's, or one resumed after ``ended``.

    A resumed session's sequence numbers and timeline go on where the stream stopped.
    """
    if ended is None:
        return StreamBuffer(config)
    buffer = StreamBuffer(config, first_seq=ended.last_seq + 1, resume_at=ended.end)
    buffer.state.shift = ended.shift
    return buffer
