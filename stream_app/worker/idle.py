"""Idle streams: which streams this replica has not heard from for too long.

A stream that never sends end of stream must not hold state forever. Table writes are only allowed
from the agent that owns the stream's partition, so the worker does not evict from a timer: it
publishes an *idle tick* record keyed by the stream id into the input topic, which reaches the owning
agent in order with the stream's chunks. The tick carries the last sequence number seen; the agent
ignores it if the stream moved on since.
"""

from __future__ import annotations

from dataclasses import dataclass, field

IDLE_EVENT_TYPE = "dev.stream-app.stream.idle"
H_TYPE = "ce_type"
H_SEQ = "ce_seq"


def idle_tick_headers(last_seq: int) -> list[tuple[str, bytes]]:
    """Headers of an idle tick for a stream whose last seen chunk had ``last_seq``."""
    return [(H_TYPE, IDLE_EVENT_TYPE.encode()), (H_SEQ, str(last_seq).encode())]


def read_idle_tick(headers: list[tuple[str, bytes]] | None) -> int | None:
    """Return the tick's last seen sequence number when the record is an idle tick, else None."""
    fields = {name: value for name, value in headers or ()}
    if fields.get(H_TYPE) != IDLE_EVENT_TYPE.encode():
        return None
    try:
        return int(fields.get(H_SEQ, b"-1"))
    except ValueError:
        return -1


@dataclass
class _Seen:
    last_seq: int
    at: float
    partition: int | None = None  # where the stream's chunks arrive; None: let the key decide
    ticked: bool = False


@dataclass
class IdleTracker:
    """Last activity per stream held by this replica (pure: the caller passes the clock)."""

    timeout: float
    _streams: dict[str, _Seen] = field(default_factory=dict)

    def seen(self, stream_id: str, seq: int, now: float, partition: int | None = None) -> None:
        """Record a chunk of ``stream_id`` and the input partition it came from."""
        self._streams[stream_id] = _Seen(seq, now, partition)

    def adopt(self, stream_id: str, now: float) -> None:
        """Start watching a stream found in restored state (after a restart or a rebalance)."""
        if stream_id not in self._streams:
            self._streams[stream_id] = _Seen(-1, now)

    def forget(self, stream_id: str) -> None:
        """Stop watching a stream whose state was evicted."""
        self._streams.pop(stream_id, None)

    def due(self, now: float) -> list[tuple[str, int, int | None]]:
        """Return streams idle past the timeout, not ticked yet, with last seq and partition; marks them ticked.

        The tick must reach the partition the stream's chunks use (its state lives there), whatever
        partitioner the recorder used, so it goes to that partition explicitly when it is known.
        """
        due = []
        for stream_id, seen in self._streams.items():
            if not seen.ticked and now - seen.at >= self.timeout:
                seen.ticked = True
                due.append((stream_id, seen.last_seq, seen.partition))
            elif seen.ticked and now - seen.at >= 3 * self.timeout:
                seen.at = now  # the tick was lost (e.g. in a rebalance): send another
                seen.ticked = False
        return due

    def clear(self) -> None:
        """Forget every stream (partitions were revoked; the new assignment is adopted from the tables)."""
        self._streams.clear()

    def __len__(self) -> int:
        return len(self._streams)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._streams
