from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from confluent_kafka import Consumer, Message

from stream_app.audio.files import decode_audio_file
from stream_app.audio.pcm import target_position
from stream_app.clients.publisher import ChunkPublisher
from stream_app.wire.chunk import AudioChunk
from stream_app.wire.chunk_codec import decode_chunk
from stream_app.wire.headers import headers_to_dict
from stream_app.wire.schema import validate_chunk_headers
from stream_app.wire.stream_key import key_digest

pytestmark = pytest.mark.integration


def _read_all(conf: dict[str, Any], topic: str, expected: int, timeout: float = 60.0) -> list[Message]:
    consumer = Consumer(conf)
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                messages.append(msg)
    finally:
        consumer.close()
    return messages


@pytest.mark.parametrize(
    ("source_format", "encoding", "rate", "channels"),
    [("native", "s16le", 44_100, 2), ("native", "f32le", 44_100, 2), ("s16le16k", "s16le", 16_000, 1)],
)
def test_jfk_chunks_reassemble_into_the_file(
    jfk_path: Path,
    fresh_topic: str,
    producer_conf: dict[str, Any],
    consumer_conf: dict[str, Any],
    source_format: str,
    encoding: str,
    rate: int,
    channels: int,
) -> None:
    with ChunkPublisher(producer_conf, fresh_topic) as publisher:
        report = publisher.publish_file(
            jfk_path, "jfk-1", chunk_ms=100, source_format=source_format, encoding=encoding, max_chunk_bytes=1_000_000
        )
    assert report.chunks == 110
    assert len(report.partitions) == 1

    messages = _read_all(consumer_conf, fresh_topic, report.chunks)
    assert len(messages) == report.chunks
    assert {m.partition() for m in messages} == report.partitions
    chunks: list[AudioChunk] = []
    for msg in messages:
        validate_chunk_headers(headers_to_dict(msg.headers()))
        chunks.append(decode_chunk(msg.key(), msg.value(), msg.headers(), max_bytes=1_000_000))

    assert [c.seq for c in chunks] == list(range(report.chunks))  # one partition keeps the order
    assert {c.key_digest for c in chunks} == {key_digest(publisher.stream_key("jfk-1"))}  # one key, every chunk
    assert [c.end_of_stream for c in chunks] == [False] * (report.chunks - 1) + [True]
    assert all(c.source_format is not None and c.source_format.sample_rate == rate for c in chunks)
    assert all(c.source_format is not None and c.source_format.channels == channels for c in chunks)
    for before, after in itertools.pairwise(chunks):
        assert before.end == after.offset  # the 16 kHz spans tile the stream
    audio = np.concatenate([c.samples for c in chunks])
    reference = decode_audio_file(jfk_path)
    assert chunks[0].offset == 0
    assert audio.shape == reference.shape == (target_position(485_100, 44_100),)
    snr = 10 * np.log10(np.sum(reference**2) / np.sum((audio - reference) ** 2))
    assert snr > 30.0
