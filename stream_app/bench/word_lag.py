"""Word lags as a listener feels them, computed from what the topics hold (pure: no Kafka here).

A word's audio reached the broker at ``origin + word.end``: ``origin`` is the broker timestamp of the
stream's first chunk minus its stream offset, so a recorder sending in real time puts the audio of
second ``t`` on the broker at ``origin + t``. For every word of the final transcript:

* **emission lag**: the broker timestamp of the first segment (interim or final) that showed the word
  (the same word, normalised, over an overlapping stretch of time) minus that moment;
* **final lag**: the broker timestamp of the final segment holding it minus that moment.

Segment timestamps are those of the transcripts topic's records (the worker's producer stamps them
as it sends), so both clocks are the same machine's in the benchmarks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from stream_app.streaming.text import normalise
from stream_app.wire.segment import TranscriptSegment


@dataclass(frozen=True)
class PublishedSegment:
    """A segment as read back, with the broker timestamp of its record (ms)."""

    segment: TranscriptSegment
    published_ms: int


@dataclass(frozen=True)
class WordLags:
    """Per final word of one stream: seconds from its audio on the broker to its first and final showing."""

    emission: list[float]
    final: list[float]


def word_lags(segments: Sequence[PublishedSegment], origin_ms: int) -> WordLags:
    """Compute the lags of every word of the stream's final transcript (see the module docstring)."""
    shown: dict[str, list[tuple[float, float, int]]] = defaultdict(list)  # word -> (start, end, when)
    finals: dict[str, PublishedSegment] = {}
    for item in segments:
        for word in item.segment.words:
            shown[normalise(word.text)].append((word.start, word.end, item.published_ms))
        if item.segment.is_final and item.segment.segment_id not in finals:
            finals[item.segment.segment_id] = item
    emission: list[float] = []
    final: list[float] = []
    for item in finals.values():
        for word in item.segment.words:
            heard_ms = origin_ms + word.end * 1000.0
            first = min(
                (when for start, end, when in shown[normalise(word.text)] if start < word.end and end > word.start),
                default=item.published_ms,
            )
            emission.append(max(0.0, (min(first, item.published_ms) - heard_ms) / 1000.0))
            final.append(max(0.0, (item.published_ms - heard_ms) / 1000.0))
    return WordLags(emission, final)


def final_word_lags(segments: Sequence[PublishedSegment], origin_ms: int) -> list[tuple[int, float]]:
    """Return ``(published ms, final lag s)`` for every word of the stream's final segments (first per id)."""
    finals: dict[str, PublishedSegment] = {}
    for item in segments:
        if item.segment.is_final and item.segment.segment_id not in finals:
            finals[item.segment.segment_id] = item
    return [
        (item.published_ms, max(0.0, (item.published_ms - origin_ms - word.end * 1000.0) / 1000.0))
        for item in finals.values()
        for word in item.segment.words
    ]
