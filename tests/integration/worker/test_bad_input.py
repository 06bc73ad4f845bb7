"""Everything a recorder can send wrong has a defined outcome, and the other streams never notice."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from confluent_kafka import Producer

from stream_app.audio.files import read_native_audio
from stream_app.audio.pcm import float_to_pcm
from stream_app.clients.chunking import plan_chunks, prepare_audio
from stream_app.clients.kafka_config import producer_config
from stream_app.config import Settings
from stream_app.testing.service import ServiceHarness
from stream_app.testing.wer import word_error_rate
from stream_app.wire.chunk import ChunkFormat
from stream_app.wire.chunk_codec import encode_chunk

FMT = ChunkFormat("s16le", 16_000, 1)


def good_records(
    stream_id: str, frames: np.ndarray, chunk_ms: float = 200.0, key: str | None = None
) -> list[tuple[bytes, bytes, list]]:
    return [
        encode_chunk(stream_id, c.seq, c.offset, c.pcm, FMT, c.end_of_stream, "test:recorder", stream_key=key)
        for c in plan_chunks(frames, FMT, chunk_ms)
    ]


def with_header(headers: list[tuple[str, bytes]], name: str, value: bytes | None) -> list[tuple[str, bytes]]:
    kept = [(n, v) for n, v in headers if n != name]
    return kept if value is None else [*kept, (name, value)]


def test_bad_records_go_to_the_dead_letter_topic_and_streams_go_on(
    settings: Settings, jfk_path: Path, jfk_reference: str
) -> None:
    frames, _ = prepare_audio(read_native_audio(jfk_path), "s16le16k", "s16le")
    good = good_records("good", frames, key="the-good-recorder-s-key")
    _key, value, headers = good[3]
    # another writer ends "good" far ahead of its audio: before stream keys its recorder was cut off
    forged = encode_chunk("good", 9_999, 16_000 * 60, b"", FMT, True, "test:forger", stream_key="a-guess")
    one_second = float_to_pcm(np.zeros((16000, 1), np.float32), "s16le")
    nan_payload = np.full(1600, np.nan, dtype="<f4").tobytes()
    bad = {
        "missing_header": (b"bad-1", value, with_header(headers, "content-type", None)),
        "bad_content_type": (b"bad-2", value, with_header(headers, "content-type", b"video/mp4")),
        "unsupported_encoding": (
            b"bad-3",
            value,
            with_header(headers, "content-type", b"audio/pcm; encoding=mulaw; rate=16000; channels=1"),
        ),
        "unsupported_rate": (
            b"bad-4",
            value,
            with_header(headers, "content-type", b"audio/pcm; encoding=s16le; rate=4000; channels=1"),
        ),
        "non_finite_samples": (
            b"bad-5",
            nan_payload,
            with_header(headers, "content-type", b"audio/pcm; encoding=f32le; rate=16000; channels=1"),
        ),
        "oversized": (b"bad-6", one_second * 12, headers),
        "misaligned_payload": (b"bad-7", value + b"\x01", headers),
        "bad_seq": (b"bad-8", value, with_header(headers, "ce_seq", b"minus-one")),
        "empty_key": (None, value, headers),
        "wrong_stream_key": forged,
    }
    # the good stream arrives shuffled within small groups and with every chunk sent twice
    shuffled = []
    rng = random.Random(5)
    for start in range(0, len(good), 4):
        group = good[start : start + 4]
        rng.shuffle(group)
        shuffled.extend(group)
    # a second stream loses one chunk (a gap) and a third never ends (idle timeout flushes it)
    gappy = [r for i, r in enumerate(good_records("gappy", frames)) if i != 20]
    endless = good_records("endless", frames[: 16000 * 6])[:-1]

    env = {
        "STREAM_APP_STREAMING__IDLE_TIMEOUT": "4s",
        "STREAM_APP_STREAMING__MAX_REORDER_CHUNKS": "8",
        "STREAM_APP_STREAMING__MAX_CHUNK_BYTES": "256KB",
    }
    with ServiceHarness(settings, env=env) as harness:
        harness.start("r1")
        producer = Producer(producer_config(harness.settings.kafka))
        topic = harness.settings.kafka.input_topic
        records = []
        for i, record in enumerate(shuffled):
            records.append(record)
            records.append(record)  # duplicate
            if i < len(bad):
                records.append(list(bad.values())[i])
        records += gappy + endless
        for k, v, h in records:
            producer.produce(topic, key=k, value=v, headers=h)
        producer.flush(30)

        collected = harness.collect(["good", "gappy", "endless"], timeout=180)
        letters = harness.dead_letters(expect=len(bad), timeout=30)
        metrics = harness.replicas["r1"].metrics()
        assert harness.replicas["r1"].running, harness.log_tail("r1")

    assert collected["good"].transcript.complete
    assert word_error_rate(jfk_reference, collected["good"].transcript.text) <= 0.10, collected["good"].transcript.text
    assert collected["gappy"].transcript.complete
    assert word_error_rate(jfk_reference, collected["gappy"].transcript.text) <= 0.35
    endless = collected["endless"]
    assert endless.transcript.complete, "the idle timeout must flush and end a stream that never ends"
    assert "fellow americans" in endless.transcript.text.lower()

    assert sorted(letter.reason for letter in letters) == sorted(bad)
    by_reason = {letter.reason: letter for letter in letters}
    assert by_reason["misaligned_payload"].value == value + b"\x01"  # original bytes kept
    assert by_reason["oversized"].headers["dlq_source_topic"] == topic.encode()
    assert 'stream_app_chunks_total{outcome="duplicate"}' in metrics
    assert "stream_app_gaps_total" in metrics
