"""Streaming logic without Kafka or a model: chunks in order, speech found, decodes planned, words merged."""

from stream_app.streaming.buffer import ApplyResult, Loss, StreamBuffer
from stream_app.streaming.config import LiveConfig
from stream_app.streaming.merger import MergePolicy, SegmentMerger, segment_id
from stream_app.streaming.session import DecodeRequest, Plan, StreamSession, run_session, transcribe_chunks
from stream_app.streaming.speech import SpeechTrack

__all__ = [
    "ApplyResult",
    "DecodeRequest",
    "LiveConfig",
    "Loss",
    "MergePolicy",
    "Plan",
    "SegmentMerger",
    "SpeechTrack",
    "StreamBuffer",
    "StreamSession",
    "run_session",
    "segment_id",
    "transcribe_chunks",
]
