"""The state of a stream's buffer, planner and merger: everything needed to resume it elsewhere.

The worker stores these values in its RocksDB-backed tables (`stream_app.worker.records` has the byte
layout: the audio in immutable pages, the rest in one small header record per stream).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from stream_app.inference.types import Word
from stream_app.streaming.samples import SampleQueue
from stream_app.wire.segment import Gap


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
    offset minus that timeline (stream time skipped by capped gaps). ``resume_at_first`` marks a
    resumed session whose timeline starts at the first chunk appended.
    """

    next_seq: int = 0
    shift: int = 0
    ended: bool = False
    resume_at_first: bool = False
    audio: SampleQueue = field(default_factory=SampleQueue)
    pending: dict[int, PendingChunk] = field(default_factory=dict)
    heard_until: int = 0  # audio before this was decoded (or judged silent): dropping it loses nothing

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
    """Everything a `SegmentMerger` needs to resume: counters, the open window's words, pending gaps."""

    stream_id: str
    session: str = "0"  # the session (epoch) of the stream: part of every segment id
    next_index: int = 0
    revision: int = 0  # records published so far for segment ``next_index`` (its final gets this revision)
    interim_text: str = ""  # text of the latest interim of ``next_index`` ("" when none is showing)
    committed: list[Word] = field(default_factory=list)  # final words of the open window (the decoder prefix)
    hypothesis: list[Word] | None = None  # the latest tick's words after them (None: no tick yet)
    hypothesis_at: int = 0  # where that tick's decode ended (stream samples)
    gaps: list[Gap] = field(default_factory=list)  # spans lost before transcription, for the next final
    decodes: int = 0  # deterministic decodes done (ticks and cuts): names a decode in logs and dead letters
    ended: bool = False
    model: str = ""  # of the latest transcript, for a final segment made without one (a gap)
    precision: str = ""
    language: str = ""
