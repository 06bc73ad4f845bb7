"""A stream's transcript as a reader sees it: latest revision per segment, finals in order, no Kafka."""

from __future__ import annotations

from dataclasses import dataclass

from stream_app.wire.segment import TranscriptSegment


@dataclass(frozen=True)
class FinalTranscript:
    """What a stream said, once its end-of-stream segment arrived (or the wait ran out)."""

    stream_id: str
    text: str
    segments: tuple[TranscriptSegment, ...]  # final segments, by index
    complete: bool  # the end-of-stream segment was seen


def _rank(segment: TranscriptSegment) -> tuple[bool, int]:
    return segment.is_final, segment.revision


class TranscriptAssembler:
    """Keep the best version of each segment of one stream; replays and stale revisions change nothing.

    A final segment beats any interim one with the same ``segment_id``; among equals the higher
    revision wins. At-least-once delivery can replay any of them, in any number.
    """

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self._best: dict[str, TranscriptSegment] = {}
        self.ended = False

    def add(self, segment: TranscriptSegment) -> bool:
        """Take one segment; True when it changed the transcript."""
        if segment.stream_id != self.stream_id:
            return False
        if segment.end_of_stream:
            self.ended = True
        current = self._best.get(segment.segment_id)
        if current is not None and _rank(current) >= _rank(segment):
            return False
        self._best[segment.segment_id] = segment
        return True

    def final_segments(self) -> tuple[TranscriptSegment, ...]:
        """Return the final segments ordered by their position in the stream."""
        return tuple(sorted((s for s in self._best.values() if s.is_final), key=lambda s: (s.index, s.start)))

    def current_segments(self) -> tuple[TranscriptSegment, ...]:
        """Return the best version of every segment (final or interim), ordered by position."""
        return tuple(sorted(self._best.values(), key=lambda s: (s.index, s.start)))

    def result(self) -> FinalTranscript:
        """Return the final transcript so far."""
        finals = self.final_segments()
        return FinalTranscript(self.stream_id, join_text(finals), finals, self.ended)


def join_text(segments: tuple[TranscriptSegment, ...]) -> str:
    """Join segment texts with single spaces, whatever leading spaces Whisper left on them."""
    return " ".join(t for t in (s.text.strip() for s in segments) if t)


def format_segment_line(segment: TranscriptSegment) -> str:
    """Render one human-readable line: finals plain, interims marked with ``~`` and their revision."""
    span = f"[{segment.start:8.2f} - {segment.end:8.2f}]"
    text = segment.text.strip()
    if segment.is_final:
        line = f"{segment.stream_id} {span} {text}"
    else:
        line = f"{segment.stream_id} {span} ~ {text}  (interim r{segment.revision})"
    if segment.end_of_stream:
        line += "  <end of stream>"
    return line
