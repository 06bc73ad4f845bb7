"""How `stream-app tail` shows segments: lines on a pipe, a live caption region on a terminal, subtitles.

Each renderer gets only what `LatestRevisions` let through: a new version of a segment, once.
"""

from __future__ import annotations

import shutil
from typing import Protocol, TextIO

from stream_app.captions.subtitles import Cue, cues_from_words, file_header, render_cue
from stream_app.clients.transcript import format_caption_line
from stream_app.wire.segment import TranscriptSegment
from stream_app.wire.segment_codec import encode_segment

UP = "\x1b[1A"
CLEAR_DOWN = "\x1b[J"
MAX_OPEN_PER_STREAM = 3  # interims of one stream kept on screen (normally one: its next segment)


class Renderer(Protocol):
    """Shows segments as they come; `close` leaves the output tidy."""

    def show(self, segment: TranscriptSegment) -> None:
        """Show one new version of a segment."""

    def close(self) -> None:
        """Finish the output."""


class PlainLines:
    """One line per new version (a pipe, a file): interims marked ``~`` with their revision, gaps in ``<...>``."""

    def __init__(self, out: TextIO, *, as_json: bool = False) -> None:
        self._out = out
        self._json = as_json

    def show(self, segment: TranscriptSegment) -> None:
        """Print the version as one line."""
        line = encode_segment(segment).decode() if self._json else format_caption_line(segment)
        print(line, file=self._out, flush=True)

    def close(self) -> None:
        """Nothing is pending on a pipe."""


class LiveCaptions:
    """On a terminal: finals (with their gaps) scroll up as lines; open interims sit at the bottom, replaced in place.

    The bottom rows are one per open interim (any stream), each cut to the terminal's width, and are
    redrawn on every change; a final takes its interim's row away and is printed in full above.
    """

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._open: dict[str, TranscriptSegment] = {}  # segment_id -> its latest interim
        self._rows = 0  # rows of the bottom region now on screen

    def show(self, segment: TranscriptSegment) -> None:
        """Update the screen with one new version."""
        text = self._erase()
        if segment.is_final or segment.end_of_stream:
            self._open.pop(segment.segment_id, None)
            if segment.end_of_stream:
                self._open = {k: v for k, v in self._open.items() if v.stream_id != segment.stream_id}
            text += format_caption_line(segment) + "\n"
        else:
            self._open[segment.segment_id] = segment
            self._trim(segment.stream_id)
        self._out.write(text + self._region())
        self._out.flush()

    def close(self) -> None:
        """Leave the interims on screen as they were and end the last row."""
        if self._rows:
            self._out.write("\n")
            self._out.flush()
        self._rows = 0

    def _trim(self, stream_id: str) -> None:
        mine = [k for k, v in self._open.items() if v.stream_id == stream_id]
        for key in mine[:-MAX_OPEN_PER_STREAM]:
            del self._open[key]

    def _erase(self) -> str:
        if not self._rows:
            return ""
        return "\r" + UP * (self._rows - 1) + CLEAR_DOWN

    def _region(self) -> str:
        width = max(20, shutil.get_terminal_size().columns - 1)
        rows = [_cut(format_caption_line(s), width) for s in self._open.values()]
        self._rows = len(rows)
        return "\n".join(rows)


def _cut(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


class SubtitleLines:
    """SRT or WebVTT cues from each final segment's word times, written as the finals arrive."""

    def __init__(self, out: TextIO, fmt: str) -> None:
        self._out = out
        self._fmt = fmt
        self._number = 0
        self._out.write(file_header(fmt))
        self._out.flush()

    def show(self, segment: TranscriptSegment) -> None:
        """Write the cues of a final segment; interims are not subtitles."""
        if not segment.is_final:
            return
        cues = cues_from_words(segment.words)
        if not cues and segment.text.strip():  # a segment without word times: one cue for its span
            cues = [Cue(segment.start, segment.end, segment.text.strip())]
        for cue in cues:
            self._number += 1
            self._out.write(render_cue(cue, self._number, self._fmt))
        self._out.flush()

    def close(self) -> None:
        """Every cue is written as its final arrives."""
