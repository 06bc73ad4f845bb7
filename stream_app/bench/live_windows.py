"""A corpus cut into windows exactly as the live streaming path cuts it, and merged back into text.

Each file becomes one stream, fed in 100 ms chunks through `StreamSession` (the worker's
`StreamBuffer` with the live profile's window, overlap and pause rule), so a benchmark decodes the
windows the service would decode. Transcripts of those windows are merged by the same
`SegmentMerger` the worker uses, so the text is what a listener would get.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from stream_app.audio.files import decode_audio_file
from stream_app.config import Settings
from stream_app.inference.types import WindowJob, WindowTranscript
from stream_app.streaming import MergePolicy, StreamSession, Window, WindowingConfig
from stream_app.testing.corpus import SAMPLE_RATE, CorpusItem
from stream_app.wire.chunk import AudioChunk

CHUNK_SECONDS = 0.1


@dataclass(frozen=True)
class StreamWindows:
    """One corpus file as a stream: its final windows in order (empty ones included, as the merger wants)."""

    stream_id: str
    item: CorpusItem
    windows: tuple[Window, ...]

    def jobs(self) -> list[WindowJob]:
        """Return the inference requests of the windows that have audio."""
        return [w.job(self.stream_id) for w in self.windows if not w.is_empty]


def live_config(settings: Settings, window_seconds: float) -> WindowingConfig:
    """Return the live profile's window rule with the window length set (overlap and pause rule as configured)."""
    return WindowingConfig.from_seconds(
        window_seconds,
        min(settings.overlap_seconds, window_seconds / 2),
        0.0,
        buffer_size=settings.streaming.buffer_size,
        max_reorder_chunks=settings.streaming.max_reorder_chunks,
        pause_search=settings.streaming.pause_search * window_seconds,
        min_pause=settings.streaming.min_pause,
    )


def cut_windows(items: Sequence[CorpusItem], config: WindowingConfig, prefix: str = "bench") -> list[StreamWindows]:
    """Feed each file through its own session in 100 ms chunks and keep its final windows."""
    chunk = round(CHUNK_SECONDS * SAMPLE_RATE)
    out: list[StreamWindows] = []
    for n, item in enumerate(items):
        stream_id = f"{prefix}-{n}"
        samples = decode_audio_file(item.path)
        session = StreamSession(stream_id, config)
        windows: list[Window] = []
        starts = range(0, max(1, samples.shape[0]), chunk)
        for seq, offset in enumerate(starts):
            piece = np.ascontiguousarray(samples[offset : offset + chunk], dtype=np.float32)
            last = seq == len(starts) - 1
            windows.extend(session.feed(AudioChunk(stream_id, seq, offset, piece, end_of_stream=last)).windows)
        out.append(StreamWindows(stream_id, item, tuple(w for w in windows if not w.is_interim)))
    return out


def merge_policy(settings: Settings) -> MergePolicy:
    """Return the merger's guard thresholds, as the worker configures them."""
    streaming = settings.streaming
    return MergePolicy(
        no_speech_threshold=streaming.no_speech_threshold,
        log_prob_threshold=streaming.log_prob_threshold,
        compression_ratio_threshold=streaming.compression_ratio_threshold,
    )


def merged_text(
    stream: StreamWindows, transcript: Callable[[Window], WindowTranscript], policy: MergePolicy | None = None
) -> str:
    """Merge the stream's window transcripts as the worker does and return the final text."""
    session = StreamSession(stream.stream_id, WindowingConfig(window=SAMPLE_RATE, overlap=0), policy)
    segments = session.run_windows(stream.windows, transcript)
    return " ".join(t for t in (s.text.strip() for s in segments if s.is_final) if t)
