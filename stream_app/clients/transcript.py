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


def session_order(session: str) -> tuple[int, ...]:
    """Order of a stream's sessions: ``"<partition>.<offset>"`` of the record that opened each."""
    try:
        return tuple(int(part) for part in session.split("."))
    except ValueError:
        return (-1,)


def _position(segment: TranscriptSegment) -> tuple[tuple[int, ...], int, float]:
    return session_order(segment.session), segment.index, segment.start


class TranscriptAssembler:
    """Keep the best version of each segment of one stream; replays and stale revisions change nothing.

    A final segment beats any interim one with the same ``segment_id``; among equals the higher
    revision wins. At-least-once delivery can replay any of them, in any number. A stream that
    comes back after its end continues in a later session: ``ended`` is about the latest one.
    """

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self._best: dict[str, TranscriptSegment] = {}
        self._ended_sessions: set[str] = set()
        self._latest: tuple[int, ...] | None = None

    @property
    def ended(self) -> bool:
        """Whether the latest session seen has sent its end-of-stream segment."""
        return any(session_order(s) == self._latest for s in self._ended_sessions)

    def add(self, segment: TranscriptSegment) -> bool:
        """Take one segment; True when it changed the transcript."""
        if segment.stream_id != self.stream_id:
            return False
        order = session_order(segment.session)
        if self._latest is None or order > self._latest:
            self._latest = order
        if segment.end_of_stream:
            self._ended_sessions.add(segment.session)
        current = self._best.get(segment.segment_id)
        if current is not None and _rank(current) >= _rank(segment):
            return False
        self._best[segment.segment_id] = segment
        return True

    def final_segments(self) -> tuple[TranscriptSegment, ...]:
        """Return the final segments ordered by their position in the stream."""
        return tuple(sorted((s for s in self._best.values() if s.is_final), key=_position))

    def current_segments(self) -> tuple[TranscriptSegment, ...]:
        """Return the best version of every segment (final or interim), ordered by position.

        An interim of a session older than the latest is left out: that session is over (it ended, or its
        state was lost and the stream went on in a new one), so its interim is never what is being said now.
        """
        return tuple(
            sorted(
                (s for s in self._best.values() if s.is_final or session_order(s.session) == self._latest),
                key=_position,
            )
        )

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
    for gap in segment.gaps:
        line += f"  <{gap.reason}: {gap.start:.2f}-{gap.end:.2f} s not transcribed>"
    if segment.end_of_stream:
        line += "  <end of stream>"
    return line


def format_caption_line(segment: TranscriptSegment) -> str:
    """Render one line of `stream-app tail`: the segment id first, then as `format_segment_line` after the stream."""
    return f"{segment.segment_id} {format_segment_line(segment).removeprefix(segment.stream_id + ' ')}"
