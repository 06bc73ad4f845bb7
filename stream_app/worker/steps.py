"""One stream's step: its ready windows through inference, merged in order, published, then stored.

A stream runs at most one step at a time (`LiveStream.busy`); records of the stream that arrive
meanwhile are applied to its buffer and wait for the step's state write. Windows of different
streams run concurrently, so the inference pool batches them. A step:

1. cuts the ready windows (in memory; the stored header still has the cursor before them);
2. if any window needs the model, counts an attempt against the stored header when the model starts
   the first of them (`AttemptGate`, on the pool's thread), and the model waits until that count is
   durable, so a window that kills the process is counted, and one that only waited in the queue
   when a replica died is not. A stream with a count runs its windows alone (``isolated``), so a
   poison window's batch-mates are blamed for one crash at most, and one window per step, so only
   the window that crashed is given up; once the model has returned such a window its count is taken
   back (durably, before the next isolated window starts), so the next suspect's crash does not land
   on it while its segments are still on the way to the broker. A cursor that has used up
   ``max_window_attempts`` is not run again: its windows are dead-lettered (``poison_window``);
3. transcribes the windows, retrying a failed one up to ``max_window_attempts`` times; a window that
   still fails is dead-lettered (``inference_failed``) and marked as a gap in the transcript, keeping
   the words the merger held;
4. merges the results in window order, publishes the segments and waits for the broker;
5. writes the stream's header (or its ended marker) and waits for the changelog; only then are the
   records it covers acknowledged.

Broker failures in 4 and 5 are retried until they succeed (`Outputs`); cancellation (the partition
was revoked) abandons the step, and the records it covers are read again by the next owner.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np

from stream_app.inference.exceptions import InferenceError
from stream_app.inference.types import WindowJob, WindowTranscript
from stream_app.metrics import worker_metrics as m
from stream_app.streaming.windowing import Window
from stream_app.wire.chunk import SAMPLE_RATE
from stream_app.wire.segment import TranscriptSegment
from stream_app.worker.attempts import AttemptGate
from stream_app.worker.live import LiveStream
from stream_app.worker.outputs import Outputs
from stream_app.worker.records import EndedMarker
from stream_app.worker.retry import Backoff
from stream_app.worker.store import StreamStore

log = logging.getLogger(__name__)

Transcribe = Callable[[WindowJob], Awaitable[WindowTranscript]]

H_STREAM = "dlq_stream_id"
H_SESSION = "dlq_session"
H_WINDOW = "dlq_window"
H_START = "dlq_stream_start"
H_END = "dlq_stream_end"
H_OFFSETS = "dlq_source_offsets"


@dataclass(frozen=True)
class Failure:
    """A window given up: why, in the gap marker's words, and the last error."""

    reason: str  # inference_failed | poison_window
    detail: str


@dataclass(frozen=True)
class StepLimits:
    """The bounds a step works within."""

    max_attempts: int
    ended_retention: float
    source_topic: str
    retry: Backoff


class StepRunner:
    """Runs stream steps; see the module docstring."""

    def __init__(
        self,
        store: StreamStore,
        outputs: Outputs,
        transcribe: Transcribe,
        limits: StepLimits,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.outputs = outputs
        self.transcribe = transcribe
        self.limits = limits
        self.clock = clock

    async def step(self, live: LiveStream, *, close: bool = False, previews: bool = True) -> None:
        """Run the stream's ready windows (closing the stream first when ``close``) and store the result."""
        if close:
            live.session.buffer.close()
        # a stream whose windows were in the model when a worker died runs one window per step, so the
        # next crash (and the dead letter) names that window alone
        windows = live.session.buffer.take_ready_windows(previews, limit=1 if live.attempts else 0)
        started = time.monotonic()
        results: dict[int, WindowTranscript | Failure] = {}
        if any(not w.is_empty for w in windows):
            if live.attempts >= self.limits.max_attempts:
                detail = f"a worker died while the model ran the stream's windows {live.attempts} times"
                results = {i: Failure("poison_window", detail) for i, w in enumerate(windows) if not w.is_empty}
                log.error("stream %s: %s; dead-lettering its windows", live.stream_id, detail)
            else:
                gate = AttemptGate(  # each count is taken once; a retried write stores the same value
                    asyncio.get_running_loop(),
                    lambda: self.outputs.durable(self.store.mark_attempt(live), "counting a window attempt"),
                    lambda: self.outputs.durable(self.store.release_attempt(live), "taking back a window attempt"),
                )
                results = await self._transcribe(live, windows, gate)
        segments = await self._merge(live, windows, results)
        if windows:
            m.WINDOW_PROCESSING.observe(time.monotonic() - started)
        await self.publish_and_store(live, segments)

    async def publish_and_store(self, live: LiveStream, segments: Sequence[TranscriptSegment]) -> None:
        """Publish what the stream has to say, store its state, then acknowledge the records it covers."""
        outgoing = [*live.outbox, *segments]
        live.outbox = []
        if outgoing:
            stamped = self._stamp(live, outgoing)
            acked_at = await self.outputs.publish(stamped)
            self._observe_lags(live, stamped, acked_at)
        tickets = live.take_waiting()
        if live.session.finished:
            marker = EndedMarker(
                last_seq=live.session.buffer.next_seq - 1,
                end=live.session.buffer.stream_end,
                shift=live.session.buffer.shift,
                session=live.session_token,
                ended_ms=int(self.clock() * 1000),
                origin_ms=live.origin_ms,
            )
            await self.outputs.durable(lambda: self.store.end(live, marker), "storing an ended stream's marker")
            live.evicting = True
        else:
            await self.outputs.durable(lambda: self.store.write_header(live), "storing a stream's state")
        for ticket in tickets:
            ticket.done()

    # ---- inference --------------------------------------------------------------------------------

    async def _transcribe(
        self, live: LiveStream, windows: Sequence[Window], gate: AttemptGate
    ) -> dict[int, WindowTranscript | Failure]:
        created = time.monotonic()
        prompt = live.session.merger.prompt
        isolated = live.attempts > 0  # alone in the model: taken back when it returns (`AttemptGate.finished`)
        todo = {
            i: dataclasses.replace(
                w.job(live.stream_id, created_at=created, prompt=prompt),
                on_start=gate,
                on_finish=gate.finished if isolated else None,
                isolated=isolated,
            )
            for i, w in enumerate(windows)
            if not w.is_empty
        }
        results: dict[int, WindowTranscript | Failure] = {}
        errors: dict[int, BaseException] = {}
        for attempt in range(1, self.limits.max_attempts + 1):
            if not todo:
                break
            if attempt > 1:
                await asyncio.sleep(self.limits.retry.delay(attempt - 1))
            keys = list(todo)
            outcomes = await asyncio.gather(*(self.transcribe(todo[i]) for i in keys), return_exceptions=True)
            for i, outcome in zip(keys, outcomes, strict=True):
                if isinstance(outcome, asyncio.CancelledError):
                    raise outcome
                if isinstance(outcome, BaseException):
                    errors[i] = outcome
                    self._count_error(live, windows[i], outcome, attempt)
                    continue
                results[i] = outcome
                del todo[i]
                m.WINDOWS.labels(kind="interim" if windows[i].is_interim else "final").inc()
        for i in todo:
            error = errors[i]
            results[i] = Failure("inference_failed", f"{type(error).__name__}: {error}")
        return results

    def _count_error(self, live: LiveStream, window: Window, error: BaseException, attempt: int) -> None:
        m.WINDOW_ERRORS.labels(error=type(error).__name__).inc()
        if not isinstance(error, InferenceError):  # not the model's failure: ours
            m.PROCESSING_ERRORS.labels(kind="bug").inc()
            log.error("stream %s window %d: unexpected error", live.stream_id, window.index, exc_info=error)
        else:
            log.warning(
                "stream %s window %d attempt %d/%d failed: %s",
                live.stream_id,
                window.index,
                attempt,
                self.limits.max_attempts,
                error,
            )

    # ---- merging ----------------------------------------------------------------------------------

    async def _merge(
        self, live: LiveStream, windows: Sequence[Window], results: dict[int, WindowTranscript | Failure]
    ) -> list[TranscriptSegment]:
        segments: list[TranscriptSegment] = []
        for i, window in enumerate(windows):
            result = results.get(i)
            if isinstance(result, Failure):
                if not window.is_interim:
                    m.WINDOW_FAILURES.labels(reason=result.reason).inc()
                    await self._dead_letter_window(live, window, result)
                segments.extend(live.session.fail(window, result.reason, result.detail))
            else:
                segments.extend(live.session.merge(window, result))
        return segments

    async def _dead_letter_window(self, live: LiveStream, window: Window, failure: Failure) -> None:
        """Send a given-up window's audio (16 kHz s16le) with where it came from, so it can be replayed."""
        pcm = np.clip(np.rint(window.samples.astype(np.float64) * 32768.0), -32768, 32767).astype("<i2").tobytes()
        offsets = live.offsets_for(window.start_sample, window.end_sample)  # None after a failover
        headers = [
            ("dlq_reason", failure.reason.encode()),
            ("dlq_detail", failure.detail[:1024].encode("utf-8", errors="replace")),
            ("dlq_source_topic", self.limits.source_topic.encode()),
            ("dlq_source_partition", str(live.partition).encode()),
            (H_OFFSETS, (f"{offsets[0]}-{offsets[1]}" if offsets else "").encode()),
            (H_STREAM, live.stream_id.encode()),
            (H_SESSION, live.session_token.encode()),
            (H_WINDOW, str(window.index).encode()),
            (H_START, f"{window.start:.3f}".encode()),
            (H_END, f"{window.end:.3f}".encode()),
            ("content-type", f"audio/pcm; encoding=s16le; rate={SAMPLE_RATE}; channels=1".encode()),
        ]
        m.DEAD_LETTERS.labels(reason=failure.reason).inc()
        await self.outputs.dead_letter(live.stream_id.encode(), pcm, headers)

    # ---- latency ----------------------------------------------------------------------------------

    def _stamp(self, live: LiveStream, segments: Sequence[TranscriptSegment]) -> list[TranscriptSegment]:
        now = self.clock()
        latency = now * 1000.0 - live.last_chunk_ms if live.last_chunk_ms > 0 else None
        stamped = [
            dataclasses.replace(s, latency_ms=None if latency is None else max(latency, 0.0), produced_at=now)
            for s in segments
        ]
        if latency is not None:
            for segment in stamped:
                m.SEGMENT_LATENCY.labels(kind="final" if segment.is_final else "interim").observe(
                    max(latency, 0.0) / 1000.0
                )
        return stamped

    def _observe_lags(self, live: LiveStream, segments: Sequence[TranscriptSegment], acked_at: float) -> None:
        """Word lags as a listener feels them: from the word's audio reaching the broker to its publication."""
        if live.origin_ms <= 0:
            return
        origin = live.origin_ms / 1000.0
        for segment in segments:
            for word in segment.words:
                lag = max(0.0, acked_at - (origin + word.end))
                if word.end > live.shown_until:
                    m.WORD_EMISSION_LAG.observe(lag)
                if segment.is_final:
                    m.WORD_FINAL_LAG.observe(lag)
            if segment.words:
                live.shown_until = max(live.shown_until, segment.words[-1].end)
