"""A take-over reads a changelog's records back by offset range from a real broker."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from stream_app.clients.kafka_config import producer_config
from stream_app.config import Settings
from stream_app.worker.catch_up import KafkaChangelogReader
from stream_app.worker.tables import WriteStamp


async def test_a_range_of_a_changelog_partition_is_read_back_exactly(
    settings: Settings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("changelog", partitions=2)
    producer = Producer(producer_config(settings.kafka))
    for n in range(6):
        value = None if n == 3 else f"v{n}".encode()  # a tombstone among them
        producer.produce(topic, key=f"k{n}".encode(), value=value, partition=1, headers=WriteStamp(n, 10 + n).headers())
    producer.produce(topic, key=b"other", value=b"x", partition=0)
    assert producer.flush(30) == 0
    reader = KafkaChangelogReader(settings.kafka)

    middle = await reader.read(topic, 1, 2, 5)
    assert [(r.offset, r.key, r.value) for r in middle] == [(2, b"k2", b"v2"), (3, b"k3", None), (4, b"k4", b"v4")]
    assert dict(middle[0].headers) == dict(WriteStamp(2, 12).headers())
    assert await reader.read(topic, 1, 3, 3) == []
    short = KafkaChangelogReader(settings.kafka, timeout=3.0)
    with pytest.raises(ConnectionError, match="not read from 4 to 100"):  # records not (yet) visible: retried
        await short.read(topic, 1, 4, 100)
