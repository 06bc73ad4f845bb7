"""Dead-letter records: a refused chunk, byte for byte, with why and where it came from in headers."""

from __future__ import annotations

from stream_app.wire.exceptions import ChunkRejected
from stream_app.wire.headers import HeadersLike, headers_to_list
from stream_app.wire.stream_key import H_STREAM_KEY

H_REASON = "dlq_reason"
H_DETAIL = "dlq_detail"
H_SOURCE_TOPIC = "dlq_source_topic"
H_SOURCE_PARTITION = "dlq_source_partition"
H_SOURCE_OFFSET = "dlq_source_offset"
H_VALUE_DROPPED = "dlq_value_dropped"  # the refused value's size, when the topic would not take it
H_HEADERS_DROPPED = "dlq_headers_dropped"  # how many of the record's own headers a bare dead letter left out
# a decode given up: which audio it was (`stream_app.worker.steps`)
H_SOURCE_OFFSETS = "dlq_source_offsets"
H_STREAM_ID = "dlq_stream_id"
H_SESSION = "dlq_session"
H_WINDOW = "dlq_window"
H_STREAM_START = "dlq_stream_start"
H_STREAM_END = "dlq_stream_end"
_DLQ_HEADERS = {  # ours: a writer's header of one of these names is replaced, a bare dead letter keeps them
    H_REASON,
    H_DETAIL,
    H_SOURCE_TOPIC,
    H_SOURCE_PARTITION,
    H_SOURCE_OFFSET,
    H_VALUE_DROPPED,
    H_HEADERS_DROPPED,
    H_SOURCE_OFFSETS,
    H_STREAM_ID,
    H_SESSION,
    H_WINDOW,
    H_STREAM_START,
    H_STREAM_END,
}
MAX_DETAIL = 1024  # characters of the human-readable detail kept in the header


def dead_letter_record(
    key: bytes | None,
    value: bytes | None,
    headers: HeadersLike,
    error: ChunkRejected,
    topic: str,
    partition: int,
    offset: int,
) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """Build the DLQ record for a rejected chunk.

    The original key, value and headers are kept unchanged, so the record can be inspected or
    replayed as it arrived; ``dlq_*`` headers from an earlier trip through a DLQ are replaced, and the
    stream key (``ce_streamkey``) is left out.

    Returns:
        ``(key, value, headers)`` for ``Producer.produce`` (or faust's ``send``).
    """
    # the stream key stays with the worker: a reader of the dead letters could write to the stream with it
    kept = [
        (name, raw)
        for name, raw in headers_to_list(headers)
        if name.lower() not in _DLQ_HEADERS and name.lower() != H_STREAM_KEY
    ]
    kept += [
        (H_REASON, error.reason.encode()),
        (H_DETAIL, error.detail[:MAX_DETAIL].encode("utf-8", errors="replace")),
        (H_SOURCE_TOPIC, topic.encode("utf-8")),
        (H_SOURCE_PARTITION, str(partition).encode()),
        (H_SOURCE_OFFSET, str(offset).encode()),
    ]
    return key, value, kept


MAX_BARE_KEY = 1024  # bytes of the record key a bare dead letter keeps (a stream id is at most 256 characters)


def bare_dead_letter(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
) -> tuple[bytes | None, None, list[tuple[str, bytes]]]:
    """Return the smallest dead letter of a record: its ``dlq_*`` headers and its key only (a key too long dropped).

    What was refused and where it is stay readable; the value and the writer's own headers can be read at
    the source offset while the input topic keeps them.
    """
    kept = [(name, raw) for name, raw in headers if name.lower() in _DLQ_HEADERS and name.lower() != H_VALUE_DROPPED]
    dropped = len(headers) - len(kept)
    kept += [(H_VALUE_DROPPED, str(len(value or b"")).encode()), (H_HEADERS_DROPPED, str(dropped).encode())]
    return (key if key is not None and len(key) <= MAX_BARE_KEY else None), None, kept


def without_value(value: bytes | None, headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Return the headers of a dead letter sent without its ``value`` (the topic refused it as too large).

    What it was and where it came from stay in the headers; the value can be read again at
    ``dlq_source_topic`` / ``dlq_source_partition`` / ``dlq_source_offset`` while the input topic keeps it.
    """
    kept = [(name, raw) for name, raw in headers if name.lower() != H_VALUE_DROPPED]
    return [*kept, (H_VALUE_DROPPED, str(len(value or b"")).encode())]
