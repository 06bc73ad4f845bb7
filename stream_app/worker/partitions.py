"""What the worker keeps per owned partition: its records in flight, its streams, its timers.

A partition's state exists from its first record (or its adoption after a rebalance) until it is
revoked; then its tasks are cancelled, its tickets stop acknowledging, and the streams leave memory
(their state is in the tables, for whichever replica owns the partition next).
"""

from __future__ import annotations

import asyncio
import heapq
import time
from dataclasses import dataclass, field
from typing import Any

from stream_app.worker.acks import PartitionAcks
from stream_app.worker.live import LiveStream
from stream_app.worker.ordering import OffsetOrder
from stream_app.worker.scope import PartitionScope


@dataclass
class PartitionState:
    """One owned partition.

    Idle ends follow the records' own time, never the reader's clock: a stream is idle once the
    partition's time (``progress``) has moved ``idle_timeout`` past the broker timestamp of the
    stream's newest record. The partition's time moves with the records read (the newest timestamp)
    and, while the reader is caught up to the partition's end, with the time that has passed since its
    newest record was read, as the consumer's fetches show it. A reader that stalls (a full pool, a
    record waiting for its step, a broker outage: no fetch answers) moves neither, so it ends nothing.
    """

    partition: int
    scope: PartitionScope
    acks: PartitionAcks[Any]
    order: OffsetOrder[Any] = field(default_factory=OffsetOrder)  # deliveries handed on in offset order
    streams: dict[str, LiveStream] = field(default_factory=dict)  # streams loaded in memory
    activity: dict[str, float] = field(default_factory=dict)  # stream -> time (s) of its newest record
    dirty: set[str] = field(default_factory=set)  # loaded streams with changes not yet stored
    markers: list[tuple[int, str]] = field(default_factory=list)  # (expiry wall ms, stream) of ended markers
    marker_count: int = 0
    adopted: bool = False  # the tables' streams (a restored partition) are being watched for idleness
    epoch: int = 0  # this owner's epoch of the partition (stream_app.worker.fencing), once claimed
    claim: asyncio.Task[None] | None = None  # taking the partition over: the epoch and its fence
    progress: float = 0.0  # the partition's time (s): how far its records, or its end, have been seen
    next_offset: int | None = None  # offset after the newest record read in this assignment
    reading: bool = False  # the reader is taking records (it may wait there: a full pool, the fence)
    delivered_at: float = field(default_factory=time.monotonic)  # when the reader last had a delivery
    _newest: tuple[float, float] | None = None  # (timestamp, wall time read) of the newest record read
    _tail_asked: int | None = None  # the offset an idle reader last asked to read again from

    def note_read(self, offset: int, timestamp: float, now: float) -> None:
        """Record that the reader got the record at ``offset`` (broker ``timestamp``, s) at wall time ``now``."""
        self.next_offset = max(offset + 1, self.next_offset or 0)
        if timestamp > 0 and (self._newest is None or timestamp >= self._newest[0]):
            self._newest = (timestamp, now)
        self.progress = max(self.progress, timestamp)

    def missing_tail(self, end_offset: int, committed: int | None, now: float, after: float) -> int | None:
        """Return the offset to read the partition again from if the reader missed records at the log's end.

        A record the consumer fetched can be lost on its way to the reader (seen: faust emptied the
        agents' buffers on a resume, `stream_app.worker.flow_control`). The reader notices a loss when
        a later record comes early (`OffsetOrder`), but not when nothing comes after it: a stream's last
        chunks, or all of a recorder's records sent before a take-over. So a reader idle for ``after``
        seconds (``now`` on the monotonic clock), with the log going on past the records it has had,
        reads the partition again from the first it lacks. Once per offset: a re-read that brings
        nothing shows offsets absent from the log (a transactional producer's commit markers).
        """
        if self.reading or self.order.held or now - self.delivered_at < after:
            return None
        position = self.order.expected if self.order.expected is not None else committed
        if position is None or position >= end_offset or position == self._tail_asked:
            return None
        self._tail_asked = position
        return position

    def note_end(self, end_offset: int, seen_at: float, committed: int | None) -> None:
        """Take in a fetch, answered at wall time ``seen_at``, that put the partition's end at ``end_offset``.

        If the reader had read everything before that end, the partition was quiet until then: its
        time moves on by the wall time that passed since its newest record was read (the records'
        clock is the recorders', so only the elapsed time is taken from the worker's clock).
        """
        position = self.next_offset if self.next_offset is not None else (committed or 0)
        if position < end_offset:
            return  # records wait to be read (a stalled reader): the partition's time stays
        if self._newest is None:
            self.progress = max(self.progress, seen_at)  # nothing read in this assignment: no record clock
        else:
            timestamp, read_at = self._newest
            self.progress = max(self.progress, timestamp + max(0.0, seen_at - read_at))

    def touch(self, stream_id: str, at: float) -> None:
        """Record a stream's newest record time (loaded or not; it never moves back)."""
        self.activity[stream_id] = max(at, self.activity.get(stream_id, at))

    def idle(self, timeout: float) -> list[tuple[str, float]]:
        """Streams whose newest record lies ``timeout`` seconds or more behind the partition's time.

        Their entries are removed; each comes with its record time (to put back if it cannot end yet).
        """
        limit = self.progress - timeout
        due = [(stream_id, seen) for stream_id, seen in self.activity.items() if seen <= limit]
        for stream_id, _ in due:
            del self.activity[stream_id]
        return due

    def add_marker(self, stream_id: str, expires_ms: int) -> None:
        """Watch an ended marker until it expires."""
        heapq.heappush(self.markers, (expires_ms, stream_id))
        self.marker_count += 1

    def expired_markers(self, now_ms: int) -> list[str]:
        """Markers whose retention is over (each still to be checked against the table: it may be reused)."""
        due: list[str] = []
        while self.markers and self.markers[0][0] <= now_ms:
            due.append(heapq.heappop(self.markers)[1])
        self.marker_count -= len(due)
        return due

    def close(self) -> None:
        """Cancel the partition's tasks, stop acknowledging, forget its streams (it was revoked)."""
        self.scope.close()
        self.acks.close()
        self.streams.clear()
        self.activity.clear()
        self.dirty.clear()
        self.markers.clear()
        self.marker_count = 0
