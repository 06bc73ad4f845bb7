from __future__ import annotations

import dataclasses

import orjson
import pytest

from stream_app.inference.types import Word
from stream_app.wire.exceptions import SchemaViolation, SegmentDecodeError
from stream_app.wire.schema import validate_segment
from stream_app.wire.segment import SEGMENT_SCHEMA_VERSION, TranscriptSegment
from stream_app.wire.segment_codec import decode_segment, encode_segment


def _segment(**changes: object) -> TranscriptSegment:
    base = TranscriptSegment(
        stream_id="mic-1",
        segment_id="mic-1:0003",
        index=3,
        revision=2,
        is_final=True,
        start=12.5,
        end=14.25,
        text=" ask not what your country",
        words=(
            Word(12.5, 12.8, " ask", 0.91),
            Word(12.8, 13.1, " not", 0.88),
            Word(13.1, 14.25, " what your country", 0.75),
        ),
        model="tiny.en",
        precision="int8",
        avg_logprob=-0.21,
        no_speech_prob=0.01,
        confidence=0.85,
        latency_ms=412.0,
        end_of_stream=False,
        language="en",
        produced_at=1_714_564_800.125,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "segment",
    [
        _segment(),
        _segment(is_final=False, revision=0, latency_ms=None, produced_at=None),
        _segment(text="", words=(), end_of_stream=True, avg_logprob=0.0, confidence=0.0),
    ],
)
def test_round_trip_and_schema(segment: TranscriptSegment) -> None:
    data = encode_segment(segment)
    document = orjson.loads(data)
    validate_segment(document)
    assert document["schema_version"] == SEGMENT_SCHEMA_VERSION
    assert all(set(w) == {"start", "end", "word", "probability"} for w in document["words"])
    assert decode_segment(data) == segment


def test_non_finite_numbers_are_refused_at_encode() -> None:
    with pytest.raises(ValueError, match="avg_logprob"):
        encode_segment(_segment(avg_logprob=float("-inf")))
    with pytest.raises(ValueError, match="word"):
        encode_segment(_segment(words=(Word(0.0, float("nan"), "x", 0.5),)))


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
    ],
)
def test_decode_rejects_non_objects(data: bytes, fragment: str) -> None:
    with pytest.raises(SegmentDecodeError, match=fragment):
        decode_segment(data)


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("confidence", 1.5, "confidence"),
        ("index", -1, "index"),
        ("is_final", "yes", "is_final"),
        ("schema_version", 4, "schema_version"),
        ("session", "a:b", "session"),
        ("gaps", [{"start": 0, "end": 1, "reason": "unknown", "detail": ""}], "gaps"),
        ("stream_id", "", "stream_id"),
        ("extra_field", 1, "(root)"),
    ],
)
def test_decode_rejects_schema_breaches(field: str, value: object, where: str) -> None:
    document = orjson.loads(encode_segment(_segment()))
    document[field] = value
    with pytest.raises(SegmentDecodeError, match=where):
        decode_segment(orjson.dumps(document))


def test_missing_word_field_is_named() -> None:
    document = orjson.loads(encode_segment(_segment()))
    del document["words"][1]["probability"]
    with pytest.raises(SchemaViolation, match="words/1"):
        validate_segment(document)


def test_a_v2_final_reads_above_every_interim_of_its_id() -> None:
    """v2 published finals at revision 0, like the first interim: read back, the final must still win."""
    document = orjson.loads(encode_segment(_segment()))
    document["schema_version"] = 2
    document["revision"] = 0
    final = decode_segment(orjson.dumps(document))
    interim = decode_segment(orjson.dumps(dict(document, is_final=False, revision=7)))
    assert final.is_final and final.revision > interim.revision


def test_the_contract_names_every_gap_reason_the_code_can_write() -> None:
    from stream_app.wire.schema import SEGMENT_SCHEMA, load_schema
    from stream_app.wire.segment import GAP_REASONS

    schema = load_schema(SEGMENT_SCHEMA)
    assert schema["properties"]["gaps"]["items"]["properties"]["reason"]["enum"] == list(GAP_REASONS)


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_record_read_back_is_written_again_as_a_valid_record_of_this_version(version: int) -> None:
    """`stream-app tail --json` prints what it read: a v1 or v2 record comes out as this version's record."""
    document = orjson.loads(encode_segment(_segment()))
    document["schema_version"] = version
    document["revision"] = 0
    if version == 1:
        del document["session"], document["gaps"]
    validate_segment(document)
    again = orjson.loads(encode_segment(decode_segment(orjson.dumps(document))))
    validate_segment(again)
    assert again["schema_version"] == SEGMENT_SCHEMA_VERSION and again["revision"] > 0  # a final above its interims
