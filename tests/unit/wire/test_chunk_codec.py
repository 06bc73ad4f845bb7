from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import pytest

from stream_app.audio.pcm import float_to_pcm, resample_chunk, target_position
from stream_app.wire.chunk import ChunkFormat
from stream_app.wire.chunk_codec import CHUNK_EVENT_TYPE, decode_chunk, encode_chunk
from stream_app.wire.exceptions import DECODER_REASONS, ChunkRejected
from stream_app.wire.headers import headers_to_dict
from stream_app.wire.schema import validate_chunk_headers
from stream_app.wire.stream_key import key_digest

MAX = 1_000_000


def _frames(rate: int, channels: int, seconds: float = 0.1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    base = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    return np.stack([base * (1.0 - 0.3 * c) for c in range(channels)], axis=1).astype(np.float32)


def _good(**overrides: bytes) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    fmt = ChunkFormat("s16le", 16_000, 1)
    key, value, headers = encode_chunk("mic-1", 3, 4800, float_to_pcm(_frames(16_000, 1), "s16le"), fmt, False, "t")
    replaced = [(name, overrides.get(name, raw)) for name, raw in headers]
    return key, value, replaced


def _without(headers: list[tuple[str, bytes]], name: str) -> list[tuple[str, bytes]]:
    return [(n, v) for n, v in headers if n != name]


@pytest.mark.parametrize("encoding", ["s16le", "f32le"])
@pytest.mark.parametrize("rate", [8_000, 16_000, 44_100, 48_000])
@pytest.mark.parametrize("channels", [1, 2])
def test_round_trip_converts_to_16k_mono(encoding: str, rate: int, channels: int) -> None:
    frames = _frames(rate, channels)
    offset = 7 * frames.shape[0]
    fmt = ChunkFormat(encoding, rate, channels)
    when = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    key, value, headers = encode_chunk(
        "stream-ä", 7, offset, float_to_pcm(frames, encoding), fmt, False, "rec", time=when
    )

    chunk = decode_chunk(key, value, headers, max_bytes=MAX)

    assert chunk.stream_id == "stream-ä"
    assert chunk.seq == 7
    assert chunk.offset == target_position(offset, rate)
    assert chunk.end == target_position(offset + frames.shape[0], rate)
    assert chunk.samples.dtype == np.float32
    assert chunk.source_format == fmt
    assert chunk.event_type == CHUNK_EVENT_TYPE
    assert chunk.source == "rec"
    assert chunk.produced_at_ms == int(when.timestamp() * 1000)
    assert not chunk.end_of_stream
    expected = resample_chunk(frames.mean(axis=1).astype(np.float32), rate, offset)
    tolerance = 1e-6 if encoding == "f32le" else 2e-4
    np.testing.assert_allclose(chunk.samples, expected, atol=tolerance)
    validate_chunk_headers(headers_to_dict(headers))


def test_end_of_stream_chunk_may_be_empty() -> None:
    key, _, headers = encode_chunk("s", 9, 160_000, b"", ChunkFormat("f32le", 48_000, 2), True, "rec")
    chunk = decode_chunk(key, b"", headers, max_bytes=MAX)
    assert chunk.end_of_stream
    assert chunk.samples.shape == (0,)
    assert chunk.offset == target_position(160_000, 48_000)


def test_audio_l16_is_read_as_little_endian_s16() -> None:
    key, value, headers = _good(**{"content-type": b"audio/L16; rate=16000; channels=1"})
    pcm = np.frombuffer(value, dtype="<i2").astype(np.float32) / 32768.0
    np.testing.assert_array_equal(decode_chunk(key, value, headers, max_bytes=MAX).samples, pcm)


def test_unknown_ce_extensions_are_kept_and_ce_time_is_optional() -> None:
    key, value, headers = _good()
    headers = [*_without(headers, "ce_time"), ("ce_traceparent", b"00-abc-01"), ("other", b"x")]
    chunk = decode_chunk(key, value, dict(headers), max_bytes=MAX)
    assert chunk.extra == {"traceparent": "00-abc-01"}
    assert chunk.produced_at_ms == 0


def _case(reason: str) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]] | object]:
    key, value, headers = _good()
    f32 = ChunkFormat("f32le", 16_000, 1)
    match reason:
        case "missing_header":
            return key, value, _without(headers, "ce_seq")
        case "bad_header":
            return key, value, [*headers, ("ce_id", b"again")]
        case "bad_specversion":
            return _good(ce_specversion=b"0.3")
        case "bad_content_type":
            return _good(**{"content-type": b"application/json"})
        case "unsupported_encoding":
            return _good(**{"content-type": b"audio/pcm; encoding=mulaw; rate=8000"})
        case "unsupported_rate":
            return _good(**{"content-type": b"audio/pcm; encoding=s16le; rate=4000; channels=1"})
        case "bad_channels":
            return _good(**{"content-type": b"audio/pcm; encoding=s16le; rate=16000; channels=9"})
        case "misaligned_payload":
            return key, value + b"\x01", headers
        case "empty_payload":
            return key, b"", headers
        case "oversized":
            return key, bytes(MAX + 2), headers
        case "non_finite_samples":
            samples = np.array([0.1, np.nan, 0.2, np.inf], dtype="<f4")
            return encode_chunk("s", 0, 0, samples.tobytes(), f32, False, "t")
        case "out_of_range_samples":
            samples = np.array([0.1, -0.5, 2e3, 0.2], dtype="<f4")  # finite, 66 dB past full scale
            return encode_chunk("s", 0, 0, samples.tobytes(), f32, False, "t")
        case "bad_seq":
            return _good(ce_seq=b"-1")
        case "bad_offset":
            return _good(ce_streamoffset=b"12.5")
        case "bad_time":
            return _good(ce_time=b"yesterday")
        case "bad_end_of_stream":
            return _good(ce_endofstream=b"yes")
        case "empty_key":
            return None, value, headers
        case "bad_stream_id":
            return b"\xff\xfe", value, headers
    raise AssertionError(reason)


@pytest.mark.parametrize("reason", DECODER_REASONS)
def test_every_rejection_reason(reason: str) -> None:
    key, value, headers = _case(reason)
    with pytest.raises(ChunkRejected) as caught:
        decode_chunk(key, value, headers, max_bytes=MAX)  # type: ignore[arg-type]
    assert caught.value.reason == reason
    assert caught.value.detail


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("ce_seq", b"\xd9", "bad_header"),  # a truncated UTF-8 sequence
        ("ce_seq", "٣".encode(), "bad_seq"),  # Arabic-Indic three: a digit to str.isdigit, not to us
        ("ce_seq", b"1_000", "bad_seq"),
        ("ce_seq", b"007", "bad_seq"),
        ("ce_seq", b"99999999999999999999", "bad_seq"),
        ("ce_time", b"2024-05-01 12:00:00Z", "bad_time"),
        ("ce_time", b"2024-05-01T12:00:00", "bad_time"),
        ("ce_time", b"2024-13-01T12:00:00Z", "bad_time"),
        ("ce_id", b"", "bad_header"),
        ("content-type", b"audio/pcm; rate=16000", "bad_content_type"),
        ("content-type", b"audio/pcm; encoding=s16le; rate=sixteen", "unsupported_rate"),
        ("content-type", b"audio/pcm; encoding=s16le; rate=16000; channels=0", "bad_channels"),
        ("content-type", b"audio/pcm; encoding=s16le; encoding=f32le; rate=16000", "bad_content_type"),
        ("content-type", b"audio/L16; encoding=f32le; rate=16000", "unsupported_encoding"),
    ],
)
def test_malformed_header_values(header: str, value: bytes, reason: str) -> None:
    key, payload, headers = _good(**{header: value})
    with pytest.raises(ChunkRejected) as caught:
        decode_chunk(key, payload, headers, max_bytes=MAX)
    assert caught.value.reason == reason


def test_stream_id_rules() -> None:
    _, value, headers = _good()
    for bad in (b"a\x00b", b" padded", b"x" * 257, b"line\n"):
        with pytest.raises(ChunkRejected) as caught:
            decode_chunk(bad, value, headers, max_bytes=MAX)
        assert caught.value.reason == "bad_stream_id"


def test_unknown_reason_code_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown rejection reason"):
        ChunkRejected("because", "no")


def test_encoder_refuses_what_the_decoder_would_reject() -> None:
    fmt = ChunkFormat("s16le", 16_000, 2)
    with pytest.raises(ValueError):
        encode_chunk("s", 0, 0, b"\x00\x00", fmt, False, "t")
    with pytest.raises(ValueError):
        encode_chunk("s", -1, 0, b"", fmt, True, "t")
    with pytest.raises(ValueError):
        encode_chunk("", 0, 0, b"", fmt, True, "t")


def test_mutated_records_only_ever_raise_chunk_rejected() -> None:
    rng = random.Random(1234)
    key, value, headers = _good()
    accepted = 0
    for _ in range(2000):
        mutated_headers = list(headers)
        i = rng.randrange(len(mutated_headers))
        name, raw = mutated_headers[i]
        raw_list = bytearray(raw)
        for _ in range(rng.randint(1, 3)):
            op = rng.random()
            if op < 0.4 and raw_list:
                raw_list[rng.randrange(len(raw_list))] = rng.randrange(256)
            elif op < 0.7:
                raw_list.insert(rng.randint(0, len(raw_list)), rng.randrange(256))
            elif raw_list:
                del raw_list[rng.randrange(len(raw_list))]
        mutated_headers[i] = (name, bytes(raw_list))
        payload = value[: rng.randrange(len(value) + 1)] if rng.random() < 0.3 else value
        try:
            decode_chunk(key, payload, mutated_headers, max_bytes=MAX)
            accepted += 1
        except ChunkRejected as exc:
            assert exc.reason in DECODER_REASONS
    assert 0 < accepted < 2000


def test_huge_finite_float_samples_are_rejected_before_they_can_overflow_anything() -> None:
    fmt = ChunkFormat("f32le", 16_000, 2)
    pcm = np.full(3200, 3e38, dtype="<f4").tobytes()  # finite, but the two channels' sum is not
    key, value, headers = encode_chunk("s", 0, 0, pcm, fmt, False, "test:recorder")
    with pytest.raises(ChunkRejected) as caught:
        decode_chunk(key, value, headers, max_bytes=1 << 20)
    assert caught.value.reason == "out_of_range_samples"


def test_float_samples_a_little_past_full_scale_are_audio() -> None:
    samples = np.array([0.5, -1.7, 1.2, 999.0], dtype="<f4")  # a hot recorder's clipping, not a bug
    key, value, headers = encode_chunk("s", 0, 0, samples.tobytes(), ChunkFormat("f32le", 16_000, 1), False, "t")
    np.testing.assert_array_equal(decode_chunk(key, value, headers, max_bytes=MAX).samples, samples)


def test_a_stream_key_is_carried_as_its_digest_only() -> None:
    fmt = ChunkFormat("s16le", 16_000, 1)
    key, value, headers = encode_chunk("s", 0, 0, bytes(320), fmt, False, "t", stream_key="k3y-of-the-recorder")
    chunk = decode_chunk(key, value, headers, max_bytes=MAX)
    assert chunk.key_digest == key_digest("k3y-of-the-recorder") and len(chunk.key_digest) == 32
    assert "k3y-of-the-recorder" not in repr(chunk)
    assert decode_chunk(*encode_chunk("s", 0, 0, bytes(320), fmt, False, "t"), max_bytes=MAX).key_digest == ""
    assert key_digest("another") != chunk.key_digest


@pytest.mark.parametrize("bad", [b"", b"with space", "caf\u00e9".encode(), b"x" * 257])
def test_a_malformed_stream_key_is_refused(bad: bytes) -> None:
    key, value, headers = _good()
    with pytest.raises(ChunkRejected) as caught:
        decode_chunk(key, value, [*headers, ("ce_streamkey", bad)], max_bytes=MAX)
    assert caught.value.reason == "bad_header"
    with pytest.raises(ValueError):
        encode_chunk("s", 0, 0, b"", ChunkFormat("s16le", 16_000, 1), True, "t", stream_key=bad.decode("utf-8"))
