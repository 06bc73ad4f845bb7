"""How many mel frames the encoder sees for a window, and which windows share one encoder call.

Whisper was trained on 30 s inputs (3,000 frames of 10 ms) and faster-whisper pads every window to
that. CTranslate2's encoder accepts fewer frames (it slices its positional embedding), and encoder
work then shrinks with the audio. ``fitted`` context gives the encoder the window's frames plus a
margin of padding; ``full`` keeps the 30 s convention. A fitted length is rounded up to a whole
number of buckets, and windows are grouped by that length alone, so a window is padded the same
way whatever else shares its batch and its result never depends on its companions.

Pure arithmetic, no model: unit-tested in milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

FULL_FRAMES = 3000  # Whisper's receptive field: 30 s of 10 ms mel frames
HOP_SAMPLES = 160  # 16 kHz samples per mel frame
FRAMES_PER_SECOND = 100

ContextMode = Literal["fitted", "full"]
CONTEXT_MODES: tuple[ContextMode, ...] = ("fitted", "full")

K = TypeVar("K", bound=Hashable)


def content_frames(samples: int) -> int:
    """Mel frames that hold audio for ``samples`` 16 kHz samples (as ``WhisperModel.generate_segments`` counts).

    faster-whisper's feature extractor makes ``samples // 160 + 1`` frames and decoding treats all
    but the last as content.
    """
    return max(0, samples) // HOP_SAMPLES


@dataclass(frozen=True)
class EncoderContext:
    """The encoder input length rule: fitted to the window (plus a margin) or the full 30 s.

    ``margin`` and ``bucket`` are seconds. A fitted window of ``c`` content frames is padded to
    ``ceil((c + margin) / bucket) * bucket`` frames, at most 3,000.
    """

    mode: ContextMode = "fitted"
    margin: float = 1.5
    bucket: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in CONTEXT_MODES:
            raise ValueError(f"encoder context must be one of {CONTEXT_MODES}, got {self.mode!r}")
        if self.margin < 0:
            raise ValueError(f"the context margin must not be negative, got {self.margin}")
        if self.bucket <= 0:
            raise ValueError(f"the context bucket must be positive, got {self.bucket}")

    @property
    def fitted(self) -> bool:
        """Whether windows get an encoder input sized to their audio."""
        return self.mode == "fitted"

    @property
    def margin_frames(self) -> int:
        """The margin in mel frames."""
        return round(self.margin * FRAMES_PER_SECOND)

    @property
    def bucket_frames(self) -> int:
        """The bucket in mel frames (at least one)."""
        return max(1, round(self.bucket * FRAMES_PER_SECOND))

    def frames_for(self, content: int) -> int:
        """Return the encoder input length for a window of ``content`` mel frames."""
        if not self.fitted:
            return FULL_FRAMES
        wanted = max(1, content + self.margin_frames)
        step = self.bucket_frames
        return min(FULL_FRAMES, math.ceil(wanted / step) * step)

    def describe(self) -> str:
        """Return a short label for logs, tables and cache keys (``fitted+1.0s/1.0s`` or ``full``)."""
        return f"fitted+{self.margin:g}s/{self.bucket:g}s" if self.fitted else "full"


FULL_CONTEXT = EncoderContext(mode="full")
DEFAULT_CONTEXT = EncoderContext()  # what bench context measured: docs/benchmarks/context.md


def group_by(keys: Sequence[K]) -> dict[K, list[int]]:
    """Group positions by key, keys in first-seen order and positions ascending within a group.

    The transcriber groups windows by (encoder frames, prompt length): each group is one
    encode/generate call, since CTranslate2 needs one input length and one prompt length per call.
    """
    groups: dict[K, list[int]] = {}
    for position, key in enumerate(keys):
        groups.setdefault(key, []).append(position)
    return groups
