"""A producer that never hears from the broker is replaced and its chunks are sent again, once, in order.

The stuck producer is real: librdkafka connected to a socket that accepts connections and never
answers (a black-holed connection, as a dead NAT entry or a wedged client leaves it), while the
broker answers every fresh connection. It stands in for the idempotent producer that `bench chaos`
saw stay stuck after a broker restart.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from stream_app.audio.files import read_native_audio
from stream_app.clients.chunking import prepare_audio
from stream_app.clients.publisher import ChunkPublisher, DeliveryLimits
from stream_app.config import Settings
from stream_app.testing.topic_reader import read_topic
from stream_app.wire.chunk_codec import decode_chunk

pytestmark = pytest.mark.integration


@pytest.fixture
def black_hole() -> Iterator[str]:
    """An address that accepts TCP connections and never answers a request."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # never accepted: the kernel completes the handshakes, nobody reads
        yield f"127.0.0.1:{listener.getsockname()[1]}"


def test_a_stuck_producer_is_replaced_and_every_chunk_arrives_once_in_order(
    black_hole: str, fresh_topic: str, producer_conf: dict[str, Any], settings: Settings, jfk_path: Path
) -> None:
    made: list[str] = []

    def factory(conf: dict[str, Any]) -> Producer:
        address = black_hole if not made else conf["bootstrap.servers"]
        made.append(address)
        return Producer({**conf, "bootstrap.servers": address})

    mono, fmt = prepare_audio(read_native_audio(jfk_path), "s16le16k")
    limits = DeliveryLimits(delivery_timeout=120.0, stall_timeout=2.0)
    with ChunkPublisher(producer_conf, fresh_topic, limits=limits, producer_factory=factory) as pub:
        report = pub.publish_frames("stuck-1", mono, fmt, chunk_ms=100)
    assert report.chunks == report.acknowledged == 110
    assert report.producers_replaced == 1
    assert made[0] == black_hole and len(made) == 2
    seqs = [
        decode_chunk(r.key, r.value, list(r.headers), max_bytes=1 << 20).seq
        for r in read_topic(settings.kafka, fresh_topic, timeout=60)
    ]
    assert seqs == list(range(110))
