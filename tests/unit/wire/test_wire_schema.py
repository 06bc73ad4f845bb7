from __future__ import annotations

import pytest
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
