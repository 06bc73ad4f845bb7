"""Word lags as a listener feels them, as segments come out (pure: the worker's metrics and `bench capacity`).

A word's audio reached the broker at ``origin + word.end`` (``origin``: the stream's time zero on the
wall clock, in seconds). When segments come out at ``at``, every word in them gets the lag
``at - (origin + word.end)``: an **emission** lag for a word not shown before (it ends after
``shown_until``, the end of the last word any segment of the stream showed), a **final** lag for a word
of a final segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stream_app.wire.segment import TranscriptSegment


@dataclass(frozen=True)
class ObservedLags:
    """The lags of one batch of segments, and how far the stream has now been shown."""

    emission: list[float]
    final: list[float]
    shown_until: float


def observe_word_lags(
    segments: Sequence[TranscriptSegment], origin: float, at: float, shown_until: float
) -> ObservedLags:
    """Return the emission and final lags of the words of ``segments`` coming out at ``at``."""
    emission: list[float] = []
    final: list[float] = []
    for segment in segments:
        for word in segment.words:
            lag = max(0.0, at - (origin + word.end))
            if word.end > shown_until:
                emission.append(lag)
            if segment.is_final:
                final.append(lag)
        if segment.words:
            shown_until = max(shown_until, segment.words[-1].end)
    return ObservedLags(emission, final, shown_until)
