"""The shared local stack that integration tests run on: topics, a Kafka round trip, Redis, the CLI."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
import redis
from confluent_kafka import Consumer, Producer

from stream_app.cli.main import main
from stream_app.config import Settings
from stream_app.local import LocalStack, delete_topics, ensure_topics, service_topics
from stream_app.local.admin import admin_client

pytestmark = pytest.mark.integration


def test_service_topics_exist_with_the_configured_partitions(settings: Settings, local_stack: LocalStack) -> None:
    metadata = admin_client(settings.kafka.bootstrap_servers).list_topics(timeout=10)
    for name in service_topics(settings):
        assert name in metadata.topics, name
        assert len(metadata.topics[name].partitions) == settings.kafka.partitions


def test_ensure_topics_creates_once(settings: Settings, unique_name: Callable[[str], str]) -> None:
    name = unique_name("ensure")
    try:
        assert ensure_topics(settings, [name], partitions=3) == [name]
        assert ensure_topics(settings, [name], partitions=3) == []
        metadata = admin_client(settings.kafka.bootstrap_servers).list_topics(name, timeout=10)
        assert len(metadata.topics[name].partitions) == 3
    finally:
        delete_topics(settings, [name])


def test_produce_and_consume_one_message(
    settings: Settings, new_topic: Callable[..., str], new_group_id: Callable[[str], str]
) -> None:
    topic = new_topic("roundtrip", partitions=2)
    key, value = b"stream-1", uuid.uuid4().bytes
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "acks": "all"})
    producer.produce(topic, key=key, value=value, headers=[("ce_id", b"1")])
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": new_group_id("roundtrip"),
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([topic])
        message = None
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                break
        assert message is not None and message.error() is None
        assert (message.key(), message.value()) == (key, value)
        assert message.headers() == [("ce_id", b"1")]
    finally:
        consumer.close()


def test_redis_answers_at_the_cache_url(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.caching.l3_redis_url)
    key = f"test:{uuid.uuid4().hex}"
    try:
        assert client.set(key, b"value", ex=60)
        assert client.get(key) == b"value"
    finally:
        client.delete(key)
        client.close()


def test_cli_status_reports_both_services(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "status"]) == 0
    out = capsys.readouterr().out
    assert "kafka" in out and "redis" in out
    assert "not answering" not in out
