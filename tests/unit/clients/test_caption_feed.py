"""`stream-app tail` as a caption feed: one showing per new version, interims replaced in place, subtitles."""

from __future__ import annotations

import io
import re

from stream_app.cli.tail_render import LiveCaptions, PlainLines, SubtitleLines
from stream_app.clients.feed import LatestRevisions
from stream_app.testing.segments import make_segment
from stream_app.wire.segment import Gap, TranscriptSegment


def _seg(stream: str, index: int, text: str, *, final: bool = True, revision: int = 0) -> TranscriptSegment:
    return make_segment(stream, index, text, final=final, revision=revision, timed=True)


def test_replays_are_dropped_for_every_stream() -> None:
    feed = LatestRevisions()
    arrivals = [
        _seg("a", 0, "hel", final=False, revision=0),
        _seg("b", 0, "one", final=False, revision=0),
        _seg("a", 0, "hello", final=False, revision=1),
        _seg("a", 0, "Hello.", revision=2),
        _seg("a", 0, "hel", final=False, revision=0),  # replayed after a failover
        _seg("b", 0, "One.", revision=1),
        _seg("a", 0, "Hello.", revision=2),  # the final replayed
        _seg("b", 0, "one", final=False, revision=0),
    ]
    assert [feed.offer(s) for s in arrivals] == [True, True, True, True, False, True, False, False]


def test_a_bounded_memory_forgets_the_oldest_ids() -> None:
    feed = LatestRevisions(max_ids=2)
    for index in range(3):
        assert feed.offer(_seg("a", index, "x"))
    assert not feed.offer(_seg("a", 2, "x")) and feed.offer(_seg("a", 0, "x"))  # 0 was forgotten


def screen(output: str) -> list[str]:
    """What a terminal shows after ``output`` (carriage return, cursor up one row, clear to the end, newlines)."""
    rows, row, col = [""], 0, 0
    for token in re.findall(r"\x1b\[1A|\x1b\[J|\r|\n|[^\x1b\r\n]+", output):
        if token == "\r":
            col = 0
        elif token == "\n":
            row, col = row + 1, 0
            rows += [""] * (row + 1 - len(rows))
        elif token == "\x1b[1A":
            row = max(0, row - 1)
        elif token == "\x1b[J":
            rows = [*rows[:row], rows[row][:col]]
        else:
            rows[row] = rows[row][:col] + token
            col += len(token)
    return [r for r in rows if r]


def test_on_a_terminal_an_interim_is_replaced_in_place_by_its_final() -> None:
    out = io.StringIO()
    captions = LiveCaptions(out)
    captions.show(_seg("a", 0, "And so", final=False, revision=0))
    captions.show(_seg("b", 0, "Ask", final=False, revision=0))
    assert screen(out.getvalue()) == [
        "a:0 [    0.00 -     3.50] ~ And so  (interim r0)",
        "b:0 [    0.00 -     3.50] ~ Ask  (interim r0)",
    ]
    captions.show(_seg("a", 0, "And so my", final=False, revision=1))
    captions.show(_seg("a", 0, "And so my fellow.", revision=2))
    captions.show(_seg("a", 1, "Americans", final=False, revision=0))
    captions.close()
    assert screen(out.getvalue()) == [
        "a:0 [    0.00 -     3.50] And so my fellow.",
        "b:0 [    0.00 -     3.50] ~ Ask  (interim r0)",
        "a:1 [    4.00 -     7.50] ~ Americans  (interim r0)",
    ]


def test_on_a_pipe_each_version_is_a_line_with_its_id_and_gaps() -> None:
    out = io.StringIO()
    lines = PlainLines(out)
    gap = Gap(1.0, 2.5, "lost_chunks", "seq 10-24 never arrived")
    segment: TranscriptSegment = make_segment("a", 3, "after the hole", gaps=(gap,))
    lines.show(segment)
    assert out.getvalue() == "a:3 [   12.00 -    15.50] after the hole  <lost_chunks: 1.00-2.50 s not transcribed>\n"


def test_subtitles_come_from_finals_only() -> None:
    out = io.StringIO()
    srt = SubtitleLines(out, "srt")
    srt.show(_seg("a", 0, "And so", final=False))
    srt.show(_seg("a", 0, "And so my fellow Americans."))
    srt.show(_seg("a", 1, "Ask not."))
    assert out.getvalue() == (
        "1\n00:00:00,000 --> 00:00:03,500\nAnd so my fellow Americans.\n\n"
        "2\n00:00:04,000 --> 00:00:07,500\nAsk not.\n\n"
    )
