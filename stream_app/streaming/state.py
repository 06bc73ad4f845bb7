"""The state of a stream's buffer and merger: everything either needs to resume elsewhere.

The worker stores these values in its RocksDB-backed tables (`stream_app.worker.records` has the byte
layout: the audio in immutable pages, the rest in one small header record per stream).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from stream_app.inference.types import Word
from stream_app.streaming.samples import SampleQueue
from stream_app.streaming.windowing import WindowingConfig


@dataclass
class PendingChunk:
    """An out-of-order chunk held until the sequence numbers before it arrive."""

    offset: int
    samples: npt.NDArray[np.float32]
    end_of_stream: bool = False


@dataclass
class BufferState:
    """Everything a `StreamBuffer` needs to resume, in stream samples.

    ``audio`` holds samples ``[base, stream_end)`` of the buffer's timeline; ``shift`` is the recorder's
    offset minus that timeline (stream time skipped by capped gaps). ``next_start`` is the first sample
    of window ``next_window`` (windows cut at pauses are not on a grid); ``speech_level`` is the
    speech level of the latest full window, against which a last window is judged silent.
    ``resume_at_first`` marks a resumed session whose timeline starts at the first chunk appended.
    """

    config: WindowingConfig
    next_seq: int = 0
    shift: int = 0
    next_window: int = 0
    next_start: int = 0
    speech_level: float = 0.0
    last_interim_end: int = 0
    seen_until: int = 0  # end of the last final window handed out
    ended: bool = False
    finished: bool = False
    resume_at_first: bool = False
    utterance_cut: int | None = None  # where the next window's utterance ends, once a pause said so
    utterance_checked: int = 0  # audio after the next window's start examined for that pause (not stored)
    committed_until: int = 0  # where the merger's committed words end (previews may start there; not stored)
    audio: SampleQueue = field(default_factory=SampleQueue)
    pending: dict[int, PendingChunk] = field(default_factory=dict)

    @property
    def stream_end(self) -> int:
        """Buffer-timeline position just after the last sample received."""
        return self.audio.end

    @property
    def base(self) -> int:
        """Buffer-timeline position of the first sample held."""
        return self.audio.base


@dataclass
class MergerState:
    """Everything a `SegmentMerger` needs to resume: counters, the committed tail, the open hypothesis."""

    stream_id: str
    session: str = "0"  # the session (epoch) of the stream: part of every segment id
    next_index: int = 0
    revision: int = 0
    next_window: int = 0
    committed_until: float = 0.0
    tail: list[str] = field(default_factory=list)
    hypothesis: list[Word] = field(default_factory=list)
    interim_text: str = ""
    prompt_text: str = ""  # the end of the committed text, when windows are prompted with it
    ended: bool = False
    model: str = ""  # of the latest transcript, for the empty final segment of a window with no audio
    precision: str = ""
