"""Putting a file back together from the windows its pieces travelled in."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

from stream_app.batch.packing import Piece, Window, retime, words_by_piece
from stream_app.batch.results import FileResult, FileSegment, FileStamp, join_text
from stream_app.inference.types import WindowTranscript, Word

Span = tuple[float, float]


@dataclass
class FileAssembly:
    """One file's pieces as they come back; complete when every piece has an answer."""

    path: str
    stamp: FileStamp
    duration: float
    expected: int
    segments: dict[int, FileSegment] = field(default_factory=dict)
    undecoded: list[Span] = field(default_factory=list)  # speech the model left without words, file seconds
    received: int = 0
    error: str | None = None
    model: str | None = None

    @property
    def complete(self) -> bool:
        """Whether every piece came back (with text or with an error)."""
        return self.received >= self.expected

    def add(
        self, piece: Piece, segment: FileSegment | None, undecoded: list[Span], error: str | None, model: str | None
    ) -> None:
        """Record one piece's answer; the first error of a file is the one it reports."""
        self.received += 1
        if segment is not None:
            self.segments[piece.piece_index] = segment
        self.undecoded += undecoded
        if error is not None and self.error is None:
            self.error = error
        self.model = model or self.model

    def result(self) -> FileResult:
        """Build the file's record, once complete."""
        size, mtime_ns = self.stamp.size, self.stamp.mtime_ns
        if self.error is not None:
            return FileResult(
                self.path, "failed", size=size, duration=self.duration, error=self.error, mtime_ns=mtime_ns
            )
        segments = tuple(self.segments[i] for i in sorted(self.segments))
        return FileResult(
            self.path,
            "ok",
            size=size,
            duration=round(self.duration, 3),
            text=join_text(segments),
            segments=segments,
            model=self.model,
            mtime_ns=mtime_ns,
            undecoded=tuple(sorted(self.undecoded)),
        )

    @staticmethod
    def settle(
        files: dict[int, FileAssembly], window: Window, future: Future[WindowTranscript]
    ) -> Iterator[tuple[int, FileResult]]:
        """Hand a finished window's outcome to its files; yield the files it completed."""
        try:
            transcript: WindowTranscript | None = future.result()
            error = None
        except Exception as exc:
            transcript, error = None, f"{type(exc).__name__}: {exc}"
        segments = _segments(window, transcript) if transcript is not None else None
        if transcript is not None and segments is None:
            error = "the model returned text without word timestamps; a packed window cannot be split"
        undecoded = _undecoded(window, transcript) if transcript is not None else [[] for _ in window.pieces]
        for slot, piece in enumerate(window.pieces):
            assembly = files.get(piece.file_id)
            if assembly is None:
                continue
            segment = segments[slot] if segments is not None else None
            model = transcript.model if transcript is not None else None
            assembly.add(piece, segment, undecoded[slot], error, model)
            if assembly.complete:
                yield piece.file_id, assembly.result()


def _segments(window: Window, transcript: WindowTranscript) -> list[FileSegment] | None:
    """Each piece's segment; ``None`` when packed text cannot be split (no word timestamps)."""
    pieces = window.pieces
    if len(pieces) == 1:  # a window of its own: all of it belongs to the piece
        piece = pieces[0]
        words = [retime(w, piece.file_offset - piece.window_offset, piece) for w in transcript.words]
        return [_segment(piece, transcript.text.strip(), words)]
    if transcript.text.strip() and not transcript.words:
        return None
    per_piece = words_by_piece(transcript.words, 0.0, window, _gap(window))
    return [
        _segment(piece, " ".join(w.text for w in words), words) for piece, words in zip(pieces, per_piece, strict=True)
    ]


def _undecoded(window: Window, transcript: WindowTranscript) -> list[list[Span]]:
    """Each piece's share of the speech the model left without words, in its file's seconds."""
    out: list[list[Span]] = []
    for piece in window.pieces:
        first, last = piece.window_offset, piece.window_offset + piece.duration
        shift = piece.file_offset - piece.window_offset
        out.append(
            [
                (round(max(a, first) + shift, 3), round(min(b, last) + shift, 3))
                for a, b in transcript.undecoded
                if a < last and b > first
            ]
        )
    return out


def _segment(piece: Piece, text: str, words: list[Word]) -> FileSegment:
    return FileSegment(
        start=round(piece.file_offset, 3),
        end=round(piece.file_offset + piece.duration, 3),
        text=text,
        words=tuple(words),
    )


def _gap(window: Window) -> float:
    pieces = window.pieces
    return pieces[1].window_offset - pieces[0].window_offset - pieces[0].duration
