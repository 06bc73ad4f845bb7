"""Batch transcription of many files through the shared inference pool, without Kafka."""

from stream_app.batch.packing import PackingPolicy
from stream_app.batch.results import BatchResult, FileResult, FileSegment
from stream_app.batch.runner import transcribe_batch

__all__ = ["BatchResult", "FileResult", "FileSegment", "PackingPolicy", "transcribe_batch"]
