"""The window rule: how a stream's samples are cut into windows, and the window value.

Window ``k`` starts at ``s_k`` (``s_0 = 0``) and is cut once the stream holds ``s_k + window``:

* **Pause cut.** With ``pause_search > 0``, the last ``pause_search`` samples of ``[s_k, s_k + window)``
  are searched for a pause (`stream_app.streaming.pauses.find_pause`: 20 ms frames quieter than a
  twentieth (-26 dB) of the window's speech level, for at least ``min_pause``). At the longest one
  (the latest on ties), ``[p0, p1)``, with ``cut`` its middle: the window is
  ``[s_k, cut + pause_margin)``, it commits the words starting before ``cut``, and
  ``s_{k+1} = max(cut - pause_margin, p1 - pause_lead)``. Both ends lie in the pause, so no word is
  cut in two; the next window starts a short lead-in before its first speech, which Whisper
  transcribes better than speech after a long silence (the rest of the pause goes unseen).
* **Fixed fallback.** With no pause (continuous speech), the window is ``[s_k, s_k + window)``, it
  commits up to ``s_k + hop`` and ``s_{k+1} = s_k + hop`` with ``hop = window - overlap``; the merger
  de-duplicates the overlap.

Everything is counted in 16 kHz samples and the detector reads only ``[s_k, s_k + window)``, so the
windows are a function of the stream's samples alone, never of chunk sizes or arrival timing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

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
    audio a stream may hold; ``max_held`` the audio of out-of-order chunks held for a hole to fill;
    ``max_gap_fill`` bounds the silence inserted for a hole in the stream.
    ``pause_search`` (0 = a fixed grid), ``min_pause``, ``pause_margin`` and ``pause_lead`` drive the
    pause cuts of the module docstring; ``pause_ratio`` and ``silence_floor`` set the detector's
    threshold.
    """

    window: int
    overlap: int
    interim: int = 0
    buffer_cap: int = 300 * SAMPLE_RATE
    max_reorder_chunks: int = 64
    max_gap_fill: int = 0  # 0 = one window length
    pause_search: int = 0  # 0 = no pause cuts: the fixed grid
    min_pause: int = 3200  # 200 ms
    pause_margin: int = 1600  # 100 ms
    pause_lead: int = 3200  # 200 ms of the pause kept before the speech that follows it
    pause_ratio: float = 0.05  # a frame is silent below this share of the window's speech level...
    silence_floor: float = 1e-3  # ...or below this RMS (-60 dBFS)
    max_held: int = 60 * SAMPLE_RATE  # out-of-order audio held at most (then the hole is declared lost)
    left_context: int = 0  # already-committed audio each window starts with, for the model's context
    utterance_pause: int = 0  # 0 = off; else a pause this long after ``min_utterance`` ends a window early
    min_utterance: int = 2 * SAMPLE_RATE
    interim_min: int = 0  # no preview before the next window holds this much audio
    preview_from_commit: bool = False  # previews decode only what is not committed yet (plus left context)

    def __post_init__(self) -> None:
        if self.window <= 0:
            raise WindowingConfigError(f"window must be positive, got {self.window} samples")
        if not 0 <= self.overlap < self.window:
            raise WindowingConfigError(
                f"overlap must be at least 0 and shorter than the window ({self.window}), got {self.overlap}"
            )
        if (
            min(self.interim, self.max_reorder_chunks, self.max_gap_fill, self.buffer_cap) < 0
            or self.max_held < 0
        ):
            raise WindowingConfigError("interim step, reorder hold, held audio, gap fill and buffer cap must be >= 0")
        if self.pause_search < 0 or self.min_pause <= 0 or self.pause_margin < 0 or self.pause_lead < 0:
            raise WindowingConfigError("pause search and margin must be >= 0 and the minimum pause positive")
        if self.pause_search and (
            self.pause_search + self.pause_margin >= self.window or self.min_pause > self.pause_search
        ):
            raise WindowingConfigError(
                f"pause search ({self.pause_search}) plus margin must be shorter than the window ({self.window})"
                f" and hold the minimum pause ({self.min_pause})"
            )
        if 2 * self.pause_margin > self.min_pause:
            raise WindowingConfigError("the pause margin must fit twice in the minimum pause")
        if not 0.0 <= self.pause_ratio < 1.0 or self.silence_floor < 0.0:
            raise WindowingConfigError("pause ratio must be in [0, 1) and the silence floor >= 0")
        if min(self.left_context, self.utterance_pause, self.min_utterance, self.interim_min) < 0:
            raise WindowingConfigError("left context, utterance pause and minimum, interim minimum must be >= 0")
        if self.utterance_pause and (
            self.min_utterance + self.utterance_pause >= self.window or 2 * self.pause_margin > self.utterance_pause
        ):
            raise WindowingConfigError(
                "an utterance (minimum length plus its pause) must fit in a window, and hold the pause margin twice"
            )

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
        pause_search: float = 0.0,
        min_pause: float = 0.2,
        pause_lead: float = 0.2,
        max_held: float = 60.0,
        left_context: float = 0.0,
        utterance_pause: float = 0.0,
        min_utterance: float = 2.0,
        interim_min: float = 0.0,
        preview_from_commit: bool = False,
    ) -> WindowingConfig:
        """Build the rule from durations in seconds (``pause_search`` 0 keeps the fixed grid)."""
        pause = seconds_to_samples(min_pause)
        return cls(
            window=seconds_to_samples(window),
            overlap=seconds_to_samples(overlap),
            interim=seconds_to_samples(interim),
            buffer_cap=seconds_to_samples(buffer_size),
            max_reorder_chunks=max_reorder_chunks,
            max_gap_fill=seconds_to_samples(max_gap_fill),
            pause_search=seconds_to_samples(pause_search),
            min_pause=pause,
            pause_margin=min(pause // 2, seconds_to_samples(0.1)),
            pause_lead=seconds_to_samples(pause_lead),
            max_held=seconds_to_samples(max_held),
            left_context=seconds_to_samples(left_context),
            utterance_pause=seconds_to_samples(utterance_pause),
            min_utterance=seconds_to_samples(min_utterance),
            interim_min=seconds_to_samples(interim_min),
            preview_from_commit=preview_from_commit,
        )


@dataclass(frozen=True)
class Window:
    """A span of one stream's audio to transcribe.

    ``stable_until_sample`` says how far this window's words may be committed: the pause it was cut
    at, or the next window's start for a fixed cut (later words are seen again, with more context, by
    the next one), the end for the last window, and the start for an interim preview (only
    agreement commits those).
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

    def job(self, stream_id: str, created_at: float = 0.0, prompt: str = "") -> WindowJob:
        """Make the inference request for this window (interim previews run at a lower priority)."""
        return WindowJob(
            stream_id=stream_id,
            window_index=self.index,
            start=self.start,
            samples=self.samples,
            priority=Priority.INTERIM if self.is_interim else Priority.FINAL,
            created_at=created_at,
            prompt=prompt,
        )
