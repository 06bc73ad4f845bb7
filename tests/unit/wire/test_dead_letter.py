from __future__ import annotations

from stream_app.wire.chunk_codec import decode_chunk
from stream_app.wire.dlq import dead_letter_record
from stream_app.wire.exceptions import ChunkRejected


def test_dead_letter_keeps_the_original_bytes_and_says_why() -> None:
    key = b"mic-7"
    value = b"\x01\x02\x03"  # 3 bytes: not whole s16le frames
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"e1"),
        ("ce_source", b"rec"),
        ("ce_type", b"dev.stream-app.audio.chunk"),
        ("content-type", b"audio/pcm; encoding=s16le; rate=16000; channels=1"),
        ("ce_seq", b"0"),
        ("ce_streamoffset", b"0"),
        ("raw", b"\xff\x00"),
        ("dlq_reason", b"stale from an earlier trip"),
    ]
    try:
        decode_chunk(key, value, headers, max_bytes=1000)
    except ChunkRejected as exc:
        error = exc
    else:
        raise AssertionError("a misaligned chunk was accepted")

    out_key, out_value, out_headers = dead_letter_record(key, value, headers, error, "audio.chunks", 2, 41)

    assert (out_key, out_value) == (key, value)
    assert out_headers[:8] == headers[:8]
    added = dict(out_headers[8:])
    assert added == {
        "dlq_reason": b"misaligned_payload",
        "dlq_detail": error.detail.encode(),
        "dlq_source_topic": b"audio.chunks",
        "dlq_source_partition": b"2",
        "dlq_source_offset": b"41",
    }
    assert sum(1 for name, _ in out_headers if name == "dlq_reason") == 1


def test_dead_letter_survives_records_without_key_value_or_headers() -> None:
    error = ChunkRejected("empty_key", "no key")
    key, value, headers = dead_letter_record(None, None, None, error, "t", 0, 0)
    assert (key, value) == (None, None)
    assert dict(headers)["dlq_reason"] == b"empty_key"


def test_a_dead_letter_never_carries_the_stream_key() -> None:
    headers = [("ce_seq", b"0"), ("ce_streamkey", b"secret-key-123"), ("CE_STREAMKEY", b"again")]
    error = ChunkRejected("missing_header", "missing ce_id")
    _, _, out = dead_letter_record(b"s", b"", headers, error, "audio.chunks", 0, 1)
    assert [name for name, _ in out if name.lower() == "ce_streamkey"] == []
    assert ("ce_seq", b"0") in out


def test_a_bare_dead_letter_keeps_every_header_that_says_what_failed() -> None:
    """A given-up decode's smallest form still says which stream, session, window and audio it was."""
    from stream_app.wire import dlq

    ours = [
        (dlq.H_REASON, b"inference_failed"),
        (dlq.H_DETAIL, b"boom"),
        (dlq.H_SOURCE_TOPIC, b"audio.chunks"),
        (dlq.H_SOURCE_PARTITION, b"3"),
        (dlq.H_SOURCE_OFFSETS, b"10-42"),
        (dlq.H_STREAM_ID, b"mic-7"),
        (dlq.H_SESSION, b"3.10"),
        (dlq.H_WINDOW, b"4"),
        (dlq.H_STREAM_START, b"12.000"),
        (dlq.H_STREAM_END, b"31.500"),
    ]
    key, value, headers = dlq.bare_dead_letter(b"mic-7", b"pcm" * 10, [*ours, ("x-writer", b"big" * 1000)])
    assert key == b"mic-7" and value is None
    assert headers[: len(ours)] == ours
    assert dict(headers)[dlq.H_VALUE_DROPPED] == b"30" and dict(headers)[dlq.H_HEADERS_DROPPED] == b"1"


def test_a_writer_cannot_pass_off_its_headers_as_ours() -> None:
    from stream_app.wire import dlq

    forged = [(dlq.H_STREAM_ID, b"someone-else"), (dlq.H_WINDOW, b"99")]
    _key, _value, headers = dead_letter_record(
        b"k", b"v", forged, ChunkRejected("bad_header", "x"), "audio.chunks", 0, 5
    )
    assert (dlq.H_STREAM_ID, b"someone-else") not in headers and (dlq.H_WINDOW, b"99") not in headers
