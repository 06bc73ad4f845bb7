"""Acknowledge a partition's records strictly in offset order, whatever order their work finishes in.

The worker reads on while earlier records' windows are still being transcribed, so records finish
out of order. faust would commit the highest contiguous run of acknowledged offsets, but with a gap
of one at the head (one slow record followed by fast ones) it commits past the slow record
(faust-streaming #606, open). So records are only handed to faust's ``ack`` from the head of the
partition's queue: a record is acknowledged once it and every record before it are done.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

E = TypeVar("E")


@dataclass
class OffsetWatermark:
    """Pure bookkeeping: offsets in reading order, which are done, which may be acknowledged now."""

    _order: deque[int] = field(default_factory=deque)
    _done: set[int] = field(default_factory=set)

    def add(self, offset: int) -> None:
        """Register a record that has been read (offsets arrive in increasing order)."""
        if self._order and offset <= self._order[-1]:
            raise ValueError(f"offset {offset} read after {self._order[-1]}")
        self._order.append(offset)

    def done(self, offset: int) -> list[int]:
        """Mark a record done; return the offsets that may now be acknowledged, in order."""
        self._done.add(offset)
        ready: list[int] = []
        while self._order and self._order[0] in self._done:
            head = self._order.popleft()
            self._done.discard(head)
            ready.append(head)
        return ready

    @property
    def in_flight(self) -> int:
        """Records read and not yet acknowledged."""
        return len(self._order)

    @property
    def oldest(self) -> int | None:
        """The oldest record not yet acknowledged."""
        return self._order[0] if self._order else None

    @property
    def newest(self) -> int | None:
        """The newest record read and not yet acknowledged."""
        return self._order[-1] if self._order else None


class Ticket:
    """The promise to finish one record: call `done` exactly once, when its outputs and state are stored."""

    __slots__ = ("_acks", "_finished", "offset")

    def __init__(self, acks: PartitionAcks[object], offset: int) -> None:
        self._acks = acks
        self.offset = offset
        self._finished = False

    def done(self) -> None:
        """Mark the record durable: it is acknowledged once the records before it are."""
        if not self._finished:
            self._finished = True
            self._acks.finish(self.offset)


class PartitionAcks(Generic[E]):
    """The records of one partition in flight, acknowledged through ``ack`` in offset order.

    Closed when the partition is revoked: tickets finished afterwards acknowledge nothing, so work
    from a previous assignment can never move the committed offset of a new one.
    """

    def __init__(self, ack: Callable[[E], object], limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._ack = ack
        self._limit = limit
        self._clock = clock
        self._read_at: dict[int, float] = {}
        self._watermark = OffsetWatermark()
        self._events: dict[int, E] = {}
        self._timestamps: dict[int, float] = {}
        self.last_acked: int | None = None
        self.last_acked_timestamp: float | None = None
        self._room = asyncio.Event()
        self._room.set()
        self.closed = False

    def add(self, offset: int, event: E, timestamp: float = 0.0) -> Ticket:
        """Register a record as read (``timestamp``: the broker's, seconds); returns the ticket that finishes it."""
        self._watermark.add(offset)
        self._events[offset] = event
        self._timestamps[offset] = timestamp
        self._read_at[offset] = self._clock()
        if self._watermark.in_flight >= self._limit:
            self._room.clear()
        return Ticket(self, offset)  # type: ignore[arg-type]

    def finish(self, offset: int) -> None:
        """Mark a record done and acknowledge every record now at the head."""
        if self.closed:
            return
        for ready in self._watermark.done(offset):
            self._ack(self._events.pop(ready))
            self.last_acked = ready
            self.last_acked_timestamp = self._timestamps.pop(ready, 0.0) or None
            self._read_at.pop(ready, None)
        if self._watermark.in_flight < self._limit:
            self._room.set()

    async def wait_for_room(self) -> None:
        """Wait while ``limit`` records are in flight (backpressure on the reader)."""
        await self._room.wait()

    @property
    def in_flight(self) -> int:
        """Records read and not yet acknowledged."""
        return self._watermark.in_flight

    @property
    def oldest(self) -> int | None:
        """Offset of the oldest record not yet acknowledged."""
        return self._watermark.oldest

    @property
    def position(self) -> int | None:
        """Offset of the next record not yet acknowledged (what the group commits), None before any."""
        oldest = self._watermark.oldest
        if oldest is not None:
            return oldest
        return None if self.last_acked is None else self.last_acked + 1

    def head_wait(self) -> float:
        """Seconds since the oldest unacknowledged record was read (0 when none is in flight)."""
        oldest = self._watermark.oldest
        read_at = None if oldest is None else self._read_at.get(oldest)
        return 0.0 if read_at is None else max(0.0, self._clock() - read_at)

    @property
    def oldest_timestamp(self) -> float | None:
        """Broker timestamp (seconds) of the oldest record not yet acknowledged."""
        oldest = self._watermark.oldest
        return None if oldest is None else (self._timestamps.get(oldest) or None)

    def close(self) -> None:
        """Stop acknowledging (the partition was revoked)."""
        self.closed = True
        self._events.clear()
        self._timestamps.clear()
        self._read_at.clear()
        self._room.set()
