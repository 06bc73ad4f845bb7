"""The transcript segment published to the output topic (see schemas/transcript-segment.v3.json)."""

from __future__ import annotations

from dataclasses import dataclass

from stream_app.inference.types import Word

SEGMENT_SCHEMA_VERSION = 3
GAP_REASONS = (
    "lost_chunks",  # sequence numbers that never arrived
    "late_chunks",  # chunks that arrived after their place in the timeline was filled with silence
    "skipped_audio",  # an offset jump longer than the gap fill: stream time skipped
    "buffer_overflow",  # the buffer cap dropped audio the model had not heard
    "undecoded_speech",  # speech (by the VAD) that yielded no words after every retry
    "inference_failed",
    "poison_window",
    "state_lost",
)


@dataclass(frozen=True)
class Gap:
    """A span of stream time a segment covers but whose words could not be transcribed, and why."""

    start: float
    end: float
    reason: str  # one of GAP_REASONS
    detail: str = ""


@dataclass(frozen=True)
class TranscriptSegment:
    """A piece of a stream's transcript.

    Final segments are immutable. Interim segments share their ``segment_id`` with the final segment
    that will replace them; every record of one id has a higher ``revision`` than the one before, the
    final the highest (consumers keep the highest revision per id). ``segment_id`` is derived from the
    stream id, the session and the segment's position, so a replay produces the same id and a new
    session never reuses one.
    """

    stream_id: str
    segment_id: str
    index: int
    revision: int
    is_final: bool
    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    model: str
    precision: str
    avg_logprob: float
    no_speech_prob: float
    confidence: float  # mean word probability
    latency_ms: float | None = None
    end_of_stream: bool = False
    language: str = "en"
    schema_version: int = SEGMENT_SCHEMA_VERSION
    produced_at: float | None = None  # Unix time (seconds) when the worker published it; set at publish
    session: str = "0"
    gaps: tuple[Gap, ...] = ()
