"""A recording through the live path in one process: the worker's session, a real model, no Kafka.

`run_recording` feeds 100 ms chunks to a `StreamSession` exactly as the worker does (speech detected
once per sample, one decode at a time, previews off unless asked), decoding each request with the given
transcriber. `speech_without_words` is the property the issue asks of every recording: every span the
voice detector calls speech holds a final word or lies inside a gap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from stream_app.clients.transcript import TranscriptAssembler
from stream_app.inference.batching import BatchTranscriber
from stream_app.inference.types import WindowTranscript
from stream_app.inference.vad import speech_spans
from stream_app.streaming import LiveConfig, MergePolicy, transcribe_chunks
from stream_app.streaming.session import DecodeRequest
from stream_app.testing.fake_model import chunks_of
from stream_app.wire.chunk import SAMPLE_RATE
from stream_app.wire.segment import TranscriptSegment

Detector = Callable[[npt.NDArray[np.float32], bytes], tuple[npt.NDArray[np.float32], bytes]]

MIN_SPEECH = 0.25  # seconds: a shorter run of speech frames is a click, not a word
WORD_REACH = 0.3  # seconds a word's timestamps may be off by


@dataclass
class LiveRun:
    """What a listener got from one recording, and what it cost."""

    segments: list[TranscriptSegment]
    decodes: list[tuple[str, float, float]] = field(default_factory=list)  # kind, start, stop (seconds)

    @property
    def finals(self) -> tuple[TranscriptSegment, ...]:
        """The final segments a consumer keeps (the contract's rule), in order."""
        assembler = TranscriptAssembler(self.segments[0].stream_id if self.segments else "s")
        for segment in self.segments:
            assembler.add(segment)
        return assembler.final_segments()

    @property
    def text(self) -> str:
        """The final transcript."""
        return " ".join(s.text for s in self.finals if s.text)


def run_recording(
    samples: npt.NDArray[np.float32],
    transcriber: BatchTranscriber,
    detector: Detector,
    config: LiveConfig,
    policy: MergePolicy,
    *,
    stream_id: str = "s",
    chunk_seconds: float = 0.1,
    previews: bool = False,
) -> LiveRun:
    """Stream ``samples`` through a session as the worker would and collect its segments."""
    run = LiveRun([])

    def decode(request: DecodeRequest) -> WindowTranscript:
        run.decodes.append((request.kind.value, request.start / SAMPLE_RATE, request.stop / SAMPLE_RATE))
        return transcriber.transcribe_windows([request.job(stream_id)])[0]

    chunks = chunks_of(samples, stream_id, chunk_seconds)
    run.segments = list(transcribe_chunks(chunks, decode, detector, config, policy, previews=previews))
    return run


def speech_without_words(
    samples: npt.NDArray[np.float32], finals: Sequence[TranscriptSegment], detector: Detector
) -> list[tuple[float, float]]:
    """Spans the detector calls speech (at least `MIN_SPEECH`) that no final word reaches and no gap covers."""
    probs, _ = detector(_whole_frames(samples), b"")
    spans = speech_spans(probs, 0.5, min_samples=round(MIN_SPEECH * SAMPLE_RATE))
    words = [(w.start - WORD_REACH, w.end + WORD_REACH) for s in finals for w in s.words]
    gaps = [(g.start - WORD_REACH, g.end + WORD_REACH) for s in finals for g in s.gaps]
    missing = []
    for a, b in spans:
        start, stop = a / SAMPLE_RATE, b / SAMPLE_RATE
        if any(x < stop and y > start for x, y in words):
            continue
        if any(x <= start and y >= stop for x, y in gaps):
            continue
        missing.append((round(start, 2), round(stop, 2)))
    return missing


def _whole_frames(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    frame = 512
    padded = -(-samples.shape[0] // frame) * frame
    return np.concatenate([samples, np.zeros(padded - samples.shape[0], np.float32)])
