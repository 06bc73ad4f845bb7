"""StreamStore: a live stream to and from the tables, verified on the way back.

Write order (each step awaited before the next, so a crash leaves something consistent):

1. Audio pages, written once each as soon as they are whole (they never change after that), and
   out-of-order chunks as they are held (`write_audio`, not awaited there).
2. The header (`write_header`): first every page and held write is awaited (those the reader issues
   meanwhile too), then the header that names them is written and awaited. Only then are the records
   it covers acknowledged.
3. Pages and held chunks the header no longer needs are deleted after it is stored.

A restore reads the header, then every page and held chunk it names, and checks each against the
header's CRC-32: a missing, stale or damaged record raises `StateCorrupt` (the worker then reports
the stream's loss in an error segment and starts it afresh) instead of transcribing garbage.

Every write carries the writer's owner epoch and the input offset its state reflects (`WriteStamp`);
a writer whose partition was revoked is refused (`Fenced`, see `stream_app.worker.fencing`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar, cast

import numpy as np

from stream_app.streaming import LiveConfig, MergePolicy, SegmentMerger, StreamBuffer, StreamSession
from stream_app.streaming.buffer import LOST_MEMORY, SeqRun
from stream_app.streaming.samples import SampleQueue
from stream_app.streaming.state import BufferState, PendingChunk
from stream_app.worker.catch_up import TakeOver
from stream_app.worker.doc_fields import as_int
from stream_app.worker.exceptions import StateCorrupt
from stream_app.worker.fencing import FENCE_KEY, OwnerEpochs, decode_fence, encode_fence
from stream_app.worker.live import LiveStream
from stream_app.worker.records import (
    PAGE_SAMPLES,
    EndedMarker,
    HeldRef,
    StreamHeader,
    attempt_key,
    crc,
    decode_attempt,
    decode_samples,
    decode_stream_record,
    encode_attempt,
    encode_header,
    encode_marker,
    encode_samples,
    held_key,
    page_key,
)
from stream_app.worker.tables import TableIO, WriteStamp

log = logging.getLogger(__name__)
T = TypeVar("T")

P = PAGE_SAMPLES
_CURSOR_INTS = ("seq", "shift", "heard")


class StreamStore:
    """Reads and writes streams' state in the ``streams`` and ``audio`` tables."""

    def __init__(
        self,
        streams: TableIO,
        audio: TableIO,
        config: LiveConfig,
        owners: OwnerEpochs | None = None,
    ) -> None:
        self.streams = streams
        self.audio = audio
        self.config = config  # the live rule of streams whose header predates it (written by an earlier release)
        self.owners = owners  # None: writes are not fenced (a store used alone, as in tests)

    # ---- reading ----------------------------------------------------------------------------------

    def read(self, partition: int, stream_id: str) -> StreamHeader | EndedMarker | None:
        """Return the stream's stored header or ended marker, or None for a stream never seen.

        Raises:
            StateCorrupt: the record cannot be read.
        """
        raw = self.streams.get(partition, stream_id.encode())
        return None if raw is None else decode_stream_record(raw)

    def restore(self, partition: int, stream_id: str, header: StreamHeader) -> LiveStream:
        """Rebuild a live stream from its header and the pages and held chunks it names.

        Raises:
            StateCorrupt: a record is missing, stale or damaged, or the header contradicts itself.
        """
        if header.merger.stream_id != stream_id or header.merger.session != header.session:
            raise StateCorrupt(f"header of {stream_id!r} belongs to {header.merger.stream_id!r}")
        base, tail_start = header.base, header.tail_start
        pages = range(base // P, tail_start // P) if base < tail_start else range(0)
        if set(header.page_crcs) != set(pages):
            raise StateCorrupt(
                f"stream {stream_id}: header names pages {sorted(header.page_crcs)}, needs {list(pages)}"
            )
        parts = [self._read_page(partition, stream_id, header, page) for page in pages]
        queue = SampleQueue(base, np.concatenate([*parts, header.tail]) if parts else header.tail)
        pending = {ref.seq: self._read_held(partition, stream_id, header.session, ref) for ref in header.held}
        config = header.config or self.config
        if header.config and not header.settling_stored:  # settled by its replica's configuration, as then
            config = replace(config, settle_after=self.config.settle_after)
        state, lost = _buffer_state(header, queue, pending)
        policy = MergePolicy.of(config)  # the rule the stream was started with decides its merging too
        session = StreamSession(
            stream_id,
            config,
            policy,
            buffer=StreamBuffer.from_state(config, state, lost),
            merger=SegmentMerger.from_state(header.merger, policy),
            track=header.speech,
            planner=header.planner,
            losses=header.losses,
        )
        live = LiveStream(
            stream_id=stream_id,
            partition=partition,
            session=session,
            version=header.version,
            attempts=self._attempts(partition, stream_id, header),
            origin_ms=header.origin_ms,
            shown_until=header.shown_until,
            record_ms=header.record_ms,
            input_offset=header.input_offset,
            key_digest=header.key_digest,
            # the tail is paged from its page's start: a base inside it starts that page's samples, not its key
            pages_written_until=tail_start // P * P,
            lowest_page=base // P,
        )
        live.outbox = list(header.outbox)  # stored, maybe not published: the next step publishes them again
        live.page_crcs = {page: (max(page * P, base), header.page_crcs[page]) for page in pages}
        live.held_written = {ref.seq: ref.crc for ref in header.held}
        return live

    def _read_page(self, partition: int, stream_id: str, header: StreamHeader, page: int) -> Any:
        raw = self.audio.get(partition, page_key(stream_id, header.session, page))
        if raw is None:
            raise StateCorrupt(f"stream {stream_id}: audio page {page} is missing")
        start, samples = decode_samples(raw)
        need, stop = max(page * P, header.base), (page + 1) * P
        if start > need or start + int(samples.shape[0]) < stop:
            raise StateCorrupt(f"stream {stream_id}: audio page {page} holds [{start}, {start + samples.shape[0]})")
        part = samples[need - start : stop - start]
        if crc(part) != header.page_crcs[page]:
            raise StateCorrupt(f"stream {stream_id}: audio page {page} is stale or damaged (CRC mismatch)")
        return part

    def _read_held(self, partition: int, stream_id: str, session: str, ref: HeldRef) -> PendingChunk:
        raw = self.audio.get(partition, held_key(stream_id, session, ref.seq))
        if raw is None:
            raise StateCorrupt(f"stream {stream_id}: held chunk {ref.seq} is missing")
        offset, samples = decode_samples(raw)
        if offset != ref.offset or int(samples.shape[0]) != ref.count or crc(samples) != ref.crc:
            raise StateCorrupt(f"stream {stream_id}: held chunk {ref.seq} is stale or damaged")
        return PendingChunk(offset, samples, ref.end_of_stream)

    def _attempts(self, partition: int, stream_id: str, header: StreamHeader) -> int:
        raw = self.audio.get(partition, attempt_key(stream_id, header.session))
        if raw is None:
            return 0
        version, attempts = decode_attempt(raw)
        return attempts if version == header.version else 0

    def stream_keys(self, partition: int) -> Iterator[str]:
        """Stream ids with a header or marker in the partition (a restored partition's streams)."""
        for key in self.streams.keys(partition):
            try:
                yield key.decode("utf-8")
            except UnicodeDecodeError:
                log.warning("partition %d: skipping a stream key that is not UTF-8: %r", partition, key[:64])

    # ---- writing ----------------------------------------------------------------------------------

    def write_audio(self, live: LiveStream) -> None:
        """Write the pages that became whole and the chunks newly held; `write_header` awaits them.

        Raises:
            Fenced: the stream's owner epoch is not the partition's current one (it was revoked).
        """
        buf = live.session.buffer.state
        base, end = buf.audio.base, buf.audio.end
        position = max(live.pages_written_until, base // P * P)  # page-aligned: page k holds max(k * P, base) on
        if live.lowest_page is None:
            live.lowest_page = position // P
        stamp = self._stamp(live)  # a scope that lost its partition writes nothing (raises Fenced)
        while position + P <= end:
            page = position // P
            start = max(position, base)
            samples = buf.audio.slice(start, position + P)
            key = page_key(live.stream_id, live.session_token, page)
            live.in_flight.append(self.audio.put(live.partition, key, encode_samples(start, samples), stamp))
            live.page_crcs[page] = (start, crc(samples))
            position += P
        live.pages_written_until = position
        for seq, chunk in buf.pending.items():
            if seq not in live.held_written:
                key = held_key(live.stream_id, live.session_token, seq)
                value = encode_samples(chunk.offset, chunk.samples)
                live.in_flight.append(self.audio.put(live.partition, key, value, stamp))
                live.held_written[seq] = crc(chunk.samples)

    async def write_header(self, live: LiveStream) -> None:
        """Store the stream's header (after the audio it names), then drop audio it no longer needs.

        Raises:
            Exception: whatever the broker's client raised for a failed changelog write (the caller
                retries; nothing was acknowledged).
        """
        # the reader goes on applying records while the writes are awaited, so pages may become whole
        # meanwhile: wait until none is in flight, then build the header with no await in between
        self.write_audio(live)
        while live.in_flight:
            await _all(live)
            self.write_audio(live)
        header = self.header(live)
        covered = len(live.unstored)  # the chunks this header reflects (more may come while it is written)
        stamp = self._stamp(live)
        await self.streams.put(live.partition, live.stream_id.encode(), encode_header(header), stamp)
        del live.unstored[:covered]
        live.version = header.version
        live.attempts = 0
        live.dirty = False
        garbage, live.garbage = live.garbage, []
        for key in garbage:
            _forget(self.audio.delete(live.partition, key, stamp))

    def header(self, live: LiveStream) -> StreamHeader:
        """Build the header of the stream as it is now (next version); collects garbage to delete."""
        buf = live.session.buffer.state
        base, end = buf.audio.base, buf.audio.end
        tail_start = max(base, end // P * P)
        crcs: dict[int, int] = {}
        for page in range(base // P, tail_start // P):
            need = max(page * P, base)
            cached = live.page_crcs.get(page)
            if cached is None or cached[0] != need:
                cached = (need, crc(buf.audio.slice(need, (page + 1) * P)))
                live.page_crcs[page] = cached
            crcs[page] = cached[1]
        low = base // P
        if live.lowest_page is not None:
            for page in range(live.lowest_page, low):
                live.garbage.append(page_key(live.stream_id, live.session_token, page))
                live.page_crcs.pop(page, None)
        live.lowest_page = low
        held = []
        for seq in sorted(live.held_written):
            if seq in buf.pending:
                chunk = buf.pending[seq]
                held.append(
                    HeldRef(seq, chunk.offset, int(chunk.samples.shape[0]), chunk.end_of_stream, live.held_written[seq])
                )
            else:
                live.garbage.append(held_key(live.stream_id, live.session_token, seq))
        live.held_written = {ref.seq: ref.crc for ref in held}
        session = live.session
        return StreamHeader(
            session=live.session_token,
            config=session.config,
            buffer=_cursor(buf, session.buffer.lost_runs),
            base=base,
            tail_start=tail_start,
            tail=buf.audio.slice(tail_start, end),
            page_crcs=crcs,
            held=held,
            speech=session.track,
            planner=session.planner.state,
            merger=session.merger.state,
            losses=list(session.losses),
            outbox=list(live.outbox),
            version=live.version + 1,
            origin_ms=live.origin_ms,
            shown_until=live.shown_until,
            record_ms=live.record_ms,
            epoch=live.epoch,
            input_offset=live.input_offset,
            key_digest=live.key_digest,
        )

    def mark_attempt(self, live: LiveStream) -> Callable[[], Awaitable[object]]:
        """Count a window start against the stored header (crashes included); returns the write to retry.

        The count is taken here, once: every try of the returned write stores the same value, so a
        changelog write retried after a broker error does not count the start again.
        """
        live.attempts += 1
        return self._attempt_write(live)

    def release_attempt(self, live: LiveStream) -> Callable[[], Awaitable[object]]:
        """Take a window start back (the model returned the window, so a later crash is not its doing).

        Like `mark_attempt`, the new count is taken once and the returned write may be retried.
        """
        self.forget_attempt(live)
        return self._attempt_write(live)

    @staticmethod
    def forget_attempt(live: LiveStream) -> None:
        """Take a window start back in memory only (the model returned it; the stored count waits for the header)."""
        live.attempts = max(0, live.attempts - 1)

    def _attempt_write(self, live: LiveStream) -> Callable[[], Awaitable[object]]:
        partition, key = live.partition, attempt_key(live.stream_id, live.session_token)
        value = encode_attempt(live.version, live.attempts)
        # fenced at every try: a retry after the partition was revoked is refused
        return lambda: self.audio.put(partition, key, value, self._stamp(live))

    async def end(self, live: LiveStream, marker: EndedMarker) -> None:
        """Replace the stream's header by its ended marker, then delete its audio and attempt marker."""
        await _all(live)
        stamp = self._stamp(live)
        await self.streams.put(live.partition, live.stream_id.encode(), encode_marker(marker), stamp)
        buf = live.session.buffer.state
        token = live.session_token
        first = live.lowest_page if live.lowest_page is not None else buf.audio.base // P
        keys = [page_key(live.stream_id, token, page) for page in range(first, live.pages_written_until // P)]
        keys += [held_key(live.stream_id, token, seq) for seq in live.held_written]
        keys += [*live.garbage, attempt_key(live.stream_id, token)]
        live.garbage, live.held_written, live.page_crcs = [], {}, {}
        for key in keys:
            _forget(self.audio.delete(live.partition, key, stamp))

    async def forget(self, partition: int, stream_id: str, epoch: int = 0) -> None:
        """Delete a stream's record (an expired ended marker, or a header found corrupt)."""
        await self.streams.delete(partition, stream_id.encode(), self._check(partition, epoch, -1))

    # ---- owner epochs (stream_app.worker.fencing) ---------------------------------------------------

    def next_epoch(self, partition: int) -> int:
        """Return the epoch a new owner of ``partition`` takes: one above the newest fence in its tables."""
        fences = (decode_fence(table.get(partition, FENCE_KEY)) for table in (self.streams, self.audio))
        return max(fences) + 1

    def fence(self, partition: int, epoch: int) -> Callable[[], Awaitable[tuple[TakeOver, TakeOver]]]:
        """Own ``partition`` under ``epoch``; returns the fence write for both changelogs (retry it until done).

        The fence must be durable before the owner's first state write, so that every late write of a
        replaced owner comes after it in the changelog (where a restore recognises it). What the last
        owner wrote before it is then read back with `catch_up`.
        """
        if self.owners is not None:
            self.owners.grant(partition, epoch)
        stamp, value = WriteStamp(epoch), encode_fence(epoch)
        tables = (self.streams, self.audio)
        tries: dict[int, asyncio.Future[TakeOver]] = {}  # a retry writes only the fences that failed

        async def write() -> tuple[TakeOver, TakeOver]:
            self._check(partition, epoch, -1)
            writes = (partial(t.fence, partition, FENCE_KEY, value, stamp) for t in tables)
            streams, audio = await _each(_again_if_failed(tries, i, w) for i, w in enumerate(writes))
            return streams, audio

        return write

    def catch_up(self, partition: int, fenced: tuple[TakeOver, TakeOver]) -> Callable[[], Awaitable[int]]:
        """Return the read-back of what both changelogs got between the restore and ``fenced`` (retry it until done).

        Its result is the newest fence found there: at or above the epoch taken, another replica took
        the partition over meanwhile, and the take-over must be repeated above it.
        """
        tables = (self.streams, self.audio)
        tries: dict[int, asyncio.Future[int]] = {}  # a retry reads only the tables that failed, keeping what one found

        async def read() -> int:
            reads = (partial(t.catch_up, partition, fenced[i]) for i, t in enumerate(tables))
            found = await _each(_again_if_failed(tries, i, r) for i, r in enumerate(reads))
            return max(found)

        return read

    def release(self, partition: int) -> None:
        """Refuse every write for ``partition`` from now on (it was revoked)."""
        if self.owners is not None:
            self.owners.revoke(partition)

    def _stamp(self, live: LiveStream) -> WriteStamp:
        return self._check(live.partition, live.epoch, live.input_offset)

    def _check(self, partition: int, epoch: int, input_offset: int) -> WriteStamp:
        """Return the stamp of a write under ``epoch``.

        Raises:
            Fenced: the writer's ownership of the partition has ended.
        """
        if self.owners is not None:
            self.owners.check(partition, epoch)
        return WriteStamp(epoch, input_offset)


def _cursor(buf: BufferState, lost: list[SeqRun]) -> dict[str, Any]:
    return {
        "seq": buf.next_seq,
        "shift": buf.shift,
        "ended": buf.ended,
        "resume": buf.resume_at_first,
        "heard": buf.heard_until,
        "lost_runs": [list(run) for run in lost],
        "lost": _newest_seqs(lost, LOST_MEMORY),  # what a reader of an earlier release takes
    }


def _newest_seqs(runs: list[SeqRun], count: int) -> list[int]:
    """Return the ``count`` newest sequence numbers of the runs, oldest first (never more than ``count`` built)."""
    out: list[int] = []
    for first, end in reversed(runs):
        out[:0] = range(max(first, end - (count - len(out))), end)
        if len(out) >= count:
            break
    return out


def _lost_runs(cur: dict[str, Any]) -> list[SeqRun]:
    """Return the cursor's lost runs (a cursor of an earlier release lists single sequence numbers under ``lost``)."""
    try:
        if "lost_runs" in cur:
            runs = [(as_int(first), as_int(end)) for first, end in cur["lost_runs"]]
        else:
            runs = [(as_int(seq), as_int(seq) + 1) for seq in cur["lost"]]
        if all(first < end for first, end in runs):
            return runs
    except (TypeError, ValueError):
        pass
    stored = cur["lost_runs"] if "lost_runs" in cur else cur["lost"]
    raise StateCorrupt(f"cursor's lost runs {stored!r} are not [first, end) pairs of whole numbers")


def _buffer_state(
    header: StreamHeader, audio: SampleQueue, pending: dict[int, PendingChunk]
) -> tuple[BufferState, list[SeqRun]]:
    cur = header.buffer
    try:
        ints = {name: cur[name] for name in _CURSOR_INTS}
        if any(isinstance(v, bool) or not isinstance(v, int) for v in ints.values()):
            raise StateCorrupt(f"cursor {cur!r} has a value that is not a whole number")
        lost = _lost_runs(cur)
        state = BufferState(
            next_seq=ints["seq"],
            shift=ints["shift"],
            ended=bool(cur["ended"]),
            resume_at_first=bool(cur["resume"]),
            heard_until=ints["heard"],
            audio=audio,
            pending=pending,
        )
    except KeyError as exc:
        raise StateCorrupt(f"cursor lacks {exc}") from None
    window = header.planner.window_start
    if window is not None and not state.resume_at_first and window < audio.base:
        raise StateCorrupt(f"the open window starts at {window}, before the audio kept from {audio.base}")
    return state, lost


async def _all(live: LiveStream) -> None:
    """Await the page and held writes in flight (all of them, even if one fails)."""
    writes, live.in_flight = live.in_flight, []
    if not writes:
        return
    results = await asyncio.gather(*writes, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        live.pages_written_until = min(live.pages_written_until, live.session.buffer.state.audio.base // P * P)
        live.held_written.clear()  # rewritten on the retry (same keys, same content)
        live.page_crcs.clear()
        raise failed[0]


def _forget(write: Awaitable[object]) -> None:
    """Let a deletion complete on its own (a failed one leaves a record no header names: harmless)."""
    future = asyncio.ensure_future(write)
    future.add_done_callback(_log_failed_delete)


def _log_failed_delete(future: asyncio.Future[object]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.debug("deleting an unused audio record failed: %s", future.exception())


def _again_if_failed(
    tries: dict[int, asyncio.Future[T]], index: int, start: Callable[[], Awaitable[T]]
) -> asyncio.Future[T]:
    """Return try ``index``: the one under way or done, or a new one where the last failed or was cancelled."""
    attempt = tries.get(index)
    if attempt is None or (attempt.done() and (attempt.cancelled() or attempt.exception() is not None)):
        attempt = tries[index] = asyncio.ensure_future(start())
    return attempt


async def _each(tries: Iterable[Awaitable[T]]) -> list[T]:
    """Await every try to its end (none is left running when one fails), then raise the first failure."""
    outcomes = await asyncio.gather(*tries, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return cast(list[T], outcomes)
