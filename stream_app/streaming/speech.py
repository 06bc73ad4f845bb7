"""SpeechTrack: a stream's voice-activity probabilities, one per 32 ms frame, computed once per sample.

The detector (Silero VAD, `stream_app.inference.vad`) reads 512-sample frames on the stream's own grid
(``origin + 512 k``) and carries its recurrent state from one frame to the next, so probabilities are a
function of the samples alone: the same audio gives the same values however the chunks arrived and
however many frames one call covered. This module only stores what the detector said and answers
questions about it; it runs no model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FRAME = 512  # samples per VAD frame (32 ms at 16 kHz): Silero's window


@dataclass
class SpeechTrack:
    """Probabilities of frames ``[first, first + len(probs))``; the detector's state after the last one.

    ``origin`` anchors the frame grid on the stream's timeline (the session's first sample), and
    ``model_state`` is the detector's opaque recurrent state (bytes), stored with the stream so a
    replica that takes the stream over continues the same sequence of probabilities.
    """

    origin: int = 0
    first: int = 0  # index of the oldest frame still held
    probs: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))
    model_state: bytes = b""
    complete: bool = False  # the stream ended and every sample of it is in a frame (the last one padded)

    @property
    def frames(self) -> int:
        """Frames known so far (the next frame to compute has this index)."""
        return self.first + int(self.probs.shape[0])

    @property
    def known_until(self) -> int:
        """Stream position up to which speech probabilities are known."""
        return self.origin + self.frames * FRAME

    def frame_at(self, position: int) -> int:
        """Index of the frame that holds stream ``position``."""
        return (position - self.origin) // FRAME

    def position(self, frame: int) -> int:
        """Stream position of the first sample of ``frame``."""
        return self.origin + frame * FRAME

    def pending(self, stream_end: int, *, ended: bool) -> tuple[int, int]:
        """Return the stream span the detector should read next: whole frames, the last one padded at the end.

        Returns ``(start, stop)`` with ``stop - start`` a multiple of `FRAME` (possibly empty).
        """
        start = self.known_until
        if self.complete or stream_end <= start:
            return start, start
        whole = (stream_end - start) // FRAME * FRAME
        if ended and whole < stream_end - start:
            whole += FRAME  # the end of the stream: the partial frame is completed with silence
        return start, start + whole

    def extend(self, probs: npt.NDArray[np.float32], model_state: bytes) -> None:
        """Append the detector's probabilities for the span `pending` returned."""
        self.probs = np.concatenate([self.probs, np.asarray(probs, np.float32).reshape(-1)])
        self.model_state = model_state

    def finish(self, stream_end: int) -> None:
        """Mark the track complete once the ended stream's every sample lies in a known frame."""
        if self.known_until >= stream_end:
            self.complete = True

    def release_before(self, position: int) -> None:
        """Forget the frames that end before ``position``."""
        drop = min(max(0, self.frame_at(position) - self.first), int(self.probs.shape[0]))
        if drop > 0:
            self.probs = self.probs[drop:].copy()
            self.first += drop

    def prob(self, frame: int) -> float:
        """Speech probability of ``frame`` (0 for frames not held)."""
        i = frame - self.first
        return float(self.probs[i]) if 0 <= i < self.probs.shape[0] else 0.0

    def window(self, start: int, stop: int) -> npt.NDArray[np.float32]:
        """Probabilities of the frames that overlap ``[start, stop)`` (only the held ones)."""
        a = max(self.frame_at(start), self.first)
        b = min(self.frame_at(stop - 1) + 1, self.frames)
        if b <= a:
            return np.zeros(0, np.float32)
        return self.probs[a - self.first : b - self.first]

    def speech_spans(self, start: int, stop: int, threshold: float) -> list[tuple[int, int]]:
        """Return the runs of frames at or above ``threshold`` inside ``[start, stop)``, as stream positions."""
        spans: list[tuple[int, int]] = []
        a = max(self.frame_at(start), self.first)
        b = min(self.frame_at(stop - 1) + 1, self.frames)
        run: int | None = None
        for frame in range(a, b):
            voiced = self.probs[frame - self.first] >= threshold
            if voiced and run is None:
                run = frame
            elif not voiced and run is not None:
                spans.append((max(start, self.position(run)), min(stop, self.position(frame))))
                run = None
        if run is not None:
            spans.append((max(start, self.position(run)), min(stop, self.position(b))))
        return spans

    def voiced_samples(self, start: int, stop: int, threshold: float) -> int:
        """Count the samples of ``[start, stop)`` that lie in frames at or above ``threshold``."""
        return sum(b - a for a, b in self.speech_spans(start, stop, threshold))
