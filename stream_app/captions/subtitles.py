"""Subtitle cues from timed words, written as SRT or WebVTT (pure: no Kafka, no model).

A cue never spans two segments (a final segment's words are final; the next segment may still be
coming). Within a segment, a cue ends after sentence punctuation, before it would run past
``MAX_CUE_SECONDS`` or past two lines of ``LINE_CHARS``, and before a pause of ``PAUSE_SECONDS``:
the usual reading limits of broadcast subtitles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

MAX_CUE_SECONDS = 6.0
LINE_CHARS = 42
MAX_LINES = 2
PAUSE_SECONDS = 1.0
MIN_CUE_SECONDS = 0.3  # a one-word cue still stays up long enough to read
SHORTEST_CUE = 0.001  # seconds: what a cue squeezed to nothing by its neighbour keeps (a millisecond, as timed)
FORMATS = ("srt", "vtt")


class TimedWord(Protocol):
    """A word with its span in seconds (`stream_app.inference.types.Word` and the segments' words are)."""

    @property
    def start(self) -> float:
        """Seconds from the stream's (or file's) start."""

    @property
    def end(self) -> float:
        """Seconds from the stream's (or file's) start."""

    @property
    def text(self) -> str:
        """The word, as Whisper spells it (often with a leading space)."""


@dataclass(frozen=True)
class Cue:
    """One subtitle: its span in seconds and its text (already wrapped into lines)."""

    start: float
    end: float
    text: str


def cues_from_words(words: Sequence[TimedWord]) -> list[Cue]:
    """Group one segment's words into cues within the reading limits."""
    groups: list[list[TimedWord]] = []
    for word in words:
        token = word.text.strip()
        if not token:
            continue
        current = groups[-1] if groups else None
        if current is None or _must_break(current, word):
            groups.append([word])
        else:
            current.append(word)
    cues = [Cue(g[0].start, max(g[-1].end, g[0].start + MIN_CUE_SECONDS), _wrap(_text(g))) for g in groups]
    return [
        Cue(cue.start, min(cue.end, cues[i + 1].start) if i + 1 < len(cues) else cue.end, cue.text)
        for i, cue in enumerate(cues)
    ]


def settle_cues(cues: Sequence[Cue], until: float | None = None) -> list[Cue]:
    """End each cue by the next one's start and by ``until`` (the file's end), as cues joined across segments.

    `cues_from_words` keeps a segment's cues apart, but lengthens its last one to `MIN_CUE_SECONDS`,
    which can run into the next segment's first cue or past the file's end. A cue keeps at least
    `SHORTEST_CUE`, so its end stays after its start.
    """
    settled = []
    for index, cue in enumerate(cues):
        end = cue.end
        if index + 1 < len(cues):
            end = min(end, cues[index + 1].start)
        if until is not None:
            end = min(end, until)
        settled.append(Cue(cue.start, max(end, cue.start + SHORTEST_CUE), cue.text))
    return settled


def _must_break(current: list[TimedWord], word: TimedWord) -> bool:
    last = current[-1]
    if last.text.strip().endswith((".", "?", "!")):
        return True
    if word.start - last.end >= PAUSE_SECONDS or word.end - current[0].start > MAX_CUE_SECONDS:
        return True
    return len(_text([*current, word])) > LINE_CHARS * MAX_LINES


def _text(words: Iterable[TimedWord]) -> str:
    return " ".join(w.text.strip() for w in words if w.text.strip())


def _wrap(text: str) -> str:
    """Break a cue's text into at most two lines near the middle, at a space."""
    if len(text) <= LINE_CHARS:
        return text
    middle = len(text) // 2
    spaces = [i for i, ch in enumerate(text) if ch == " "]
    if not spaces:
        return text
    cut = min(spaces, key=lambda i: abs(i - middle))
    return f"{text[:cut]}\n{text[cut + 1 :]}"


def timestamp(seconds: float, fmt: str) -> str:
    """Return ``00:01:02,345`` (SRT) or ``00:01:02.345`` (WebVTT)."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{',' if fmt == 'srt' else '.'}{ms:03d}"


def render_cue(cue: Cue, number: int, fmt: str) -> str:
    """Return one cue block with its blank line after it; ``number`` is SRT's counter (WebVTT has none).

    WebVTT reads ``&``, ``<`` and ``>`` in cue text as markup, and ``-->`` as a timing line: they are
    escaped there. SRT has no escapes; its text is written as heard.
    """
    span = f"{timestamp(cue.start, fmt)} --> {timestamp(cue.end, fmt)}"
    head = f"{number}\n" if fmt == "srt" else ""
    text = _vtt_escaped(cue.text) if fmt == "vtt" else cue.text
    return f"{head}{span}\n{text}\n\n"


def _vtt_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def file_header(fmt: str) -> str:
    """Return what a file of ``fmt`` starts with (WebVTT's signature line; nothing for SRT)."""
    return "WEBVTT\n\n" if fmt == "vtt" else ""


def render(cues: Sequence[Cue], fmt: str) -> str:
    """Return a whole subtitle file of ``fmt`` (``srt`` or ``vtt``)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown subtitle format {fmt!r}; choose {' or '.join(FORMATS)}")
    return file_header(fmt) + "".join(render_cue(cue, n, fmt) for n, cue in enumerate(cues, start=1))
