"""What the worker does with one input record, apart from Kafka and faust.

decode + validate -> order into the stream's buffer -> transcribe the ready windows (concurrently, so
the pool can batch them with other streams' windows) -> merge -> publish -> store or evict the state.
Everything with a side effect sits behind the small protocols below, so this logic runs the same in
the faust agent and in tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from stream_app.inference.exceptions import InferenceError
from stream_app.inference.types import WindowJob, WindowTranscript
from stream_app.metrics import worker_metrics as m
from stream_app.streaming import MergePolicy, StreamSession, WindowingConfig
from stream_app.streaming.buffer import ApplyResult
from stream_app.streaming.windowing import Window
from stream_app.wire.chunk import SAMPLE_RATE, AudioChunk
from stream_app.wire.chunk_codec import decode_chunk
from stream_app.wire.exceptions import ChunkRejected
from stream_app.wire.segment import TranscriptSegment
from stream_app.worker.idle import IdleTracker, read_idle_tick

log = logging.getLogger(__name__)

Transcribe = Callable[[WindowJob], Awaitable[WindowTranscript]]


@dataclass(frozen=True)
class InputRecord:
    """One record of the input topic, as any consumer delivers it."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    topic: str
    partition: int
    offset: int


class SessionStore(Protocol):
    """Where stream state lives between records (RocksDB-backed faust tables in the worker)."""

    def load(self, stream_id: str) -> StreamSession | Ended | None:
        """Return the stream's session, an `Ended` marker for a finished stream, or None for a new one."""

    def save(self, session: StreamSession) -> None:
        """Store the stream's state."""

    def end(self, stream_id: str, last_seq: int) -> None:
        """Drop the stream's state, keeping a small marker so late replays are recognised."""

    def forget(self, stream_id: str) -> None:
        """Drop everything about the stream (the marker too)."""


class Outputs(Protocol):
    """Where results and rejections go; both await the broker's acknowledgement."""

    async def publish(self, segments: Sequence[TranscriptSegment]) -> None:
        """Publish segments in order and wait until the broker has them."""

    async def dead_letter(self, record: InputRecord, error: ChunkRejected) -> None:
        """Send a rejected record, byte for byte, with the reason, to the dead-letter topic."""


@dataclass(frozen=True)
class Ended:
    """A finished stream's marker: chunks that arrive after its end are replays, not a new stream."""

    last_seq: int


class ChunkProcessor:
    """Turn input records into published segments; never raises for bad input."""

    def __init__(
        self,
        store: SessionStore,
        outputs: Outputs,
        transcribe: Transcribe,
        windowing: WindowingConfig,
        policy: MergePolicy,
        *,
        max_chunk_bytes: int,
        tracker: IdleTracker,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.outputs = outputs
        self.transcribe = transcribe
        self.windowing = windowing
        self.policy = policy
        self.max_chunk_bytes = max_chunk_bytes
        self.tracker = tracker
        self.clock = clock

    async def handle(self, record: InputRecord) -> None:
        """Process one record end to end; returns once its segments are acknowledged."""
        tick = read_idle_tick(record.headers)
        if tick is not None:
            await self._on_idle(record, tick)
            return
        try:
            chunk = decode_chunk(record.key, record.value, record.headers, max_bytes=self.max_chunk_bytes)
        except ChunkRejected as error:
            m.CHUNKS.labels(outcome="rejected").inc()
            m.DEAD_LETTERS.labels(reason=error.reason).inc()
            log.warning(
                "rejected chunk %s[%d]@%d: %s", record.topic, record.partition, record.offset, error
            )
            await self.outputs.dead_letter(record, error)
            return
        m.CHUNK_BYTES.inc(len(record.value or b""))
        await self._on_chunk(chunk, record.partition)

    async def _on_chunk(self, chunk: AudioChunk, partition: int) -> None:
        state = self.store.load(chunk.stream_id)
        if isinstance(state, Ended):
            m.CHUNKS.labels(outcome="after_end").inc()
            log.info("stream %s already ended; dropping chunk seq %d", chunk.stream_id, chunk.seq)
            return
        session = state or StreamSession(chunk.stream_id, self.windowing, self.policy)
        step = session.feed(chunk)
        self._count(chunk.stream_id, step.applied)
        self.tracker.seen(chunk.stream_id, chunk.seq, time.monotonic(), partition)
        if not step.applied.accepted and not step.windows:
            self.store.save(session)  # a held or duplicate chunk changes the pending set at most
            return
        segments = await self._run(session, step.windows)
        self._stamp_latency(segments, chunk.produced_at_ms)
        await self.outputs.publish(segments)
        self._keep_or_end(session, chunk.seq)

    async def _on_idle(self, record: InputRecord, last_seq: int) -> None:
        stream_id = (record.key or b"").decode("utf-8", errors="replace")
        state = self.store.load(stream_id)
        if state is None or isinstance(state, Ended):
            self.store.forget(stream_id)  # a finished stream's marker has served its time
            self.tracker.forget(stream_id)
            return
        if last_seq >= 0 and session_next_seq(state) > last_seq + 1:
            return  # the stream moved on after the tick was sent
        step = state.close()
        segments = await self._run(state, step.windows)
        await self.outputs.publish(segments)
        m.STREAMS_EVICTED.labels(cause="idle").inc()
        log.info("stream %s idle: flushed %d segment(s) and evicted its state", stream_id, len(segments))
        self._keep_or_end(state, session_next_seq(state) - 1)

    async def _run(self, session: StreamSession, windows: Sequence[Window]) -> list[TranscriptSegment]:
        """Transcribe the windows concurrently (so they batch) and merge the results in window order."""
        started = time.monotonic()
        jobs = [None if w.is_empty else w.job(session.stream_id, created_at=started) for w in windows]
        results = await asyncio.gather(*(self._transcribe_one(job) for job in jobs))
        segments: list[TranscriptSegment] = []
        for window, result in zip(windows, results, strict=True):
            segments.extend(session.merge(window, result))
            m.WINDOWS.labels(kind="interim" if window.is_interim else "final").inc()
        if windows:
            m.WINDOW_PROCESSING.observe(time.monotonic() - started)
        return segments

    async def _transcribe_one(self, job: WindowJob | None) -> WindowTranscript | None:
        if job is None:
            return None
        try:
            return await self.transcribe(job)
        except InferenceError as error:
            # The window's words are lost, the stream goes on; the error is counted and logged.
            m.WINDOW_ERRORS.labels(error=type(error).__name__).inc()
            log.error("stream %s window %d failed: %s", job.stream_id, job.window_index, error)
            return None

    def _stamp_latency(self, segments: list[TranscriptSegment], produced_at_ms: int) -> None:
        now = self.clock()
        for i, segment in enumerate(segments):
            latency = (now * 1000.0 - produced_at_ms) if produced_at_ms > 0 else None
            segments[i] = dataclasses.replace(segment, latency_ms=latency, produced_at=now)
            if latency is not None:
                kind = "final" if segment.is_final else "interim"
                m.SEGMENT_LATENCY.labels(kind=kind).observe(max(latency, 0.0) / 1000.0)

    def _keep_or_end(self, session: StreamSession, last_seq: int) -> None:
        if session.finished:
            self.store.end(session.stream_id, last_seq)
            m.STREAMS_EVICTED.labels(cause="end_of_stream").inc()
        else:
            self.store.save(session)

    @staticmethod
    def _count(stream_id: str, applied: ApplyResult) -> None:
        m.CHUNKS.labels(outcome="accepted").inc(len(applied.accepted))
        m.CHUNKS.labels(outcome="held").inc(len(applied.held))
        m.CHUNKS.labels(outcome="duplicate").inc(len(applied.duplicates))
        m.CHUNKS.labels(outcome="late").inc(len(applied.late))
        for gap in applied.gaps:
            m.GAPS.inc()
            log.warning("stream %s: gap %s", stream_id, gap)
        if applied.dropped_samples:
            m.DROPPED_AUDIO.inc(applied.dropped_samples / SAMPLE_RATE)
            log.warning("stream %s: buffer cap dropped %d samples", stream_id, applied.dropped_samples)


def session_next_seq(session: StreamSession) -> int:
    """Return the next sequence number the stream's buffer expects."""
    return session.buffer.next_seq
