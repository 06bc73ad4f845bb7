"""What the caption page shows, kept on the server: each stream's latest version of every recent segment.

Pure logic, no Kafka, no HTTP. `CaptionBoard.apply` takes a segment and returns the update to send to
the pages (None for a replay or a stale revision, by the v3 rule: the highest revision per
``segment_id``, a final above every interim). A page that connects gets `snapshot` first, so a reload
or a reconnect shows the same lines, never a line twice. Memory is bounded: ``max_streams`` streams
(the one idle longest out first) and ``max_segments`` per stream (oldest out first; a replay of a
segment older than those kept is ignored, not shown again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stream_app.clients.feed import rank
from stream_app.clients.transcript import session_order
from stream_app.wire.segment import TranscriptSegment

MAX_STREAMS = 50
MAX_SEGMENTS = 200

Position = tuple[tuple[int, ...], int]


def position(segment: TranscriptSegment) -> Position:
    """Where a segment goes in its stream: its session's order, then its index."""
    return session_order(segment.session), segment.index


def caption_update(segment: TranscriptSegment) -> dict[str, Any]:
    """Return the JSON a page receives for one segment version."""
    order, index = position(segment)
    return {
        "stream_id": segment.stream_id,
        "segment_id": segment.segment_id,
        "position": [*order, index],
        "is_final": segment.is_final,
        "revision": segment.revision,
        "start": segment.start,
        "end": segment.end,
        "text": segment.text.strip(),
        "gaps": [{"start": g.start, "end": g.end, "reason": g.reason} for g in segment.gaps],
        "end_of_stream": segment.end_of_stream,
    }


@dataclass
class _Stream:
    segments: dict[str, TranscriptSegment] = field(default_factory=dict)
    floor: Position | None = None  # segments at or below this were let go: their replays are ignored
    touched: int = 0  # when it last changed (the board's update count)
    latest: tuple[int, ...] | None = None  # the newest session seen: interims of older ones are over


class CaptionBoard:
    """The recent segments of every stream followed, latest version of each."""

    def __init__(self, max_streams: int = MAX_STREAMS, max_segments: int = MAX_SEGMENTS) -> None:
        self._max_streams = max_streams
        self._max_segments = max_segments
        self._streams: dict[str, _Stream] = {}  # in the order they first appeared, as the pages lay them out
        self._updates = 0

    def apply(self, segment: TranscriptSegment) -> dict[str, Any] | None:
        """Take one record; return the update to send, or None when it shows nothing new."""
        stream = self._streams.get(segment.stream_id)
        if stream is None:
            stream = self._streams[segment.stream_id] = _Stream()
        if stream.floor is not None and position(segment) <= stream.floor:
            return None
        current = stream.segments.get(segment.segment_id)
        if current is not None and rank(current) >= rank(segment):
            return None
        stream.segments[segment.segment_id] = segment
        session = session_order(segment.session)
        if stream.latest is None or session > stream.latest:
            stream.latest = session  # an older session's interim will get no final: a reload no longer shows it
            stream.segments = {
                k: s for k, s in stream.segments.items() if s.is_final or session_order(s.session) == session
            }
        self._updates += 1
        stream.touched = self._updates
        self._bound(stream)
        return caption_update(segment)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every kept segment's latest version, stream by stream in position order (for a page that connects)."""
        out = []
        for stream in self._streams.values():
            out += [caption_update(s) for s in sorted(stream.segments.values(), key=position)]
        return out

    def _bound(self, stream: _Stream) -> None:
        if len(stream.segments) > self._max_segments:
            ordered = sorted(stream.segments.values(), key=position)
            for old in ordered[: len(ordered) - self._max_segments]:
                del stream.segments[old.segment_id]
                stream.floor = max(stream.floor or position(old), position(old))
        while len(self._streams) > self._max_streams:
            idle = min(self._streams, key=lambda sid: self._streams[sid].touched)
            del self._streams[idle]
