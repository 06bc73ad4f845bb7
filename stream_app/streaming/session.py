"""One stream's buffer, speech track, planner and merger driven together, without Kafka or a model.

The worker (and `transcribe_chunks`, for tests and benchmarks) runs each stream as a loop of steps:

1. `StreamSession.feed` applies a chunk (audio lost on the way is remembered as a gap);
2. `StreamSession.speech_needed` names the samples the voice detector has not read yet, and
   `StreamSession.add_speech` stores its probabilities;
3. `StreamSession.plan` returns the next decode (at most one: each decode's words shape the next) and
   any segments that need no model, and `StreamSession.complete` (or `StreamSession.fail`) merges the
   decode's result.

Deterministic decodes (ticks and cuts, `stream_app.streaming.planner`) come first and depend on the audio
and this state alone. A preview comes only when none is due and the caller allows one.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from stream_app.inference.types import DecodeKind, Priority, WindowJob, WindowTranscript, Word
from stream_app.streaming.anchoring import words_after_final
from stream_app.streaming.buffer import ApplyResult, Loss, StreamBuffer
from stream_app.streaming.config import LiveConfig
from stream_app.streaming.merger import MergePolicy, SegmentMerger
from stream_app.streaming.planner import Cut, End, Pause, Planner, PlannerState, Rebase, Tick
from stream_app.streaming.speech import FRAME, SpeechTrack
from stream_app.streaming.text import join_words
from stream_app.wire.chunk import SAMPLE_RATE, AudioChunk
from stream_app.wire.segment import TranscriptSegment


@dataclass(frozen=True)
class DecodeRequest:
    """One decode of a stream's open window: ``[start, stop)``, continuing after ``prefix``."""

    kind: DecodeKind
    start: int  # stream samples
    stop: int
    samples: npt.NDArray[np.float32]
    prefix: tuple[Word, ...]
    speech: tuple[tuple[int, int], ...]  # voiced spans of [start, stop) (stream samples)
    number: int  # the stream's deterministic decode counter (previews: the counter of the next one)
    last: bool = False  # a cut that ends the stream
    keep_open: bool = False  # a pause: every word becomes final but the window stays open
    forced: bool = True  # the decoder is forced through ``prefix``; else it decodes them freely (anchoring)

    @property
    def duration(self) -> float:
        """Seconds of audio the decode reads."""
        return (self.stop - self.start) / SAMPLE_RATE

    def job(self, stream_id: str, created_at: float = 0.0, served_at: float = 0.0) -> WindowJob:
        """Make the inference request for this decode (previews run at a lower priority).

        ``served_at``: when the stream's previous commit decode returned (0: never, here); the pool
        serves the stream waiting since longest first.
        """
        start = self.start / SAMPLE_RATE
        return WindowJob(
            stream_id=stream_id,
            window_index=self.number,
            start=start,
            samples=self.samples,
            priority=Priority.INTERIM if self.kind is DecodeKind.PREVIEW else Priority.FINAL,
            created_at=created_at,
            prefix=join_words(self.prefix) if self.forced else "",
            prefix_end=max(0.0, self.prefix[-1].end - start) if self.prefix else 0.0,
            kind=self.kind,
            speech=tuple(((a - self.start) / SAMPLE_RATE, (b - self.start) / SAMPLE_RATE) for a, b in self.speech),
            served_at=served_at,
        )


@dataclass(frozen=True)
class Plan:
    """What a stream needs next: segments that took no model, and at most one decode."""

    segments: tuple[TranscriptSegment, ...] = ()
    request: DecodeRequest | None = None


class StreamSession:
    """A stream's buffer, speech track, planner and merger, stored and restored as one value."""

    def __init__(
        self,
        stream_id: str,
        config: LiveConfig,
        policy: MergePolicy | None = None,
        *,
        session: str = "0",
        buffer: StreamBuffer | None = None,
        merger: SegmentMerger | None = None,
        track: SpeechTrack | None = None,
        planner: PlannerState | None = None,
        losses: Iterable[Loss] = (),
    ) -> None:
        self.config = config
        self.buffer = buffer or StreamBuffer(config)
        self.merger = merger or SegmentMerger(stream_id, policy or MergePolicy.of(config), session=session)
        self.track = track or SpeechTrack(origin=self.buffer.base)
        self.planner = Planner(config, planner)
        self._losses = sorted(losses, key=lambda loss: loss.start)
        self._previewed = 0  # end of the latest decode of the open window (previews are spaced from it)
        self.unanchored = 0  # commit decodes whose new words were told from the final ones by time alone

    @property
    def stream_id(self) -> str:
        """The stream this session belongs to."""
        return self.merger.stream_id

    @property
    def session(self) -> str:
        """The session (epoch) this state belongs to: part of every segment id."""
        return self.merger.state.session

    @property
    def finished(self) -> bool:
        """The end-of-stream segment was emitted: the stream's state can be evicted."""
        return self.merger.ended

    @property
    def losses(self) -> tuple[Loss, ...]:
        """Audio lost before transcription whose gap the planner has not reached yet (stored)."""
        return tuple(self._losses)

    # ---- audio in -------------------------------------------------------------------------------

    def feed(self, chunk: AudioChunk) -> ApplyResult:
        """Apply one chunk; audio lost on the way waits for the planner to reach it."""
        applied = self.buffer.apply(chunk)
        self._note_losses(applied)
        if (
            self.buffer.state.resume_at_first is False
            and self.track.frames == 0
            and self.track.origin < self.buffer.base
        ):
            self.track.origin = self.buffer.base  # a resumed session's grid starts at its first sample
        return applied

    def close(self) -> ApplyResult:
        """End the stream now (idle timeout, or an end of stream stuck behind a hole)."""
        applied = self.buffer.close()
        self._note_losses(applied)
        return applied

    def _note_losses(self, applied: ApplyResult) -> None:
        for loss in applied.losses:
            bisect.insort(self._losses, loss, key=lambda item: item.start)

    def speech_needed(self) -> tuple[int, npt.NDArray[np.float32]]:
        """Return the samples the voice detector should read next: ``(start, samples)``.

        Whole 512-sample frames on the stream's grid; at the end of the stream the last partial frame
        is completed with silence. Empty when nothing new is due.
        """
        start, stop = self.track.pending(self.buffer.stream_end, ended=self.buffer.ended)
        samples = self.buffer.slice(start, stop)
        if samples.shape[0] < stop - start:
            samples = np.concatenate([samples, np.zeros(stop - start - samples.shape[0], np.float32)])
        if start == stop and self.buffer.ended:
            self.track.finish(self.buffer.stream_end)
        return start, samples

    def add_speech(self, probs: npt.NDArray[np.float32], model_state: bytes) -> None:
        """Store what the detector said about the samples `speech_needed` returned."""
        self.track.extend(probs, model_state)
        if self.buffer.ended:
            self.track.finish(self.buffer.stream_end)

    def has_work(self, *, previews: bool = True) -> bool:
        """Whether a step would do anything now: new audio to hear, frames to plan, an end, a preview."""
        if self.finished:
            return False
        start, stop = self.track.pending(self.buffer.stream_end, ended=self.buffer.ended)
        if stop > start or self.planner.state.scanned < self.track.frames or self._losses:
            return True
        if self.buffer.ended:
            return True
        return previews and self._preview_position() is not None

    # ---- decodes --------------------------------------------------------------------------------

    def plan(self, *, previews: bool = True, skip_missed: bool = False) -> Plan:
        """Return the next decode (ticks and cuts first) and the segments that needed no model.

        ``skip_missed``: a stream behind its audio passes over the ticks it missed (`Planner.next_event`).
        """
        segments: list[TranscriptSegment] = []
        while True:
            stop_at = self._losses[0].start if self._losses else None
            event = self.planner.next_event(
                self.track, self.buffer.stream_end, self.buffer.ended, stop_at, skip_missed=skip_missed
            )
            self._hold_window_in_buffer()
            if event is None:
                if self._losses and self._reached(self._losses[0].start):
                    segments.extend(self._attach_loss(self._losses.pop(0)))
                    continue
                break
            if isinstance(event, Tick):
                return Plan(tuple(segments), self._request(DecodeKind.TICK, event.position))
            if isinstance(event, Pause):
                if self._too_little_speech(event.voiced):
                    continue
                request = self._request(DecodeKind.CUT, event.end)
                return Plan(tuple(segments), replace(request, keep_open=True))
            if isinstance(event, Rebase):
                cut = self._rebase(event.position)
                if cut is None:
                    continue
                event = cut
            if isinstance(event, Cut):
                if self._too_little_speech(event.voiced):
                    segments.extend(self.merger.cut(None, event.end, last=event.last))
                    self._forget_window(event.end)
                    continue
                return Plan(tuple(segments), self._make(DecodeKind.CUT, event.start, event.end, last=event.last))
            if isinstance(event, End):
                segments.extend(self.merger.end(event.position))
                break
        self._release()
        preview = self._preview() if previews and not self.buffer.ended else None
        return Plan(tuple(segments), preview)

    def _too_little_speech(self, voiced: int) -> bool:
        """Whether a pause or cut with ``voiced`` samples of speech has nothing to decode (a click).

        Not when a tick of the window heard words: the VAD's count may miss speech the model heard.
        """
        return voiced < self.config.min_speech and not self.merger.state.hypothesis

    def preview_dropped(self, request: DecodeRequest) -> None:
        """Note that a preview `plan` returned was not run (the model was behind): the next comes a step later."""
        if request.kind is DecodeKind.PREVIEW:
            self._previewed = max(self._previewed, request.stop)

    def complete(self, request: DecodeRequest, result: WindowTranscript) -> list[TranscriptSegment]:
        """Merge the result of a decode `plan` returned."""
        if not request.forced and request.prefix and result.words:
            anchored = words_after_final(result.words, request.prefix, request.start / SAMPLE_RATE)
            self.unanchored += not anchored.matched and request.kind is not DecodeKind.PREVIEW  # commit points only
            result = replace(result, words=tuple(anchored.words), text=" ".join(w.text for w in anchored.words))
        if request.kind is DecodeKind.PREVIEW:
            self._previewed = max(self._previewed, request.stop)
            return self.merger.preview(result, request.stop)
        if request.kind is DecodeKind.TICK:
            self._previewed = max(self._previewed, request.stop)
            self.buffer.heard(request.stop - self.config.commit_lookahead)
            return self.merger.tick(result, request.stop)
        segments = self.merger.cut(result, request.stop, last=request.last, close=not request.keep_open)
        if request.keep_open:
            self.buffer.heard(request.stop)
            self._previewed = max(self._previewed, request.stop)
        else:
            self._forget_window(request.stop)
        return segments

    def fail(self, request: DecodeRequest, reason: str, detail: str = "") -> list[TranscriptSegment]:
        """Record a decode that failed after every retry: a tick or preview changes nothing, a cut leaves a gap."""
        if request.kind is not DecodeKind.CUT:
            return []
        segments = self.merger.fail(request.start, request.stop, reason, detail, last=request.last)
        if request.keep_open:  # the window's words after the failed span would be decoded again with it: close it
            self.planner.close_at(request.stop)
        self._forget_window(request.stop)
        return segments

    # ---- helpers --------------------------------------------------------------------------------

    def _request(self, kind: DecodeKind, stop: int) -> DecodeRequest:
        start = self.planner.state.window_start
        assert start is not None  # the planner gives ticks and previews for open windows only
        return self._make(kind, start, stop)

    def _make(self, kind: DecodeKind, start: int, stop: int, *, last: bool = False) -> DecodeRequest:
        start = max(start, self.buffer.base)
        stop = min(max(stop, start), self.buffer.stream_end)
        context = self.config.preview_reread if kind is DecodeKind.PREVIEW else self.config.decode_context
        start, prefix = self._anchor(start, stop, context)
        speech = tuple(self.track.speech_spans(start, stop, self.config.speech_threshold))
        number = self.merger.state.decodes
        if kind is not DecodeKind.PREVIEW:
            self.merger.state.decodes += 1
        samples = self.buffer.slice(start, stop)
        forced = self.config.force_final_words
        return DecodeRequest(kind, start, stop, samples, prefix, speech, number, last, forced=forced)

    def _anchor(self, start: int, stop: int, context: int) -> tuple[int, tuple[Word, ...]]:
        """Where a decode of ``[start, stop)`` begins, and the final words it reads again.

        Final words more than ``context`` (0: no limit) before the last one stay out of the decode: it starts
        between two final words (the middle of the silence between them), as late as keeps that much
        context, and reads the final words after that point only (forced through them, or decoded
        freely). Always at a word boundary after the window's start, so no word is cut in two; the
        window's start when there is none.
        """
        prefix = self.merger.prefix
        if not context or len(prefix) < 2:
            return start, prefix
        keep_from = prefix[-1].end * SAMPLE_RATE - context
        if prefix[0].start * SAMPLE_RATE >= keep_from:  # every final word lies within the context
            return start, prefix
        boundaries = [round((prefix[i - 1].end + prefix[i].start) / 2 * SAMPLE_RATE) for i in range(1, len(prefix))]
        for i, boundary in enumerate(boundaries, start=1):
            if start < boundary < stop and (boundary >= keep_from or i == len(prefix) - 1):
                return boundary, prefix[i:]
        return start, prefix

    def _hold_window_in_buffer(self) -> None:
        """Start an open window no earlier than the audio still held.

        A window opens ``speech_lead`` before its speech, on the feature grid. Audio released while no
        window is open stops at the earliest start such a window can get (`_release`), so this only
        moves a window restored from a state stored by an earlier release, which released up to a few
        samples past it: its decodes read from the first sample held anyway, and a stored state with a
        window before its audio is refused on restore (seen in `bench failover`).
        """
        state = self.planner.state
        if state.window_start is not None and state.window_start < self.buffer.base:
            state.window_start = self.buffer.base

    def _forget_window(self, end: int) -> None:
        """Release the audio and probabilities of a window final up to ``end`` (keep the next lead)."""
        self.buffer.heard(end)
        self._previewed = 0
        self._release()

    def _release(self) -> None:
        """Forget audio and probabilities no decode can read again (a closed window keeps the next lead)."""
        planner = self.planner.state
        if planner.window_start is not None:
            keep = planner.window_start
        else:  # the earliest start a window opening at the next voiced frame can get, whenever this runs
            lead_from = self.track.position(planner.scanned) - self.config.speech_lead
            keep = self.planner.window_start_for(lead_from, self.track.origin)
        keep = min(keep, self.buffer.stream_end)
        if keep > self.buffer.base:
            self.buffer.release_to(keep)
            self.track.release_before(keep)

    def _rebase(self, position: int) -> Cut | None:
        """Shorten a window that reached its maximum: into a gap between final words (two or more), else cut it."""
        start = self.planner.state.window_start
        assert start is not None
        keep_from = position - self.config.max_window // 2
        committed = self.merger.prefix
        boundaries = [
            (committed[i + 1].start - committed[i].end, (committed[i].end + committed[i + 1].start) / 2)
            for i in range(len(committed) - 1)
        ]
        # not after the last final word: the gap to the newest decode's first word is where a word that
        # decode missed would lie (and the biggest gap, so the likeliest pick), and it would be cut out
        candidates = [(gap, at) for gap, at in boundaries if at * SAMPLE_RATE >= start + FRAME]
        eligible = [(gap, at) for gap, at in candidates if at * SAMPLE_RATE <= keep_from] or candidates
        if eligible:
            _, at = max(eligible, key=lambda item: (item[0], item[1]))
            new_start = round(at * SAMPLE_RATE)
            self.planner.move_start(new_start)
            self.merger.rebase(new_start)
            self._release()
            return None
        quiet = self.planner.quietest_point(self.track, start + self.config.max_window // 2, position)
        return self.planner.cut_and_reopen(quiet, self.track)

    def _preview_position(self) -> int | None:
        """Where a preview of the open window would end now (on the preview grid), or None when none is due."""
        cfg, planner = self.config, self.planner.state
        start = planner.window_start
        if start is None or not cfg.preview_step:
            return None
        origin = self.track.origin
        position = origin + (self.track.known_until - origin) // cfg.preview_step * cfg.preview_step
        if position - start < cfg.min_decode or position <= max(self._previewed, start):
            return None
        if planner.last_voiced_end <= self._previewed:
            return None  # nothing said since the last decode
        return position

    def _preview(self) -> DecodeRequest | None:
        position = self._preview_position()
        start = self.planner.state.window_start
        if position is None or start is None:
            return None
        return self._make(DecodeKind.PREVIEW, start, position)

    def _reached(self, position: int) -> bool:
        return self.track.position(self.planner.state.scanned) >= position or (
            self.buffer.ended and self.track.complete and self.planner.state.scanned >= self.track.frames
        )

    def _attach_loss(self, loss: Loss) -> list[TranscriptSegment]:
        start, end = loss.start / SAMPLE_RATE, loss.end / SAMPLE_RATE
        self.merger.gap(start, end, loss.reason, loss.detail)
        if self.planner.state.window_start is None:
            return self.merger.flush(loss.end)
        return []

    _window_start_before_cut: int = 0


def transcribe_chunks(
    chunks: Iterable[AudioChunk],
    transcribe: Callable[[DecodeRequest], WindowTranscript],
    detect: Callable[[npt.NDArray[np.float32], bytes], tuple[npt.NDArray[np.float32], bytes]],
    config: LiveConfig,
    policy: MergePolicy | None = None,
    *,
    close_at_end: bool = True,
    previews: bool = False,
    skip_missed: bool = False,
) -> Iterator[TranscriptSegment]:
    """Run one stream's chunks through the session, yielding segments as they are produced.

    ``transcribe`` decodes one request; ``detect`` is the voice detector (samples and its state in,
    probabilities and its new state out). With ``close_at_end`` the stream is closed after the last
    chunk even if no chunk carried end of stream, so the end-of-stream segment always comes out.
    """
    session: StreamSession | None = None
    for chunk in chunks:
        if session is None:
            session = StreamSession(chunk.stream_id, config, policy)
        session.feed(chunk)
        yield from run_session(session, transcribe, detect, previews=previews, skip_missed=skip_missed)
    if session is not None and close_at_end and not session.finished:
        session.close()
        yield from run_session(session, transcribe, detect, previews=previews, skip_missed=skip_missed)


def run_session(
    session: StreamSession,
    transcribe: Callable[[DecodeRequest], WindowTranscript],
    detect: Callable[[npt.NDArray[np.float32], bytes], tuple[npt.NDArray[np.float32], bytes]],
    *,
    previews: bool = False,
    skip_missed: bool = False,
) -> Iterator[TranscriptSegment]:
    """Detect speech in the new audio, then plan and decode until the session needs more audio."""
    _, samples = session.speech_needed()
    if samples.shape[0]:
        probs, state = detect(samples, session.track.model_state)
        session.add_speech(probs, state)
    while True:
        plan = session.plan(previews=previews, skip_missed=skip_missed)
        yield from plan.segments
        if plan.request is None:
            return
        yield from session.complete(plan.request, transcribe(plan.request))
