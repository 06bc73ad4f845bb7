"""The window grid: how a stream's samples are cut into overlapping windows, and the window value.

Window ``k`` covers stream samples ``[k * hop, k * hop + window)`` with ``hop = window - overlap``.
Everything is counted in 16 kHz samples so that the grid is a function of the audio alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stream_app.config.settings import Settings
from stream_app.inference.types import Priority, WindowJob
from stream_app.streaming.exceptions import WindowingConfigError
from stream_app.wire.chunk import SAMPLE_RATE


def seconds_to_samples(seconds: float) -> int:
    """Convert seconds to a whole number of 16 kHz samples (rounded, so 0.1 s is exactly 1600)."""
    return round(seconds * SAMPLE_RATE)


@dataclass(frozen=True)
class WindowingConfig:
    """Window grid and buffer limits of one stream, in 16 kHz samples.

    ``interim`` is the step between interim (preview) passes, 0 for none. ``buffer_cap`` bounds the
    audio a stream may hold; ``max_gap_fill`` bounds the silence inserted for a hole in the stream.
    """

    window: int
    overlap: int
    interim: int = 0
    buffer_cap: int = 300 * SAMPLE_RATE
    max_reorder_chunks: int = 64
    max_gap_fill: int = 0  # 0 = one window length

    def __post_init__(self) -> None:
        if self.window <= 0:
            raise WindowingConfigError(f"window must be positive, got {self.window} samples")
        if not 0 <= self.overlap < self.window:
            raise WindowingConfigError(
                f"overlap must be at least 0 and shorter than the window ({self.window}), got {self.overlap}"
            )
        if self.interim < 0 or self.max_reorder_chunks < 0 or self.max_gap_fill < 0 or self.buffer_cap < 0:
            raise WindowingConfigError("interim step, reorder hold, gap fill and buffer cap must be >= 0")

    @property
    def hop(self) -> int:
        """Distance between the starts of consecutive windows."""
        return self.window - self.overlap

    @property
    def effective_cap(self) -> int:
        """The buffer cap, raised to one window plus one hop so that a window always fits."""
        return max(self.buffer_cap, self.window + self.hop)

    @property
    def effective_gap_fill(self) -> int:
        """The most silence one hole may insert (one window length unless configured)."""
        return self.max_gap_fill or self.window

    def window_start(self, index: int) -> int:
        """First stream sample of window ``index``."""
        return index * self.hop

    @classmethod
    def from_seconds(
        cls,
        window: float,
        overlap: float,
        interim: float = 0.0,
        *,
        buffer_size: float = 300.0,
        max_reorder_chunks: int = 64,
        max_gap_fill: float = 0.0,
    ) -> WindowingConfig:
        """Build the grid from durations in seconds."""
        return cls(
            window=seconds_to_samples(window),
            overlap=seconds_to_samples(overlap),
            interim=seconds_to_samples(interim),
            buffer_cap=seconds_to_samples(buffer_size),
            max_reorder_chunks=max_reorder_chunks,
            max_gap_fill=seconds_to_samples(max_gap_fill),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> WindowingConfig:
        """Build the grid of the configured profile (explicit durations override the profile's)."""
        return cls.from_seconds(
            settings.window_seconds,
            settings.overlap_seconds,
            settings.interim_step_seconds,
            buffer_size=settings.streaming.buffer_size,
            max_reorder_chunks=settings.streaming.max_reorder_chunks,
        )


@dataclass(frozen=True)
class Window:
    """A span of one stream's audio to transcribe.

    ``stable_until_sample`` says how far this window's words may be committed: the start of the next
    window for a final window (later words are seen again, with more context, by the next one), the
    end for the last window, and the start for an interim preview (only agreement commits those).
    """

    index: int
    start_sample: int
    samples: npt.NDArray[np.float32]
    stable_until_sample: int
    is_last: bool = False
    is_interim: bool = False

    @property
    def end_sample(self) -> int:
        """Stream position just after the window's last sample."""
        return self.start_sample + int(self.samples.shape[0])

    @property
    def start(self) -> float:
        """Stream time of the first sample, seconds."""
        return self.start_sample / SAMPLE_RATE

    @property
    def end(self) -> float:
        """Stream time just after the last sample, seconds."""
        return self.end_sample / SAMPLE_RATE

    @property
    def stable_until(self) -> float:
        """Stream time up to which words starting earlier may be committed, seconds."""
        return self.stable_until_sample / SAMPLE_RATE

    @property
    def is_empty(self) -> bool:
        """True for a last window with no audio: do not transcribe it, give the merger ``None``."""
        return int(self.samples.shape[0]) == 0

    def job(self, stream_id: str, created_at: float = 0.0) -> WindowJob:
        """Make the inference request for this window (interim previews run at a lower priority)."""
        return WindowJob(
            stream_id=stream_id,
            window_index=self.index,
            start=self.start,
            samples=self.samples,
            priority=Priority.INTERIM if self.is_interim else Priority.FINAL,
            created_at=created_at,
        )
