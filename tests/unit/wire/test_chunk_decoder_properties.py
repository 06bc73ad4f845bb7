"""Property-based tests of the chunk decoder: whatever a producer sends, an AudioChunk or a documented rejection.

Three sources of records: anything at all (random key, value and headers), valid records with one
thing broken (a header changed, dropped, repeated or added, the payload or the key replaced), and
valid records (which must round-trip through `encode_chunk` / `decode_chunk`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_app.audio.pcm import SAMPLE_BYTES, target_position
from stream_app.wire.chunk import AudioChunk, ChunkFormat
from stream_app.wire.chunk_codec import (
    CHUNK_EVENT_TYPE,
    H_CONTENT_TYPE,
    H_END_OF_STREAM,
    H_ID,
    H_OFFSET,
    H_SEQ,
    H_SOURCE,
    H_SPECVERSION,
    H_TIME,
    H_TYPE,
    MAX_POSITION,
    MAX_STREAM_ID_LENGTH,
    decode_chunk,
    encode_chunk,
)
from stream_app.wire.content_type import MAX_CHANNELS, MAX_RATE, MIN_RATE
from stream_app.wire.exceptions import DECODER_REASONS, ChunkRejected

MAX_BYTES = 1 << 20
HEADER_NAMES = (H_SPECVERSION, H_ID, H_SOURCE, H_TYPE, H_TIME, H_CONTENT_TYPE, H_SEQ, H_OFFSET, H_END_OF_STREAM)
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---- strategies ----------------------------------------------------------------------------------

header_values = st.one_of(
    st.none(),
    st.binary(max_size=64),
    st.text(max_size=64),
    st.sampled_from(["1.0", "0", "18446744073709551616", "-1", "true", "TRUE", "audio/pcm; encoding=s16le"]),
    st.builds(lambda n: "x" * n, st.integers(4090, 4100)),
)
header_names = st.one_of(st.sampled_from(HEADER_NAMES), st.sampled_from([n.upper() for n in HEADER_NAMES]), st.text())
header_lists = st.lists(st.tuples(header_names, header_values), max_size=12)
any_headers = st.one_of(
    st.none(),
    header_lists,
    st.dictionaries(header_names, header_values, max_size=12),
    st.lists(st.one_of(st.tuples(header_names, header_values), st.integers(), st.text(), st.tuples()), max_size=6),
)
stream_ids = st.text(min_size=1, max_size=MAX_STREAM_ID_LENGTH).filter(lambda s: s.isprintable() and s.strip() == s)
formats = st.builds(
    ChunkFormat,
    st.sampled_from(["s16le", "f32le"]),
    st.one_of(st.sampled_from([8_000, 16_000, 22_050, 44_100, 48_000, 192_000]), st.integers(MIN_RATE, MAX_RATE)),
    st.integers(1, MAX_CHANNELS),
)
positions = st.one_of(st.integers(0, 10**7), st.integers(0, MAX_POSITION))
times = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.timezones())


@st.composite
def pcm_for(draw: st.DrawFn, fmt: ChunkFormat, *, min_frames: int = 0) -> bytes:
    """Interleaved PCM in ``fmt``: any s16le samples, finite f32le samples in the audio range."""
    frames = draw(st.integers(min_frames, 300))
    count = frames * fmt.channels
    if fmt.encoding == "s16le":
        return draw(st.binary(min_size=count * 2, max_size=count * 2))
    values = draw(st.lists(st.floats(-1.0, 1.0, width=32), min_size=count, max_size=count))
    return np.asarray(values, dtype="<f4").tobytes()


@st.composite
def valid_records(draw: st.DrawFn) -> dict[str, Any]:
    """The arguments of one valid `encode_chunk` call and the record it makes."""
    fmt = draw(formats)
    end_of_stream = draw(st.booleans())
    args: dict[str, Any] = {
        "stream_id": draw(stream_ids),
        "seq": draw(positions),
        "offset": draw(positions),
        "pcm_bytes": draw(pcm_for(fmt, min_frames=0 if end_of_stream else 1)),
        "fmt": fmt,
        "end_of_stream": end_of_stream,
        "source": draw(st.text(min_size=1, max_size=80)),
        "event_id": draw(st.text(min_size=1, max_size=80)),
        "time": draw(times),
    }
    key, value, headers = encode_chunk(**args)
    return {"args": args, "key": key, "value": value, "headers": headers}


def _decode_or_reason(key: Any, value: Any, headers: Any, max_bytes: int = MAX_BYTES) -> AudioChunk | str:
    """Decode; return the chunk, or the rejection's reason. Any other exception fails the test."""
    try:
        chunk = decode_chunk(key, value, headers, max_bytes=max_bytes)
    except ChunkRejected as rejected:
        assert rejected.reason in DECODER_REASONS, rejected.reason
        assert rejected.detail
        return rejected.reason
    assert isinstance(chunk, AudioChunk)
    assert chunk.samples.dtype == np.float32 and chunk.samples.ndim == 1
    return chunk


# ---- properties ----------------------------------------------------------------------------------


@PROPERTY
@given(
    key=st.one_of(st.none(), st.binary(max_size=300), stream_ids.map(str.encode)),
    value=st.one_of(st.none(), st.binary(max_size=2048)),
    headers=any_headers,
    max_bytes=st.integers(0, 4096),
)
def test_any_record_decodes_or_is_rejected_with_a_documented_reason(
    key: bytes | None, value: bytes | None, headers: Any, max_bytes: int
) -> None:
    _decode_or_reason(key, value, headers, max_bytes)


def _mutated(record: dict[str, Any], data: st.DataObject) -> tuple[Any, Any, Any]:
    key, value, headers = record["key"], record["value"], list(record["headers"])
    mutation = data.draw(st.sampled_from(["replace", "drop", "repeat", "add", "value", "key", "mapping"]))
    index = data.draw(st.integers(0, len(headers) - 1))
    if mutation == "replace":
        headers[index] = (headers[index][0], data.draw(header_values))
    elif mutation == "drop":
        del headers[index]
    elif mutation == "repeat":
        headers.insert(index, (headers[index][0].upper(), data.draw(header_values)))
    elif mutation == "add":
        headers.append((data.draw(header_names), data.draw(header_values)))
    elif mutation == "value":
        value = data.draw(st.one_of(st.none(), st.binary(max_size=4096), st.just(value[:-1])))
    elif mutation == "key":
        key = data.draw(st.one_of(st.none(), st.binary(max_size=300)))
    else:
        return key, value, {name: raw for name, raw in headers}
    return key, value, headers


@PROPERTY
@given(record=valid_records(), data=st.data())
def test_a_valid_record_with_one_thing_broken_decodes_or_is_rejected_with_a_documented_reason(
    record: dict[str, Any], data: st.DataObject
) -> None:
    _decode_or_reason(*_mutated(record, data))


@PROPERTY
@given(record=valid_records())
def test_encoded_chunks_decode_to_what_was_encoded(record: dict[str, Any]) -> None:
    args = record["args"]
    fmt: ChunkFormat = args["fmt"]
    chunk = _decode_or_reason(record["key"], record["value"], record["headers"])
    assert isinstance(chunk, AudioChunk), chunk
    assert chunk.stream_id == args["stream_id"]
    assert chunk.seq == args["seq"]
    assert chunk.end_of_stream == args["end_of_stream"]
    assert (chunk.source, chunk.event_id, chunk.event_type) == (args["source"], args["event_id"], CHUNK_EVENT_TYPE)
    assert chunk.source_format == fmt
    assert chunk.extra == {}
    frames = len(args["pcm_bytes"]) // (SAMPLE_BYTES[fmt.encoding] * fmt.channels)
    assert chunk.offset == target_position(args["offset"], fmt.sample_rate)
    assert chunk.end == target_position(args["offset"] + frames, fmt.sample_rate)  # the 16 kHz spans tile a stream
    assert np.isfinite(chunk.samples).all()
    sent_ms = args["time"].astimezone(UTC).replace(microsecond=args["time"].microsecond // 1000 * 1000)
    assert abs(chunk.produced_at_ms - sent_ms.timestamp() * 1000) <= 1


@PROPERTY
@given(record=valid_records())
def test_16khz_mono_s16le_samples_come_back_exactly(record: dict[str, Any]) -> None:
    args = {**record["args"], "fmt": ChunkFormat("s16le", 16_000, 1)}
    args["pcm_bytes"] = args["pcm_bytes"][: len(args["pcm_bytes"]) // 2 * 2]
    if not args["pcm_bytes"]:
        args["end_of_stream"] = True
    chunk = decode_chunk(*encode_chunk(**args), max_bytes=MAX_BYTES)
    expected = np.frombuffer(args["pcm_bytes"], dtype="<i2").astype(np.float32) / np.float32(32768)
    np.testing.assert_array_equal(chunk.samples, expected)
    assert chunk.offset == args["offset"]
