"""StreamBuffer: one stream's chunks put in order on its timeline, with every loss accounted for.

Rules, in the order they apply to each chunk:

* **Order.** Chunks are applied by sequence number, starting at 0. A chunk whose ``seq`` is already
  applied or held is a duplicate: dropped, reported, state unchanged (replays are harmless). A chunk
  ahead of the next expected ``seq`` is held until the hole fills.
* **Lost chunks.** When more than ``max_reorder_chunks`` chunks are held, or they hold more than
  ``max_held`` samples together, the missing sequence numbers are declared lost and the held chunks
  applied; the span the lost chunks would have filled is a ``lost_chunks`` gap. A lost chunk that turns
  up later is **late**, not a duplicate: reported so that its audio is dead-lettered, never dropped
  silently. An end-of-stream chunk held behind a hole waits like any other (`eos_held`): the worker
  closes the stream after a grace period if the hole never fills.
* **Resumed sessions.** A buffer made with ``resume_at`` (a stream that comes back after its idle end)
  starts its timeline at the first chunk it appends, not at ``resume_at``: the pause is not filled.
* **Offsets.** A chunk starting after the buffer's end (a lost chunk, or a recorder that skipped audio)
  is preceded by silence, at most ``max_gap_fill`` samples; a longer jump is skipped (a
  ``skipped_audio`` gap), so stream time after it runs behind the recorder's offsets by the skipped
  amount (`StreamBuffer.shift`). A chunk starting before the buffer's end loses its overlapping samples.
* **Cap.** When more than the cap is buffered (the model fell behind), the oldest audio is dropped;
  the part of it no decode had heard yet is a ``buffer_overflow`` gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stream_app.streaming.config import LiveConfig
from stream_app.streaming.state import BufferState, PendingChunk
from stream_app.wire.chunk import AudioChunk

LOST_MEMORY = 256  # runs of declared-lost sequence numbers remembered, so a late one is told from a duplicate

SeqRun = tuple[int, int]  # sequence numbers [first, end): one hole declared lost


@dataclass(frozen=True)
class Loss:
    """Audio of the stream's timeline that the model will not hear as the recorder sent it."""

    start: int  # buffer-timeline samples
    end: int
    reason: str  # lost_chunks | skipped_audio | buffer_overflow
    detail: str


@dataclass(frozen=True)
class ApplyResult:
    """What applying one chunk did, for metrics, logs, dead letters and gaps."""

    accepted: tuple[int, ...] = ()  # sequence numbers appended now (this chunk and released held ones)
    held: tuple[int, ...] = ()  # this chunk's seq when it waits for earlier ones
    duplicates: tuple[int, ...] = ()
    late: tuple[int, ...] = ()  # arrived after end of stream
    late_lost: tuple[int, ...] = ()  # arrived after being declared lost (its span is a gap already)
    losses: tuple[Loss, ...] = ()
    dropped_samples: int = 0  # oldest audio dropped by the buffer cap
    overlap_samples: int = 0  # samples that repeated stream time already buffered


@dataclass
class _Outcome:
    accepted: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    late: list[int] = field(default_factory=list)
    late_lost: list[int] = field(default_factory=list)
    losses: list[Loss] = field(default_factory=list)
    dropped: int = 0
    overlap: int = 0
    lost: tuple[int, int] | None = None  # (first lost seq, count) waiting for the next appended chunk

    def result(self) -> ApplyResult:
        return ApplyResult(
            tuple(self.accepted),
            tuple(self.held),
            tuple(self.duplicates),
            tuple(self.late),
            tuple(self.late_lost),
            tuple(self.losses),
            self.dropped,
            self.overlap,
        )


class StreamBuffer:
    """Orders one stream's chunks and bounds its audio; see the module docstring."""

    def __init__(self, config: LiveConfig, *, first_seq: int = 0, resume_at: int | None = None) -> None:
        self.config = config
        self._s = BufferState(next_seq=first_seq)
        self._lost: list[SeqRun] = []
        if resume_at is not None:
            self._s.audio.reset(resume_at)
            self._s.heard_until = resume_at
            self._s.resume_at_first = True

    @classmethod
    def from_state(cls, config: LiveConfig, state: BufferState, lost: list[SeqRun] | None = None) -> StreamBuffer:
        """Wrap a state (restored from the worker's tables)."""
        buffer = cls.__new__(cls)
        buffer.config = config
        buffer._s = state
        buffer._lost = list(lost or [])[-LOST_MEMORY:]
        return buffer

    @property
    def state(self) -> BufferState:
        """The live state, for the worker's store (which pages the audio and held chunks)."""
        return self._s

    @property
    def lost_runs(self) -> list[SeqRun]:
        """The most recent holes declared lost, as runs of sequence numbers (stored with the state)."""
        return list(self._lost)

    @property
    def ended(self) -> bool:
        """End of stream was applied (or the stream was closed)."""
        return self._s.ended

    @property
    def eos_held(self) -> bool:
        """An end-of-stream chunk waits behind a hole."""
        return any(p.end_of_stream for p in self._s.pending.values())

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
        """Samples held in memory (not counting held chunks)."""
        return len(self._s.audio)

    @property
    def next_seq(self) -> int:
        """The sequence number the buffer expects next (every lower one is applied, held-over or lost)."""
        return self._s.next_seq

    @property
    def pending_count(self) -> int:
        """Out-of-order chunks held for a hole to fill."""
        return len(self._s.pending)

    def slice(self, start: int, stop: int) -> np.ndarray:
        """Copy of the samples of positions ``[start, stop)`` (clipped to what is held)."""
        return self._s.audio.slice(start, stop)

    def heard(self, position: int) -> None:
        """Audio before ``position`` was decoded or judged silent: dropping it later loses no words."""
        self._s.heard_until = max(self._s.heard_until, position)

    def release_to(self, position: int) -> None:
        """Forget the samples before ``position`` (nothing will read them again)."""
        self._s.audio.release_to(min(position, self._s.audio.end))

    def apply(self, chunk: AudioChunk) -> ApplyResult:
        """Apply one chunk according to the ordering, gap, overlap and cap rules of this module."""
        s, out = self._s, _Outcome()
        if chunk.seq < s.next_seq or chunk.seq in s.pending:
            if _take(self._lost, chunk.seq):
                out.late_lost.append(chunk.seq)
            else:
                out.duplicates.append(chunk.seq)
            return out.result()
        if s.ended:
            out.late.append(chunk.seq)
            return out.result()
        samples = np.asarray(chunk.samples, dtype=np.float32).reshape(-1).copy()
        s.pending[chunk.seq] = PendingChunk(chunk.offset, samples, chunk.end_of_stream)
        self._drain(out)
        while s.pending and self._too_much_held():
            self._declare_lost(out)
        if chunk.seq in s.pending:
            out.held.append(chunk.seq)
        return out.result()

    def close(self) -> ApplyResult:
        """End the stream now (idle timeout, or an end of stream stuck behind a hole): holes are lost."""
        s, out = self._s, _Outcome()
        while s.pending and not s.ended:
            self._declare_lost(out)
        s.ended = True
        out.late.extend(sorted(s.pending))
        s.pending.clear()
        return out.result()

    def _too_much_held(self) -> bool:
        s, cfg = self._s, self.config
        held = sum(int(p.samples.shape[0]) for p in s.pending.values())
        return len(s.pending) > cfg.max_reorder_chunks or held > cfg.max_held

    def _drain(self, out: _Outcome) -> None:
        s = self._s
        while not s.ended and s.next_seq in s.pending:
            seq = s.next_seq
            self._append(s.pending.pop(seq), out)
            out.accepted.append(seq)
            s.next_seq += 1
        if s.ended:
            out.late.extend(sorted(s.pending))
            s.pending.clear()

    def _declare_lost(self, out: _Outcome) -> None:
        s = self._s
        first_held = min(s.pending)
        out.lost = (s.next_seq, first_held - s.next_seq)
        self._lost = [*self._lost, (s.next_seq, first_held)][-LOST_MEMORY:]  # a run: a hole of any size costs one entry
        s.next_seq = first_held
        self._drain(out)

    def _append(self, chunk: PendingChunk, out: _Outcome) -> None:
        s, cfg = self._s, self.config
        samples = chunk.samples
        if s.resume_at_first:  # a resumed session's timeline starts at its first chunk: no fill for the pause
            s.resume_at_first = False
            start = max(chunk.offset - s.shift, s.audio.end)
            s.audio.reset(start)
            s.heard_until = start
        position = chunk.offset - s.shift
        end = s.audio.end
        lost = out.lost
        out.lost = None
        if position > end:
            jump = position - end
            fill = min(jump, cfg.effective_gap_fill)
            if lost is not None:
                first, count = lost
                out.losses.append(
                    Loss(end, end + fill, "lost_chunks", f"chunks {first}..{first + count - 1} never arrived")
                )
            if jump > fill:
                skipped = (jump - fill) / 16000
                out.losses.append(
                    Loss(end + fill, end + fill, "skipped_audio", f"{skipped:.3f} s of stream time skipped")
                )
            s.shift += jump - fill
            s.audio.append(np.zeros(fill, dtype=np.float32))
        else:
            if lost is not None:
                first, count = lost
                out.losses.append(Loss(end, end, "lost_chunks", f"chunks {first}..{first + count - 1} never arrived"))
            overlap = min(end - position, int(samples.shape[0]))
            out.overlap += overlap
            samples = samples[overlap:]
        s.audio.append(samples)
        s.ended = s.ended or chunk.end_of_stream
        self._enforce_cap(out)

    def _enforce_cap(self, out: _Outcome) -> None:
        s, cap = self._s, self.config.effective_cap
        excess = len(s.audio) - cap
        if excess <= 0:
            return
        start = s.audio.base
        s.audio.release_to(start + excess)
        out.dropped += excess
        unheard_from = max(start, s.heard_until)
        if unheard_from < start + excess:
            seconds = (start + excess - unheard_from) / 16000
            out.losses.append(
                Loss(
                    unheard_from,
                    start + excess,
                    "buffer_overflow",
                    f"{seconds:.3f} s dropped before the model heard it",
                )
            )
            s.heard_until = start + excess


def _take(runs: list[SeqRun], seq: int) -> bool:
    """Remove ``seq`` from the lost runs (splitting its run); False when it is in none (a duplicate)."""
    for i, (first, end) in enumerate(runs):
        if first <= seq < end:
            runs[i : i + 1] = [run for run in ((first, seq), (seq + 1, end)) if run[0] < run[1]]
            del runs[:-LOST_MEMORY]
            return True
    return False
