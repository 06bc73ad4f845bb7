from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from stream_app.wire.chunk import ChunkFormat
from stream_app.wire.chunk_codec import encode_chunk
from stream_app.wire.exceptions import SchemaViolation
from stream_app.wire.headers import headers_to_dict
from stream_app.wire.schema import (
    CHUNK_SCHEMA,
    SCHEMA_DIR,
    SEGMENT_SCHEMA,
    load_schema,
    validate_chunk_headers,
)


@pytest.mark.parametrize("name", [CHUNK_SCHEMA, SEGMENT_SCHEMA])
def test_schema_files_are_valid_draft_2020_12(name: str) -> None:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert (SCHEMA_DIR / name).is_file()


def _headers(**overrides: str) -> dict[str, str]:
    _, _, headers = encode_chunk("s", 0, 0, b"", ChunkFormat("s16le", 44_100, 2), True, "urn:rec")
    return {**headers_to_dict(headers), **overrides}


def test_encoded_headers_validate() -> None:
    validate_chunk_headers(_headers())
    validate_chunk_headers(_headers(**{"content-type": "audio/L16; rate=16000; channels=1"}))


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("ce_specversion", "0.3"),
        ("ce_seq", "-4"),
        ("ce_streamoffset", "01"),
        ("ce_endofstream", "TRUE"),
        ("ce_time", "2024-05-01"),
        ("content-type", "audio/pcm; encoding=u8; rate=16000"),
        ("content-type", "video/mp4"),
    ],
)
def test_malformed_headers_fail_the_schema(header: str, value: str) -> None:
    with pytest.raises(SchemaViolation, match=header):
        validate_chunk_headers(_headers(**{header: value}))


def test_required_headers_are_required() -> None:
    headers = _headers()
    del headers["ce_streamoffset"]
    with pytest.raises(SchemaViolation, match="ce_streamoffset"):
        validate_chunk_headers(headers)


PARAMS = st.sampled_from(
    ["encoding=s16le", "encoding=f32le", "encoding=u8", "channels=1", "channels=2", "channels=8", "channels=9"]
) | st.integers(0, 300_000).map(lambda rate: f"rate={rate}")
HEADER_INTS = st.integers(0, 2**64) | st.integers(2**63 - 3, 2**63 + 3)


@settings(max_examples=400, deadline=None)
@given(
    media=st.sampled_from(["audio/pcm", "audio/L16", "audio/l16"]),
    params=st.lists(PARAMS, max_size=4),
    spacing=st.sampled_from([";", "; ", " ; "]),
    seq=HEADER_INTS,
    offset=HEADER_INTS,
)
def test_headers_valid_against_the_schema_are_accepted_by_the_worker(
    media: str, params: list[str], spacing: str, seq: int, offset: int
) -> None:
    """A recorder that checks its headers against the published schema is never refused for them."""
    from stream_app.wire.chunk_codec import decode_chunk
    from stream_app.wire.exceptions import ChunkRejected

    headers = _headers(
        **{"content-type": spacing.join([media, *params]), "ce_seq": str(seq), "ce_streamoffset": str(offset)}
    )
    try:
        validate_chunk_headers(headers)
    except SchemaViolation:
        return  # the schema is the canonical form: the worker may accept more, never less
    frame = b"\0" * 64
    try:
        decode_chunk(b"mic", frame, [(k, v.encode()) for k, v in headers.items()], max_bytes=1 << 20)
    except ChunkRejected as exc:
        assert exc.reason == "bad_payload", f"valid against the schema, refused as {exc.reason}: {headers}"
