"""Read a whole topic, every partition from its first record to its end, for verifiers.

A verifier must see everything a run left on a topic, not what arrived within some wait: the end of
each partition (its high watermark) is fixed when reading starts, and reading stops when every
partition reached it. Nothing is committed; no consumer group is joined.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, TopicPartition

from stream_app.clients.kafka_config import consumer_config
from stream_app.config.settings import KafkaSettings


@dataclass(frozen=True)
class TopicRecord:
    """One record as read back: where it was and what it held."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int = 0  # the record's timestamp on the broker (the producer's create time by default)


class TopicReadError(RuntimeError):
    """The topic could not be read to its end within the time given."""


def read_topic(kafka: KafkaSettings, topic: str, *, timeout: float = 120.0) -> Iterator[TopicRecord]:
    """Yield every record of ``topic``, partition by partition in offset order, up to the end seen at start.

    Raises:
        TopicReadError: the topic does not exist, or its end was not reached within ``timeout`` seconds.
    """
    consumer = Consumer({**consumer_config(kafka), "enable.partition.eof": False})
    deadline = time.monotonic() + timeout
    try:
        metadata = consumer.list_topics(topic, timeout=min(30.0, timeout))
        described = metadata.topics.get(topic)
        if described is None or described.error is not None or not described.partitions:
            raise TopicReadError(f"topic {topic} cannot be read: {getattr(described, 'error', 'missing')}")
        ends: dict[int, int] = {}
        starts: list[TopicPartition] = []
        for number in sorted(described.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, number), timeout=30.0)
            if high > low:
                ends[number] = high
                starts.append(TopicPartition(topic, number, low))
        consumer.assign(starts)
        positions = {tp.partition: tp.offset for tp in starts}
        while any(positions[p] < end for p, end in ends.items()):
            if time.monotonic() > deadline:
                behind = {p: end - positions[p] for p, end in ends.items() if positions[p] < end}
                raise TopicReadError(f"{topic}: end not reached in {timeout:.0f} s; records left {behind}")
            message = consumer.poll(0.5)
            if message is None:  # the position also moves past records never delivered (control records)
                for tp in consumer.position(starts):
                    positions[tp.partition] = max(positions[tp.partition], tp.offset)
                continue
            error = message.error()
            if error is not None:
                if error.fatal() or error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise TopicReadError(f"{topic}: {error}")
                continue
            partition, offset = int(message.partition() or 0), int(message.offset() or 0)
            positions[partition] = offset + 1
            if offset >= ends.get(partition, 0):
                continue  # written after reading started
            _, timestamp = message.timestamp()
            yield TopicRecord(
                partition, offset, message.key(), message.value(), _headers(message.headers()), max(0, int(timestamp))
            )
    finally:
        consumer.close()


def _headers(raw: object) -> tuple[tuple[str, bytes], ...]:
    """Return confluent-kafka's header list as ``(name, bytes)`` pairs (a missing value as empty bytes)."""
    out: list[tuple[str, bytes]] = []
    for item in raw if isinstance(raw, list) else ():
        name, value = item
        out.append((str(name), value if isinstance(value, bytes) else b""))
    return tuple(out)
