"""Transcripts and clocks shared by the cache tests."""

from __future__ import annotations

from stream_app.inference.types import WindowTranscript, Word


def make_transcript(window_start: float = 0.0, text: str = "ask not what your country") -> WindowTranscript:
    """A transcript whose words sit at 0.5 s steps from ``window_start`` in stream time."""
    words = tuple(
        Word(start=window_start + 0.5 * i, end=window_start + 0.5 * i + 0.4, text=f" {w}", probability=0.9)
        for i, w in enumerate(text.split())
    )
    return WindowTranscript(
        words=words,
        text=text,
        avg_logprob=-0.25,
        no_speech_prob=0.01,
        compression_ratio=1.3,
        model="tiny.en",
        precision="int8",
        inference_seconds=0.42,
        extra={"rms": 0.1},
    )


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
