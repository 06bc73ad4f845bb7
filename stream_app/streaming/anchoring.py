"""Where a free decode's new words begin: after the words it heard again that are already final.

A live decode reads some audio whose words are final (from the window's start, or ``decode_context``
before the newest final word) and goes on past them. Unless the live rule forces the decoder through
those words (``force_final_words``), it decodes the audio as Whisper would, which keeps the sentence
structure that decides how the next words are heard (measured in docs/benchmarks/streaming.md), and
its words up to the last final word are dropped here.

The anchor is the decoded word that is the last final word heard again: the same text (normalised)
ending within `ANCHOR_REACH` of it. The final words compared are those the decode read: lying mostly
after its start. Their times came from other decodes, and two decodes' times for one word differ by up
to `BOUNDARY_JITTER`, so a final word that close to the start may or may not be in this decode's audio
(`_readings`). Among several candidates (a word said more than once, "no no no"), the one whose
preceding words also repeat the final words before it wins (up to `MATCH_DEPTH` of them, among the final
words read for sure); among those, the one whose words up to it read most like the final words (fewest
words changed, added or left out: a word edit distance, for the reading that fits it best); then the
one closest in time. Everything up to it is dropped. The
reading's edits keep a repeat said after the final words when the words before them are heard
differently again ("bent no no" final, "meant no no no" decoded: the third "no" is new), where
timestamps a couple of hundred milliseconds off made the new "no" the closest match. A repeat that
Whisper hears but nobody said (a hallucinated extra "no") is kept as new, as the rule before did when
its time was right.

When no decoded word matches (Whisper heard the end of the final words differently), the words whose
middle lies after the final words' end are kept: a word straddling the end of the final words is kept
or dropped by where most of it lies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stream_app.inference.types import Word
from stream_app.streaming.text import normalise

ANCHOR_REACH = 0.7  # seconds: how far a decoded word's end may lie from the final word it repeats
MATCH_DEPTH = 4  # final words compared backwards from the anchor to choose among candidates
BOUNDARY_JITTER = 0.3  # seconds: how far two decodes' times for one word may differ


@dataclass(frozen=True)
class Anchored:
    """A free decode's words after the final ones, and whether a repeated final word anchored them."""

    words: list[Word]
    matched: bool


def words_after_final(words: Sequence[Word], finals: Sequence[Word], read_from: float) -> Anchored:
    """Return the decoded ``words`` that follow the final words ``finals`` in a decode of audio from ``read_from``.

    ``words``, ``finals`` and ``read_from`` (seconds) are on the same clock, as far as two decodes' times
    agree. Final words lying mostly before ``read_from`` by more than `BOUNDARY_JITTER` were not in the
    decode's audio and are not looked for. Without final words every word is new.
    """
    named = [(n, f) for n, f in ((normalise(f.text), f) for f in finals) if n]
    if not named:
        return Anchored(list(words), True)
    last, final_end = named[-1][0], named[-1][1].end
    readings = _readings(named, read_from)
    heard = [normalise(w.text) for w in words]
    sure = readings[-1]  # the final words read whatever the decode's clock
    candidates: list[tuple[int, float, int]] = []  # (-depth, distance, index)
    for j, word in enumerate(words):
        distance = abs(word.end - final_end)
        if heard[j] != last or distance > ANCHOR_REACH:
            continue
        depth = 1
        while depth < MATCH_DEPTH and depth <= j and depth < len(sure):
            if heard[j - depth] != sure[-1 - depth]:
                break
            depth += 1
        candidates.append((-depth, distance, j))
    if not candidates:
        return Anchored([w for w in words if (w.start + w.end) / 2 > final_end], False)
    tied = [c for c in candidates if c[0] == min(c[0] for c in candidates)]
    # the reading's edits decide before time, as the decode read best; quadratic in the words, so computed
    # only when a tie needs them
    edits = (
        [min(column) for column in zip(*(reading_edits(heard, r) for r in readings), strict=True)]
        if len(tied) > 1
        else []
    )
    _, _, anchor = min(tied, key=lambda c: (edits[c[2] + 1] if edits else 0, c[1]))
    return Anchored(list(words[anchor + 1 :]), True)


def _readings(named: Sequence[tuple[str, Word]], read_from: float) -> list[list[str]]:
    """Return the final words a decode from ``read_from`` may have read, longest first, each with the last one.

    A final word whose middle lies within `BOUNDARY_JITTER` of ``read_from`` may lie on either side of it in
    the decode's own times (another decode timed it): the readings keep such words from the first one on,
    from the second on, and so on, and always every word beyond that reach and the last final word.
    """
    middles = [(f.start + f.end) / 2 for _, f in named]
    maybe = [n for (n, _), m in zip(named, middles, strict=True) if m > read_from - BOUNDARY_JITTER]
    sure = sum(m > read_from + BOUNDARY_JITTER for m in middles)
    return [maybe[i:] for i in range(len(maybe) - max(sure, 1) + 1)] or [[named[-1][0]]]


def reading_edits(heard: Sequence[str], finals: Sequence[str]) -> list[int]:
    """For each ``k``, the fewest word edits (changed, added or left out) that turn ``heard[:k]`` into ``finals``."""
    row = list(range(len(finals) + 1))  # row[b]: edits between heard[:a] and finals[:b], for the current a
    out = [row[-1]]
    for a, word in enumerate(heard, start=1):
        previous, row = row, [a] + [0] * len(finals)
        for b, final in enumerate(finals, start=1):
            row[b] = min(previous[b - 1] + (word != final), previous[b] + 1, row[b - 1] + 1)
        out.append(row[-1])
    return out
