"""A stream held in memory by the replica that owns its partition: its session and what is not yet stored.

The session (buffer and merger) lives here between records, so a chunk costs an append, not a read of
the stream's whole state. What reaches the tables is tracked alongside: the audio pages and held
chunks already written, the records whose effects wait for the next header write, and the writes
still in flight.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from stream_app.streaming import StreamSession
from stream_app.wire.chunk import AudioChunk
from stream_app.wire.segment import TranscriptSegment
from stream_app.worker.acks import Ticket


@dataclass
class LiveStream:
    """One stream of one partition, as the worker holds it."""

    stream_id: str
    partition: int
    session: StreamSession
    version: int = 0  # header writes so far (the attempt marker refers to one)
    attempts: int = 0  # windows started on the current cursor without finishing, crashes included
    origin_ms: int = 0  # wall-clock ms at which stream position 0 reached the broker (0: unknown)
    shown_until: float = 0.0  # stream time up to which words have been published (interim or final)
    last_chunk_ms: int = 0  # ce_time of the newest chunk applied (for a segment's latency_ms)
    record_ms: int = 0  # broker timestamp of the newest input record applied (its idle end counts from it)
    epoch: int = 0  # the owner epoch its writes carry (stream_app.worker.fencing)
    input_offset: int = -1  # the newest input offset applied to it (stored with its state)
    key_digest: str = ""  # digest of the stream key its first chunk carried ("": none, anyone may write to it)
    busy: bool = False  # a step (inference, publish, state write) is running; no other may start
    backing_off: bool = False  # busy only waiting out the backoff after a failed step (no step is running)
    served_at: float = 0.0  # time.monotonic() when its last commit decode here returned (0: none yet; the pool's order)
    dirty: bool = False  # applied changes not yet in the stored header
    waiting: list[Ticket] = field(default_factory=list)  # records done once the next header is stored
    outbox: list[TranscriptSegment] = field(default_factory=list)  # segments to publish before the next write
    pages_written_until: int = 0  # stream position up to which whole pages are written
    lowest_page: int | None = None  # lowest page that may still be stored
    page_crcs: dict[int, tuple[int, int]] = field(default_factory=dict)  # page -> (first position, CRC)
    held_written: dict[int, int] = field(default_factory=dict)  # held seq -> CRC of its stored samples
    in_flight: list[Awaitable[object]] = field(default_factory=list)  # page/held writes not yet awaited
    garbage: list[bytes] = field(default_factory=list)  # audio keys to delete once the next header is stored
    closing: bool = False  # an idle end is running: new records wait in ``deferred``
    evicting: bool = False  # ended: the stream leaves memory after its last write
    deferred: list[tuple[Any, Ticket]] = field(default_factory=list)  # records that came while it was closing
    chunk_ends: deque[tuple[int, int]] = field(default_factory=deque)  # (stream position after, input offset)
    # chunks applied since the state the tables hold: a step that fails on a bug of ours is undone by
    # restoring that state and applying these again (`StreamProcessor._recover`)
    unstored: list[AudioChunk] = field(default_factory=list)

    def note_chunk(self, offset: int) -> None:
        """Remember which input record brought the audio up to the buffer's end (for dead letters)."""
        buffer = self.session.buffer
        self.chunk_ends.append((buffer.stream_end, offset))
        while len(self.chunk_ends) > 1 and self.chunk_ends[1][0] <= buffer.base:
            self.chunk_ends.popleft()

    def offsets_for(self, start: int, end: int) -> tuple[int, int] | None:
        """First and last input offsets whose audio lies in ``[start, end)`` (None when not known here)."""
        hits = [
            offset
            for i, (stop, offset) in enumerate(self.chunk_ends)
            if stop > start and (i == 0 or self.chunk_ends[i - 1][0] < end)
        ]
        return (min(hits), max(hits)) if hits else None

    @property
    def session_token(self) -> str:
        """The session (epoch) of the stream."""
        return self.session.session

    def take_waiting(self) -> list[Ticket]:
        """Hand over the records waiting for the header being written."""
        waiting, self.waiting = self.waiting, []
        return waiting
