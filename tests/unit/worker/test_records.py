from __future__ import annotations

import contextlib
import struct
import zlib

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.inference.types import Word
from stream_app.streaming.buffer import Loss
from stream_app.streaming.config import LiveConfig
from stream_app.streaming.planner import PlannerState
from stream_app.streaming.speech import SpeechTrack
from stream_app.streaming.state import MergerState
from stream_app.testing.segments import make_segment
from stream_app.wire.segment import Gap
from stream_app.worker.exceptions import StateCorrupt
from stream_app.worker.records import (
    EndedMarker,
    HeldRef,
    StreamHeader,
    attempt_key,
    decode_attempt,
    decode_samples,
    decode_stream_record,
    encode_attempt,
    encode_fenced,
    encode_header,
    encode_marker,
    encode_samples,
    held_key,
    page_key,
)
from stream_app.worker.session_state import CONFIG_FIELDS

CONFIG = LiveConfig.from_seconds(min_window=10.0, commit_step=0.5)


def header(**overrides: object) -> StreamHeader:
    fields: dict[str, object] = {
        "session": "3.1200",
        "config": CONFIG,
        "buffer": {"seq": 41, "shift": 0, "ended": False, "resume": False, "heard": 30_500, "lost": [7, 8]},
        "base": 30_000,
        "tail_start": 32_000,
        "tail": np.linspace(-1, 1, 1234, dtype=np.float32),
        "page_crcs": {1: 12345},
        "held": [HeldRef(43, 40_000, 1600, False, 999)],
        "speech": SpeechTrack(
            origin=0, first=50, probs=np.linspace(0, 1, 17, dtype=np.float32), model_state=b"\x01" * 1280
        ),
        "planner": PlannerState(scanned=67, window_start=30_000, in_speech=True, voiced=8192, next_tick=48_000),
        "merger": MergerState(
            "mic-1",
            session="3.1200",
            next_index=4,
            revision=2,
            interim_text="so",
            committed=[Word(1.875, 2.25, "well,", 0.875)],
            hypothesis=[Word(2.5, 2.75, "so", 0.5)],
            hypothesis_at=48_000,
            gaps=[Gap(1.0, 1.25, "lost_chunks", "chunks 7..8 never arrived")],
            decodes=9,
        ),
        "losses": [Loss(33_000, 33_000, "skipped_audio", "1.000 s of stream time skipped")],
        "outbox": [make_segment("mic-1", 3, "hello there", final=True, revision=2, seconds=5.0, speech=4.0)],
        "version": 17,
        "origin_ms": 1_700_000_000_000,
        "shown_until": 2.5,
    }
    fields.update(overrides)
    return StreamHeader(**fields)  # type: ignore[arg-type]


def test_header_round_trip_keeps_everything() -> None:
    original = header()
    decoded = decode_stream_record(encode_header(original))
    assert isinstance(decoded, StreamHeader)
    assert decoded.tail.tobytes() == original.tail.tobytes()
    assert decoded.speech.probs.tobytes() == original.speech.probs.tobytes()
    assert (decoded.speech.origin, decoded.speech.first, decoded.speech.model_state) == (0, 50, b"\x01" * 1280)
    assert (decoded.session, decoded.config, decoded.buffer, decoded.base, decoded.tail_start) == (
        original.session,
        original.config,
        original.buffer,
        original.base,
        original.tail_start,
    )
    assert (decoded.page_crcs, decoded.held, decoded.merger, decoded.version) == (
        original.page_crcs,
        original.held,
        original.merger,
        original.version,
    )
    assert (decoded.planner, decoded.losses) == (original.planner, original.losses)
    assert [s.segment_id for s in decoded.outbox] == [original.outbox[0].segment_id] and decoded.outbox[
        0
    ].text == "hello there"
    assert (decoded.origin_ms, decoded.shown_until, decoded.end) == (original.origin_ms, original.shown_until, 33_234)


def _reframe(data: bytes, edit: object) -> bytes:
    """Decode a header frame's document, change it with ``edit``, and frame it again with a valid CRC."""
    (length,) = struct.unpack(">I", data[7:11])
    document = orjson.loads(data[11 : 11 + length])
    edit(document)  # type: ignore[operator]
    raw = orjson.dumps(document)
    body = struct.pack(">I", len(raw)) + raw + data[11 + length :]
    return data[:3] + struct.pack(">I", zlib.crc32(body)) + body


def test_a_header_from_an_earlier_release_takes_defaults_for_the_fields_it_lacks() -> None:
    older = _reframe(encode_header(header()), lambda doc: doc["cfg"].pop())
    decoded = decode_stream_record(older)
    assert isinstance(decoded, StreamHeader) and decoded.config is not None
    assert decoded.config.min_decode == LiveConfig().min_decode and decoded.config.min_window == CONFIG.min_window
    longer = _reframe(encode_header(header()), lambda doc: doc["cfg"].append(1))
    with pytest.raises(StateCorrupt):
        decode_stream_record(longer)


# The live rule's fields as the release of 2026-12-05 stored them, by position.
RULE_OF_2026_12_05 = (
    "buffer_cap", "max_reorder_chunks", "max_held", "max_gap_fill", "speech_threshold", "silence_threshold",
    "speech_lead", "speech_tail", "utterance_pause", "long_pause", "min_window", "max_window", "min_speech",
    "commit_step", "commit_lookahead", "preview_step", "min_decode", "decode_context", "force_final_words",
)  # fmt: skip


def test_a_rule_stored_by_the_release_before_reads_back_field_by_field() -> None:
    # a stored header carries the rule by position: a field inserted before the end read an earlier
    # release's preview step as the commit step growth (a stream moved in a rolling upgrade changed its finals)
    stored = CONFIG_FIELDS[: len(RULE_OF_2026_12_05)]
    assert stored == RULE_OF_2026_12_05
    values = [getattr(CONFIG, name) for name in RULE_OF_2026_12_05]
    older = _reframe(encode_header(header()), lambda doc: doc.__setitem__("cfg", values))
    decoded = decode_stream_record(older)
    assert isinstance(decoded, StreamHeader) and decoded.config is not None
    assert [getattr(decoded.config, name) for name in RULE_OF_2026_12_05] == values
    assert (decoded.config.preview_context, decoded.config.commit_step_growth) == (0, 0)
    assert decoded.config.settle_after == 0  # that release had no settling


def test_a_rule_with_a_preview_context_but_no_growth_reads_back_without_settling() -> None:
    stored = CONFIG_FIELDS[: len(RULE_OF_2026_12_05) + 1]
    assert stored[-1] == "preview_context"
    values = [getattr(CONFIG, name) for name in stored]
    older = _reframe(encode_header(header()), lambda doc: doc.__setitem__("cfg", values))
    decoded = decode_stream_record(older)
    assert isinstance(decoded, StreamHeader) and decoded.config is not None
    assert decoded.config.settle_after == 0 and decoded.settling_stored


def test_a_rule_stored_before_settling_was_stored_says_so() -> None:
    # the release of be5a202 settled by its replica's configuration but stored the rule without it:
    # the header says so, and the restoring replica's value applies (tests/unit/worker/test_store.py)
    stored = CONFIG_FIELDS[: CONFIG_FIELDS.index("settle_after")]
    values = [getattr(CONFIG, name) for name in stored]
    older = _reframe(encode_header(header()), lambda doc: doc.__setitem__("cfg", values))
    decoded = decode_stream_record(older)
    assert isinstance(decoded, StreamHeader) and decoded.config is not None
    assert not decoded.settling_stored
    current = decode_stream_record(encode_header(header()))
    assert isinstance(current, StreamHeader) and current.settling_stored


def test_a_header_of_the_release_before_the_live_rule_keeps_its_audio_and_counters() -> None:
    """A version-1 header (the windowed release): audio, sequence, session and segment counters go on."""
    document = {
        "session": "2.40",
        "cfg": [160000, 16000, 16000],
        "cur": {
            "seq": 12,
            "shift": 5,
            "win": 3,
            "start": 0,
            "level": 0.1,
            "interim": 0,
            "seen": 0,
            "ended": False,
            "finished": False,
            "resume": False,
        },
        "base": 16000,
        "tail": 32000,
        "pages": [[1, 77]],
        "held": [],
        "merger": {
            "id": "s",
            "session": "2.40",
            "idx": 6,
            "rev": 2,
            "win": 3,
            "until": 1.5,
            "tail": ["so"],
            "hyp": [[1.6, 1.9, "and", 0.9]],
            "interim": "and",
            "prompt": "",
            "ended": False,
            "model": ["tiny.en", "int8"],
        },
        "version": 9,
        "origin": 1000,
        "shown": 1.9,
    }
    raw = orjson.dumps(document)
    body = struct.pack(">I", len(raw)) + raw + np.zeros(100, "<f4").tobytes()
    decoded = decode_stream_record(struct.pack(">2sBI", b"SH", 1, zlib.crc32(body)) + body)
    assert isinstance(decoded, StreamHeader) and decoded.config is None
    assert (decoded.buffer["seq"], decoded.buffer["shift"], decoded.base, decoded.tail_start) == (12, 5, 16000, 32000)
    assert (decoded.merger.next_index, decoded.merger.revision, decoded.merger.interim_text) == (6, 2, "and")
    assert decoded.speech.origin == 16000 and decoded.planner.floor == 16000 and decoded.planner.scanned == 0


def test_marker_round_trip() -> None:
    marker = EndedMarker(last_seq=99, end=160_000, shift=3, session="0.5", ended_ms=1234, origin_ms=77, input_offset=41)
    assert decode_stream_record(encode_marker(marker)) == marker


def test_a_marker_of_the_release_before_has_no_input_offset() -> None:
    old = {"seq": 99, "end": 160_000, "shift": 3, "session": "0.5", "at": 1234, "origin": 77}
    document = orjson.dumps(old)
    body = struct.pack(">I", len(document)) + document
    stored = decode_stream_record(struct.pack(">2sBI", b"SE", 1, zlib.crc32(body)) + body)
    assert isinstance(stored, EndedMarker) and stored.input_offset == -1  # its records are all after_end, as before


def test_a_flipped_byte_is_caught_by_the_crc() -> None:
    data = bytearray(encode_header(header()))
    data[len(data) // 2] ^= 0x40
    with pytest.raises(StateCorrupt, match="CRC"):
        decode_stream_record(bytes(data))


def test_a_valid_frame_with_a_wrong_document_is_reported_as_corrupt() -> None:
    document = orjson.dumps({"session": 5})
    body = struct.pack(">I", len(document)) + document
    data = struct.pack(">2sBI", b"SH", 1, zlib.crc32(body)) + body
    with pytest.raises(StateCorrupt):
        decode_stream_record(data)


def test_keys_of_different_kinds_and_sessions_never_collide() -> None:
    keys = {
        page_key("a", "0.1", 1),
        page_key("a", "0.2", 1),
        page_key("ab", "0.1", 1),
        held_key("a", "0.1", 1),
        attempt_key("a", "0.1"),
        b"a",  # the stream's own header key lives in the other table, but must not look like these either
    }
    assert len(keys) == 6


def test_samples_and_attempt_round_trips() -> None:
    samples = np.arange(10, dtype=np.float32) / 7
    start, back = decode_samples(encode_samples(16_000, samples))
    assert start == 16_000 and back.tobytes() == samples.tobytes()
    assert decode_attempt(encode_attempt(17, 2)) == (17, 2)
    with pytest.raises(StateCorrupt):
        decode_samples(b"\x00" * 9)
    with pytest.raises(StateCorrupt):
        decode_attempt(b"\x00" * 15)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_decode_to_a_record_or_state_corrupt(data: bytes) -> None:
    try:
        decoded = decode_stream_record(data)
    except StateCorrupt:
        return
    assert isinstance(decoded, StreamHeader | EndedMarker)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=200))
def test_any_framed_document_decodes_or_is_reported_corrupt(prefix: bytes, cut: int) -> None:
    """Valid CRC frames around damaged documents still only raise StateCorrupt."""
    real = encode_header(header())
    length = struct.unpack_from(">I", real, 7)[0]
    document = real[11 : 11 + length]
    damaged = (prefix + document)[: max(0, len(document) - cut)] if cut else prefix + document
    for magic in (b"SH", b"SE"):
        body = struct.pack(">I", len(damaged)) + damaged
        for version in (1, 2):
            data = struct.pack(">2sBI", magic, version, zlib.crc32(body)) + body
            with contextlib.suppress(StateCorrupt):
                decode_stream_record(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256))
def test_any_bytes_are_samples_an_attempt_or_state_corrupt(data: bytes) -> None:
    for decode in (decode_samples, decode_attempt):
        with contextlib.suppress(StateCorrupt):
            decode(data)


def test_the_newest_record_time_round_trips_and_a_header_without_it_reads_zero() -> None:
    decoded = decode_stream_record(encode_header(header(record_ms=1_800_000_000_123)))
    assert isinstance(decoded, StreamHeader) and decoded.record_ms == 1_800_000_000_123
    older = _reframe(encode_header(header(record_ms=5)), lambda doc: doc.pop("record"))
    decoded = decode_stream_record(older)
    assert isinstance(decoded, StreamHeader) and decoded.record_ms == 0


def test_the_owner_epoch_and_input_offset_round_trip_and_an_earlier_header_reads_defaults() -> None:
    decoded = decode_stream_record(encode_header(header(epoch=7, input_offset=12_345)))
    assert isinstance(decoded, StreamHeader) and (decoded.epoch, decoded.input_offset) == (7, 12_345)
    older = _reframe(encode_header(header(epoch=7, input_offset=3)), lambda doc: [doc.pop("epoch"), doc.pop("input")])
    decoded = decode_stream_record(older)
    assert isinstance(decoded, StreamHeader) and (decoded.epoch, decoded.input_offset) == (0, -1)


def test_a_fenced_marker_reads_as_lost_state() -> None:
    with pytest.raises(StateCorrupt, match="replaced owner"):
        decode_stream_record(encode_fenced(3, 4))


def test_the_stream_key_digest_round_trips_in_headers_and_markers_and_earlier_records_read_none() -> None:
    decoded = decode_stream_record(encode_header(header(key_digest="ab" * 16)))
    assert isinstance(decoded, StreamHeader) and decoded.key_digest == "ab" * 16
    older = _reframe(encode_header(header(key_digest="ab" * 16)), lambda doc: doc.pop("key"))
    decoded = decode_stream_record(older)
    assert isinstance(decoded, StreamHeader) and decoded.key_digest == ""
    marker = EndedMarker(last_seq=9, end=16_000, shift=0, session="0.5", ended_ms=1, key_digest="cd" * 16)
    assert decode_stream_record(encode_marker(marker)) == marker
