"""What the worker keeps per owned partition: its records in flight, its streams, its timers.

A partition's state exists from its first record (or its adoption after a rebalance) until it is
revoked; then its tasks are cancelled, its tickets stop acknowledging, and the streams leave memory
(their state is in the tables, for whichever replica owns the partition next).
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from stream_app.worker.acks import PartitionAcks
from stream_app.worker.live import LiveStream
from stream_app.worker.scope import PartitionScope


@dataclass
class PartitionState:
    """One owned partition."""

    partition: int
    scope: PartitionScope
    acks: PartitionAcks[Any]
    streams: dict[str, LiveStream] = field(default_factory=dict)  # streams loaded in memory
    activity: OrderedDict[str, float] = field(default_factory=OrderedDict)  # stream -> last activity, oldest first
    dirty: set[str] = field(default_factory=set)  # loaded streams with changes not yet stored
    markers: list[tuple[int, str]] = field(default_factory=list)  # (expiry wall ms, stream) of ended markers
    marker_count: int = 0
    adopted: bool = False  # the tables' streams (a restored partition) are being watched for idleness

    def touch(self, stream_id: str, now: float) -> None:
        """Record activity of a stream (loaded or not): it is the newest in the idle order."""
        self.activity[stream_id] = now
        self.activity.move_to_end(stream_id)

    def idle(self, now: float, timeout: float) -> list[str]:
        """Streams quiet for ``timeout`` seconds or more, oldest first (their order entries are removed)."""
        due: list[str] = []
        for stream_id, seen in self.activity.items():
            if now - seen < timeout:
                break
            due.append(stream_id)
        for stream_id in due:
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
