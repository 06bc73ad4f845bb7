"""A producer that never hears from the broker is replaced and its chunks are sent again, once, in order.

The stuck producer is real: librdkafka connected to a socket that accepts connections and never
answers (a black-holed connection, as a dead NAT entry or a wedged client leaves it), while the
broker answers every fresh connection. It stands in for the idempotent producer that `bench chaos`
saw stay stuck after a broker restart.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from stream_app.audio.files import read_native_audio
from stream_app.clients.chunking import prepare_audio
from stream_app.clients.publisher import ChunkPublisher, DeliveryFailed, DeliveryLimits
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


class HalfDeadProducer(Producer):  # type: ignore[misc]
    """Answers metadata through a healthy connection while its chunks go to one that never answers.

    Every producer the publisher makes is like this, so each replacement is as stuck as the first.
    """

    def __init__(self, conf: dict[str, Any], dead_address: str) -> None:
        super().__init__(conf)
        self._dead = Producer({**conf, "bootstrap.servers": dead_address})

    def produce(self, *args: Any, **kwargs: Any) -> None:
        self._dead.produce(*args, **kwargs)

    def poll(self, timeout: float = -1) -> int:
        return int(self._dead.poll(timeout))

    def flush(self, timeout: float = -1) -> int:
        return int(self._dead.flush(timeout))

    def purge(self, *args: Any, **kwargs: Any) -> None:
        self._dead.purge(*args, **kwargs)

    def __len__(self) -> int:
        return len(self._dead)


def test_chunks_fail_at_their_own_delivery_timeout_however_many_producers_were_tried(
    black_hole: str, fresh_topic: str, producer_conf: dict[str, Any], jfk_path: Path
) -> None:
    mono, fmt = prepare_audio(read_native_audio(jfk_path), "s16le16k")
    limits = DeliveryLimits(delivery_timeout=12.0, stall_timeout=1.0)
    made: list[HalfDeadProducer] = []

    def factory(conf: dict[str, Any]) -> Producer:
        made.append(HalfDeadProducer(conf, black_hole))
        return made[-1]

    started = time.monotonic()
    with (
        ChunkPublisher(producer_conf, fresh_topic, limits=limits, producer_factory=factory) as publisher,
        pytest.raises(DeliveryFailed) as failed,
    ):
        publisher.publish_frames("half-dead-1", mono[:16_000], fmt, chunk_ms=100)
    waited = time.monotonic() - started
    assert failed.value.undelivered == failed.value.sent == 10
    assert publisher.replacements >= 1  # the broker answered, so the stalled producer was replaced ...
    assert 12.0 <= waited <= 14.0  # ... yet no chunk waited past its own limit (librdkafka restarts it)
    assert "stalled producer(s) replaced" in failed.value.reason
