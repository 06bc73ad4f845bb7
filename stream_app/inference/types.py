"""Values that cross the inference boundary: what a window asks for and what it gives back."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Word:
    """One recognised word; times are seconds in stream time (not window time)."""

    start: float
    end: float
    text: str
    probability: float


class DecodeKind(enum.Enum):
    """What a decode is for: it sets which guards apply and what a failed guard costs."""

    TICK = "tick"  # a live window so far: its agreed words become final
    CUT = "cut"  # a live window's last decode: every word becomes final, speech left over is a gap
    PREVIEW = "preview"  # a live window so far, shown only (best effort)
    FILE = "file"  # a stretch of a file (batch jobs): decoded whole, like a cut

    @property
    def commits_all(self) -> bool:
        """Whether every word of the result is final (so nothing may be left undecoded)."""
        return self in (DecodeKind.CUT, DecodeKind.FILE)


class Priority(enum.IntEnum):
    """Lower runs first: final windows before interim passes before batch jobs."""

    FINAL = 0
    INTERIM = 1
    BATCH = 2


@dataclass(frozen=True)
class WindowJob:
    """One window of one stream (or one file) to transcribe."""

    stream_id: str
    window_index: int
    start: float  # stream time of the first sample, seconds
    samples: npt.NDArray[np.float32]  # 16 kHz mono
    priority: Priority = Priority.FINAL
    created_at: float = 0.0  # time.monotonic() when the job was made (queue latency is measured from it)
    prompt: str = ""  # text committed before this window, decoded as Whisper's previous-text prompt ("" = none)
    prefix: str = ""  # words already final at the start of the window: the decoder is forced to continue after them
    # Where the window's final words end, seconds from ``start`` (forced or, with no ``prefix``, decoded
    # freely and dropped by the session): speech before it is not reported as undecoded.
    prefix_end: float = 0.0
    kind: DecodeKind = DecodeKind.FILE
    # Voiced spans (seconds from ``start``) the stream's own VAD found; None: the transcriber runs VAD itself.
    speech: tuple[tuple[float, float], ...] | None = None
    # Called on the pool's thread just before the model runs the window (not while it waits in the
    # queue): the worker counts a crash-suspect attempt there. Not part of the window's identity.
    on_start: Callable[[], None] | None = field(default=None, compare=False, repr=False)
    # Called on the pool's thread once the model has returned the window (a result or an error), before
    # another isolated call may start: the worker takes the suspect attempt back there, so a window that
    # ran to its end is not blamed for the next window's crash. Not called for a window abandoned past
    # ``task_timeout`` (its late return is dropped with its result). Not part of the window's identity.
    on_finish: Callable[[], None] | None = field(default=None, compare=False, repr=False)
    # Run alone, in a model call of its own: the stream's windows were in the model when a worker
    # died, so they must not take other streams' windows down with them (or be blamed for theirs).
    isolated: bool = field(default=False, compare=False)
    # When this stream's previous commit decode on this replica returned (time.monotonic(); 0: none
    # yet, as for a stream just taken over): within a priority the stream served longest ago goes first.
    served_at: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class WindowTranscript:
    """What the model made of one window, with the figures that say how much to trust it."""

    words: tuple[Word, ...]
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    model: str
    precision: str
    language: str = "en"
    skipped_silence: bool = False  # VAD found no speech, so no decoding ran
    escalated_from: str | None = None  # set when adaptive precision re-ran the window
    cached: bool = False
    context_fallback: str | None = None  # why a fitted-context decode was re-run with the full 30 s context
    rejected_preview: bool = False  # a preview whose decode tripped a guard: not re-run (finals are), no words
    # Voiced spans (stream seconds) the decoder left without words after every retry (cuts and files only).
    undecoded: tuple[tuple[float, float], ...] = ()
    inference_seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)
