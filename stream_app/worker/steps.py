"""One stream's step: its new audio heard, its next decode run and merged, its state stored, its segments out.

A stream runs at most one step at a time (`LiveStream.busy`); records of the stream that arrive
meanwhile are applied to its buffer and wait for the next state write. Decodes of different streams
run concurrently, so the inference pool batches them. A step:

1. runs the voice detector over the samples it has not read (`StreamSession.speech_needed`, off the
   event loop);
2. asks the session for its next decode (`StreamSession.plan`: deterministic ticks and cuts first, a
   preview only when none is due and the pool has room) and the segments that needed no model;
3. runs the decode, counting an attempt against the stored header when the model starts it
   (`AttemptGate`, on the pool's thread; the model waits until the count is durable), so a decode that
   kills the process is counted and one that only waited in the queue when a replica died is not. A
   stream whose count is one below the limit runs its decode alone (``isolated``,
   `StepLimits.isolate_from`) and takes the count back durably once the model has returned it; an
   ordinary decode's count is taken back in memory when the model returns it (`WindowJob.on_finish`,
   a result or a failure alike; the stored one waits for the step's state write), so a step that
   publishes nothing does not make the next one suspect. A decode whose state
   has used up ``max_window_attempts`` is not run again: it is dead-lettered (``poison_window``). A
   decode that fails ``max_window_attempts`` times is dead-lettered (``inference_failed``); a final
   one leaves a gap in the transcript;
4. stores the stream's state **with the segments it is about to publish** (the outbox), then publishes
   them and waits for the broker, then acknowledges the records the state covers. A replica that dies
   in between is replaced by one that restores the state and publishes the same outbox again: a
   segment id, once published, never carries other words, and revisions only grow.

Any failure inside a step (our bug, not the broker's) leaves the stream as its stored state says: the
in-memory session is dropped and restored from the tables, so no decode is lost or taken twice; the
step runs again. Broker failures in 4 are retried until they succeed (`Outputs`); cancellation (the
partition was revoked) abandons the step, and the records it covers are read again by the next owner.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stream_app.inference.exceptions import InferenceError
from stream_app.inference.pool import PreviewExpired
from stream_app.inference.types import DecodeKind, WindowJob, WindowTranscript
from stream_app.metrics import worker_metrics as m
from stream_app.streaming.session import DecodeRequest
from stream_app.streaming.word_lags import observe_word_lags
from stream_app.wire import dlq
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
Detect = Callable[[npt.NDArray[np.float32], bytes], tuple[npt.NDArray[np.float32], bytes]]


@dataclass(frozen=True)
class Failure:
    """A decode given up: why, in the gap marker's words, and the last error."""

    reason: str  # inference_failed | poison_window
    detail: str


@dataclass(frozen=True)
class StepLimits:
    """The bounds a step works within."""

    max_attempts: int
    ended_retention: float
    source_topic: str
    retry: Backoff
    skip_missed_ticks: bool = True  # a stream behind its audio passes over the ticks it missed (`Planner`)

    @property
    def isolate_from(self) -> int:
        """The attempt count from which a stream's decode runs alone in the model.

        One count below the limit: a stream whose decode was in the model when one worker died (an
        operator's SIGKILL, a node lost, an OOM kill) decodes in company with the other streams, so a
        takeover is not serialised behind every such stream; from the next death on it runs alone, so
        the death after that names it only. With a limit of 2 or more, a stream that only shared the
        model with a poison window is blamed at most ``max_attempts - 1`` times and is never given up
        (with 1, the first death gives up every decode that was in the model). The price: a poison
        window kills ``max_attempts - 1`` workers in company, each taking the decodes in flight with it.
        """
        return max(1, self.max_attempts - 1)


class StepRunner:
    """Runs stream steps; see the module docstring."""

    def __init__(
        self,
        store: StreamStore,
        outputs: Outputs,
        transcribe: Transcribe,
        detect: Detect,
        limits: StepLimits,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.outputs = outputs
        self.transcribe = transcribe
        self.detect = detect
        self.limits = limits
        self.clock = clock

    async def step(self, live: LiveStream, *, close: bool = False, previews: bool = True) -> None:
        """Hear the stream's new audio, run its next decode (closing it first when ``close``), store, publish."""
        session = live.session
        if close:
            session.close()
        _, samples = session.speech_needed()
        if samples.shape[0]:
            probs, state = await asyncio.to_thread(self.detect, samples, session.track.model_state)
            session.add_speech(probs, state)
        plan = session.plan(previews=previews and not live.attempts, skip_missed=self.limits.skip_missed_ticks)
        segments = list(plan.segments)
        if plan.request is not None:
            started = time.monotonic()
            segments.extend(await self._decode(live, plan.request))
            m.WINDOW_PROCESSING.observe(time.monotonic() - started)
        live.dirty = True
        if segments or session.finished or close:
            await self.publish_and_store(live, segments)

    async def publish_and_store(self, live: LiveStream, segments: Sequence[TranscriptSegment]) -> None:
        """Store the state with its outbox, publish the outbox, then acknowledge the records it covers."""
        live.outbox.extend(segments)
        tickets = live.take_waiting()
        if live.outbox or not live.session.finished:
            await self.outputs.durable(lambda: self.store.write_header(live), "storing a stream's state")
        if live.outbox:
            stamped = self._stamp(live, live.outbox)
            acked_at = await self.outputs.publish(stamped, live.epoch)
            self._observe_lags(live, stamped, acked_at)
            live.outbox = []  # the next state write records that they went out
            live.dirty = True
        if live.session.finished:
            marker = EndedMarker(
                last_seq=live.session.buffer.next_seq - 1,
                end=live.session.buffer.stream_end,
                shift=live.session.buffer.shift,
                session=live.session_token,
                ended_ms=int(self.clock() * 1000),
                origin_ms=live.origin_ms,
                input_offset=live.input_offset,
                key_digest=live.key_digest,
            )
            await self.outputs.durable(lambda: self.store.end(live, marker), "storing an ended stream's marker")
            live.evicting = True
        for ticket in tickets:
            ticket.done()

    # ---- inference --------------------------------------------------------------------------------

    async def _decode(self, live: LiveStream, request: DecodeRequest) -> list[TranscriptSegment]:
        session = live.session
        final = request.kind is not DecodeKind.PREVIEW
        if final and live.attempts >= self.limits.max_attempts:
            detail = f"a worker died while the model ran this decode {live.attempts} times"
            log.error("stream %s decode %d: %s; dead-lettering it", live.stream_id, request.number, detail)
            return await self._give_up(live, request, Failure("poison_window", detail))
        gate = AttemptGate(  # each count is taken once; a retried write stores the same value
            asyncio.get_running_loop(),
            lambda: self.outputs.durable(self.store.mark_attempt(live), "counting a decode attempt"),
            lambda: self.outputs.durable(self.store.release_attempt(live), "taking back a decode attempt"),
            forget=lambda: self.store.forget_attempt(live),
        )
        # alone in the model once suspect; when the model returns the window (a result or a failure) the
        # count is taken back: durably for a suspect one (`AttemptGate.finished`), else in memory only
        isolated = live.attempts >= self.limits.isolate_from
        job = dataclasses.replace(
            request.job(live.stream_id, created_at=time.monotonic(), served_at=live.served_at),
            on_start=gate if final else None,
            on_finish=(gate.finished if isolated else gate.returned) if final else None,
            isolated=isolated,
        )
        error: BaseException | None = None
        tries = self.limits.max_attempts if final else 1  # a preview is best effort: never retried
        for attempt in range(1, tries + 1):
            if attempt > 1:
                await asyncio.sleep(self.limits.retry.delay(attempt - 1))
                job = dataclasses.replace(job, served_at=live.served_at)  # a retry waits its turn again
            try:
                result = await self.transcribe(job)
            except asyncio.CancelledError:
                raise
            except PreviewExpired:
                m.PREVIEWS_EXPIRED.inc()  # the model is behind: the stream goes on to its next commit decode
                session.preview_dropped(request)
                return []
            except Exception as exc:
                error = exc
                self._count_error(live, request, exc, attempt, tries)
                continue
            finally:
                if final:
                    live.served_at = time.monotonic()
            m.WINDOWS.labels(kind=request.kind.value).inc()
            unanchored = session.unanchored
            segments = session.complete(request, result)
            m.UNANCHORED_DECODES.inc(session.unanchored - unanchored)
            return segments
        if not final:
            return []
        assert error is not None
        return await self._give_up(live, request, Failure("inference_failed", f"{type(error).__name__}: {error}"))

    async def _give_up(self, live: LiveStream, request: DecodeRequest, failure: Failure) -> list[TranscriptSegment]:
        m.WINDOW_FAILURES.labels(reason=failure.reason).inc()
        await self._dead_letter(live, request, failure)
        return live.session.fail(request, failure.reason, failure.detail)

    def _count_error(
        self, live: LiveStream, request: DecodeRequest, error: BaseException, attempt: int, of: int
    ) -> None:
        m.WINDOW_ERRORS.labels(error=type(error).__name__).inc()
        if not isinstance(error, InferenceError):  # not the model's failure: ours
            m.PROCESSING_ERRORS.labels(kind="bug").inc()
            log.error("stream %s decode %d: unexpected error", live.stream_id, request.number, exc_info=error)
        else:
            log.warning(
                "stream %s decode %d attempt %d/%d failed: %s", live.stream_id, request.number, attempt, of, error
            )

    async def _dead_letter(self, live: LiveStream, request: DecodeRequest, failure: Failure) -> None:
        """Send a given-up decode's audio (16 kHz s16le) with where it came from, so it can be replayed."""
        pcm = np.clip(np.rint(request.samples.astype(np.float64) * 32768.0), -32768, 32767).astype("<i2").tobytes()
        offsets = live.offsets_for(request.start, request.stop)  # None after a failover
        headers = [
            (dlq.H_REASON, failure.reason.encode()),
            (dlq.H_DETAIL, failure.detail[: dlq.MAX_DETAIL].encode("utf-8", errors="replace")),
            (dlq.H_SOURCE_TOPIC, self.limits.source_topic.encode()),
            (dlq.H_SOURCE_PARTITION, str(live.partition).encode()),
            (dlq.H_SOURCE_OFFSETS, (f"{offsets[0]}-{offsets[1]}" if offsets else "").encode()),
            (dlq.H_STREAM_ID, live.stream_id.encode()),
            (dlq.H_SESSION, live.session_token.encode()),
            (dlq.H_WINDOW, str(request.number).encode()),
            (dlq.H_STREAM_START, f"{request.start / SAMPLE_RATE:.3f}".encode()),
            (dlq.H_STREAM_END, f"{request.stop / SAMPLE_RATE:.3f}".encode()),
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
        lags = observe_word_lags(segments, live.origin_ms / 1000.0, acked_at, live.shown_until)
        live.shown_until = lags.shown_until
        for lag in lags.emission:
            m.WORD_EMISSION_LAG.observe(lag)
        for lag in lags.final:
            m.WORD_FINAL_LAG.observe(lag)
