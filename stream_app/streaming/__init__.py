"""Streaming logic without Kafka or a model: chunks in order, windows out, words merged into segments."""

from stream_app.streaming.buffer import ApplyResult, GapReport, StreamBuffer
from stream_app.streaming.merger import MergePolicy, SegmentMerger, segment_id
from stream_app.streaming.session import Step, StreamSession, Transcribe, transcribe_chunks
from stream_app.streaming.windowing import Window, WindowingConfig

__all__ = [
    "ApplyResult",
    "GapReport",
    "MergePolicy",
    "SegmentMerger",
    "Step",
    "StreamBuffer",
    "StreamSession",
    "Transcribe",
    "Window",
    "WindowingConfig",
    "segment_id",
    "transcribe_chunks",
]
