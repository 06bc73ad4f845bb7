"""Errors of the wire layer: a chunk refused at the door, a segment that does not parse, a schema breach."""

from __future__ import annotations

# Every reason the chunk decoder refuses a chunk for.
DECODER_REASONS = (
    "missing_header",
    "bad_header",
    "bad_specversion",
    "bad_content_type",
    "unsupported_encoding",
    "unsupported_rate",
    "bad_channels",
    "misaligned_payload",
    "empty_payload",
    "oversized",
    "non_finite_samples",
    "out_of_range_samples",
    "bad_seq",
    "bad_offset",
    "bad_time",
    "bad_end_of_stream",
    "empty_key",
    "bad_stream_id",
)
# Every reason a DLQ record's `dlq_reason` header can carry: the decoder's, and the worker failing on an
# accepted chunk (a bug, logged with its traceback; the partition and the other streams go on).
# After decoding: a chunk of a stream that already ended (late or replayed after its end), a chunk that
# came after the worker declared it lost (its span is a lost_chunks gap already), a chunk whose stream key
# is not its stream's (stream_app.wire.stream_key), and a record the worker failed on (a bug of ours).
REJECTION_REASONS = (*DECODER_REASONS, "after_end", "late_chunk", "wrong_stream_key", "processing_error")


class ChunkRejected(ValueError):
    """A chunk that cannot be accepted; ``reason`` is a stable code, ``detail`` is for humans."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REJECTION_REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class SegmentDecodeError(ValueError):
    """A transcript segment's bytes are not valid JSON or do not match transcript-segment.v2 (or v1)."""


class SchemaViolation(ValueError):
    """A document does not match its JSON Schema; the message gives the path and the rule broken."""
