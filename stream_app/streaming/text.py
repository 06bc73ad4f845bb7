"""Word-level text rules of the merger: normalisation, overlap matching, agreement, loop detection."""

from __future__ import annotations

import re
from collections.abc import Sequence

from stream_app.inference.types import Word

_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)

MAX_OVERLAP_NGRAM = 5  # whisper_streaming compares 1 to 5 words at a window boundary
MAX_LOOP_NGRAM = 4
MAX_LOOP_REPEATS = 3


def normalise(text: str) -> str:
    """Compare words as lower case without punctuation (``" Country."`` equals ``"country"``)."""
    return _NOT_WORD.sub("", text).lower()


def join_words(words: Sequence[Word]) -> str:
    """Segment text: the words separated by single spaces (whisper's leading spaces removed)."""
    return " ".join(w.text.strip() for w in words if w.text.strip())


def overlap_length(committed_tail: Sequence[str], head: Sequence[Word]) -> int:
    """How many leading ``head`` words repeat the end of the committed text (0 when none do).

    The longest match of 1 to 5 words wins: longer matches are stronger evidence of a repeat.
    """
    longest = min(MAX_OVERLAP_NGRAM, len(committed_tail), len(head))
    for n in range(longest, 0, -1):
        if list(committed_tail[-n:]) == [normalise(w.text) for w in head[:n]]:
            return n
    return 0


def agreed_prefix(previous: Sequence[Word], current: Sequence[Word]) -> int:
    """LocalAgreement-2: the number of leading words two consecutive passes share (normalised text)."""
    count = 0
    for before, now in zip(previous, current, strict=False):
        if normalise(before.text) != normalise(now.text):
            break
        count += 1
    return count


def drop_loops(context: Sequence[str], words: Sequence[Word]) -> list[Word]:
    """Drop n-grams (n <= 4) that would repeat more than three times in a row.

    Whisper's failure on silence or noise is a phrase repeated over and over ("thank you thank you
    ..."). An n-gram may occur three times in a row, counting the committed ``context`` before
    ``words``; each further repetition is dropped whole. Real speech rarely says a phrase four
    times running, so the guard costs almost nothing on clean audio.
    """
    seen = list(context)
    kept: list[Word] = []
    i = 0
    while i < len(words):
        skip = 0
        for n in range(1, MAX_LOOP_NGRAM + 1):
            candidate = [normalise(w.text) for w in words[i : i + n]]
            if len(candidate) < n or len(seen) < n * MAX_LOOP_REPEATS:
                continue
            end = len(seen)
            if all(seen[end - n * (r + 1) : end - n * r] == candidate for r in range(MAX_LOOP_REPEATS)):
                skip = n
                break
        if skip:
            i += skip
            continue
        kept.append(words[i])
        seen.append(normalise(words[i].text))
        i += 1
    return kept
