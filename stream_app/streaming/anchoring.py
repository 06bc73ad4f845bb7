"""Where a free decode's new words begin: after the words it heard again that are already final.

A live decode reads some audio whose words are final (from the window's start, or ``decode_context``
before the newest final word) and goes on past them. Unless the live rule forces the decoder through
those words (``force_final_words``), it decodes the audio as Whisper would, which keeps the sentence
structure that decides how the next words are heard (measured in docs/benchmarks/streaming.md), and
its words up to the last final word are dropped here.

The anchor is the decoded word that is the last final word heard again: the same text (normalised)
ending within `ANCHOR_REACH` of it. The final words compared are those the decode read: lying mostly
after its start, on the decode's clock as the candidate sets it (where the candidate ends against the
last final word is how far this decode's times sit from those of the decodes that made the words final:
a fifth of a second is common). Among several candidates (a word said more than once, "no no no"), the
one whose preceding words also repeat the final words before it wins (up to `MATCH_DEPTH` of them); among
those, the one whose words up to it read most like the final words (fewest words changed, added or
left out: a word edit distance); then the one closest in time. Everything up to it is dropped. The
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


@dataclass(frozen=True)
class Anchored:
    """A free decode's words after the final ones, and whether a repeated final word anchored them."""

    words: list[Word]
    matched: bool


def words_after_final(words: Sequence[Word], finals: Sequence[Word], read_from: float) -> Anchored:
    """Return the decoded ``words`` that follow the final words ``finals`` in a decode of audio from ``read_from``.

    ``words``, ``finals`` and ``read_from`` (seconds) are on the same clock. Final words lying mostly
    before ``read_from`` were not in the decode's audio and are not looked for. Without final words every
    word is new.
    """
    named = [(n, f) for n, f in ((normalise(f.text), f) for f in finals) if n]
    if not named:
        return Anchored(list(words), True)
    last, final_end = named[-1][0], named[-1][1].end
    heard = [normalise(w.text) for w in words]
    candidates: list[tuple[int, float, int, list[str]]] = []  # (-depth, distance, index, final words read)
    for j, word in enumerate(words):
        distance = abs(word.end - final_end)
        if heard[j] != last or distance > ANCHOR_REACH:
            continue
        # the final words this decode read, on its own clock as this anchor sets it: two decodes' times for
        # one word may differ by a fifth of a second, and a final word at the decode's start counted on the
        # wrong side of it made a repeat of the words read pass for the last final word
        offset = word.end - final_end
        read = [n for n, f in named if (f.start + f.end) / 2 + offset > read_from] or [last]
        depth = 1
        while depth < MATCH_DEPTH and depth <= j and depth < len(read):
            if heard[j - depth] != read[-1 - depth]:
                break
            depth += 1
        candidates.append((-depth, distance, j, read))
    if not candidates:
        return Anchored([w for w in words if (w.start + w.end) / 2 > final_end], False)
    tied = [c for c in candidates if c[0] == min(c[0] for c in candidates)]
    # the reading's edits decide before time; quadratic in the words, so computed only when a tie needs them
    edits = {j: reading_edits(heard[: j + 1], read)[-1] for _, _, j, read in tied} if len(tied) > 1 else {}
    _, _, anchor, _ = min(tied, key=lambda c: (edits.get(c[2], 0), c[1]))
    return Anchored(list(words[anchor + 1 :]), True)


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
