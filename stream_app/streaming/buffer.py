"""StreamBuffer: one stream's audio, put in order and cut into windows.

Rules, in the order they apply to each chunk:

* **Order.** Chunks are applied by sequence number, starting at 0. A chunk whose ``seq`` is already
  applied or already held is a duplicate: dropped, reported, state unchanged (replays are harmless).
  A chunk ahead of the next expected ``seq`` is held until the hole fills.
* **Lost chunks.** When more than ``max_reorder_chunks`` chunks are held, or they hold more than
  ``max_held`` samples together (so a recorder sending huge chunks out of order cannot make the state
  grow past the changelog's record limits), or an end-of-stream chunk is held behind a hole, the
  missing sequence numbers are declared lost and the held chunks are applied.
  A lost chunk that turns up later is a duplicate (its ``seq`` is behind).
* **Resumed sessions.** A buffer made with ``resume_at`` (a stream that comes back after its idle end)
  starts its timeline at the first chunk it appends, not at ``resume_at``: the pause is not filled.
* **Offsets.** A chunk starting after the buffer's end (a lost chunk, or a recorder that skipped
  audio) is preceded by silence, at most ``max_gap_fill`` samples; a longer jump is skipped, so stream
  time after it runs behind the recorder's offsets by the skipped amount (``GapReport.skipped_samples``,
  `StreamBuffer.shift`). A chunk starting before the buffer's end loses its overlapping samples.
* **Cap.** When more than ``buffer_cap`` samples are buffered (windows were not taken: inference fell
  behind), the oldest audio is dropped, whole hops at a time, and reported.
* **Windows.** Window ``k`` starts at ``s_k`` and is ready once the stream holds ``s_k + window``; it
  ends at a pause in its last ``pause_search`` samples or at ``s_k + window`` (the rule of
  `stream_app.streaming.windowing`). At end of stream, ``[s_k, end)`` is ready as the last window.
  When the previous window already saw every sample (the stream ends inside its overlap), or the
  rest is silence (below the pause threshold of the latest full window's speech level), the last
  window is empty: re-transcribing a second of overlap or of silence alone invites hallucinations,
  and the merger commits the held words instead. Full windows are never last, so the windows stay a
  function of the samples alone, whatever the chunking and however end of stream arrives.
  With an interim step ``S``, a preview of the next window's audio so far is ready at each position
  ``first + j * S``, ``first`` being the end of the audio the previous window saw (``s_0`` for
  window 0); several positions reached at once give one preview, of the latest. Audio no window
  needs any more is released.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from stream_app.streaming.pauses import Pause, find_pause, first_pause_after_speech, is_silent, silence_threshold
from stream_app.streaming.state import BufferState, PendingChunk
from stream_app.streaming.windowing import Window, WindowingConfig
from stream_app.wire.chunk import AudioChunk


@dataclass(frozen=True)
class GapReport:
    """A hole in the stream: lost sequence numbers and/or a jump in the stream offset."""

    position: int  # buffer-timeline sample where the hole starts
    first_lost_seq: int | None = None
    lost_count: int = 0
    silence_samples: int = 0  # silence inserted
    skipped_samples: int = 0  # stream time skipped beyond the fill cap


@dataclass(frozen=True)
class ApplyResult:
    """What applying one chunk did, for metrics and logs."""

    accepted: tuple[int, ...] = ()  # sequence numbers appended now (this chunk and released held ones)
    held: tuple[int, ...] = ()  # this chunk's seq when it waits for earlier ones
    duplicates: tuple[int, ...] = ()
    late: tuple[int, ...] = ()  # arrived after end of stream
    gaps: tuple[GapReport, ...] = ()
    dropped_samples: int = 0  # oldest audio dropped by the buffer cap
    overlap_samples: int = 0  # samples that repeated stream time already buffered


@dataclass
class _Outcome:
    accepted: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    late: list[int] = field(default_factory=list)
    gaps: list[GapReport] = field(default_factory=list)
    dropped: int = 0
    overlap: int = 0
    lost: tuple[int, int] | None = None  # (first lost seq, count) waiting for the next appended chunk

    def result(self) -> ApplyResult:
        return ApplyResult(
            tuple(self.accepted),
            tuple(self.held),
            tuple(self.duplicates),
            tuple(self.late),
            tuple(self.gaps),
            self.dropped,
            self.overlap,
        )


UTTERANCE_GRID = 1600  # utterance ends are looked for every 100 ms of audio (a fixed grid: deterministic)


class StreamBuffer:
    """Orders one stream's chunks, bounds its audio and hands out its windows."""

    def __init__(self, config: WindowingConfig, *, first_seq: int = 0, resume_at: int | None = None) -> None:
        self._s = BufferState(config=config, next_seq=first_seq)
        if resume_at is not None:
            self._s.audio.reset(resume_at)
            self._s.next_start = self._s.seen_until = self._s.last_interim_end = resume_at
            self._s.resume_at_first = True

    @classmethod
    def from_state(cls, state: BufferState) -> StreamBuffer:
        """Wrap a state (restored from the worker's tables)."""
        buffer = cls.__new__(cls)
        buffer._s = state
        return buffer

    @property
    def state(self) -> BufferState:
        """The live state, for the worker's store (which pages the audio and held chunks)."""
        return self._s

    @property
    def config(self) -> WindowingConfig:
        """The stream's window grid and limits."""
        return self._s.config

    @property
    def ended(self) -> bool:
        """End of stream was applied (or the stream was closed)."""
        return self._s.ended

    @property
    def finished(self) -> bool:
        """The last window was handed out: nothing more will come from this buffer."""
        return self._s.finished

    @property
    def stream_end(self) -> int:
        """Buffer-timeline position just after the last sample received."""
        return self._s.audio.end

    @property
    def base(self) -> int:
        """Buffer-timeline position of the first sample still held."""
        return self._s.audio.base

    @property
    def shift(self) -> int:
        """Stream time skipped by capped gaps: recorder offset minus buffer timeline."""
        return self._s.shift

    @property
    def buffered_samples(self) -> int:
        """Samples held in memory for windows to come (not counting held chunks)."""
        return len(self._s.audio)

    @property
    def next_start(self) -> int:
        """First sample of the next final window (cut at pauses, windows are not on a grid)."""
        return self._s.next_start

    @property
    def speech_level(self) -> float:
        """Speech level (frame RMS) of the latest full window cut by the pause rule, 0 before one."""
        return self._s.speech_level

    @property
    def next_seq(self) -> int:
        """The sequence number the buffer expects next (every lower one is applied, held-over or lost)."""
        return self._s.next_seq

    @property
    def pending_count(self) -> int:
        """Out-of-order chunks held for a hole to fill."""
        return len(self._s.pending)

    def apply(self, chunk: AudioChunk) -> ApplyResult:
        """Apply one chunk according to the ordering, gap, overlap and cap rules of this module."""
        s, out = self._s, _Outcome()
        if chunk.seq < s.next_seq or chunk.seq in s.pending:
            out.duplicates.append(chunk.seq)
            return out.result()
        if s.ended:
            out.late.append(chunk.seq)
            return out.result()
        samples = np.asarray(chunk.samples, dtype=np.float32).reshape(-1).copy()
        s.pending[chunk.seq] = PendingChunk(chunk.offset, samples, chunk.end_of_stream)
        self._drain(out)
        eos_held = any(p.end_of_stream for p in s.pending.values())
        while s.pending and (eos_held or self._too_much_held()):
            self._declare_lost(out)
        if chunk.seq in s.pending:
            out.held.append(chunk.seq)
        return out.result()

    def _too_much_held(self) -> bool:
        s = self._s
        held = sum(int(p.samples.shape[0]) for p in s.pending.values())
        return len(s.pending) > s.config.max_reorder_chunks or held > s.config.max_held

    def close(self) -> ApplyResult:
        """End the stream now (idle timeout): held chunks are applied past their holes."""
        s, out = self._s, _Outcome()
        while s.pending and not s.ended:
            self._declare_lost(out)
        s.ended = True
        self._discard_after_end(out)
        return out.result()

    def flush(self) -> list[Window]:
        """Close the stream and return every window still to transcribe, the last one included."""
        self.close()
        return self.take_ready_windows()

    def take_ready_windows(self, previews: bool = True, limit: int = 0) -> list[Window]:
        """Hand out the windows that became ready (finals in order, then at most one interim preview).

        ``previews=False`` (the worker is behind) leaves the preview out: finals never wait for one.
        ``limit`` > 0 hands out at most that many; the rest stay ready for the next call.
        """
        s, cfg = self._s, self._s.config
        windows: list[Window] = []
        while not s.finished and not (limit and len(windows) >= limit):
            start = s.next_start
            if s.audio.end >= start + cfg.window:
                windows.append(self._cut(start))
            elif (utterance := self._utterance_end(start)) is not None:
                windows.append(self._cut_utterance(start, utterance))
            elif s.ended:
                windows.append(self._last_window(start))
            else:
                break
        if previews and not s.ended and cfg.interim > 0 and not (limit and len(windows) >= limit):
            interim = self._interim_window()
            if interim is not None:
                windows.append(interim)
        return windows

    def _cut(self, start: int) -> Window:
        """Cut the full window starting at ``start``, at a pause or on the fixed rule."""
        s, cfg = self._s, self._s.config
        samples = self._slice(start, start + cfg.window)
        pause: Pause | None = None
        if cfg.pause_search:
            pause, s.speech_level = find_pause(
                samples,
                cfg.window - cfg.pause_search,
                min_pause=cfg.min_pause,
                ratio=cfg.pause_ratio,
                floor=cfg.silence_floor,
            )
        if pause is None:
            end, stable, next_start = start + cfg.window, start + cfg.hop, start + cfg.hop
        else:
            stable = start + pause.middle
            end = stable + cfg.pause_margin
            next_start = max(stable - cfg.pause_margin, start + pause.end - cfg.pause_lead)
        return self._finish_cut(start, end, stable, next_start)

    def _utterance_end(self, start: int) -> int | None:
        """Where the utterance that began at ``start`` ended, if a pause already says so (else None)."""
        s, cfg = self._s, self._s.config
        if not cfg.utterance_pause or s.ended:
            return None
        if s.utterance_cut is not None:
            return s.utterance_cut
        pause, s.utterance_checked, level = first_pause_after_speech(
            self._slice(start, s.audio.end),
            checked_until=s.utterance_checked,
            min_speech=cfg.min_utterance,
            min_pause=cfg.utterance_pause,
            grid=UTTERANCE_GRID,
            ratio=cfg.pause_ratio,
            floor=cfg.silence_floor,
        )
        if pause is not None:
            s.utterance_cut = start + pause + cfg.utterance_pause // 2
            s.speech_level = level
        return s.utterance_cut

    def _cut_utterance(self, start: int, stable: int) -> Window:
        """Cut the window of an utterance ended by a pause: up to the pause's middle, the rest is silence."""
        margin = self._s.config.pause_margin
        return self._finish_cut(start, stable + margin, stable, stable - margin)

    def _finish_cut(self, start: int, end: int, stable: int, next_start: int) -> Window:
        """Hand out ``[start - left context, end)``, committing before ``stable``; the next starts at ``next_start``."""
        s = self._s
        first = max(s.audio.base, start - s.config.left_context)
        window = Window(s.next_window, first, self._slice(first, end), stable)
        s.seen_until = window.end_sample
        self._release_to(next_start, s.next_window + 1)
        return window

    def _last_window(self, start: int) -> Window:
        """Make the window that holds the stream's end: empty when it brings no new sound."""
        s, cfg = self._s, self._s.config
        stop = s.audio.end
        first = start
        if stop <= s.seen_until:
            first = stop  # no new audio
        elif cfg.pause_search and s.speech_level > 0.0:
            threshold = silence_threshold(s.speech_level, cfg.pause_ratio, cfg.silence_floor)
            if is_silent(self._slice(start, stop), threshold):
                first = stop  # only silence after the last cut
        if first < stop:  # a last window with sound starts with context too
            first = max(s.audio.base, first - cfg.left_context)
        window = Window(s.next_window, first, self._slice(first, stop), stop, is_last=True)
        s.finished = True
        s.audio.release_to(stop)
        return window

    def has_ready_windows(self, previews: bool = True) -> bool:
        """Whether `take_ready_windows` would hand out anything now (it changes nothing)."""
        s, cfg = self._s, self._s.config
        if s.finished:
            return False
        if s.ended or s.audio.end >= s.next_start + cfg.window or self._utterance_end(s.next_start) is not None:
            return True
        return previews and cfg.interim > 0 and self._interim_position() is not None

    def _interim_position(self) -> int | None:
        """Where a preview of the next window would end now, or None when none is due."""
        s, cfg = self._s, self._s.config
        start = s.next_start
        first = max(start, s.seen_until)
        if s.audio.end <= first:
            return None
        position = first + (s.audio.end - first) // cfg.interim * cfg.interim
        if position <= first or position <= s.last_interim_end or position >= start + cfg.window:
            return None
        if position - start < cfg.interim_min:
            return None
        return position

    def _interim_window(self) -> Window | None:
        s = self._s
        position = self._interim_position()
        if position is None:
            return None
        s.last_interim_end = position
        start = s.next_start
        if s.config.preview_from_commit:  # what two previews agreed on is final: decode only the rest
            start = max(start, min(s.committed_until, position - s.config.interim_min))
        first = max(s.audio.base, start - s.config.left_context)
        return Window(s.next_window, first, self._slice(first, position), start, is_interim=True)

    def _slice(self, start: int, stop: int) -> npt.NDArray[np.float32]:
        return self._s.audio.slice(start, stop)

    def _release_to(self, start: int, window_index: int) -> None:
        """Make window ``window_index``, starting at ``start``, the next one, forgetting the audio before it."""
        s = self._s
        s.audio.release_to(start - s.config.left_context)  # the next windows start with some context
        s.next_start, s.next_window = start, window_index
        s.utterance_cut, s.utterance_checked = None, 0

    def _drain(self, out: _Outcome) -> None:
        s = self._s
        while not s.ended and s.next_seq in s.pending:
            seq = s.next_seq
            self._append(s.pending.pop(seq), out)
            out.accepted.append(seq)
            s.next_seq += 1
        if s.ended:
            self._discard_after_end(out)

    def _declare_lost(self, out: _Outcome) -> None:
        s = self._s
        first_held = min(s.pending)
        out.lost = (s.next_seq, first_held - s.next_seq)
        s.next_seq = first_held
        self._drain(out)

    def _discard_after_end(self, out: _Outcome) -> None:
        s = self._s
        out.late.extend(sorted(s.pending))
        s.pending.clear()

    def _append(self, chunk: PendingChunk, out: _Outcome) -> None:
        s, cfg = self._s, self._s.config
        samples = chunk.samples
        if s.resume_at_first:  # a resumed session's timeline starts at its first chunk: no fill for the pause
            s.resume_at_first = False
            start = max(chunk.offset - s.shift, s.audio.end)
            s.audio.reset(start)
            s.next_start = s.seen_until = s.last_interim_end = start
        position = chunk.offset - s.shift
        end = s.audio.end
        first_lost, lost_count = out.lost if out.lost is not None else (None, 0)
        if position > end:
            jump = position - end
            fill = min(jump, cfg.effective_gap_fill)
            out.gaps.append(GapReport(end, first_lost, lost_count, fill, jump - fill))
            s.shift += jump - fill
            s.audio.append(np.zeros(fill, dtype=np.float32))
        else:
            if out.lost is not None:
                out.gaps.append(GapReport(end, first_lost, lost_count))
            overlap = min(end - position, int(samples.shape[0]))
            out.overlap += overlap
            samples = samples[overlap:]
        out.lost = None
        s.audio.append(samples)
        s.ended = s.ended or chunk.end_of_stream
        self._enforce_cap(out)

    def _enforce_cap(self, out: _Outcome) -> None:
        s, cfg = self._s, self._s.config
        excess = len(s.audio) - cfg.effective_cap
        if excess <= 0:
            return
        hops = -(-(s.audio.end - cfg.effective_cap - s.next_start) // cfg.hop)
        before = s.audio.base
        self._release_to(s.next_start + hops * cfg.hop, s.next_window + hops)
        out.dropped += s.audio.base - before
