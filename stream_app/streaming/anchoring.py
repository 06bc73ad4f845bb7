"""Where a free decode's new words begin: after the words it heard again that are already final.

A live decode reads some audio whose words are final (from the window's start, or ``decode_context``
before the newest final word) and goes on past them. Unless the live rule forces the decoder through
those words (``force_final_words``), it decodes the audio as Whisper would, which keeps the sentence
structure that decides how the next words are heard (measured in docs/benchmarks/streaming.md), and
its words up to the last final word are dropped here.

The anchor is the decoded word that is the last final word heard again: the same text (normalised)
ending within `ANCHOR_REACH` of it, preferring the match whose preceding words also repeat the final
words before it, then the one closest in time. Everything up to it is dropped. When no decoded word
matches (Whisper heard the end of the final words differently), the words whose middle lies after
the final words' end are kept: a word straddling the end of the final words is kept or dropped by
where most of it lies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stream_app.inference.types import Word
from stream_app.streaming.text import normalise

ANCHOR_REACH = 0.7  # seconds: how far a decoded word's end may lie from the final word it repeats
MATCH_DEPTH = 4  # final words compared backwards from the anchor to choose among candidates


@dataclass(frozen=True)
class Anchored:
    """A free decode's words after the final ones, and whether a repeated final word anchored them."""

    words: list[Word]
    matched: bool


def words_after_final(words: Sequence[Word], final_text: str, final_end: float) -> Anchored:
    """Return the decoded ``words`` that follow the final words ``final_text`` (ending at ``final_end``).

    ``words`` and ``final_end`` are on the same clock. Without final words every word is new.
    """
    finals = [n for n in (normalise(t) for t in final_text.split()) if n]
    if not finals:
        return Anchored(list(words), True)
    heard = [normalise(w.text) for w in words]
    best: tuple[int, float, int] | None = None  # (depth, -distance, index)
    for j, word in enumerate(words):
        distance = abs(word.end - final_end)
        if heard[j] != finals[-1] or distance > ANCHOR_REACH:
            continue
        depth = 1
        while depth < MATCH_DEPTH and depth <= j and depth < len(finals) and heard[j - depth] == finals[-1 - depth]:
            depth += 1
        candidate = (depth, -distance, j)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    if best is not None:
        return Anchored(list(words[best[2] + 1 :]), True)
    return Anchored([w for w in words if (w.start + w.end) / 2 > final_end], False)
